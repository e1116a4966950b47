"""The delivery ledger (issue 14): which version each subscribed service has applied.

* a table of its own — not the change log: the ledger's writer then needs nothing of the change
  log (no access to its key, none to its stream), its items never wake the materialiser's stream,
  and it holds no value, so it is encrypted with the AWS-managed key (no KMS request charges);
* the ledger function, fed by a rule on the config bus for ``ConfigurationAcknowledged`` from
  ``configpipe.consumer.*`` sources, allowed exactly ``dynamodb:UpdateItem`` on that table;
* the rule's DLQ and the function's async DLQ (alarmed by Operations like every DLQ), and an
  alarm on ``AcksRefused``: a service refused a version and runs an older one.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

from configpipe.contracts import CONSUMER_SOURCE_PREFIX, DetailType
from configpipe.metrics import ACKS_REFUSED, NAMESPACE
from configpipe.settings import LedgerSettings, environment_for
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.constructs.retries import park_async_failures, rule_target
from stacks.constructs.tables import table
from stacks.settings import PipelineSettings

HANDLER = "configpipe.handlers.ledger.handler"
#: A refusal is worth a look at once: the service keeps running an older version.
REFUSED_ALARM_PERIOD = Duration.minutes(5)


class DeliveryLedger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        shared: SharedCode,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = table(
            self,
            "Table",
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        self.function = ObservedFunction(
            self,
            "Function",
            shared=shared,
            settings=settings,
            handler=HANDLER,
            service_name="ledger",
            description="configpipe: records each service's acknowledgements in the delivery ledger",
            memory_size=128,
            environment=environment_for(LedgerSettings, delivery_ledger_table=self.table.table_name),
        )
        # One conditional UpdateItem per acknowledgement; nothing else.
        self.function.allow(["dynamodb:UpdateItem"], [self.table.table_arn])

        self.delivery_dlq = DeadLetterQueue(
            self, "AcksDlq", failure_path="the ConfigurationAcknowledged rule"
        )
        self.async_dlq = DeadLetterQueue(
            self, "AsyncDlq", failure_path="the ledger function's async invocations"
        )
        park_async_failures(self.function.function, self.async_dlq)
        self.rule = events.Rule(
            self,
            "Acknowledgements",
            event_bus=bus,
            description="Services' acknowledgements → delivery ledger",
            event_pattern=events.EventPattern(
                detail_type=[DetailType.CONFIGURATION_ACKNOWLEDGED.value],
                source=events.Match.prefix(CONSUMER_SOURCE_PREFIX),
            ),
            targets=[rule_target(self.function.function, self.delivery_dlq)],
        )
        self.refused_alarm = cloudwatch.Metric(
            namespace=NAMESPACE, metric_name=ACKS_REFUSED, statistic="Sum", period=REFUSED_ALARM_PERIOD
        ).create_alarm(
            self,
            "AcksRefused",
            alarm_description=(
                "configpipe: a service's own check refused a configuration version and keeps running "
                "an older one (docs/operations.md, 'A service refused a version')"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
