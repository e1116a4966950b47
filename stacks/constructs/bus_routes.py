"""The rules that route bus events to the pipeline functions, each with retries and a DLQ."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from configpipe.contracts import PIPELINE_SOURCE, ROLLOUT_EVENT_TYPES, TEAM_SOURCE_PREFIX, DetailType
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import ObservedFunction
from stacks.constructs.retries import rule_target


class BusRoutes(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        validator: ObservedFunction,
        propagator: ObservedFunction,
        changes_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.changes_dlq = DeadLetterQueue(
            self, "ChangesDlq", failure_path="the ConfigurationChange rule", key=changes_key
        )
        self.changes = events.Rule(
            self,
            "ConfigurationChange",
            event_bus=bus,
            description="Team configuration changes → validator",
            event_pattern=events.EventPattern(
                detail_type=[DetailType.CONFIGURATION_CHANGE.value],
                source=events.Match.prefix(TEAM_SOURCE_PREFIX),
            ),
            targets=[rule_target(validator.function, self.changes_dlq)],
        )

        self.updates_dlq = DeadLetterQueue(self, "UpdatesDlq", failure_path="the ConfigurationUpdated rule")
        self.updates = events.Rule(
            self,
            "ConfigurationUpdated",
            event_bus=bus,
            description="Pipeline announcements of new versions and rollout steps → propagator",
            event_pattern=events.EventPattern(
                detail_type=[DetailType.CONFIGURATION_UPDATED.value, *(t.value for t in ROLLOUT_EVENT_TYPES)],
                source=[PIPELINE_SOURCE],
            ),
            targets=[rule_target(propagator.function, self.updates_dlq)],
        )
