"""The on-call operator's managed policy: what `configpipe ops redrive` and the runbook
(docs/operations.md) need, and nothing that changes configuration.

Redriving reads and deletes messages of configpipe's dead-letter queues and re-invokes the
function a message belongs to with its original payload; a parked stream batch is read back
from the change log's stream first.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
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
        functions: Sequence[lambda_.IFunction],
        change_log: dynamodb.ITable,
        stream_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name="configpipe-operator",
            description="configpipe on-call: inspect and redrive the dead-letter queues (docs/operations.md)",
            statements=[
                iam.PolicyStatement(
                    sid="ReadAndDrainDeadLetterQueues",
                    actions=[
                        "sqs:GetQueueUrl",
                        "sqs:GetQueueAttributes",
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                    ],
                    resources=[q.queue_arn for q in dead_letter_queues],
                ),
                iam.PolicyStatement(
                    sid="RedeliverToThePipelineFunctions",
                    actions=["lambda:InvokeFunction"],
                    resources=[fn.function_arn for fn in functions],
                ),
                iam.PolicyStatement(
                    sid="ReadBackParkedStreamBatches",
                    actions=["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"],
                    resources=[stream_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadTheChangeLog",
                    actions=["dynamodb:GetItem", "dynamodb:Query"],
                    resources=[change_log.table_arn, f"{change_log.table_arn}/index/{SCOPE_INDEX}"],
                ),
            ],
        )
