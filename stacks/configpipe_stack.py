"""The configpipe stack: bus → validator → change log → materialiser → propagator → handlers,
assembled from one construct per capability (see docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from stacks.constructs.bus_routes import BusRoutes
from stacks.constructs.change_log import ChangeLog
from stacks.constructs.config_bus import ConfigBus
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.delivery_ledger import DeliveryLedger
from stacks.constructs.drift import DriftReconcile
from stacks.constructs.keys import PipelineKeys
from stacks.constructs.observed_function import SharedCode
from stacks.constructs.operations import Operations
from stacks.constructs.operator import OperatorPolicy
from stacks.constructs.pipeline_functions import PipelineFunctions
from stacks.constructs.publishers import PublisherPolicies, services_by_publisher, team_of
from stacks.constructs.readers import ReaderPolicies
from stacks.constructs.readers import output_name as reader_output_name
from stacks.constructs.redrive import RedriveFunction
from stacks.constructs.registry_parameter import RegistryParameter
from stacks.constructs.rollouts import RolloutManager
from stacks.constructs.service_handlers import ServiceHandlers
from stacks.constructs.subscribers import SubscriberQueues
from stacks.constructs.version_prune import VersionPrune
from stacks.release import ReleaseManager
from stacks.settings import PipelineSettings


class ConfigPipeStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: PipelineSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.keys = PipelineKeys(self, "Keys", retain_data=settings.retain_data)
        self.config_bus = ConfigBus(
            self,
            "ConfigBus",
            bus_name=settings.bus_name,
            publisher_accounts=settings.publisher_accounts,
            key=self.keys.events_key,
        )
        self.change_log = ChangeLog(
            self, "ChangeLog", key=self.keys.secrets_key, retain_data=settings.retain_data
        )
        self.registry = RegistryParameter(self, "Registry", registry=settings.registry)
        shared = SharedCode(self, "Code", settings=settings)
        self.openfeature_layer = shared.openfeature

        self.pipeline = PipelineFunctions(
            self,
            "Pipeline",
            settings=settings,
            shared=shared,
            keys=self.keys,
            change_log=self.change_log,
            bus=self.config_bus.bus,
            registry_parameter=self.registry.parameter,
        )
        self.routes = BusRoutes(
            self,
            "Routes",
            bus=self.config_bus.bus,
            validator=self.pipeline.validator,
            propagator=self.pipeline.propagator,
            changes_key=self.keys.events_key,
        )
        self.services = ServiceHandlers(
            self, "Services", settings=settings, shared=shared, keys=self.keys, bus=self.config_bus.bus
        )
        # issue 14: the delivery ledger (before the redrive and Operations: its DLQs are theirs too)
        self.ledger = DeliveryLedger(
            self, "Ledger", settings=settings, shared=shared, bus=self.config_bus.bus
        )

        self.releases = ReleaseManager(
            self, "Releases", bus=self.config_bus.bus, settings=settings, shared=shared
        )

        # issue 16: the scheduled version prune, only when cdk.json's versionPrune lists a function
        self.version_prune = (
            VersionPrune(
                self, "VersionPrune", settings=settings, shared=shared, release_table=self.releases.table
            )
            if settings.version_prune
            else None
        )

        self.rollouts = RolloutManager(
            self,
            "Rollouts",
            settings=settings,
            shared=shared,
            keys=self.keys,
            change_log=self.change_log,
            bus=self.config_bus.bus,
            registry_parameter=self.registry.parameter,
            release_table=self.releases.table,
        )

        # --- issue 14: the drift reconcile (before the redrive function and Operations) ------
        self.drift = DriftReconcile(
            self,
            "Drift",
            settings=settings,
            shared=shared,
            keys=self.keys,
            change_log=self.change_log,
            bus=self.config_bus.bus,
            registry_parameter=self.registry.parameter,
        )
        # --- end issue 14 ----------------------------------------------------------------------

        # --- queue consumers (issue 18): before Operations, which alarms on their DLQs -----
        self.subscribers = SubscriberQueues(
            self,
            "Subscribers",
            registry=settings.registry,
            bus=self.config_bus.bus,
            change_log=self.change_log.table,
            secrets_key=self.keys.secrets_key,
        )
        # --- end of queue consumers ----------------------------------------------------------
        # --- security (issue 10): the operator's only redrive path ---------------------------
        # After every dead-letter queue, before operations (so its own errors are alarmed too).
        self.redrive = RedriveFunction(
            self,
            "Redrive",
            settings=settings,
            shared=shared,
            # A queue consumer's DLQ is not the pipeline's: its owner moves messages back to its own
            # queue with SQS's redrive (docs/consuming.md); no function is behind it.
            dead_letter_queues=[
                c
                for c in self.node.find_all()
                if isinstance(c, DeadLetterQueue)
                and not c.node.path.startswith(self.subscribers.node.path + "/")
            ],
            change_log=self.change_log,
            queue_key=self.keys.events_key,
        )
        # M4: a direct Decrypt with the secrets key only by the functions that need one.
        self.keys.restrict_secret_decryption(
            [
                self.pipeline.validator.role,
                self.pipeline.materialiser.role,
                self.rollouts.function.role,
                self.drift.function.role,  # issue 14: re-materialises a secret from the change log
            ]
        )
        # --- end security --------------------------------------------------------------------

        # Last, so every function and every dead-letter queue above is watched.
        self.operations = Operations(
            self,
            "Operations",
            alarm_key=self.keys.alarm_key,
            functions=[
                *self.pipeline.all,
                self.rollouts.function,
                *self.services.handlers.values(),
                self.releases.manager,
                self.redrive.function,
                self.ledger.function,
                *([self.version_prune.function] if self.version_prune else []),
                self.drift.function,
            ],
            dead_letter_queues=[c for c in self.node.find_all() if isinstance(c, DeadLetterQueue)],
            stream_consumer=self.pipeline.materialiser,
        )
        # queue consumers (issue 18): their backlog alarms notify like every other alarm
        for alarm in self.subscribers.backlog_alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.operations.topic))
        # issue 14: a service refused a version
        self.ledger.refused_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.operations.topic))
        # Announcements are trusted by every handler and release watcher, so only the
        # functions that make them may publish with the pipeline's source.
        self.config_bus.reserve_pipeline_source(
            [
                self.pipeline.materialiser.role,
                self.pipeline.propagator.role,
                self.releases.role,
                self.drift.function.role,  # issue 14: ConfigurationDriftDetected
            ]
        )
        # --- security (issue 10, H2): each team source only for principals tagged as that team
        self.config_bus.bind_team_sources(
            [team_of(source) for source in services_by_publisher(settings.registry)]
        )
        # --- end security --------------------------------------------------------------------
        # issue 14: each service's acknowledgements only from its tagged handler role
        self.config_bus.bind_consumer_sources(list(settings.registry.services))
        self.publishers = PublisherPolicies(
            self,
            "Publishers",
            registry=settings.registry,
            bus=self.config_bus.bus,
            bus_name=settings.bus_name,
            secrets_key=self.keys.secrets_key,
            change_log=self.change_log.table,
            registry_parameter=self.registry.parameter,
            release_table=self.releases.table,
            delivery_ledger=self.ledger.table,
        )
        # --- issue 19: one reader policy per (service, environment) ---------------------------
        self.readers = ReaderPolicies(
            self, "Readers", registry=settings.registry, secrets_key=self.keys.secrets_key
        )
        # --- end issue 19 ---------------------------------------------------------------------
        self.dead_letter_queues = [c for c in self.node.find_all() if isinstance(c, DeadLetterQueue)]
        self.operator = OperatorPolicy(
            self,
            "Operator",
            dead_letter_queues=self.dead_letter_queues,
            redrive_function=self.redrive.function.function,
            change_log=self.change_log.table,
            change_log_key=self.keys.secrets_key,
            delivery_ledger=self.ledger.table,
        )
        # issue 14: `configpipe drift` is the operator's, through the drift function only
        self.operator.policy.add_statements(self.drift.invoke_statement())
        self._outputs()

    def _outputs(self) -> None:
        outputs = {
            "EventBusName": self.config_bus.bus.event_bus_name,
            "EventBusArn": self.config_bus.bus.event_bus_arn,
            "ChangeLogTableName": self.change_log.table.table_name,
            "DeliveryLedgerTableName": self.ledger.table.table_name,
            "AppliedTableName": self.services.applied.table_name,
            "SecretsKeyArn": self.keys.secrets_key.key_arn,
            "HashKeyArn": self.keys.hash_key.key_arn,
            "RegistryParameterName": self.registry.parameter.parameter_name,
            "OpenFeatureLayerArn": self.openfeature_layer.layer_version_arn,
            "ValidatorFunctionName": self.pipeline.validator.function_name,
            "MaterialiserFunctionName": self.pipeline.materialiser.function_name,
            "PropagatorFunctionName": self.pipeline.propagator.function_name,
            "RolloutFunctionName": self.rollouts.function.function_name,
            "AlarmTopicArn": self.operations.topic.topic_arn,
            "ReleaseTableName": self.releases.table.table_name,
            "ReleaseFunctionName": self.releases.function.function_name,
            "RedriveFunctionName": self.redrive.function.function_name,
            "DriftFunctionName": self.drift.function.function_name,
        }
        for service, handler in self.services.handlers.items():
            outputs[f"{service.title().replace('-', '')}HandlerFunctionName"] = handler.function_name
        for source, policy in self.publishers.policies.items():
            team = source.removeprefix("configpipe.team.").title().replace("-", "").replace(".", "")
            outputs[f"{team}PublisherPolicyArn"] = policy.managed_policy_arn
        outputs["OperatorPolicyArn"] = self.operator.policy.managed_policy_arn
        # issue 19: reader policies, e.g. CheckoutProductionReaderPolicyArn
        for (service, environment), reader in self.readers.policies.items():
            outputs[reader_output_name(service, environment)] = reader.managed_policy_arn
        for queue in self.dead_letter_queues:
            # e.g. PipelineStreamDlqUrl: `configpipe ops redrive <url>` (docs/operations.md)
            path = queue.node.path.split("/", 1)[1]
            outputs[path.replace("/", "").replace("-", "") + "Url"] = queue.queue_url
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
