"""``configpipe ops redrive``: dead letters back to the function they were for, through the
redrive function (the operator's only path, docs/security.md H1).

moto cannot run Lambda code without Docker, so two stand-ins play Lambda:

* :class:`InProcessLambda`, given to :class:`Redriver` as its invoker port, runs the *real*
  handler (the validator's write path, the materialiser handler) on the payload it is handed,
  so a test sees the redrive's effect: a version in the change log, a parameter in SSM, an
  announcement on the bus.
* For the CLI, the synchronous ``Invoke`` of the redrive function runs the *real* redrive
  handler in process (``redrive_function``), with that same invoker behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from configpipe.fanout import InvocationError
from configpipe.handlers import materialiser as materialiser_handler
from configpipe.handlers import redrive as redrive_handler
from configpipe.redrive import RedriveQueue, Redriver, RedriveService
from configpipe_tools.cli.context import CliContext
from configpipe_tools.harness.aws import ACCOUNT, REGION, Pipeline
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change, eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.cli.conftest import assert_clean_exit, change_log, parse_json

VALIDATOR = "configpipe-validator"
MATERIALISER = "configpipe-materialiser"
PROPAGATOR = "configpipe-propagator"
SECRET_IN_CLEAR = "hunter2-do-not-print"
PLAIN_VALUE = "plain-value-do-not-print"
#: The test's dead-letter queue, and the functions it holds failures of (what the stack writes
#: into the redrive function's environment).
QUEUE = RedriveQueue("ChangesDlq", frozenset({VALIDATOR, MATERIALISER}))


def arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"


@pytest.fixture
def aws() -> Iterator[None]:
    """As the shared fixture, with moto's Docker-free Lambda: every Invoke is accepted."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


# --- Lambda, in process ----------------------------------------------------------------------


@dataclass
class InProcessLambda:
    """The invoker port: accepts an Event invocation of a known function and runs its real
    handler on the payload; refuses an unknown one as Lambda does (ResourceNotFoundException)."""

    chain: Chain
    calls: list[tuple[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def __call__(self, function_name: str, payload: bytes) -> None:
        name = function_name.split(":function:")[-1]
        if name in self.refuse or name not in (VALIDATOR, MATERIALISER):
            raise InvocationError(function_name, "ResourceNotFoundException", f"Function not found: {name}")
        event = json.loads(payload)
        self.calls.append((function_name, event))
        if name == VALIDATOR:
            self.chain.write_path.handle(event)
        else:
            response = materialiser_handler.handler(
                event, LambdaContext(function_name=name), materialiser=self.chain.materialiser
            )
            assert response == {"batchItemFailures": []}, response


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    return Chain(pipeline)


@pytest.fixture
def lambda_(chain: Chain) -> InProcessLambda:
    return InProcessLambda(chain)


@pytest.fixture
def redriver(lambda_: InProcessLambda) -> Redriver:
    return Redriver(
        sqs=boto3.client("sqs", region_name=REGION),
        streams=boto3.client("dynamodbstreams", region_name=REGION),
        invoker=lambda_,
        wait_seconds=0,
    )


@pytest.fixture(autouse=True)
def redrive_function(monkeypatch: pytest.MonkeyPatch, redriver: Redriver) -> list[tuple[str, Any]]:
    """Lambda's synchronous Invoke of the redrive function, in process: the real handler, with
    the stack's queue map for the test's queue and the in-process invoker behind it."""
    calls: list[tuple[str, Any]] = []
    service = RedriveService({QUEUE.name: QUEUE}, redriver)

    def invoke(self: CliContext, function: str, request: dict[str, Any]) -> dict[str, Any]:
        calls.append((function, request))
        assert function == "configpipe-redrive"
        answer = redrive_handler.handler(
            json.loads(json.dumps(request)), LambdaContext(function_name=function), service=service
        )
        return dict(json.loads(json.dumps(answer)))

    monkeypatch.setattr(CliContext, "invoke", invoke)
    return calls


# --- dead-letter queues and what lands in them -------------------------------------------------


@pytest.fixture
def dlq(pipeline: Pipeline) -> str:
    return str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="ChangesDlq")["QueueUrl"])


def park(queue_url: str, body: Any, **attributes: str) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return str(
        boto3.client("sqs", region_name=REGION).send_message(
            QueueUrl=queue_url,
            MessageBody=text,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )["MessageId"]
    )


