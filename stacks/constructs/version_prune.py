"""The scheduled version prune (issue 16): off unless cdk.json's ``versionPrune`` lists a
registered release function; then one small function and one EventBridge schedule per listed
function.

    VersionPrune(scope, "VersionPrune", settings=settings, shared=shared, release_table=table)

Why its own function and not the release manager: the release manager takes team commands from
the bus and already shifts aliases; giving it ``lambda:DeleteFunction`` would let a bug or a
hostile request on that path delete versions. This function takes no team input (only its own
schedules' fixed ``{"function": NAME}``), and may only list versions and aliases of the listed
functions, delete their *qualified* ARNs (``function:NAME:*`` — a version; DeleteFunction refuses
an alias as Qualifier and IAM never matches the unqualified ARN, so the function itself and
``$LATEST`` cannot be deleted), and query the release table's byAlias index. Functions without
the setting get nothing.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct

from configpipe.release.settings import VersionPruneSettings
from configpipe.release.store import ALIAS_INDEX
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
from stacks.settings import PipelineSettings

HANDLER = "configpipe.handlers.version_prune.handler"
#: A function with hundreds of versions: one ListVersions page per 50, one delete each.
TIMEOUT = Duration.minutes(5)


class VersionPrune(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        shared: SharedCode,
        release_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        schedules = settings.version_prune
        if not schedules:
            raise ValueError(
                "VersionPrune needs at least one function in versionPrune (it is off by default)"
            )
        stack = Stack.of(self)
        self.dlq = DeadLetterQueue(self, "FailureDLQ", failure_path="the scheduled version prune")
        self.function = ObservedFunction(
            self,
            "Function",
            shared=shared,
            settings=settings,
            handler=HANDLER,
            service_name="version-prune",
            concurrency_name="versionPrune",
            description="configpipe: deletes published versions no alias or release needs (scheduled)",
            environment=environment_for(
                VersionPruneSettings,
                release_table=release_table.table_name,
                prune_functions=stack.to_json_string({fn: s.keep for fn, s in sorted(schedules.items())}),
            ),
            timeout=TIMEOUT,
        )
        park_async_failures(self.function.function, self.dlq)

        functions = sorted(schedules)
        base = [
            f"arn:{stack.partition}:lambda:{stack.region}:{stack.account}:function:{fn}" for fn in functions
        ]
        self.function.allow(["lambda:ListVersionsByFunction", "lambda:ListAliases"], base)
        self.function.allow(["lambda:DeleteFunction"], [f"{arn}:*" for arn in base])
        self.function.allow(["dynamodb:Query"], [f"{release_table.table_arn}/index/{ALIAS_INDEX}"])

        policy = self.function.role.node.find_child("DefaultPolicy")
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        for fn in functions:
            nag.acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:{region}:{account}:function:{fn}:*]",
                f"DeleteFunction on the qualified ARNs of {fn} only (its versions; IAM has no narrower "
                "pattern for 'a version number'): which versions go is decided at run time from its "
                "aliases and releases, and the unqualified function is not matched.",
            )

        self.rules: dict[str, events.Rule] = {}
        for fn in functions:
            rule = events.Rule(
                self,
                f"Schedule{fn.title().replace('-', '').replace('_', '')}",
                description=f"configpipe: prune {fn}'s unused versions, keep {schedules[fn].keep}",
                schedule=events.Schedule.expression(schedules[fn].schedule),
            )
            # A missed run is made up by the next one: retry briefly, then park it (alarmed).
            rule.add_target(
                rule_target(
                    self.function.function,
                    self.dlq,
                    retry_attempts=TICK_RETRY_ATTEMPTS,
                    max_event_age=TICK_MAX_EVENT_AGE,
                    event=events.RuleTargetInput.from_object({"function": fn}),
                )
            )
            self.rules[fn] = rule
