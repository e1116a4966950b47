"""The rollout function: moves progressive configuration rollouts (docs/rollouts.md).

* a ``rate(1 minute)`` tick on the default bus (the same durable timer as releases: the weight
  due is a pure function of time, so a lost tick is repaired by the next one);
* ``ConfigurationRolloutControl`` from team sources (promote, pause, resume, abort);
* the pipeline's ``ReleaseRejected`` for a request: config riding on that release rolls back;
* it writes only the change log (the stream makes each state readable and announced), reads
  the registry (who may control a service's rollouts) and the watched alarms' states.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from configpipe.changelog import ACTIVE_ROLLOUTS_INDEX
from configpipe.contracts import PIPELINE_SOURCE, TEAM_SOURCE_PREFIX, DetailType
from configpipe.release.contracts import ReleaseDetailType
from configpipe.settings import RolloutSettings, environment_for
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

HANDLER = "configpipe.handlers.rollout.handler"
TICK_RATE = Duration.minutes(1)


class RolloutManager(Construct):
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
        release_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        table = change_log.table
        self.function = ObservedFunction(
            self,
            "Function",
            shared=shared,
            settings=settings,
            handler=HANDLER,
            service_name="rollout",
            description="configpipe rollouts: the tick moves every active config rollout; team controls",
            timeout=Duration.seconds(60),
            environment=environment_for(
                RolloutSettings,
                change_log_table=table.table_name,
                registry_parameter=registry_parameter.parameter_name,
                rollout_insufficient_data=settings.rollout_insufficient_data,
                release_table=release_table.table_name,
            ),
        )
        fn = self.function
        # Steps are conditional writes; an ending is a transaction with the pointer (and, for a
        # rollback, the restoring version and its change record).
        fn.allow(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
            [table.table_arn],
        )
        index = f"{table.table_arn}/index/{ACTIVE_ROLLOUTS_INDEX}"
        fn.allow(["dynamodb:Query"], [index])
        # The change log is encrypted with the pipeline's key; no secret is decrypted here (a
        # rollback copies the stable version's ciphertext as it is).
        fn.allow(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [keys.secrets_key.key_arn])
        fn.allow(["ssm:GetParameter"], [registry_parameter.parameter_arn])
        # A rollout riding on a code release follows the release's state (read only).
        fn.allow(["dynamodb:GetItem"], [release_table.table_arn])
        stack = Stack.of(self)
        fn.allow(
            ["cloudwatch:DescribeAlarms"],
            [f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"],
        )
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        nag.acknowledge(
            fn.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:{region}:{account}:alarm:*]",
            "DescribeAlarms on this account's and region's alarms: the alarms a rollout watches are named "
            "in each change, at run time, and the call only reads their state.",
        )

        self.delivery_dlq = DeadLetterQueue(self, "DeliveryDlq", failure_path="the rollout rules' targets")
        self.async_dlq = DeadLetterQueue(
            self, "AsyncDlq", failure_path="the rollout function's async invocations"
        )
        park_async_failures(fn.function, self.async_dlq)

        self.control_rule = events.Rule(
            self,
            "Controls",
            event_bus=bus,
            description="Rollout controls from teams → rollout function",
            event_pattern=events.EventPattern(
                source=events.Match.prefix(TEAM_SOURCE_PREFIX),
                detail_type=[DetailType.CONFIGURATION_ROLLOUT_CONTROL.value],
            ),
        )
        self.control_rule.add_target(rule_target(fn.function, self.delivery_dlq))
        # A refused release request: the config riding on it rolls back at once rather than
        # after the start grace period. Only the pipeline publishes this source (bus policy).
        self.release_rejected_rule = events.Rule(
            self,
            "ReleaseRejected",
            event_bus=bus,
            description="Refused release requests → rollout function (config riding on them rolls back)",
            event_pattern=events.EventPattern(
                source=[PIPELINE_SOURCE],
                detail_type=[ReleaseDetailType.RELEASE_REJECTED.value],
                detail={"action": ["request"]},
            ),
        )
        self.release_rejected_rule.add_target(rule_target(fn.function, self.delivery_dlq))
        # Scheduled rules only exist on the default bus. A lost tick costs one minute, so the
        # target retries briefly and a persistently failing tick lands in the DLQ (alarmed).
        self.tick_rule = events.Rule(
            self,
            "Tick",
            description="Durable rollout timer: reconcile every active configuration rollout",
            schedule=events.Schedule.rate(TICK_RATE),
        )
        self.tick_rule.add_target(
            rule_target(
                fn.function,
                self.delivery_dlq,
                retry_attempts=TICK_RETRY_ATTEMPTS,
                max_event_age=TICK_MAX_EVENT_AGE,
            )
        )
