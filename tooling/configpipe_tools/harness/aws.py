"""Provisioning of the pipeline's resources in moto for unit and integration tests, plus
two observers: what reached the bus (via a catch-all rule into SQS, as a real subscriber
would see it) and what the change log's stream would hand the materialiser."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from configpipe.contracts import CONSUMER_SOURCE_PREFIX, PIPELINE_SOURCE
from configpipe.registry import SUBSCRIBER_MAX_RECEIVES, Registry, subscriber_queue_name
from configpipe.settings import MaterialiserSettings, PropagatorSettings, ValidatorSettings, environment_for
from sample_service.settings import SampleServiceSettings

REGION = "us-east-1"
ACCOUNT = "123456789012"

DEMO_REGISTRY: dict[str, Any] = {
    "environments": ["development", "staging", "production"],
    "global": {
        "publishers": ["configpipe.team.platform"],
        "schemas": {},
        "owner": "team-platform",
        "costCenter": "CC-1000",
    },
    "services": {
        "checkout": {
            "publishers": ["configpipe.team.checkout"],
            "owner": "team-checkout",
            "costCenter": "CC-1001",
            "functions": ["checkout-api"],
            "schemas": {"max_items": {"type": "integer", "minimum": 1, "maximum": 1000}},
            "featureFlags": ["flags"],
            "demo": True,
        },
        "payments": {
            "publishers": ["configpipe.team.payments"],
            "owner": "team-payments",
            "costCenter": "CC-1002",
            "functions": ["payments-api"],
            "keyPrefixes": ["payments.", "feature."],
            "demo": True,
        },
        "search": {
            "publishers": ["configpipe.team.search"],
            "owner": "team-search",
            "costCenter": "CC-1003",
            "functions": ["search-api"],
            "environments": ["development", "staging"],
            "demo": True,
        },
    },
}


@dataclass
class Pipeline:
    table_name: str = "ChangeLog"
    applied_table_name: str = "DemoApplied"
    ledger_table_name: str = "DeliveryLedger"
    bus_name: str = "configpipe-config-bus"
    registry_parameter: str = "/configpipe/registry"
    secrets_key_id: str = ""
    hash_key_id: str = ""
    capture_queue_url: str = ""
    stream_arn: str = ""
    registry: Registry = field(default_factory=lambda: Registry.model_validate(DEMO_REGISTRY))
    _stream_positions: dict[str, str] = field(default_factory=dict)
    #: (service, consumer) → (queue URL, DLQ URL) of the registry's queue consumers
    subscriber_queues: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # made once, on the thread that provisions: a worker thread that drains the bus then
    # creates no client (creating one reads the whole environment)
    _capture: Any = None

    def env(self) -> dict[str, str]:
        """Environment variables as the stack gives them to the functions."""
        return {
            **environment_for(
                ValidatorSettings,
                change_log_table=self.table_name,
                registry_parameter=self.registry_parameter,
                secrets_key_id=self.secrets_key_id,
                hash_key_id=self.hash_key_id,
            ),
            **environment_for(
                MaterialiserSettings,
                change_log_table=self.table_name,
                event_bus_name=self.bus_name,
                secrets_key_id=self.secrets_key_id,
                registry_parameter=self.registry_parameter,
                inline_value_max_bytes=1024,
            ),
            **environment_for(
                PropagatorSettings, event_bus_name=self.bus_name, registry_parameter=self.registry_parameter
            ),
            SampleServiceSettings.env_name("applied_table"): self.applied_table_name,
        }

    # --- observers --------------------------------------------------------------------

    def bus_events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Drain every event the bus delivered to the catch-all queue so far."""
        sqs = self._capture or boto3.client("sqs", region_name=REGION)
        events: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.capture_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in events if detail_type is None or e["detail-type"] == detail_type]

    def stream_event(self) -> dict[str, Any]:
        """New change-log stream records since the last call, shaped as the Lambda event
        source mapping delivers them (``{"Records": [...]}``)."""
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        records: list[dict[str, Any]] = []
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator_args: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
            if shard_id in self._stream_positions:
                iterator_args.update(
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self._stream_positions[shard_id]
                )
            else:
                iterator_args["ShardIteratorType"] = "TRIM_HORIZON"
            iterator = streams.get_shard_iterator(**iterator_args)["ShardIterator"]
            batch = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
            for record in batch:
                self._stream_positions[shard_id] = record["dynamodb"]["SequenceNumber"]
                record = dict(record)
                record["eventSourceARN"] = self.stream_arn
                records.append(record)
        return {"Records": records}


