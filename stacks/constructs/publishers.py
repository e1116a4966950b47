"""One IAM managed policy per publishing team: what a team's people and pipelines attach
to publish, encrypt secrets for, and follow their own services' configuration.

The bus policy lets the account publish only ``configpipe.team.*`` sources, and each
``configpipe.team.<t>`` only to principals tagged ``configpipe-team=<t>`` (docs/security.md,
H2); these policies narrow each team to *its own* source (``events:source``) and tag, and its
secrets key usage to *its own* services (``kms:EncryptionContext:configpipe:scope``), so team
A cannot publish as team B nor encrypt a value for team B's keys. The validator's allow-list
is the second, independent check.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from configpipe.changelog import SCOPE_INDEX
from configpipe.contracts import GLOBAL_SERVICE, TEAM_SOURCE_PREFIX
from configpipe.registry import Registry
from configpipe.release.store import ALIAS_INDEX, QUEUE_INDEX
from stacks.constructs import nag
from stacks.constructs.config_bus import TEAM_TAG

#: What a team may publish on the config bus.
PUBLISHED_DETAIL_TYPES = [
    "ConfigurationChange",
    "ConfigurationRolloutControl",
    "ReleaseRequested",
    "ReleaseControl",
]
#: Prefix of the temporary queues and rules `configpipe watch` creates (see docs/cli.md).
WATCH_PREFIX = "configpipe-watch-"


def team_of(source: str) -> str:
    return source.removeprefix(TEAM_SOURCE_PREFIX)


def services_by_publisher(registry: Registry) -> dict[str, list[str]]:
    """source → the services (and ``global``) it may change, from the registry."""
    found: dict[str, list[str]] = {}
    for service, entry in sorted(registry.services.items()):
        for source in entry.publishers:
            found.setdefault(source, []).append(service)
    for source in registry.global_.publishers:
        found.setdefault(source, []).append(GLOBAL_SERVICE)
    return found


def readable_partitions(services: list[str]) -> list[str]:
    """The change-log partition keys (table ``pk``, index ``gsi1pk``) a team may read."""
    scopes = sorted({*services, GLOBAL_SERVICE})
    return [*(f"KEY#{s}#*" for s in scopes), *(f"SCOPE#{s}#*" for s in scopes), "CHANGE#*"]


class PublisherPolicies(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry: Registry,
        bus: events.IEventBus,
        bus_name: str,
        secrets_key: kms.IKey,
        change_log: dynamodb.ITable,
        registry_parameter: ssm.IStringParameter,
        release_table: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.policies: dict[str, iam.ManagedPolicy] = {}
        for source, services in services_by_publisher(registry).items():
            team = team_of(source)
            statements = [
                iam.PolicyStatement(
                    sid="PublishAsOwnSource",
                    actions=["events:PutEvents"],
                    resources=[bus.event_bus_arn],
                    conditions={
                        "StringEquals": {"events:source": source, f"aws:PrincipalTag/{TEAM_TAG}": team},
                        "ForAllValues:StringEquals": {"events:detail-type": PUBLISHED_DETAIL_TYPES},
                    },
                ),
                iam.PolicyStatement(
                    sid="EncryptSecretsForOwnServices",
                    actions=["kms:Encrypt"],
                    resources=[secrets_key.key_arn],
                    conditions={
                        "StringLike": {"kms:EncryptionContext:configpipe:scope": [f"{s}/*" for s in services]}
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadRegistryAndStack",
                    actions=["ssm:GetParameter", "cloudformation:DescribeStacks"],
                    resources=[registry_parameter.parameter_arn, stack.stack_id],
                ),
                iam.PolicyStatement(
                    sid="ReadChangeLog",
                    actions=["dynamodb:GetItem", "dynamodb:Query"],
                    resources=[change_log.table_arn, f"{change_log.table_arn}/index/{SCOPE_INDEX}"],
                    # Own services' partitions (and global's), plus change records, which are
                    # keyed by changeId only (docs/security.md, M2).
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": readable_partitions(services)}
                    },
                ),
                # The table is under the secrets key: a read is a Decrypt through DynamoDB.
                iam.PolicyStatement(
                    sid="DecryptChangeLogThroughDynamoDB",
                    actions=["kms:Decrypt"],
                    resources=[secrets_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{stack.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="WatchWithTemporaryRule",
                    actions=[
                        "events:PutRule",
                        "events:DeleteRule",
                        "events:PutTargets",
                        "events:RemoveTargets",
                    ],
                    resources=[
                        stack.format_arn(
                            service="events",
                            resource="rule",
                            resource_name=f"{bus_name}/{WATCH_PREFIX}*",
                        )
                    ],
                ),
                iam.PolicyStatement(
                    sid="WatchWithTemporaryQueue",
                    actions=[
                        "sqs:CreateQueue",
                        "sqs:DeleteQueue",
                        "sqs:GetQueueAttributes",
                        "sqs:SetQueueAttributes",
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                    ],
                    resources=[stack.format_arn(service="sqs", resource=f"{WATCH_PREFIX}*")],
                ),
            ]
            if release_table is not None:
                statements.append(
                    iam.PolicyStatement(
                        sid="ReadReleases",
                        actions=["dynamodb:GetItem", "dynamodb:Query"],
                        resources=[
                            release_table.table_arn,
                            *(
                                f"{release_table.table_arn}/index/{index}"
                                for index in (ALIAS_INDEX, QUEUE_INDEX)
                            ),
                        ],
                    )
                )
            policy = iam.ManagedPolicy(
                self,
                f"Team{''.join(part.title() for part in team.replace('.', '-').split('-'))}",
                managed_policy_name=f"configpipe-publisher-{team}"[:128],
                description=f"Publish configuration changes and releases as {source} (configpipe)",
                statements=statements,
            )
            arn_prefix = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:"
            for resource in (
                arn_prefix.format(service="events") + f"rule/{bus_name}/{WATCH_PREFIX}*",
                arn_prefix.format(service="sqs") + f"{WATCH_PREFIX}*",
            ):
                nag.acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    f"`configpipe watch` creates, reads and deletes its own temporary {WATCH_PREFIX}<id> "
                    "rule and queue, whose names are only known at run time; nothing else matches",
                )
            self.policies[source] = policy
