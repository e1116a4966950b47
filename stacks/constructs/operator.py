"""The on-call operator's managed policy: what `configpipe ops redrive` and the runbook
(docs/operations.md) need, and nothing that changes configuration.

The operator may invoke the redrive function and no other: that function reads the stack's
dead-letter queues itself and re-invokes the function each message belongs to. Invoking the
validator, propagator, update handlers or release manager directly would let the operator
hand them any payload (any team's source, any value, any alias) — docs/security.md, H1. The
operator does not read dead-letter messages either (a change may hold a value); the redrive
function's report shows only identities.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from configpipe.changelog import SCOPE_INDEX


class OperatorPolicy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dead_letter_queues: Sequence[sqs.IQueue],
        redrive_function: lambda_.IFunction,
        change_log: dynamodb.ITable,
        change_log_key: kms.IKey | None = None,
        delivery_ledger: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name="configpipe-operator",
            description="configpipe on-call: inspect and redrive the dead-letter queues (docs/operations.md)",
            statements=[
                iam.PolicyStatement(
                    sid="SeeDeadLetterQueueDepth",
                    actions=["sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                    resources=[q.queue_arn for q in dead_letter_queues],
                ),
                iam.PolicyStatement(
                    sid="RedriveThroughTheRedriveFunction",
                    actions=["lambda:InvokeFunction"],
                    resources=[redrive_function.function_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadTheChangeLog",
                    actions=["dynamodb:GetItem", "dynamodb:Query"],
                    resources=[change_log.table_arn, f"{change_log.table_arn}/index/{SCOPE_INDEX}"],
                ),
            ],
        )
        if delivery_ledger is not None:
            # issue 14: `configpipe status` reads what each service applied.
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid="ReadTheDeliveryLedger",
                    actions=["dynamodb:Query"],
                    resources=[delivery_ledger.table_arn],
                )
            )
        if change_log_key is not None:
            # The table is under the secrets key: a read is a Decrypt through DynamoDB.
            self.policy.add_statements(
                iam.PolicyStatement(
                    sid="DecryptChangeLogThroughDynamoDB",
                    actions=["kms:Decrypt"],
                    resources=[change_log_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
                )
            )
