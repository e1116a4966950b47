"""The drift reconcile (issue 14): one small function, run by one EventBridge schedule
(cdk.json ``drift.schedule``, hourly by default) and invoked by ``configpipe drift``.

    DriftReconcile(scope, "Drift", settings=settings, shared=shared, keys=keys,
                   change_log=change_log, bus=bus, registry_parameter=parameter)

Why its own function and not the materialiser: the materialiser is fed by the change-log stream
only; the reconcile needs a schedule and an operator's invocation, and reads the stores the
materialiser only writes. Its role is the materialiser's store access plus those reads, and no
more: read the change log (GetItem, Query on the table and its byScope index), read the registry,
read/write/delete parameters under ``/config/`` and secrets under ``configpipe/`` (plus
UpdateSecretVersionStage, to move AWSCURRENT back onto configpipe's version: never
GetSecretValue — a secret's drift is seen from its version stages), KMS as the materialiser has
it (Decrypt of the change log's ciphertext to re-materialise a secret; GenerateDataKey/Decrypt
through Secrets Manager), and PutEvents with the pipeline's source.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from configpipe.changelog import SCOPE_INDEX
from configpipe.contracts import PIPELINE_SOURCE
from configpipe.naming import PARAMETER_ROOT, SECRET_ROOT
from configpipe.settings import DriftSettings, environment_for
from stacks.constructs import nag
from stacks.constructs.change_log import ChangeLog
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.keys import PipelineKeys
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.constructs.retries import (
    TICK_MAX_EVENT_AGE,
    TICK_RETRY_ATTEMPTS,
    park_async_failures,
    rule_target,
)
from stacks.settings import PipelineSettings

HANDLER = "configpipe.handlers.drift.handler"
#: Fixed, like the redrive function's: `configpipe drift` finds it without a stack lookup.
FUNCTION_NAME = "configpipe-drift"
#: A sweep reads two or three items and one or two store entries per key.
TIMEOUT = Duration.minutes(5)


class DriftReconcile(Construct):
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
        self.dlq = DeadLetterQueue(self, "FailureDLQ", failure_path="the scheduled drift reconcile")
        self.function = fn = ObservedFunction(
            self,
            "Function",
            shared=shared,
            settings=settings,
            handler=HANDLER,
            service_name="drift",
            function_name=FUNCTION_NAME,
            description="configpipe: checks each key's stores against the change log; repairs drift",
            environment=environment_for(
                DriftSettings,
                change_log_table=table.table_name,
                event_bus_name=bus.event_bus_name,
                secrets_key_id=secrets_key.key_arn,
                registry_parameter=registry_parameter.parameter_name,
                drift_mode=settings.drift.mode,
            ),
            timeout=TIMEOUT,
        )
        park_async_failures(fn.function, self.dlq)

        fn.allow(
            ["dynamodb:GetItem", "dynamodb:Query"],
            [table.table_arn, f"{table.table_arn}/index/{SCOPE_INDEX}"],
        )
        fn.allow(["ssm:GetParameter"], [registry_parameter.parameter_arn])
        parameters = fn.arn("ssm", f"parameter{PARAMETER_ROOT}/*")
        fn.allow(
            ["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource"],
            [parameters],
        )
        secrets = fn.arn("secretsmanager", f"secret:{SECRET_ROOT}/*")
        fn.allow(
            [
                "secretsmanager:DescribeSecret",
                "secretsmanager:CreateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
                "secretsmanager:DeleteSecret",
                "secretsmanager:RestoreSecret",
                "secretsmanager:TagResource",
            ],
            [secrets],
        )
        fn.allow(["kms:Decrypt", "kms:DescribeKey"], [secrets_key.key_arn])
        fn.allow(
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [secrets_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )
        fn.allow(
            ["events:PutEvents"],
            [bus.event_bus_arn],
            conditions={"ForAllValues:StringEquals": {"events:source": [PIPELINE_SOURCE]}},
        )
        nag.acknowledge(
            fn.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
            f"parameter{PARAMETER_ROOT}/*]",
            "The reconcile reads and re-materialises /config/{service}/{environment}/{key} for keys "
            "created at run time; confined to the /config/ tree, it touches only keys in the change log.",
        )
        nag.acknowledge(
            fn.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
            f"<AWS::AccountId>:secret:{SECRET_ROOT}/*]",
            "Secrets are named configpipe/{service}/{environment}/{key} for keys created at run time; "
            "the reconcile is confined to the configpipe/ prefix and never reads a secret's value.",
        )

        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"configpipe: drift reconcile of every registered scope ({settings.drift.mode})",
            schedule=events.Schedule.expression(settings.drift.schedule),
        )
        # A missed run is made up by the next one: retry briefly, then park it (alarmed).
        self.rule.add_target(
            rule_target(
                fn.function,
                self.dlq,
                retry_attempts=TICK_RETRY_ATTEMPTS,
                max_event_age=TICK_MAX_EVENT_AGE,
                event=events.RuleTargetInput.from_object({}),
            )
        )

    def invoke_statement(self) -> iam.PolicyStatement:
        """For the operator's policy: ``configpipe drift`` invokes this function and no other."""
        return iam.PolicyStatement(
            sid="ReconcileDriftThroughTheDriftFunction",
            actions=["lambda:InvokeFunction"],
            resources=[self.function.function_arn],
        )