def queued(queue_url: str) -> list[dict[str, Any]]:
    """What is visible in the queue now (and leaves it so)."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )
    return messages


def rule_target_dead_letter(
    queue_url: str, detail: dict[str, Any], target: str = VALIDATOR
) -> dict[str, Any]:
    """What EventBridge parks when it cannot deliver to the rule's target: the event itself."""
    event = eventbridge_event(detail)
    park(
        queue_url,
        event,
        RULE_ARN=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/configpipe-config-bus/ConfigurationChange",
        TARGET_ARN=arn(target),
        ERROR_CODE="SDK_CLIENT_ERROR",
        ERROR_MESSAGE="Unable to invoke Lambda function",
    )
    return event


def async_failure_record(event: dict[str, Any], function: str = VALIDATOR) -> dict[str, Any]:
    """Lambda's on-failure destination record for an asynchronous invocation."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-25T08:00:05.000Z",
        "requestContext": {
            "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
            "functionArn": f"{arn(function)}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Task timed out", "errorType": "Sandbox.Timedout"},
    }


def stream_records(pipeline: Pipeline) -> tuple[str, list[dict[str, Any]]]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    shard = streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    iterator = streams.get_shard_iterator(
        StreamArn=pipeline.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return shard, streams.get_records(ShardIterator=iterator)["Records"]


def stream_batch_record(pipeline: Pipeline, shard: str, start: str, end: str, size: int) -> dict[str, Any]:
    """The event-source mapping's on-failure record: where the batch was, not the records."""
    return {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": arn(MATERIALISER),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 11,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-25T08:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": start,
            "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2026-11-25T08:13:19Z",
            "approximateArrivalOfLastRecord": "2026-11-25T08:13:19Z",
            "batchSize": size,
            "streamArn": pipeline.stream_arn,
        },
    }


def accept(chain: Chain, detail: dict[str, Any]) -> None:
    """A change the validator accepted (its records now in the stream) whose materialisation failed."""
    outcome = chain.write_path.handle(eventbridge_event(detail))
    assert outcome.status == "accepted", outcome


def parameter(name: str) -> str | None:
    ssm = boto3.client("ssm", region_name=REGION)
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


# --- the three shapes -----------------------------------------------------------------------


def test_a_rule_target_dead_letter_is_invoked_on_its_target_with_the_original_event(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str, pipeline: Pipeline
):
    event = rule_target_dead_letter(dlq, change("max_items", 25))

    report = redriver.run(QUEUE)

    assert report.summary()["redriven"] == 1 and report.complete
    assert lambda_.calls == [(arn(VALIDATOR), event)]  # the event exactly as EventBridge sent it
    record = change_log(pipeline).current_record("checkout", "production", "max_items")
    assert record is not None and record.version == 1
    assert queued(dlq) == []


def test_an_async_failure_record_reinvokes_its_function_with_the_request_payload(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str, pipeline: Pipeline
):
    event = eventbridge_event(change("max_items", 40))
    park(dlq, async_failure_record(event))

    report = redriver.run(QUEUE)

    assert report.outcomes[0].shape == "async-failure" and report.outcomes[0].status == "redriven"
    # ":$LATEST" is how Lambda records an unqualified invocation: the redrive makes that same one.
    assert lambda_.calls == [(arn(VALIDATOR), event)]
    record = change_log(pipeline).current_record("checkout", "production", "max_items")
    assert record is not None and record.value_json == "40"
    assert queued(dlq) == []


def test_a_stream_batch_is_read_back_from_the_stream_and_materialised(
    redriver: Redriver, lambda_: InProcessLambda, chain: Chain, dlq: str, pipeline: Pipeline
):
    accept(chain, change("max_items", 30))
    accept(chain, chain.sealed(change("db_password", SECRET_IN_CLEAR, sensitive=True)))
    shard, records = stream_records(pipeline)
    start, end = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
    park(dlq, stream_batch_record(pipeline, shard, start, end, len(records)))

    report = redriver.run(QUEUE)

    assert report.outcomes[0].status == "redriven", report.outcomes[0]
    [(function, event)] = lambda_.calls
    assert function == arn(MATERIALISER)
    # Only what the event-source mapping's filter lets through: the two version items.
    assert [r["dynamodb"]["NewImage"]["kind"]["S"] for r in event["Records"]] == ["version", "version"]
    for record in event["Records"]:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == pipeline.stream_arn
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    # Binary attributes arrive base64-encoded, as Lambda delivers them (the materialiser decodes).
    assert isinstance(event["Records"][1]["dynamodb"]["NewImage"]["secretCiphertext"]["B"], str)
    assert parameter("/config/checkout/production/max_items") == "30"
    secret = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="configpipe/checkout/production/db_password"
    )
    assert json.loads(secret["SecretString"]) == SECRET_IN_CLEAR
    announced = pipeline.bus_events("ConfigurationUpdated")
    assert sorted(e["detail"]["key"] for e in announced) == ["db_password", "max_items"]
    assert queued(dlq) == []
    assert [i["key"] for i in report.outcomes[0].identities] == ["max_items", "db_password"]


