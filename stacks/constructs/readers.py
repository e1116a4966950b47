"""One IAM managed policy per (service, environment) for the service's own compute: read its
configuration and nothing else (issue 19).

``configpipe-reader-<service>-<environment>`` grants reading ``/config/<service>/<environment>/*``
and the environment's global keys ``/config/global/<environment>/*`` from SSM, the matching
``configpipe/<service|global>/<environment>/*`` secrets (and the service's tenants' values under
``<environment>.tenants/``, issue 17), and KMS Decrypt only through Secrets
Manager for exactly those secrets (``kms:EncryptionContext:SecretARN``). A service's staging
compute cannot read its production values, nor another service's.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from configpipe.contracts import GLOBAL_SERVICE
from configpipe.naming import PARAMETER_ROOT, SECRET_ROOT, TENANTS_SUFFIX
from configpipe.registry import Registry
from stacks.constructs import nag


def reader_scopes(registry: Registry) -> list[tuple[str, str]]:
    """(service, environment) for every registered service in every environment it runs in."""
    return [
        (service, environment)
        for service, entry in sorted(registry.services.items())
        for environment in (entry.environments or registry.environments)
    ]


def output_name(service: str, environment: str) -> str:
    """The stack output that holds the policy's ARN, e.g. ``CheckoutProductionReaderPolicyArn``."""
    title = "".join(part.title() for part in f"{service}-{environment}".split("-"))
    return f"{title}ReaderPolicyArn"


class ReaderPolicies(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, registry: Registry, secrets_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.policies: dict[tuple[str, str], iam.ManagedPolicy] = {}

        def arn(service: str, resource: str) -> str:
            return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

        for service, environment in reader_scopes(registry):
            owners = (service, GLOBAL_SERVICE)
            # The path itself is GetParametersByPath's resource; the wildcard covers its keys.
            parameter_paths = [f"parameter{PARAMETER_ROOT}/{s}/{environment}" for s in owners]
            # The service's compute also reads its tenants' values (``{environment}.tenants/…``,
            # issue 17); a tenant's own compute gets docs/security.md's per-tenant policy instead.
            tenants_path = f"parameter{PARAMETER_ROOT}/{service}/{environment}{TENANTS_SUFFIX}"
            parameters = (
                [arn("ssm", p) for p in parameter_paths]
                + [arn("ssm", f"{p}/*") for p in parameter_paths]
                + [arn("ssm", f"{tenants_path}/*")]
            )
            secret_scopes = [f"{s}/{environment}" for s in owners] + [
                f"{service}/{environment}{TENANTS_SUFFIX}"
            ]
            secrets = [arn("secretsmanager", f"secret:{SECRET_ROOT}/{s}/*") for s in secret_scopes]
            policy = iam.ManagedPolicy(
                self,
                output_name(service, environment).removesuffix("Arn"),
                managed_policy_name=f"configpipe-reader-{service}-{environment}"[:128],
                description=f"Read {service}'s {environment} configuration and global keys (configpipe)",
                statements=[
                    iam.PolicyStatement(
                        sid="ReadOwnParameters",
                        actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                        resources=parameters,
                    ),
                    iam.PolicyStatement(
                        sid="ReadOwnSecrets",
                        actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                        resources=secrets,
                    ),
                    iam.PolicyStatement(
                        sid="DecryptOwnSecretsThroughSecretsManager",
                        actions=["kms:Decrypt"],
                        resources=[secrets_key.key_arn],
                        conditions={
                            "StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"},
                            "StringLike": {"kms:EncryptionContext:SecretARN": secrets},
                        },
                    ),
                ],
            )
            rendered = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
            for path in [*parameter_paths, tenants_path]:
                nag.acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{rendered.format(service='ssm', resource=path + '/*')}]",
                    "keys are created at run time by ConfigurationChange events; the wildcard is confined to "
                    "one service's (or the global) keys in one environment",
                )
            for secret_scope in secret_scopes:
                resource = rendered.format(
                    service="secretsmanager", resource=f"secret:{SECRET_ROOT}/{secret_scope}/*"
                )
                nag.acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    "secrets are created at run time per sensitive key (and carry a random ARN suffix); the "
                    "wildcard is confined to one service's (or the global) secrets in one environment",
                )
            self.policies[(service, environment)] = policy
