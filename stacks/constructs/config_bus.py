"""The config bus: who may publish to it, and the archive of what the pipeline announced."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from configpipe.contracts import PIPELINE_SOURCE, TEAM_SOURCE_PREFIX, consumer_source

ARCHIVE_RETENTION = Duration.days(30)
#: The principal tag that says which team a role or user publishes for (docs/security.md):
#: ``configpipe-team=checkout`` may publish as ``configpipe.team.checkout`` and nothing else.
TEAM_TAG = "configpipe-team"
#: The principal tag that says which service's update handler a role is (issue 14):
#: ``configpipe-consumer=checkout`` may acknowledge as ``configpipe.consumer.checkout`` only.
CONSUMER_TAG = "configpipe-consumer"


class ConfigBus(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus_name: str,
        publisher_accounts: Sequence[str],
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # ``key`` (M3): teams' events at rest under a customer key, not an AWS-owned one.
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name, kms_key=key)
        # One policy document on the bus itself (not one AWS::Events::EventBusPolicy per
        # statement): the allow and the deny below are deployed atomically, and the
        # document stays open for statements added later (it is resolved at synth).
        self.policy = iam.PolicyDocument()
        cfn_bus = self.bus.node.default_child
        if not isinstance(cfn_bus, events.CfnEventBus):  # pragma: no cover - CDK invariant
            raise TypeError("EventBus without a CfnEventBus")
        cfn_bus.policy = self.policy
        # Built from the name, not the bus's Arn attribute: a resource cannot refer to itself.
        self._own_arn = Stack.of(self).format_arn(
            service="events", resource="event-bus", resource_name=bus_name
        )

        accounts = list(publisher_accounts) or [Aws.ACCOUNT_ID]
        # PutEvents carries many entries; ForAllValues makes every entry's source match, so
        # one team event cannot smuggle a pipeline or foreign-prefixed entry alongside it.
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="TeamsPublishChanges",
                principals=[iam.AccountPrincipal(account) for account in accounts],
                actions=["events:PutEvents"],
                resources=[self._own_arn],
                conditions={"ForAllValues:StringLike": {"events:source": [f"{TEAM_SOURCE_PREFIX}*"]}},
            )
        )

        # Only pipeline announcements are archived (for replay): they never carry a secret,
        # whereas a team's ConfigurationChange may hold a sensitive value sent in clear.
        # The L1, at the path bus.archive() uses (same logical id): on a bus with a key, the L2
        # grants EventBridge the key naming the bus by its Arn attribute, a key → bus → key
        # dependency cycle; the statement below names it by the ARN built from its name.
        self.archive = events.CfnArchive(
            self.bus,
            "PipelineArchive",
            source_arn=self.bus.event_bus_arn,
            description="configpipe pipeline announcements (never secrets), for replay",
            event_pattern={"source": [PIPELINE_SOURCE]},
            retention_days=int(ARCHIVE_RETENTION.to_days()),
            kms_key_identifier=key.key_arn if key is not None else None,
        )
        # The logical id the L2 gave it: a new id would replace the archive and lose its events.
        self.archive.override_logical_id("ConfigBusPipelineArchiveE1D6629D")
        if key is not None:
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="EventBridgeArchivesThisBus",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncrypt*"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {
                            "aws:SourceAccount": Aws.ACCOUNT_ID,
                            "kms:EncryptionContext:aws:events:event-bus:arn": self._own_arn,
                        }
                    },
                )
            )
            # The rules on this bus park undeliverable team changes in queues under the same key.
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="EventBridgeRulesParkUndeliverableEvents",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                        "ArnLike": {
                            "aws:SourceArn": Stack.of(self).format_arn(
                                service="events", resource="rule", resource_name=f"{bus_name}/*"
                            )
                        },
                    },
                )
            )

    def reserve_pipeline_source(self, announcers: Sequence[iam.IRole]) -> None:
        """Deny PutEvents with the pipeline's own source to every principal except its
        announcers, so no one (not even an over-privileged role in this account) can forge
        a ConfigurationUpdated that handlers would apply."""
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="OnlyThePipelineAnnounces",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self._own_arn],
                conditions={
                    "ForAnyValue:StringEquals": {"events:source": [PIPELINE_SOURCE]},
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in announcers]},
                },
            )
        )

    # --- security (issue 10, H2): a team source is bound to the caller, not just a string ----

    def bind_team_sources(self, teams: Sequence[str]) -> None:
        """Deny PutEvents with ``configpipe.team.<t>`` to every principal that does not carry
        the tag ``configpipe-team=<t>`` (an untagged principal included: a negated condition
        on a missing key is true). One statement per registered team; ForAnyValue, so one
        entry with another team's source denies the whole call."""
        for team in sorted(set(teams)):
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid=f"OnlyTagged{''.join(p.title() for p in team.replace('.', '-').split('-'))}Publishes",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[self._own_arn],
                    conditions={
                        "ForAnyValue:StringEquals": {"events:source": [f"{TEAM_SOURCE_PREFIX}{team}"]},
                        "StringNotEquals": {f"aws:PrincipalTag/{TEAM_TAG}": team},
                    },
                )
            )

    # --- issue 14: an acknowledgement is bound to the service's own role ---------------------

    def bind_consumer_sources(self, services: Sequence[str]) -> None:
        """Deny PutEvents with ``configpipe.consumer.<s>`` to every principal not tagged
        ``configpipe-consumer=<s>`` (untagged included), one statement per registered service,
        exactly as team sources are bound: a service cannot acknowledge for another."""
        for service in sorted(set(services)):
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid=f"OnlyTagged{''.join(p.title() for p in service.split('-'))}Acknowledges",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[self._own_arn],
                    conditions={
                        "ForAnyValue:StringEquals": {"events:source": [consumer_source(service)]},
                        "StringNotEquals": {f"aws:PrincipalTag/{CONSUMER_TAG}": service},
                    },
                )
            )
