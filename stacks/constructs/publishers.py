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

from configpipe.changelog import SCOPE_INDEX, SNAPSHOT_PREFIX
from configpipe.contracts import GLOBAL_SERVICE, PIPELINE_SOURCE, TEAM_SOURCE_PREFIX
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
#: Prefix of the temporary queues and rules `configpipe watch` creates (see docs/cli.md),
#: followed by the team: ``configpipe-watch-<team>-<id>``.
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
        delivery_ledger: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.policies: dict[str, iam.ManagedPolicy] = {}
        for source, services in services_by_publisher(registry).items():
            team = team_of(source)
            own_prefix = f"{WATCH_PREFIX}{team.replace('.', '-')[:30]}-"
            watch_rules = stack.format_arn(
                service="events", resource="rule", resource_name=f"{bus_name}/{own_prefix}*"
            )
            watch_queues = stack.format_arn(service="sqs", resource=f"{own_prefix}*")
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
                # issue 14: `configpipe promote` moves a secret between environments of the
                # team's own services as ciphertext: KMS decrypts and re-encrypts inside the
                # service, on the same key only (never onto a key the caller could decrypt with).
                iam.PolicyStatement(
                    sid="PromoteSecretsOfOwnServices",
                    actions=["kms:ReEncryptFrom", "kms:ReEncryptTo"],
                    resources=[secrets_key.key_arn],
                    conditions={
                        "StringLike": {
                            "kms:EncryptionContext:configpipe:scope": [f"{s}/*" for s in services]
                        },
                        "Bool": {"kms:ReEncryptOnSameKey": "true"},
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
                *(
                    # issue 14 (`configpipe status`): what each service applied of the keys of the
                    # team's own services and of global (partitions "<service>#<environment>").
                    [
                        iam.PolicyStatement(
                            sid="ReadDeliveryLedger",
                            actions=["dynamodb:Query"],
                            resources=[delivery_ledger.table_arn],
                            conditions={
                                "ForAllValues:StringLike": {
                                    "dynamodb:LeadingKeys": [
                                        f"{s}#*" for s in sorted({*services, GLOBAL_SERVICE})
                                    ]
                                }
                            },
                        )
                    ]
                    if delivery_ledger is not None
                    else []
                ),
                # The table is under the secrets key: a read is a Decrypt through DynamoDB.
                iam.PolicyStatement(
                    sid="DecryptChangeLogThroughDynamoDB",
                    actions=["kms:Decrypt"],
                    resources=[secrets_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{stack.region}.amazonaws.com"}},
                ),
                # --- M1 (docs/security.md): a team's watch rules and queues are its own ------
                iam.PolicyStatement(
                    sid="RemoveTemporaryWatchRule",
                    actions=["events:DeleteRule", "events:RemoveTargets"],
                    resources=[watch_rules],
                ),
                iam.PolicyStatement(
                    sid="WatchWithTemporaryRule",
                    actions=["events:PutRule"],
                    resources=[watch_rules],
                    # A rule may match only the pipeline's announcements, never a team's
                    # change (the pattern must name the source; Null makes an absent one fail).
                    conditions={
                        "ForAllValues:StringEquals": {"events:source": [PIPELINE_SOURCE]},
                        "Null": {"events:source": "false"},
                    },
                ),
                iam.PolicyStatement(
                    sid="WatchTargetsOwnQueueOnly",
                    actions=["events:PutTargets"],
                    resources=[watch_rules],
                    # Only to the team's own watch queue in this account: no way out.
                    conditions={"ArnLike": {"events:TargetArn": [watch_queues]}},
                ),
                iam.PolicyStatement(
                    sid="WatchWithTemporaryQueue",
                    actions=[
                        "sqs:CreateQueue",
                        "sqs:DeleteQueue",
                        # No SetQueueAttributes: `watch` sets its queue's policy at CreateQueue.
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                    ],
                    resources=[watch_queues],
                ),
            ]
            # --- issue 19: `configpipe snapshot create` writes only its own services' snapshots.
            # LeadingKeys confines PutItem to SNAPSHOT#<service>#... partitions: no version,
            # pointer or change record of the change log can be written this way.
            statements.append(
                iam.PolicyStatement(
                    sid="WriteOwnSnapshots",
                    actions=["dynamodb:PutItem"],
                    resources=[change_log.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {
                            "dynamodb:LeadingKeys": [f"{SNAPSHOT_PREFIX}{s}#*" for s in services]
                        }
                    },
                )
            )
            # --- end issue 19
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
                arn_prefix.format(service="events") + f"rule/{bus_name}/{own_prefix}*",
                arn_prefix.format(service="sqs") + f"{own_prefix}*",
            ):
                nag.acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    f"`configpipe watch` creates, reads and deletes the team's own temporary "
                    f"{own_prefix}<id> "
                    "rule and queue (names known only at run time); the rule may match only pipeline "
                    "announcements and target only such a queue, and no other team's prefix matches",
                )
            self.policies[source] = policy
