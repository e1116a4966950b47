"""Release manager: alias traffic shifting (canary, linear, all-at-once, blue/green) with alarm
rollback and hooks, as one construct.

    ReleaseManager(
        scope, "Releases",
        bus=config_bus,                       # events.IEventBus: requests arrive and announcements go here
        registry=registry,                    # configpipe.registry.Registry: services[*].functions are the
                                              #   ONLY functions whose aliases it may shift or invoke
        code=shared.code,                     # lambda_.Code: the functions/ asset (configpipe package)
        layer=shared.powertools,              # lambda_.ILayerVersion: Powertools
        log_retention=settings.log_retention, # logs.RetentionDays
        alarm_topic=alarm_topic,              # sns.ITopic | None: DLQ alarms notify it
    )

It creates:

* ``table`` — release state, history (the announcement outbox), one-release-per-alias locks;
  PITR, AWS-managed KMS encryption, RETAIN.
* ``function`` — ``configpipe.handlers.release.handler`` with its own role: lambda:GetAlias /
  UpdateAlias / GetFunctionConfiguration / ListVersionsByFunction and lambda:InvokeFunction
  (hooks) on the registered functions and their versions/aliases only; cloudwatch:DescribeAlarms
  on this account's alarms; events:PutEvents on the bus with source ``configpipe.pipeline``
  only; read/write on its table; its own log group.
* ``command_rule`` — ``ReleaseRequested`` / ``ReleaseControl`` from ``configpipe.team.*`` on the
  bus → the function (retry 24 h / 185 attempts, then ``delivery_dlq``).
* ``reconcile_rule`` — the durable timer: ``rate(1 minute)`` on the default bus → the function,
  which reconciles every active release and re-publishes lost announcements. See
  docs/releases.md for why a scheduled reconcile rather than Step Functions or Scheduler.
* ``delivery_dlq`` (rule targets) and ``failure_dlq`` (async invocations that failed after
  Lambda's retries), each with an alarm on its first message (→ ``alarm_topic``).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from configpipe.contracts import PIPELINE_SOURCE, TEAM_SOURCE_PREFIX
from configpipe.observability import NAMESPACE
from configpipe.registry import Registry
from configpipe.release.contracts import ReleaseDetailType
from configpipe.release.settings import release_registry_document
from configpipe.release.store import ALIAS_INDEX, QUEUE_INDEX
from stacks.constructs import nag

HANDLER = "configpipe.handlers.release.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_12
#: Hooks run synchronously (at most 300 s each, see MAX_HOOK_TIMEOUT_SECONDS); one tick may
#: run a pre- and a post-traffic hook, so the function gets Lambda's maximum.
TIMEOUT = Duration.minutes(15)
RECONCILE_RATE = Duration.minutes(1)
#: Lambda's limit on all environment variables together.
MAX_ENVIRONMENT_BYTES = 4096
DLQ_RETENTION = Duration.days(14)


class ReleaseManager(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        registry: Registry,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        functions = sorted({fn for entry in registry.services.values() for fn in entry.functions})

        self.table = dynamodb.Table(
            self,
            "ReleaseState",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index, pk, sk in ((QUEUE_INDEX, "gsi1pk", "gsi1sk"), (ALIAS_INDEX, "gsi2pk", "gsi2sk")):
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING),
            )

        self.delivery_dlq = self._dead_letter_queue("DeliveryDLQ", "the release rules' targets")
        self.failure_dlq = self._dead_letter_queue("FailureDLQ", "the release function's async invocations")

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="configpipe release manager: alias shifting on registered functions only",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        registry_document = release_registry_document(registry)
        environment = {
            "POWERTOOLS_SERVICE_NAME": "release",
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_RETRY_MODE": "standard",
            "RELEASE_TABLE": self.table.table_name,
            "EVENT_BUS_NAME": bus.event_bus_name,
            "RELEASE_REGISTRY": registry_document,
        }
        if len(registry_document.encode("utf-8")) > MAX_ENVIRONMENT_BYTES - 1024:
            raise ValueError(
                "the release registry (services' publishers and functions) is too large for the release "
                f"function's environment ({len(registry_document)} bytes); see docs/releases.md"
            )
        self.function = lambda_.Function(
            self,
            "Function",
            description="configpipe release manager: ReleaseRequested / ReleaseControl / reconcile tick",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=code,
            handler=HANDLER,
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=TIMEOUT,
            memory_size=256,
            environment=environment,
            retry_attempts=2,
            on_failure=destinations.SqsDestination(self.failure_dlq),
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12 because the public Powertools layer is the python312 build; "
            "move both together.",
        )

        self._grant(stack, bus, functions)

        self.command_rule = events.Rule(
            self,
            "Commands",
            event_bus=bus,
            description="Release requests and controls from teams",
            event_pattern=events.EventPattern(
                source=events.Match.prefix(TEAM_SOURCE_PREFIX),
                detail_type=[
                    ReleaseDetailType.RELEASE_REQUESTED.value,
                    ReleaseDetailType.RELEASE_CONTROL.value,
                ],
            ),
        )
        self.command_rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.delivery_dlq,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )
        # Scheduled rules only exist on the default bus. A lost tick costs one minute, so the
        # target retries briefly and a persistently failing tick lands in the DLQ (alarmed).
        self.reconcile_rule = events.Rule(
            self,
            "Reconcile",
            description="Durable release timer: reconcile every active release",
            schedule=events.Schedule.rate(RECONCILE_RATE),
        )
        self.reconcile_rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.delivery_dlq,
                retry_attempts=2,
                max_event_age=Duration.minutes(5),
            )
        )

        self.alarms = [
            self._alarm_on(queue, name)
            for queue, name in ((self.delivery_dlq, "Delivery"), (self.failure_dlq, "Failure"))
        ]
        if alarm_topic is not None:
            for alarm in self.alarms:
                alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))

    def _dead_letter_queue(self, construct_id: str, failure_path: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        nag.acknowledge(
            queue,
            "AwsSolutions-SQS3",
            f"This queue is itself the dead-letter queue of {failure_path}; a DLQ of a DLQ would only "
            "hide messages further from the alarm that watches this one.",
        )
        return queue

    def _alarm_on(self, queue: sqs.Queue, name: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            f"{name}DLQAlarm",
            alarm_description=f"configpipe releases: a message reached the {name.lower()} dead-letter queue",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _grant(self, stack: Stack, bus: events.IEventBus, functions: list[str]) -> None:
        def allow(
            actions: list[str], resources: list[str], conditions: dict[str, object] | None = None
        ) -> None:
            self.role.add_to_policy(
                iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
            )

        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        self.table.grant_read_write_data(self.role)
        allow(["events:PutEvents"], [bus.event_bus_arn], {"StringEquals": {"events:source": PIPELINE_SOURCE}})
        allow(["sqs:SendMessage"], [self.failure_dlq.queue_arn])
        allow(
            ["cloudwatch:DescribeAlarms"],
            [f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"],
        )
        policy = self.role.node.find_child("DefaultPolicy")
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        table_id = stack.resolve(stack.get_logical_id(self.table.node.default_child))  # type: ignore[arg-type]

        def acknowledge(resource: str, reason: str) -> None:
            nag.acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)

        acknowledge(
            "*",
            "X-Ray PutTraceSegments/PutTelemetryRecords (added by Tracing.ACTIVE) can only be granted on '*'",
        )
        acknowledge(
            f"<{table_id}.Arn>/index/*",
            "The release table's own indexes (queue, byAlias), which the store queries.",
        )
        acknowledge(
            f"arn:<AWS::Partition>:cloudwatch:{region}:{account}:alarm:*",
            "DescribeAlarms on this account's and region's alarms: the alarms a release watches are named "
            "in each request, at run time, and the call only reads their state.",
        )
        if functions:
            arns = []
            for fn in functions:
                base = f"arn:{stack.partition}:lambda:{stack.region}:{stack.account}:function:{fn}"
                arns.extend([base, f"{base}:*"])
            allow(
                [
                    "lambda:GetAlias",
                    "lambda:UpdateAlias",
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListVersionsByFunction",
                ],
                arns,
            )
            allow(["lambda:InvokeFunction"], arns)
            for fn in functions:
                acknowledge(
                    f"arn:<AWS::Partition>:lambda:{region}:{account}:function:{fn}:*",
                    f"The versions and aliases of {fn}, a function its service registered for releases; "
                    "the version and alias a release touches are chosen per request at run time.",
                )
