"""Dead-letter queues: where an event or stream record lands once every retry is spent.

Each failure path has its own queue so an alarm says which path failed; operations
alarms on every queue registered here."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs import nag

#: SQS's maximum: two weeks to notice the alarm, fix the cause and redrive.
RETENTION = Duration.days(14)


class DeadLetterQueue(sqs.Queue):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        failure_path: str,
        queue_name: str | None = None,
        key: kms.IKey | None = None,
    ) -> None:
        # ``key``: a queue that may hold a team's change (its value included) is encrypted
        # under a customer key (docs/security.md, M3); the others hold only pipeline records.
        super().__init__(
            scope,
            construct_id,
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.KMS if key is not None else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        self.failure_path = failure_path
        #: The functions whose failures land here: the only ones the redrive function may
        #: re-deliver this queue's messages to (registered by stacks.constructs.retries).
        self.redrive_targets: list[lambda_.IFunction] = []
        nag.acknowledge(
            self,
            "AwsSolutions-SQS3",
            f"This queue is itself the dead-letter queue of {failure_path}; a DLQ of a DLQ would only "
            "hide messages further from the alarm that watches this one.",
        )

    def holds_failures_of(self, function: lambda_.IFunction) -> None:
        if function not in self.redrive_targets:
            self.redrive_targets.append(function)
