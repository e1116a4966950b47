"""Release manager: alias traffic shifting (canary, linear, all-at-once, blue/green) with alarm
rollback and hooks, as one construct.

    ReleaseManager(
        scope, "Releases",
        bus=config_bus,      # events.IEventBus: requests arrive and announcements go here
        settings=settings,   # stacks.settings.PipelineSettings: settings.registry's services[*].functions
                             #   are the ONLY functions whose aliases it may shift or invoke
        shared=shared,       # stacks.constructs.observed_function.SharedCode: the asset and Powertools
    )

It creates:

* ``table`` — release state, history (the announcement outbox), one-release-per-alias locks;
  PITR, AWS-managed KMS encryption, RETAIN (the shared table properties, stacks.constructs.tables).
* ``manager`` / ``function`` — ``configpipe.handlers.release.handler``, built like every
  configpipe function (ObservedFunction: traced, JSON logs in its own log group, Powertools
  layer), with its own role: lambda:GetAlias /
  UpdateAlias / GetFunctionConfiguration / ListVersionsByFunction and lambda:InvokeFunction
  (hooks) on the registered functions and their versions/aliases only (issue 16: also
  CreateAlias / DeleteAlias for the beta alias, and cloudwatch:GetMetricStatistics, which IAM
  cannot scope, for analysis gates); cloudwatch:DescribeAlarms
  on this account's alarms; events:PutEvents on the bus with source ``configpipe.pipeline``
  only; on its table GetItem / PutItem / UpdateItem / DeleteItem / Query, and Query on its indexes.
* ``command_rule`` — ``ReleaseRequested`` / ``ReleaseControl`` from ``configpipe.team.*`` on the
  bus → the function (retry 24 h / 185 attempts, then ``delivery_dlq``).
* ``reconcile_rule`` — the durable timer: ``rate(1 minute)`` on the default bus → the function,
  which reconciles every active release and re-publishes lost announcements. See
  docs/releases.md for why a scheduled reconcile rather than Step Functions or Scheduler.
* ``delivery_dlq`` (rule targets) and ``failure_dlq`` (async invocations that failed after
  Lambda's retries): DeadLetterQueues, so the stack's operations alarm on their first
  message, as on every other DLQ.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct

from configpipe.contracts import PIPELINE_SOURCE, TEAM_SOURCE_PREFIX
from configpipe.release.contracts import ReleaseDetailType
from configpipe.release.settings import ReleaseSettings, release_registry_document
from configpipe.release.store import ALIAS_INDEX, QUEUE_INDEX
from configpipe.settings import environment_for
from stacks.constructs import nag
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.constructs.retries import (
    TICK_MAX_EVENT_AGE,
    TICK_RETRY_ATTEMPTS,
    park_async_failures,
    rule_target,
)
from stacks.constructs.tables import table
from stacks.settings import PipelineSettings

HANDLER = "configpipe.handlers.release.handler"
#: Hooks run synchronously (at most 300 s each, see MAX_HOOK_TIMEOUT_SECONDS); one tick may
#: run a pre- and a post-traffic hook, so the function gets Lambda's maximum.
TIMEOUT = Duration.minutes(15)
RECONCILE_RATE = Duration.minutes(1)
#: The release function's actions on its table and on the table's indexes (see ReleaseStore).
RELEASE_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)
RELEASE_INDEX_ACTIONS = ("dynamodb:Query",)
#: Lambda's limit on all environment variables together.
MAX_ENVIRONMENT_BYTES = 4096


class ReleaseManager(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        settings: PipelineSettings,
        shared: SharedCode,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        registry = settings.registry
        functions = sorted({fn for entry in registry.services.values() for fn in entry.functions})

        self.table = table(self, "ReleaseState", removal_policy=RemovalPolicy.RETAIN)
        for index, pk, sk in ((QUEUE_INDEX, "gsi1pk", "gsi1sk"), (ALIAS_INDEX, "gsi2pk", "gsi2sk")):
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING),
            )

        # Each DLQ is a DeadLetterQueue, so the stack's operations alarm on it like on every other.
        self.delivery_dlq = DeadLetterQueue(self, "DeliveryDLQ", failure_path="the release rules' targets")
        self.failure_dlq = DeadLetterQueue(
            self, "FailureDLQ", failure_path="the release function's async invocations"
        )

        registry_document = release_registry_document(registry)
        if len(registry_document.encode("utf-8")) > MAX_ENVIRONMENT_BYTES - 1024:
            raise ValueError(
                "the release registry (services' publishers and functions) is too large for the release "
                f"function's environment ({len(registry_document)} bytes); see docs/releases.md"
            )
        self.manager = ObservedFunction(
            self,
            "Manager",
            shared=shared,
            settings=settings,
            handler=HANDLER,
            service_name="release",
            description="configpipe release manager: ReleaseRequested / ReleaseControl / reconcile tick",
            environment=environment_for(
                ReleaseSettings,
                release_table=self.table.table_name,
                event_bus_name=bus.event_bus_name,
                release_registry=registry_document,
            ),
            timeout=TIMEOUT,
        )
        self.function = self.manager.function
        self.role = self.manager.role
        park_async_failures(self.function, self.failure_dlq)

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
        self.command_rule.add_target(rule_target(self.function, self.delivery_dlq))
        # Scheduled rules only exist on the default bus. A lost tick costs one minute, so the
        # target retries briefly and a persistently failing tick lands in the DLQ (alarmed).
        self.reconcile_rule = events.Rule(
            self,
            "Reconcile",
            description="Durable release timer: reconcile every active release",
            schedule=events.Schedule.rate(RECONCILE_RATE),
        )
        self.reconcile_rule.add_target(
            rule_target(
                self.function,
                self.delivery_dlq,
                retry_attempts=TICK_RETRY_ATTEMPTS,
                max_event_age=TICK_MAX_EVENT_AGE,
            )
        )

    def _grant(self, stack: Stack, bus: events.IEventBus, functions: list[str]) -> None:
        allow = self.manager.allow
        # Exactly what ReleaseStore calls: GetItem, UpdateItem (mark announced), Query (a
        # release's history, and the indexes); TransactWriteItems is authorised as its parts,
        # Put and Delete (create a release, save it, take and release an alias lock).
        allow(list(RELEASE_TABLE_ACTIONS), [self.table.table_arn])
        allow(list(RELEASE_INDEX_ACTIONS), [f"{self.table.table_arn}/index/*"])
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
            self._grant_analysis_and_beta(arns)
            for fn in functions:
                acknowledge(
                    f"arn:<AWS::Partition>:lambda:{region}:{account}:function:{fn}:*",
                    f"The versions and aliases of {fn}, a function its service registered for releases; "
                    "the version and alias a release touches are chosen per request at run time.",
                )

    # --- issue 16: release analysis and the beta alias (kept in its own block for merges) -------

    def _grant_analysis_and_beta(self, function_arns: list[str]) -> None:
        """Per-version metrics for analysis gates; create/delete of the beta alias.

        GetMetricStatistics has no resource-level permissions in IAM (its only resource is "*"),
        so it is granted unscoped — it only reads metric statistics. The beta alias is created,
        repointed (UpdateAlias, granted above) and deleted on the registered functions only."""
        self.manager.allow_unscoped(
            ["cloudwatch:GetMetricStatistics"],
            "cloudwatch:GetMetricStatistics supports no resource-level permissions; it reads the "
            "per-version metrics that release analysis gates compare",
        )
        self.manager.allow(["lambda:CreateAlias", "lambda:DeleteAlias"], function_arns)
