"""The demo services' ``<service>-config-update-handler`` functions and the table where
they record what they applied (so tests and the demo can see delivery happen). Each handler
acknowledges what it applied or refused on the config bus (issue 14) as
``configpipe.consumer.<service>``: its role carries the tag ``configpipe-consumer=<service>``
that the bus policy binds that source to, and may publish only that source and detail type."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Tags
from aws_cdk import aws_events as events
from constructs import Construct

from configpipe.contracts import GLOBAL_SERVICE, DetailType, consumer_source
from configpipe.naming import PARAMETER_ROOT, SECRET_ROOT
from configpipe.settings import environment_for
from sample_service.settings import SampleServiceSettings
from stacks.constructs import nag
from stacks.constructs.config_bus import CONSUMER_TAG
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.keys import PipelineKeys
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.constructs.retries import park_async_failures
from stacks.constructs.tables import table
from stacks.settings import PipelineSettings


class ServiceHandlers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        shared: SharedCode,
        keys: PipelineKeys,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self._bus = bus
        # pk = service, sk = "<environment>#<key>": one row per key, the highest version applied.
        # Demo state only: it is rebuilt by re-delivering, so it never outlives the stack.
        self.applied = table(self, "DemoApplied", removal_policy=RemovalPolicy.DESTROY)
        self.handlers: dict[str, ObservedFunction] = {}
        self.dlqs: dict[str, DeadLetterQueue] = {}
        for service in settings.demo_services:
            self._handler_for(service, settings, shared, keys)

    def _handler_for(
        self, service: str, settings: PipelineSettings, shared: SharedCode, keys: PipelineKeys
    ) -> None:
        handler = ObservedFunction(
            self,
            f"{service.title().replace('-', '')}Handler",
            shared=shared,
            settings=settings,
            function_name=settings.registry.handler_of(service),
            handler="sample_service.app.handler",
            service_name=f"{service}-config-update-handler",
            concurrency_name="updateHandler",
            description=f"configpipe demo: applies configuration updates for {service}",
            timeout=Duration.seconds(15),
            memory_size=128,
            extra_layers=[shared.openfeature],
            environment=environment_for(
                SampleServiceSettings,
                service_name=service,
                applied_table=self.applied.table_name,
                ack_bus_name=self._bus.event_bus_name,
            ),
        )
        # issue 14: acknowledgements, only as this service and only of this contract; the tag is
        # what the bus policy checks (docs/security.md, A1), so no other role can speak for it.
        Tags.of(handler.role).add(CONSUMER_TAG, service)
        handler.allow(
            ["events:PutEvents"],
            [self._bus.event_bus_arn],
            conditions={
                "ForAllValues:StringEquals": {
                    "events:source": [consumer_source(service)],
                    "events:detail-type": [DetailType.CONFIGURATION_ACKNOWLEDGED.value],
                },
                "Null": {"events:source": "false"},
            },
        )
        handler.allow(["dynamodb:GetItem", "dynamodb:PutItem"], [self.applied.table_arn])
        scopes = (service, GLOBAL_SERVICE)
        handler.allow(
            ["ssm:GetParameter", "ssm:GetParametersByPath"],
            [handler.arn("ssm", f"parameter{PARAMETER_ROOT}/{s}/*") for s in scopes]
            # GetParametersByPath is authorised on the path itself, without a trailing slash.
            + [handler.arn("ssm", f"parameter{PARAMETER_ROOT}/{s}") for s in scopes],
        )
        handler.allow(
            ["secretsmanager:GetSecretValue"],
            [handler.arn("secretsmanager", f"secret:{SECRET_ROOT}/{s}/*") for s in scopes],
        )
        handler.allow(
            ["kms:Decrypt"],
            [keys.secrets_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )
        dlq = DeadLetterQueue(
            self, f"{service.title().replace('-', '')}AsyncDlq", failure_path=f"{service}'s update handler"
        )
        park_async_failures(handler.function, dlq)
        for s in scopes:
            nag.acknowledge(
                handler.role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
                f"parameter{PARAMETER_ROOT}/{s}/*]",
                f"{service} reads the keys under its own and the global parameter tree, whose names "
                "are created at run time; it cannot read another service's tree.",
            )
            nag.acknowledge(
                handler.role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
                f"<AWS::AccountId>:secret:{SECRET_ROOT}/{s}/*]",
                f"{service} reads secrets under its own and the global prefix (created at run time, "
                "with a random ARN suffix); it cannot read another service's secrets.",
            )
        self.handlers[service] = handler
        self.dlqs[service] = dlq