# --- what must not happen ---------------------------------------------------------------------


def test_a_refused_redelivery_keeps_the_message_and_reports_it_failed(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str, pipeline: Pipeline
):
    rule_target_dead_letter(dlq, change("max_items", 25))
    lambda_.refuse.add(VALIDATOR)

    report = redriver.run(QUEUE)

    assert report.summary() == {"total": 1, "redriven": 0, "wouldRedrive": 0, "skipped": 0, "failed": 1}
    assert "ResourceNotFoundException" in str(report.outcomes[0].reason)
    assert not report.complete
    assert len(queued(dlq)) == 1  # kept, and visible again at once for the next run
    assert change_log(pipeline).current_record("checkout", "production", "max_items") is None


def test_only_the_refused_message_stays_when_others_are_redriven(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str
):
    rule_target_dead_letter(dlq, change("max_items", 25))
    rule_target_dead_letter(dlq, change("limits", 1), target=MATERIALISER)
    lambda_.refuse.add(MATERIALISER)

    report = redriver.run(QUEUE)

    assert sorted(o.status for o in report.outcomes) == ["failed", "redriven"]
    [left] = queued(dlq)
    assert json.loads(left["Body"])["detail"]["key"] == "limits"


# --- H1: a dead letter goes only where its queue's failures came from -----------------------


def test_a_message_naming_a_function_its_queue_does_not_serve_is_never_invoked(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str, pipeline: Pipeline
):
    # Given messages in the validator's queue that name other functions: a rule-target event
    # and an async failure record (whoever can write a queue can write these fields)
    rule_target_dead_letter(dlq, change("max_items", 25), target="configpipe-release")
    park(
        dlq,
        async_failure_record(
            eventbridge_event(change("limits", 2)), function="payments-config-update-handler"
        ),
    )

    # When the queue is redriven
    report = redriver.run(QUEUE)

    # Then neither is invoked, both stay, and the reason names the functions this queue serves
    assert [o.status for o in report.outcomes] == ["skipped", "skipped"]
    assert all(
        "is not a function this queue is the dead-letter queue of" in str(o.reason) for o in report.outcomes
    )
    assert lambda_.calls == [] and len(queued(dlq)) == 2


def test_function_cannot_send_a_queue_elsewhere(redriver: Redriver, lambda_: InProcessLambda, dlq: str):
    park(dlq, eventbridge_event(change("max_items", 3)))

    report = redriver.run(QUEUE, function="configpipe-release")

    assert report.outcomes[0].status == "skipped" and lambda_.calls == []
    assert len(queued(dlq)) == 1


def test_the_redrive_function_refuses_a_queue_that_is_not_one_of_the_stacks(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str
):
    other = boto3.client("sqs", region_name=REGION).create_queue(QueueName="someone-elses-queue")["QueueUrl"]
    park(other, eventbridge_event(change("max_items", 3)), TARGET_ARN=arn(VALIDATOR))
    service = RedriveService({QUEUE.name: QUEUE}, redriver)

    answer = redrive_handler.handler({"queue": other}, LambdaContext(), service=service)

    assert answer["error"]["code"] == "QUEUE_NOT_REDRIVABLE"
    assert "ChangesDlq" in answer["error"]["message"]
    assert lambda_.calls == [] and len(queued(other)) == 1


@pytest.mark.parametrize(
    "request_",
    [
        {"queue": "ChangesDlq", "payload": {"source": "configpipe.team.payments"}},
        {"queue": "ChangesDlq", "maxMessages": 10_000},
        {"queue": ""},
        ["ChangesDlq"],
    ],
)
def test_the_redrive_function_takes_no_payload_and_refuses_what_it_does_not_know(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str, request_: Any
):
    rule_target_dead_letter(dlq, change("max_items", 25))
    service = RedriveService({QUEUE.name: QUEUE}, redriver)

    answer = redrive_handler.handler(request_, LambdaContext(), service=service)

    assert answer["error"]["code"] == "INVALID_REDRIVE_REQUEST"
    assert lambda_.calls == [] and len(queued(dlq)) == 1


