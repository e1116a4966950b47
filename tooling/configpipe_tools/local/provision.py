"""Create the template's resources in the emulator, over HTTP, and describe the local wiring.

Every resource type the pipeline uses is created with the template's properties, intrinsics
resolved to the physical names created here. Names CloudFormation would generate are
``{stack}-{logicalId}`` (deterministic, so ``up`` can print them). Three things are deliberately
*not* handed to the emulator, because the emulator would try to run Lambda code in Docker:
Lambda targets of rules (replaced by an SQS target on the same rule: the function's async
invocation queue), event-source mappings and schedules (the runner polls them instead).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from configpipe_tools.local.sandbox import FunctionSpec
from configpipe_tools.local.template import STACK_NAME, Resolver, Resource, Template, UnresolvedError

REGION = "us-east-1"
ACCOUNT = "123456789012"  # the emulator's default account
LOCAL_PREFIX = "configpipe-local"

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=70)
_NAME_LIMITS = {
    "AWS::Lambda::Function": 64,
    "AWS::IAM::Role": 64,
    "AWS::Events::Rule": 64,
    "AWS::Events::Archive": 48,
    "AWS::SQS::Queue": 80,
    "AWS::SNS::Topic": 256,
}
#: The event exactly as EventBridge hands it to a Lambda target. The emulator's default input
#: for targets leaves out ``account``, which Powertools' EventBridge model requires.
_FULL_ENVELOPE = {
    "InputPathsMap": {
        k: f"$.{k}"
        for k in ("id", "detail-type", "source", "account", "time", "region", "resources", "detail")
    },
    "InputTemplate": (
        '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
        '"detail": <detail>}'
    ),
}
#: created by nothing locally, and nothing to say about it
_IGNORED = {"AWS::CDK::Metadata", "AWS::Lambda::Permission"}


def aws_client(service: str, endpoint_url: str, region: str = REGION, max_pool_connections: int = 10) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake credentials
        region_name=region,
    ).client(
        service,
        endpoint_url=endpoint_url,
        config=_CONFIG.merge(Config(max_pool_connections=max_pool_connections)),
    )


@dataclass(frozen=True)
class StreamMapping:
    """An ``AWS::Lambda::EventSourceMapping`` on a DynamoDB stream (or an SQS queue)."""

    logical_id: str
    function: str
    source_arn: str
    batch_size: int
    starting_position: str = "TRIM_HORIZON"
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age: int = -1
    filters: tuple[str, ...] = ()
    on_failure: str | None = None
    report_batch_item_failures: bool = False
    enabled: bool = True

    @property
    def is_queue(self) -> bool:
        return self.source_arn.startswith("arn:aws:sqs:")


@dataclass(frozen=True)
class Schedule:
    rule: str
    expression: str
    function: str
    input: str | None = None


@dataclass
class LocalStack:
    """What was created, and how the runner must wire it."""

    endpoint_url: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    #: function name → URL of its async invocation queue (rule targets and ``Invoke`` Event land here)
    async_queues: dict[str, str] = field(default_factory=dict)
    #: rule name → the function names its Lambda targets were
    rule_functions: dict[str, list[str]] = field(default_factory=dict)
    mappings: list[StreamMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    def function_by_arn_or_name(self, identifier: str) -> FunctionSpec | None:
        """Resolve a FunctionName as the Invoke API accepts it: name, ARN or partial ARN,
        optionally with a qualifier."""
        name = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            name = parts[6] if len(parts) > 6 else identifier
        elif ":function:" in identifier:
            name = identifier.split(":function:", 1)[1].split(":")[0]
        else:
            name = identifier.split(":")[0]
        return self.functions.get(name)


def physical_name(resource: Resource, explicit_key: str | None, resolver: Resolver) -> str:
    if explicit_key and resource.properties.get(explicit_key) is not None:
        return str(resolver.resolve(resource.properties[explicit_key]))
    limit = _NAME_LIMITS.get(resource.type, 255)
    return f"{STACK_NAME}-{resource.logical_id}"[:limit]


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "configpipe local: the code runs from the working tree\n")
    return buffer.getvalue()


#: Called with (logical id, id of the KMS key just created); returns the id the key has from then
#: on. ``up --keep-state`` gives it back the id and material saved at the last stop.
KeyAdopter = Callable[[str, str], str]


class Provisioner:
    def __init__(
        self,
        template: Template,
        endpoint_url: str,
        *,
        region: str = REGION,
        adopt_key: KeyAdopter | None = None,
    ) -> None:
        self.template = template
        self.region = region
        self._adopt_key = adopt_key
        self.resolver = Resolver(region=region, account=ACCOUNT)
        self.stack = LocalStack(endpoint_url=endpoint_url)
        self._clients: dict[str, Any] = {}
        self._zip = _dummy_zip()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.stack.endpoint_url, self.region)
        return self._clients[service]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}"

    def run(self) -> LocalStack:
        for resource in self.template.creation_order():
            if resource.type in _IGNORED:
                continue
            create = getattr(self, "_" + resource.type.replace("::", "_").replace("AWS_", "", 1), None)
            if create is None:
                self.stack.skipped.append((resource.logical_id, resource.type, "not emulated locally"))
                continue
            try:
                create(resource)
            except UnresolvedError as error:
                self.stack.skipped.append((resource.logical_id, resource.type, str(error)))
            except (ClientError, BotoCoreError) as error:
                self.stack.skipped.append((resource.logical_id, resource.type, f"emulator refused: {error}"))
        for name, value in self.template.outputs().items():
            self.stack.outputs[name] = self.resolver.try_resolve(value, "(not created locally)")
        self._register_stack()
        return self.stack

    def _register_stack(self) -> None:
        """A CloudFormation stack of the same name carrying the resolved outputs, so clients that
        discover names with DescribeStacks (``configpipe --stack ConfigPipe``) work unchanged.
        Its one resource is a placeholder: the resources themselves were created above."""
        body = {
            "Description": "configpipe local: outputs of the stack provisioned by configpipe_tools.local",
            "Resources": {"LocalPlaceholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {k: {"Value": str(v)} for k, v in self.stack.outputs.items()},
        }
        # The emulator (same process) warns that it does not model the placeholder.
        warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudFormation::WaitConditionHandle")
        self.client("cloudformation").create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(body))

    def _props(self, resource: Resource) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolver.resolve(resource.properties)
        return resolved

    def _register(self, resource: Resource, ref: Any, physical: str | None = None, **attrs: Any) -> None:
        self.resolver.register(resource.logical_id, ref, **attrs)
        self.stack.physical[resource.logical_id] = physical or str(ref)

    # --- keys, parameters, secrets ---------------------------------------------------------

    def _KMS_Key(self, resource: Resource) -> None:
        props = self._props(resource)
        args = {k: props[k] for k in ("Description", "KeySpec", "KeyUsage") if k in props}
        key_id = self.client("kms").create_key(**args)["KeyMetadata"]["KeyId"]
        if self._adopt_key is not None:
            key_id = self._adopt_key(resource.logical_id, key_id)
        if props.get("EnableKeyRotation"):
            self.client("kms").enable_key_rotation(KeyId=key_id)
        arn = self.arn("kms", f"key/{key_id}")
        self._register(resource, key_id, arn, Arn=arn, KeyId=key_id)

    def _KMS_Alias(self, resource: Resource) -> None:
        props = self._props(resource)
        self.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        self._register(resource, props["AliasName"])

    def _SSM_Parameter(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "Name", self.resolver)
        args = {"Name": name, "Value": props["Value"], "Type": props.get("Type", "String"), "Overwrite": True}
        if props.get("Description"):
            args["Description"] = props["Description"]
        self.client("ssm").put_parameter(**args)
        self._register(resource, name, Type=args["Type"], Value=props["Value"])

    def _SecretsManager_Secret(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "Name", self.resolver)
        args: dict[str, Any] = {"Name": name}
        if "SecretString" in props:
            args["SecretString"] = props["SecretString"]
        if "KmsKeyId" in props:
            args["KmsKeyId"] = props["KmsKeyId"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        self._register(resource, arn, Id=arn)

    # --- storage and queues --------------------------------------------------------------

    def _DynamoDB_Table(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "TableName", self.resolver)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in props:
            args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                args[key] = props[key]
        if "StreamSpecification" in props:
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if "SSESpecification" in props:
            sse = {
                k: v
                for k, v in props["SSESpecification"].items()
                if k in ("Enabled", "SSEType", "KMSMasterKeyId")
            }
            if "SSEEnabled" in props["SSESpecification"]:
                sse["Enabled"] = props["SSESpecification"]["SSEEnabled"]
            args["SSESpecification"] = sse
        description = self.client("dynamodb").create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.client("dynamodb").update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            self.client("dynamodb").update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attrs = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attrs["StreamArn"] = description["LatestStreamArn"]
        self._register(resource, name, **attrs)

    def _SQS_Queue(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "QueueName", self.resolver)
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name = name[:75] + ".fifo"
        attributes: dict[str, str] = {}
        for key, value in props.items():
            if key in ("QueueName", "Tags"):
                continue
            attributes[key] = (
                json.dumps(value)
                if isinstance(value, dict)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self._register(resource, url, name, Arn=self.arn("sqs", name), QueueName=name, QueueUrl=url)

    def _SQS_QueuePolicy(self, resource: Resource) -> None:
        props = self._props(resource)
        for url in props.get("Queues", []):
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )

    def _SNS_Topic(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "TopicName", self.resolver)
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in props.get("Subscription", []):
            self.client("sns").subscribe(
                TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
            )
        self._register(resource, arn, TopicName=name, TopicArn=arn)

    def _SNS_TopicPolicy(self, resource: Resource) -> None:
        props = self._props(resource)
        for arn in props.get("Topics", []):
            self.client("sns").set_topic_attributes(
                TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )

    # --- identity and logs ------------------------------------------------------------

    def _IAM_Role(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "RoleName", self.resolver)
        role = self.client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )["Role"]
        for policy in props.get("Policies", []):
            self.client("iam").put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        for arn in props.get("ManagedPolicyArns", []):
            # An AWS managed policy the emulator does not know is no loss: IAM is not enforced locally.
            with contextlib.suppress(ClientError):
                self.client("iam").attach_role_policy(RoleName=name, PolicyArn=arn)
        self._register(resource, name, Arn=role["Arn"], RoleId=role["RoleId"])

    def _IAM_Policy(self, resource: Resource) -> None:
        props = self._props(resource)
        for role in props.get("Roles", []):
            self.client("iam").put_role_policy(
                RoleName=role,
                PolicyName=props["PolicyName"],
                PolicyDocument=json.dumps(props["PolicyDocument"]),
            )
        self._register(resource, props["PolicyName"])

    def _Logs_LogGroup(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "LogGroupName", self.resolver)
        self.client("logs").create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            self.client("logs").put_retention_policy(
                logGroupName=name, retentionInDays=props["RetentionInDays"]
            )
        self._register(resource, name, Arn=self.arn("logs", f"log-group:{name}:*"))

    # --- the bus ------------------------------------------------------------------------

    def _Events_EventBus(self, resource: Resource) -> None:
        props = self._props(resource)
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        self._register(resource, props["Name"], Arn=arn, Name=props["Name"])

    def _Events_EventBusPolicy(self, resource: Resource) -> None:
        props = self._props(resource)
        if "Statement" in props:
            policy = {"Version": "2012-10-17", "Statement": [props["Statement"]]}
            self.client("events").put_permission(
                EventBusName=props.get("EventBusName", "default"), Policy=json.dumps(policy)
            )
        self._register(resource, props.get("StatementId", resource.logical_id))

    def _Events_Archive(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "ArchiveName", self.resolver)
        args: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if "EventPattern" in props:
            args["EventPattern"] = json.dumps(props["EventPattern"])
        if "RetentionDays" in props:
            args["RetentionDays"] = int(props["RetentionDays"])
        arn = self.client("events").create_archive(**args)["ArchiveArn"]
        self._register(resource, name, Arn=arn)

    def _Events_Rule(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "Name", self.resolver)
        bus = props.get("EventBusName", "default")
        if bus.startswith("arn:"):
            bus = bus.split("/")[-1]
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            args["Description"] = props["Description"]
        arn = self.client("events").put_rule(**args)["RuleArn"]
        targets = []
        for target in props.get("Targets", []):
            function = (
                self.stack.function_by_arn_or_name(target["Arn"]) if ":function:" in target["Arn"] else None
            )
            if function is None:
                targets.append(target)
                continue
            self.stack.rule_functions.setdefault(name, []).append(function.name)
            if "ScheduleExpression" in props:
                self.stack.schedules.append(
                    Schedule(name, props["ScheduleExpression"], function.name, target.get("Input"))
                )
                continue
            # The emulator matches the pattern; the function's async queue receives the event.
            queue_arn = self.arn("sqs", self.stack.async_queues[function.name].rsplit("/", 1)[1])
            sqs_target = {**target, "Arn": queue_arn}
            if not {"Input", "InputPath", "InputTransformer"} & set(target):
                sqs_target["InputTransformer"] = _FULL_ENVELOPE
            targets.append(sqs_target)
        if targets:
            self.client("events").put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self._register(resource, name, Arn=arn)

    # --- functions ----------------------------------------------------------------------

    def _Lambda_LayerVersion(self, resource: Resource) -> None:
        """Nothing to create: local functions import their layers' packages from this checkout's
        environment, as they do Powertools. The ARN only lets the functions that list the layer
        resolve (the stack's OpenFeature layer)."""
        self._register(resource, self.arn("lambda", f"layer:{resource.logical_id}:1"))

    def _Lambda_Function(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "FunctionName", self.resolver)
        environment = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        args: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": props.get("Runtime", "python3.12"),
            "Role": props["Role"],
            "Handler": props["Handler"],
            "Code": {"ZipFile": self._zip},
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "Environment": {"Variables": environment},
        }
        if "Description" in props:
            args["Description"] = props["Description"]
        arn = self.client("lambda").create_function(**args)["FunctionArn"]
        log_group = props.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{name}")
        self.stack.functions[name] = FunctionSpec(
            logical_id=resource.logical_id,
            name=name,
            arn=arn,
            handler=props["Handler"],
            environment=environment,
            timeout=args["Timeout"],
            memory=args["MemorySize"],
            log_group=log_group,
            reserved_concurrency=(
                int(props["ReservedConcurrentExecutions"])
                if "ReservedConcurrentExecutions" in props
                else None
            ),
        )
        queue = f"{LOCAL_PREFIX}-async-{name}"[:80]
        # Visible again only if the runner dies mid-invocation: then it is redelivered.
        visibility = str(min(43200, args["Timeout"] * 4 + 60))
        self.stack.async_queues[name] = self.client("sqs").create_queue(
            QueueName=queue, Attributes={"VisibilityTimeout": visibility}
        )["QueueUrl"]
        self._register(resource, name, Arn=arn)

    def _Lambda_EventInvokeConfig(self, resource: Resource) -> None:
        props = self._props(resource)
        spec = self.stack.function_by_arn_or_name(props["FunctionName"])
        if spec is None:
            raise UnresolvedError(f"EventInvokeConfig for unknown function {props['FunctionName']}")
        destinations = props.get("DestinationConfig", {})
        updated = FunctionSpec(
            **{
                **spec.__dict__,
                "async_retry_attempts": int(props.get("MaximumRetryAttempts", 2)),
                "async_max_event_age": int(props.get("MaximumEventAgeInSeconds", 21600)),
                "on_failure": destinations.get("OnFailure", {}).get("Destination"),
                "on_success": destinations.get("OnSuccess", {}).get("Destination"),
            }
        )
        self.stack.functions[spec.name] = updated
        args: dict[str, Any] = {
            "FunctionName": spec.name,
            "MaximumRetryAttempts": updated.async_retry_attempts,
        }
        if destinations:
            args["DestinationConfig"] = destinations
        self.client("lambda").put_function_event_invoke_config(**args)
        self._register(resource, f"{spec.name}:$LATEST")

    def _Lambda_EventSourceMapping(self, resource: Resource) -> None:
        props = self._props(resource)
        spec = self.stack.function_by_arn_or_name(props["FunctionName"])
        if spec is None:
            raise UnresolvedError(f"EventSourceMapping for unknown function {props['FunctionName']}")
        filters = tuple(f["Pattern"] for f in props.get("FilterCriteria", {}).get("Filters", []))
        mapping = StreamMapping(
            logical_id=resource.logical_id,
            function=spec.name,
            source_arn=props["EventSourceArn"],
            batch_size=int(
                props.get("BatchSize", 10 if props["EventSourceArn"].startswith("arn:aws:sqs") else 100)
            ),
            starting_position=props.get("StartingPosition", "TRIM_HORIZON"),
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
            filters=filters,
            on_failure=props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            enabled=bool(props.get("Enabled", True)),
        )
        self.stack.mappings.append(mapping)
        self._register(resource, resource.logical_id)

    def _Lambda_Version(self, resource: Resource) -> None:
        props = self._props(resource)
        version = self.client("lambda").publish_version(FunctionName=props["FunctionName"])
        self._register(resource, version["FunctionArn"], Version=version["Version"])

    def _Lambda_Alias(self, resource: Resource) -> None:
        props = self._props(resource)
        args: dict[str, Any] = {
            "FunctionName": props["FunctionName"],
            "Name": props["Name"],
            "FunctionVersion": props["FunctionVersion"],
        }
        if "RoutingConfig" in props:
            args["RoutingConfig"] = props["RoutingConfig"]
        arn = self.client("lambda").create_alias(**args)["AliasArn"]
        self._register(resource, arn)

    # --- operations ---------------------------------------------------------------------

    def _CloudWatch_Alarm(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "AlarmName", self.resolver)
        allowed = {
            "AlarmDescription",
            "ActionsEnabled",
            "OKActions",
            "AlarmActions",
            "InsufficientDataActions",
            "MetricName",
            "Namespace",
            "Statistic",
            "ExtendedStatistic",
            "Dimensions",
            "Period",
            "Unit",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "Metrics",
        }
        args = {k: v for k, v in props.items() if k in allowed}
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
        self._register(resource, name, Arn=self.arn("cloudwatch", f"alarm:{name}"))

    def _CloudWatch_Dashboard(self, resource: Resource) -> None:
        props = self._props(resource)
        name = physical_name(resource, "DashboardName", self.resolver)
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        self._register(resource, name)


def provision(template: Template, endpoint_url: str, *, adopt_key: KeyAdopter | None = None) -> LocalStack:
    return Provisioner(template, endpoint_url, adopt_key=adopt_key).run()