def provision(registry: dict[str, Any] | None = None) -> Pipeline:
    """Create the pipeline's stateful resources in the current moto context."""
    pipeline = Pipeline()
    if registry is not None:
        pipeline.registry = Registry.model_validate(registry)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName=pipeline.table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
            {"AttributeName": "rolloutActive", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                # sparse: only rollouts in progress carry rolloutActive (the rollout tick's query)
                "IndexName": "activeRollouts",
                "KeySchema": [
                    {"AttributeName": "rolloutActive", "KeyType": "HASH"},
                    {"AttributeName": "pk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "byScope",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    pipeline.stream_arn = table["TableDescription"]["LatestStreamArn"]
    dynamodb.create_table(
        TableName=pipeline.applied_table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # the delivery ledger (issue 14): keys as stacks/constructs/delivery_ledger.py
    dynamodb.create_table(
        TableName=pipeline.ledger_table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    kms = boto3.client("kms", region_name=REGION)
    pipeline.secrets_key_id = kms.create_key(Description="configpipe secrets")["KeyMetadata"]["KeyId"]
    pipeline.hash_key_id = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=pipeline.registry_parameter, Value=pipeline.registry.to_document(), Type="String"
    )
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=pipeline.bus_name)
    sqs = boto3.client("sqs", region_name=REGION)
    pipeline.capture_queue_url = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
    pipeline._capture = sqs
    queue_arn = sqs.get_queue_attributes(QueueUrl=pipeline.capture_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # Everything the pipeline announces, teams publish and services acknowledge is captured.
    events.put_rule(
        Name="capture-all",
        EventBusName=pipeline.bus_name,
        EventPattern=json.dumps(
            {
                "source": [
                    PIPELINE_SOURCE,
                    {"prefix": "configpipe.team."},
                    {"prefix": CONSUMER_SOURCE_PREFIX},
                ]
            }
        ),
    )
    events.put_targets(
        Rule="capture-all", EventBusName=pipeline.bus_name, Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    provision_subscribers(pipeline, sqs, events)
    return pipeline


def provision_subscribers(
    pipeline: Pipeline, sqs: Any, events: Any, visibility_timeout_seconds: int = 60
) -> None:
    """The registry's queue consumers, as the stack declares them (stacks/constructs/
    subscribers.py): a queue with a DLQ after ``SUBSCRIBER_MAX_RECEIVES`` receives, and a
    rule with the service's subscription pattern. The local pipeline creates the same."""
    for service, consumer in pipeline.registry.subscribers():
        name = subscriber_queue_name(service, consumer)
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(SUBSCRIBER_MAX_RECEIVES)}
        url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "RedrivePolicy": json.dumps(redrive),
                "VisibilityTimeout": str(visibility_timeout_seconds),
                "SqsManagedSseEnabled": "true",
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name=name,
            EventBusName=pipeline.bus_name,
            EventPattern=json.dumps(pipeline.registry.subscription_pattern(service)),
        )
        events.put_targets(Rule=name, EventBusName=pipeline.bus_name, Targets=[{"Id": "q", "Arn": arn}])
        pipeline.subscriber_queues[(service, consumer)] = (url, dlq_url)


RELEASE_TABLE = "release-state"


def provision_release(session: boto3.Session) -> None:
    """For the release manager: its table (keys and indexes as stacks/release.py) and the demo
    registry's ``checkout-api`` with versions 1-3 behind a ``live`` alias."""
    iam = session.client("iam")
    role = iam.create_role(RoleName="checkout-api", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam = session.client("lambda")
    lam.create_function(
        FunctionName="checkout-api",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    for n in range(3):
        lam.update_function_configuration(FunctionName="checkout-api", Description=f"v{n + 1}")
        lam.publish_version(FunctionName="checkout-api")
    lam.create_alias(FunctionName="checkout-api", Name="live", FunctionVersion="1")
    index = [("queue", "gsi1pk", "gsi1sk"), ("byAlias", "gsi2pk", "gsi2sk")]
    session.client("dynamodb").create_table(
        TableName=RELEASE_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
            }
            for name, pk, sk in index
        ],
    )


#: The one lock around in-process moto. Every request moto serves, and every botocore client
#: created, goes through it, so a test's background threads (a function's logic pumping the bus,
#: a watcher, concurrent writers) never touch moto's backends or boto's shared session state at
#: the same time as the test thread. Re-entrant: a worker may hold it around several calls.
MOTO_LOCK = threading.RLock()
#: Signalled after every request: an SQS long poll waits on it with MOTO_LOCK released.
_MOTO_REQUEST_DONE = threading.Condition(MOTO_LOCK)


@contextlib.contextmanager
def serialised_moto() -> Iterator[None]:
    """Make in-process moto as atomic as the services it emulates.

    DynamoDB checks a transaction's conditions and applies its writes atomically; moto's
    backends (DynamoDB tables, EventBridge's rules, SQS queues, ...) are plain dicts that are
    safe only while one thread calls them. While this is active, each request moto serves
    runs under :data:`MOTO_LOCK`, as does creating a botocore client (the default boto3
    session is not thread-safe). Tests that run code on several threads then observe our
    code's behaviour under the services' documented semantics, not the emulator's races.

    An SQS long poll (``WaitTimeSeconds``) is the one request that waits for another: it
    waits with the lock released, re-checking its queue after each other request, as SQS
    lets senders in while a receiver waits.
    """
    from botocore.session import Session
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.sqs.models import Queue

    def locked(original: Any) -> Any:
        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            with MOTO_LOCK:
                try:
                    return original(*args, **kwargs)
                finally:
                    _MOTO_REQUEST_DONE.notify_all()

        return call

    def wait_for_messages(queue: Any, timeout: int) -> None:
        with _MOTO_REQUEST_DONE:
            _MOTO_REQUEST_DONE.wait_for(lambda: queue.messages, timeout=timeout)

    patches: dict[tuple[Any, str], Any] = {
        (BotocoreStubber, "__call__"): locked(BotocoreStubber.__call__),
        (Session, "create_client"): locked(Session.create_client),
        (Queue, "wait_for_messages"): wait_for_messages,
    }
    originals = {target: getattr(*target) for target in patches}
    for (owner, name), replacement in patches.items():
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def set_alarm(cloudwatch: Any, name: str, state: str, reason: str = "set by a test") -> None:
    """Put the metric alarm ``name`` (created if missing) into ``state``, the way the tests and
    the demo stand in for a real metric crossing its threshold (the emulator evaluates no
    metrics). Works against moto in-process and the local pipeline alike."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="configpipe/tests",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