def test_a_dry_run_invokes_nothing_and_deletes_nothing(
    redriver: Redriver, lambda_: InProcessLambda, chain: Chain, dlq: str, pipeline: Pipeline
):
    rule_target_dead_letter(dlq, change("max_items", 25))
    accept(chain, change("limits", 5))
    shard, records = stream_records(pipeline)
    park(
        dlq,
        stream_batch_record(
            pipeline,
            shard,
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
            len(records),
        ),
    )

    report = redriver.run(QUEUE, dry_run=True)

    assert [o.status for o in report.outcomes] == ["would-redrive", "would-redrive"]
    assert lambda_.calls == []
    assert len(queued(dlq)) == 2
    assert parameter("/config/checkout/production/limits") is None
    assert change_log(pipeline).current_record("checkout", "production", "max_items") is None


def test_max_bounds_how_many_messages_are_redriven(redriver: Redriver, lambda_: InProcessLambda, dlq: str):
    for key in ("a", "b", "c"):
        rule_target_dead_letter(dlq, change(key, 1))

    report = redriver.run(QUEUE, max_messages=2)

    assert len(report.outcomes) == 2 and len(lambda_.calls) == 2
    assert len(queued(dlq)) == 1


def test_messages_that_are_not_configpipe_dead_letters_are_skipped_with_a_reason(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str
):
    park(dlq, "plain text")
    park(dlq, {"hello": "world"})
    park(
        dlq,
        eventbridge_event({"bucket": "x"}, detail_type="Object Created", source="aws.s3"),
        TARGET_ARN=arn(VALIDATOR),
    )
    park(dlq, eventbridge_event(change("max_items", 3)))  # a configpipe event, but for which function?

    report = redriver.run(QUEUE)

    reasons = {o.reason for o in report.outcomes}
    assert lambda_.calls == []
    assert all(o.status == "skipped" for o in report.outcomes)
    assert "the body is not JSON: not a configpipe dead letter" in reasons
    assert any(r and r.startswith("not a configpipe dead letter") for r in reasons)
    assert "not a configpipe event (source 'aws.s3')" in reasons
    assert "no TARGET_ARN attribute says which function the event was for" in reasons
    assert len(queued(dlq)) == 4


def test_function_names_the_target_when_the_dead_letter_does_not(
    redriver: Redriver, lambda_: InProcessLambda, dlq: str
):
    event = eventbridge_event(change("max_items", 3))
    park(dlq, event)

    report = redriver.run(QUEUE, function=VALIDATOR)

    assert report.complete and lambda_.calls == [(VALIDATOR, event)]


def test_expired_stream_records_are_reported_with_the_change_log_fallback(
    redriver: Redriver, lambda_: InProcessLambda, chain: Chain, dlq: str, pipeline: Pipeline
):
    accept(chain, change("max_items", 30))
    shard, records = stream_records(pipeline)
    beyond = str(int(records[-1]["dynamodb"]["SequenceNumber"]) + 100)
    park(dlq, stream_batch_record(pipeline, shard, beyond, beyond, 1))

    report = redriver.run(QUEUE)

    [outcome] = report.outcomes
    assert outcome.status == "skipped" and "not found in the stream" in str(outcome.reason)
    assert "configpipe rollback SERVICE ENV KEY --to <current version>" in str(outcome.hint)
    assert lambda_.calls == [] and len(queued(dlq)) == 1


def test_trimmed_stream_records_are_reported_as_expired(
    lambda_: InProcessLambda, dlq: str, pipeline: Pipeline
):
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stubber = Stubber(streams)
    stubber.add_client_error(
        "get_shard_iterator",
        service_error_code="TrimmedDataAccessException",
        service_message="The operation attempted to read past the oldest stream record in a shard.",
    )
    park(
        dlq,
        stream_batch_record(
            pipeline,
            "shardId-00000001573689847184-864758bb",
            "800000000003126276362",
            "800000000003126276399",
            3,
        ),
    )
    redriver = Redriver(
        sqs=boto3.client("sqs", region_name=REGION), streams=streams, invoker=lambda_, wait_seconds=0
    )

    with stubber:
        report = redriver.run(QUEUE)

    [outcome] = report.outcomes
    assert outcome.status == "skipped" and "have expired (TrimmedDataAccessException)" in str(outcome.reason)
    assert "change log is the source of truth" in str(outcome.hint)
    assert len(queued(dlq)) == 1


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_redrives_by_queue_name_and_deletes_what_lambda_accepted(cli, dlq: str):
    rule_target_dead_letter(dlq, change("max_items", 25, change_id="chg-1"))
    park(dlq, async_failure_record(eventbridge_event(change("limits", 2, change_id="chg-2"))))

    table = cli("ops", "redrive", "ChangesDlq")

    assert_clean_exit(table, 0)
    assert "chg-1" in table.stdout and "checkout/production/max_items" in table.stdout
    assert "configpipe-validator" in table.stdout
    assert "redriven 2, skipped 0, failed 0" in table.stdout
    assert queued(dlq) == []


