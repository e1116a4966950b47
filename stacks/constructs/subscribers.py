"""Durable queue subscriptions for the registry's long-running consumers (docs/consuming.md).

For every ``consumers`` entry of a registered service: an encrypted SQS queue named
``configpipe-sub-<service>-<consumer>``, a rule on the config bus that forwards the pipeline's
announcements for the service's keys (``Registry.subscription_pattern``: the same narrowing as
the propagator's fan-out), a DLQ after ``SUBSCRIBER_MAX_RECEIVES`` receives (alarmed by
Operations, like every ``DeadLetterQueue``), and a managed policy with exactly what
``configpipe.client.Subscription`` does: consume that queue, read the service's and the global
rows of the change log, and read their values. Nothing is created at run time.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from configpipe.changelog import SCOPE_INDEX
from configpipe.contracts import GLOBAL_SERVICE
from configpipe.naming import PARAMETER_ROOT, SECRET_ROOT
from configpipe.registry import SUBSCRIBER_MAX_RECEIVES, Registry, subscriber_queue_name
from stacks.constructs import nag
from stacks.constructs.dead_letters import RETENTION, DeadLetterQueue

#: Longer than a consumer's callback should ever take; a message whose callback fails comes
#: back after this long (SQS's own retry delay), until the DLQ.
VISIBILITY_TIMEOUT = Duration.seconds(60)
#: A consumer that is down or stuck lets announcements age on its queue; past this, someone
#: should look (it will still catch up, from the change log, when it comes back).
BACKLOG_AGE = Duration.minutes(15)


def _camel(*parts: str) -> str:
    return "".join(word.title() for part in parts for word in part.split("-"))


class SubscriberQueues(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry: Registry,
        bus: events.IEventBus,
        change_log: dynamodb.ITable,
        secrets_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[tuple[str, str], sqs.Queue] = {}
        self.policies: dict[tuple[str, str], iam.ManagedPolicy] = {}
        #: One per consumer; the stack points them at the operations topic (created after).
        self.backlog_alarms: list[cloudwatch.Alarm] = []
        for service, consumer in registry.subscribers():
            name = subscriber_queue_name(service, consumer)
            prefix = _camel(service, consumer)
            dlq = DeadLetterQueue(
                self,
                f"{prefix}Dlq",
                failure_path=f"{service}'s queue consumer {consumer}",
                queue_name=f"{name}-dlq",
            )
            queue = sqs.Queue(
                self,
                f"{prefix}Queue",
                queue_name=name,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=RETENTION,
                visibility_timeout=VISIBILITY_TIMEOUT,
                dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=SUBSCRIBER_MAX_RECEIVES, queue=dlq),
            )
            pattern = registry.subscription_pattern(service)
            events.Rule(
                self,
                f"{prefix}Rule",
                event_bus=bus,
                description=f"configpipe announcements for {service} → its consumer {consumer}",
                event_pattern=events.EventPattern(
                    source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
                ),
                # An announcement EventBridge cannot put on the queue lands in the same DLQ.
                targets=[
                    targets.SqsQueue(
                        queue, dead_letter_queue=dlq, retry_attempts=185, max_event_age=Duration.hours(24)
                    )
                ],
            )
            self.queues[(service, consumer)] = queue
            self.backlog_alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{prefix}Backlog",
                    alarm_description=f"{service}'s consumer {consumer} has not taken an announcement "
                    f"for {BACKLOG_AGE.to_minutes()} minutes",
                    metric=queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(5)),
                    threshold=BACKLOG_AGE.to_seconds(),
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            self.policies[(service, consumer)] = self._read_policy(
                prefix, service, consumer, queue, change_log, secrets_key
            )
            CfnOutput(self, f"{prefix}QueueUrl", value=queue.queue_url)
            CfnOutput(self, f"{prefix}PolicyArn", value=self.policies[(service, consumer)].managed_policy_arn)

    def _read_policy(
        self,
        prefix: str,
        service: str,
        consumer: str,
        queue: sqs.Queue,
        change_log: dynamodb.ITable,
        secrets_key: kms.IKey,
    ) -> iam.ManagedPolicy:
        stack = Stack.of(self)
        scopes = (service, GLOBAL_SERVICE)
        policy = iam.ManagedPolicy(
            self,
            f"{prefix}Policy",
            managed_policy_name=f"configpipe-consumer-{service}-{consumer}",
            description=f"configpipe: the {consumer} consumer of {service} reads its subscription",
            statements=[
                iam.PolicyStatement(
                    sid="ConsumeOwnQueue",
                    actions=[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    resources=[queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="CatchUpFromChangeLog",
                    actions=["dynamodb:GetItem", "dynamodb:Query"],
                    resources=[change_log.table_arn, f"{change_log.table_arn}/index/{SCOPE_INDEX}"],
                    # Only the service's and the global rows: version items and pointers
                    # (KEY#…) and the by-scope index (SCOPE#…).
                    conditions={
                        "ForAllValues:StringLike": {
                            "dynamodb:LeadingKeys": [
                                f"{kind}#{s}#*" for s in scopes for kind in ("KEY", "SCOPE")
                            ]
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadValues",
                    actions=["ssm:GetParameter", "ssm:GetParameterHistory", "ssm:GetParametersByPath"],
                    resources=[
                        stack.format_arn(service="ssm", resource=f"parameter{PARAMETER_ROOT}/{s}/*")
                        for s in scopes
                    ]
                    + [
                        stack.format_arn(service="ssm", resource=f"parameter{PARAMETER_ROOT}/{s}")
                        for s in scopes
                    ],
                ),
                iam.PolicyStatement(
                    sid="ReadSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[
                        stack.format_arn(service="secretsmanager", resource=f"secret:{SECRET_ROOT}/{s}/*")
                        for s in scopes
                    ],
                ),
                iam.PolicyStatement(
                    sid="DecryptThroughTheStoresOnly",
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=[secrets_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": [
                                f"secretsmanager.{Aws.REGION}.amazonaws.com",
                                f"dynamodb.{Aws.REGION}.amazonaws.com",
                            ]
                        }
                    },
                ),
            ],
        )
        arn = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:"
        for s in scopes:
            nag.acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{arn.format(service='ssm')}parameter{PARAMETER_ROOT}/{s}/*]",
                f"the consumer reads the keys under its service's and the global parameter tree "
                f"({s}), whose names are created at run time; no other service's tree",
            )
            nag.acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{arn.format(service='secretsmanager')}secret:{SECRET_ROOT}/{s}/*]",
                f"the consumer reads secrets under its service's and the global prefix ({s}), created at "
                "run time with a random ARN suffix; no other service's secrets",
            )
        return policy
