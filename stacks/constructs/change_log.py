"""The change log table: every version of every key, the single source of truth.

Its stream (NEW_IMAGE) drives everything after the validator (see docs/architecture.md,
"the outbox"); its layout is owned by ``configpipe.changelog``."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from configpipe.changelog import ACTIVE_ROLLOUTS_INDEX, SCOPE_INDEX
from stacks.constructs.tables import table


class ChangeLog(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.table = table(
            self,
            "Table",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            deletion_protection=retain_data,
        )
        # Lists the keys of one service+environment (CLI `list`) without scanning history.
        self.table.add_global_secondary_index(
            index_name=SCOPE_INDEX,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Sparse: only rollouts in progress carry rolloutActive, so the rollout tick reads
        # exactly the active ones without scanning.
        self.table.add_global_secondary_index(
            index_name=ACTIVE_ROLLOUTS_INDEX,
            partition_key=dynamodb.Attribute(name="rolloutActive", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    @property
    def stream_arn(self) -> str:
        arn = self.table.table_stream_arn
        if arn is None:  # pragma: no cover - the table above always has a stream
            raise RuntimeError("the change log has no stream")
        return arn