def test_cli_json_reports_each_message_and_the_counts(cli, dlq: str):
    rule_target_dead_letter(dlq, change("max_items", 25, change_id="chg-1"))
    park(dlq, "not json")

    result = cli("ops", "redrive", dlq, "-o", "json")

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["summary"] == {"total": 2, "redriven": 1, "wouldRedrive": 0, "skipped": 1, "failed": 0}
    redriven = next(m for m in body["messages"] if m["status"] == "redriven")
    assert redriven["shape"] == "rule-target" and redriven["function"] == arn(VALIDATOR)
    assert redriven["identities"][0]["changeId"] == "chg-1"
    assert redriven["identities"][0]["key"] == "max_items"
    assert len(queued(dlq)) == 1


def test_cli_dry_run_exits_0_and_leaves_the_queue_as_it_was(cli, dlq: str):
    rule_target_dead_letter(dlq, change("max_items", 25))

    result = cli("ops", "redrive", dlq, "--dry-run", "-o", "json")
    table = cli("ops", "redrive", dlq, "--dry-run")

    assert_clean_exit(result, 0)
    assert parse_json(result)["summary"]["wouldRedrive"] == 1 and parse_json(result)["dryRun"] is True
    assert "nothing was invoked or deleted" in table.stdout
    assert len(queued(dlq)) == 1


def test_cli_a_queue_of_foreign_messages_is_exit_2(cli, dlq: str):
    park(dlq, {"Records": [{"eventSource": "aws:s3"}]})

    result = cli("ops", "redrive", dlq)

    assert_clean_exit(result, 2)
    assert "no message in this queue has a configpipe dead-letter shape" in result.stderr
    assert "not a configpipe dead letter" in result.stdout
    assert len(queued(dlq)) == 1


def test_cli_an_empty_queue_is_exit_0(cli, dlq: str):
    result = cli("ops", "redrive", dlq)

    assert_clean_exit(result, 0)
    assert "no messages" in result.stdout


def test_cli_a_queue_that_is_not_the_stacks_is_refused_by_the_redrive_function(cli, pipeline: Pipeline):
    result = cli("ops", "redrive", "no-such-queue", "-o", "json")

    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["code"] == "QUEUE_NOT_REDRIVABLE"


def test_cli_asks_the_redrive_function_and_sends_no_payload(
    cli, dlq: str, redrive_function: list[tuple[str, Any]]
):
    rule_target_dead_letter(dlq, change("max_items", 25))

    result = cli("ops", "redrive", dlq, "--max", "5", "--function", VALIDATOR, "--dry-run")

    assert_clean_exit(result, 0)
    assert redrive_function == [
        ("configpipe-redrive", {"queue": dlq, "dryRun": True, "function": VALIDATOR, "maxMessages": 5})
    ]


def test_cli_expired_stream_batch_is_exit_3_with_the_fallback(
    cli, chain: Chain, dlq: str, pipeline: Pipeline
):
    accept(chain, change("max_items", 30))
    shard, records = stream_records(pipeline)
    beyond = str(int(records[-1]["dynamodb"]["SequenceNumber"]) + 100)
    park(dlq, stream_batch_record(pipeline, shard, beyond, beyond, 1))

    result = cli("ops", "redrive", dlq)

    assert_clean_exit(result, 3)
    assert "configpipe rollback SERVICE ENV KEY --to <current version>" in result.stdout
    assert "redriven 0, skipped 1, failed 0" in result.stdout


def test_cli_never_prints_a_value(cli, chain: Chain, dlq: str, pipeline: Pipeline):
    # A team sent a secret in clear; its event, its async failure record, and a stream batch
    # holding a plain value are all parked.
    secret = change("db_password", SECRET_IN_CLEAR, change_id="chg-secret")
    rule_target_dead_letter(dlq, secret)
    park(dlq, async_failure_record(eventbridge_event(secret)))
    accept(chain, change("banner", PLAIN_VALUE, change_id="chg-plain"))
    shard, records = stream_records(pipeline)
    park(
        dlq,
        stream_batch_record(
            pipeline,
            shard,
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
            len(records),
        ),
    )

    outputs = [
        cli("ops", "redrive", dlq, "--dry-run"),
        cli("ops", "redrive", dlq, "--dry-run", "-o", "json"),
        cli("ops", "redrive", dlq),
    ]

    for result in outputs:
        assert_clean_exit(result, 0)
        assert SECRET_IN_CLEAR not in result.output and PLAIN_VALUE not in result.output
    assert "chg-secret" in outputs[0].stdout and "chg-plain" in outputs[0].stdout
