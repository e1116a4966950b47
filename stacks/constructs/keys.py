"""The pipeline's KMS keys: one for secrets and the change log, one HMAC key for hashing
sensitive values, one for the alarm topic (CloudWatch must be able to use it), one for the
config bus and the dead-letter queues of team changes (EventBridge must be able to use it)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class PipelineKeys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        # Losing either data key makes the change log's secrets unreadable, so they outlive
        # the stack whenever its data does.
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY

        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description="configpipe: encrypts secret values, the change log and materialised secrets",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.hash_key = kms.Key(
            self,
            "HashKey",
            description="configpipe: HMAC of sensitive values, so a secret cannot be guessed from its hash",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=removal,
        )
        # No rotation: KMS rotates only symmetric encryption keys, and a rotated HMAC key
        # would change the hash of every stored sensitive value.

        # --- security (issue 10, M3): team changes at rest on the bus and in their DLQs ------
        # A team's ConfigurationChange (its value included) is encrypted under a key of ours on
        # the bus, in the archive and in the validator-side dead-letter queues, not AWS-owned.
        self.events_key = kms.Key(
            self,
            "EventsKey",
            description="configpipe: encrypts the config bus and the dead-letter queues of team changes",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        # --- end security --------------------------------------------------------------------

        self.alarm_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="configpipe: encrypts the alarm notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes alarm notifications to the encrypted topic as itself, and
        # cannot use the AWS managed SNS key, hence a customer key that lets it in.
        self.alarm_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToNotify",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                # Only for this account's alarms (confused deputy: another account's alarm
                # could otherwise have CloudWatch use our key).
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                        )
                    },
                },
            )
        )

    # --- security (issue 10, M4): who may decrypt what the secrets key protects -------------

    def restrict_secret_decryption(self, decrypters: Sequence[iam.IRole]) -> None:
        """The key policy delegates to the account (so IAM policies grant its use), which alone
        would let any principal with kms:Decrypt on "*" decrypt every ciphertext in the change
        log. Deny a direct Decrypt to everyone but the functions that need one; a Decrypt
        *through* DynamoDB (reading the table) or Secrets Manager (reading a materialised
        secret) stays with the IAM permissions of those services' callers, and AWS services
        acting on their own grants are not principals of this account."""
        self.secrets_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DirectDecryptOnlyByThePipelineFunctions",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in decrypters]},
                    "StringNotEquals": {
                        "kms:ViaService": [
                            f"dynamodb.{Aws.REGION}.amazonaws.com",
                            f"secretsmanager.{Aws.REGION}.amazonaws.com",
                        ]
                    },
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            )
        )
