"""The three pipeline functions (validator, materialiser, propagator), each with exactly the
permissions its step needs; the stream wiring of the materialiser; async-invoke DLQs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from configpipe.contracts import PIPELINE_SOURCE
from configpipe.naming import PARAMETER_ROOT, SECRET_ROOT
from configpipe.settings import MaterialiserSettings, PropagatorSettings, ValidatorSettings, environment_for
from configpipe.streams import MATERIALISER_FILTER_PATTERNS
from stacks.constructs import nag
from stacks.constructs.change_log import ChangeLog
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.keys import PipelineKeys
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.constructs.retries import STREAM_MAX_RECORD_AGE, STREAM_RETRY_ATTEMPTS, park_async_failures
from stacks.settings import PipelineSettings

STREAM_BATCH_SIZE = 10


def materialiser_filters() -> list[Mapping[str, Any]]:
    """The event-source mapping's filter criteria: configpipe.streams holds the patterns
    (shared with the redrive command and the tests)."""
    return [lambda_.FilterCriteria.filter(pattern) for pattern in MATERIALISER_FILTER_PATTERNS]


class PipelineFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        shared: SharedCode,
        keys: PipelineKeys,
        change_log: ChangeLog,
        bus: events.IEventBus,
        registry_parameter: ssm.IStringParameter,
    ) -> None:
        super().__init__(scope, construct_id)
        table = change_log.table
        secrets_key = keys.secrets_key

        # --- validator: validates and writes the change log; nothing else -----------------
        self.validator = ObservedFunction(
            self,
            "Validator",
            shared=shared,
            settings=settings,
            handler="configpipe.handlers.validator.handler",
            service_name="validator",
            description="configpipe: validates a ConfigurationChange and records it in the change log",
            environment=environment_for(
                ValidatorSettings,
                change_log_table=table.table_name,
                registry_parameter=registry_parameter.parameter_name,
                secrets_key_id=secrets_key.key_arn,
                hash_key_id=keys.hash_key.key_arn,
                # Only when allowed: the default (False) is the variable's absence.
                sensitive_values_in_clear=settings.allow_sensitive_values_in_clear or None,
            ),
        )
        # A transaction is authorised as its parts: Put/Update/ConditionCheck on the table.
        self.validator.allow(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
            [table.table_arn],
        )
        self.validator.allow(["ssm:GetParameter"], [registry_parameter.parameter_arn])
        # Encrypt: a secret sent in clear is encrypted before it reaches the change log;
        # Decrypt: an encryptedValue is decrypted to check its size/schema and hash it.
        # The same key protects the table, whose reads/writes need Decrypt/GenerateDataKey.
        self.validator.allow(
            ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [secrets_key.key_arn]
        )
        self.validator.allow(["kms:GenerateMac"], [keys.hash_key.key_arn])
        self.validator_async_dlq = self._async_failures(
            self.validator, "ValidatorAsyncDlq", "validator", key=keys.events_key
        )
        for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
            nag.acknowledge(
                self.validator.role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "Granted by CDK's SqsDestination (Queue.grantSendMessages) so Lambda can park a failed "
                "change in the validator's KMS-encrypted async DLQ; the statement names only the events key.",
            )

        # --- materialiser: stream → SSM / Secrets Manager → announcement -------------------
        self.materialiser = ObservedFunction(
            self,
            "Materialiser",
            shared=shared,
            settings=settings,
            handler="configpipe.handlers.materialiser.handler",
            service_name="materialiser",
            description="configpipe: materialises accepted versions and announces them on the bus",
            timeout=Duration.seconds(60),
            environment=environment_for(
                MaterialiserSettings,
                change_log_table=table.table_name,
                event_bus_name=bus.event_bus_name,
                secrets_key_id=secrets_key.key_arn,
                registry_parameter=registry_parameter.parameter_name,
                inline_value_max_bytes=settings.inline_value_max_bytes,
            ),
        )
        m = self.materialiser
        # --- issue 19 (tags): the registry names each service's Owner / CostCenter tags ---
        m.allow(["ssm:GetParameter"], [registry_parameter.parameter_arn])
        # Reads the *current* version, never trusting the stream record's (no stale overwrite).
        m.allow(["dynamodb:GetItem", "dynamodb:Query"], [table.table_arn])
        m.allow(
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            [change_log.stream_arn],
        )
        m.allow_unscoped(
            ["dynamodb:ListStreams"],
            "dynamodb:ListStreams (read-only, needed by the stream event-source mapping) has no "
            "resource type and can only be granted on '*'",
        )
        parameters = m.arn("ssm", f"parameter{PARAMETER_ROOT}/*")
        m.allow(["ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource"], [parameters])
        # A tenant's bundle is rebuilt from the tenant's tree and checked against it after the
        # write (configpipe/tenant_bundle.py): the only reads of materialised parameters.
        m.allow(["ssm:GetParameter", "ssm:GetParametersByPath"], [parameters])
        secrets = m.arn("secretsmanager", f"secret:{SECRET_ROOT}/*")
        m.allow(
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:DeleteSecret",
                "secretsmanager:RestoreSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:TagResource",
                # A sensitive candidate is a staged version (CANDIDATE), moved to AWSCURRENT or
                # dropped when its rollout ends (stores.SecretStore.put_staged_version / remove_stage).
                "secretsmanager:UpdateSecretVersionStage",
            ],
            [secrets],
        )
        # Decrypt: secret ciphertext read from the change log (and the table itself).
        m.allow(["kms:Decrypt", "kms:DescribeKey"], [secrets_key.key_arn])
        # Secrets Manager encrypts the materialised secret with the same key on our behalf.
        m.allow(
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [secrets_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )
        self._announce_as_the_pipeline(m, bus)
        self.stream_dlq = DeadLetterQueue(self, "StreamDlq", failure_path="change-log stream → materialiser")
        self.stream_dlq.holds_failures_of(m.function)
        m.function.add_event_source(
            event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=STREAM_BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                max_record_age=STREAM_MAX_RECORD_AGE,
                report_batch_item_failures=True,
                on_failure=event_sources.SqsDlq(self.stream_dlq),
                filters=materialiser_filters(),
            )
        )
        # The redrive function re-delivers a parked batch by invoking the materialiser
        # asynchronously: if it fails again, it comes back to this queue instead of being
        # dropped after Lambda's retries (cdk-nag NIST.800.53.R5-LambdaDLQ found it).
        park_async_failures(m.function, self.stream_dlq)
        nag.acknowledge(
            m.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
            f"parameter{PARAMETER_ROOT}/*]",
            "The materialiser writes /config/{service}/{environment}/{key} for keys that are created "
            "at run time by ConfigurationChange events; it is confined to the /config/ tree.",
        )
        nag.acknowledge(
            m.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
            f"<AWS::AccountId>:secret:{SECRET_ROOT}/*]",
            "Secrets are named configpipe/{service}/{environment}/{key} for keys created at run time; "
            "the materialiser is confined to the configpipe/ prefix.",
        )

        # --- propagator: ConfigurationUpdated → each affected service's handler ------------
        self.propagator = ObservedFunction(
            self,
            "Propagator",
            shared=shared,
            settings=settings,
            handler="configpipe.handlers.propagator.handler",
            service_name="propagator",
            description="configpipe: fans a ConfigurationUpdated out to every affected service",
            timeout=Duration.seconds(60),
            environment=environment_for(
                PropagatorSettings,
                event_bus_name=bus.event_bus_name,
                registry_parameter=registry_parameter.parameter_name,
            ),
        )
        p = self.propagator
        handlers = [
            p.arn("lambda", f"function:{settings.registry.handler_of(service)}")
            for service in sorted(settings.registry.services)
        ]
        if handlers:
            p.allow(["lambda:InvokeFunction"], handlers)
        p.allow(["ssm:GetParameter"], [registry_parameter.parameter_arn])
        self._announce_as_the_pipeline(p, bus)
        self.propagator_async_dlq = self._async_failures(p, "PropagatorAsyncDlq", "propagator")

    @staticmethod
    def _announce_as_the_pipeline(fn: ObservedFunction, bus: events.IEventBus) -> None:
        """PutEvents on the bus with the pipeline's source only (issue 10): a function that is
        made to publish a forged team change gets AccessDenied, not a path around the validator."""
        fn.allow(
            ["events:PutEvents"],
            [bus.event_bus_arn],
            conditions={"ForAllValues:StringEquals": {"events:source": [PIPELINE_SOURCE]}},
        )

    @property
    def all(self) -> list[ObservedFunction]:
        return [self.validator, self.materialiser, self.propagator]

    def _async_failures(
        self, fn: ObservedFunction, construct_id: str, name: str, key: kms.IKey | None = None
    ) -> DeadLetterQueue:
        queue = DeadLetterQueue(
            self, construct_id, failure_path=f"asynchronous invocations of the {name}", key=key
        )
        park_async_failures(fn.function, queue)
        return queue
