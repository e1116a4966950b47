"""The redrive function: the operator's only way to re-deliver a dead letter (H1 of
docs/security.md).

It may read and drain exactly the stack's dead-letter queues, read back parked stream batches,
and invoke exactly the functions those queues hold failures of; its environment maps each
queue to those functions, and it refuses everything else. The operator policy may invoke this
function and no pipeline function, so no operator path writes configuration around the
validator or shifts an alias around the release manager's checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from configpipe.settings import RedriveSettings, environment_for
from stacks.constructs import nag
from stacks.constructs.change_log import ChangeLog
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import ObservedFunction, SharedCode
from stacks.settings import PipelineSettings

FUNCTION_NAME = "configpipe-redrive"
#: Long enough for a run of MAX_MESSAGES_PER_RUN messages; shorter than the visibility timeout
#: the function gives the messages it reads (configpipe.handlers.redrive).
TIMEOUT = Duration.minutes(5)
#: Lambda's environment holds 4 KB in all; a queue name and a function name are each at most
#: this long in CloudFormation's generated names (80 / 64), so the map's worst case is known.
MAX_QUEUE_MAP_BYTES = 3000


class RedriveFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        shared: SharedCode,
        dead_letter_queues: Sequence[DeadLetterQueue],
        change_log: ChangeLog,
        queue_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        unowned = [q.node.path for q in dead_letter_queues if not q.redrive_targets]
        if unowned:
            raise ValueError(f"dead-letter queues with no function to redrive to: {unowned}")
        worst_case = sum(80 + 8 + 68 * len(q.redrive_targets) for q in dead_letter_queues)
        if worst_case > MAX_QUEUE_MAP_BYTES:
            raise ValueError(
                f"{len(dead_letter_queues)} dead-letter queues do not fit the redrive function's "
                f"environment ({worst_case} > {MAX_QUEUE_MAP_BYTES} bytes in the worst case)"
            )
        queue_map = Stack.of(self).to_json_string(
            {q.queue_name: [fn.function_name for fn in q.redrive_targets] for q in dead_letter_queues}
        )
        self.function = ObservedFunction(
            self,
            "Function",
            shared=shared,
            settings=settings,
            handler="configpipe.handlers.redrive.handler",
            service_name="redrive",
            description="configpipe: re-delivers the stack's dead letters to the function each was for",
            function_name=FUNCTION_NAME,
            timeout=TIMEOUT,
            environment=environment_for(RedriveSettings, redrive_queues=queue_map),
        )
        fn = self.function
        nag.acknowledge(
            fn.function,
            "NIST.800.53.R5-LambdaDLQ",
            "Invoked only synchronously (`configpipe ops redrive`, RequestResponse): the operator "
            "gets its answer or its error, and a dead-letter queue applies only to asynchronous "
            "invocations. What it fails to re-deliver stays in the queue it came from.",
        )
        fn.allow(
            [
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
            ],
            [q.queue_arn for q in dead_letter_queues],
        )
        targets = list(dict.fromkeys(t for q in dead_letter_queues for t in q.redrive_targets))
        fn.allow(["lambda:InvokeFunction"], [t.function_arn for t in targets])
        fn.allow(
            ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"],
            [change_log.stream_arn],
        )
        if queue_key is not None:
            fn.allow(["kms:Decrypt"], [queue_key.key_arn])
        for queue in dead_letter_queues:
            _only_its_writers_send(queue)


def _only_its_writers_send(queue: DeadLetterQueue) -> None:
    """What the redrive function re-delivers must be what the pipeline parked: deny
    sqs:SendMessage to every principal of the account but the roles of the functions whose
    failures the queue holds (Lambda parks an async or stream failure as the function's role);
    EventBridge parks a rule's undeliverable event as a service, which this leaves alone."""
    roles = [fn.role.role_arn for fn in queue.redrive_targets if fn.role is not None]
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyThePipelineParksHere",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            conditions={
                "ArnNotEquals": {"aws:PrincipalArn": roles},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        )
    )
