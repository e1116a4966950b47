"""Hostile input to the materialiser, the propagator and the update-handler building block:
each case here is one the fuzzer (scripts/fuzz.py) found raising or writing. Every function
answers with a structured refusal, writes nothing, and logs only bounded identity."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from configpipe.client.update_handler import config_update_handler
from configpipe.handlers import propagator as propagator_handler
from configpipe.stores import ParameterStore, SecretStore
from configpipe_tools.harness.aws import ACCOUNT, REGION
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.test_fanout import announce, fanout_with
from tests.unit.test_materialise import ChangeWriter, build_materialiser, run_materialiser, ssm_value

HUGE = "x" * 100_000
MAX_LOG_LINE = 4096


@pytest.fixture
def writer(pipeline) -> ChangeWriter:
    return ChangeWriter(pipeline)


def version_record(pipeline, writer: ChangeWriter, key: str = "limit") -> dict[str, Any]:
    """A real stream record of a new version (as Lambda hands it), for a test to forge from."""
    writer.append(key, 1)
    from configpipe.streams import lambda_stream_record

    [record] = [
        lambda_stream_record(r, pipeline.stream_arn)
        for r in pipeline.stream_event()["Records"]
        if r["dynamodb"]["NewImage"]["kind"]["S"] == "version"
    ]
    return record


def forged(record: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    out["dynamodb"]["NewImage"].update(attributes)
    return out


def assert_bounded(logs) -> None:
    lines = logs.getvalue().splitlines()
    assert lines, "the refusal is logged"
    assert max(len(line) for line in lines) < MAX_LOG_LINE


# --- materialiser -------------------------------------------------------------------------


def test_a_record_of_an_unknown_kind_is_refused_not_failed_for_a_retry(pipeline, writer, logs):
    # Given a stream record of a kind the materialiser has no rule for, with a 100 KB key
    record = forged(version_record(pipeline, writer), kind={"S": "mystery"}, pk={"S": HUGE})

    # When the materialiser gets it
    response = run_materialiser({"Records": [record]}, build_materialiser(pipeline))

    # Then it is refused (no batch item failure: retries cannot help), logged bounded
    assert response == {"batchItemFailures": []}
    assert '"stream record refused"' in logs.getvalue()
    assert '"code":"UNKNOWN_KIND"' in logs.getvalue()
    assert_bounded(logs)


def test_a_record_with_an_event_name_dynamodb_never_sends_is_refused(pipeline, writer, logs):
    record = {**version_record(pipeline, writer), "eventName": "TRUNCATE"}

    response = run_materialiser({"Records": [record]}, build_materialiser(pipeline))

    assert response == {"batchItemFailures": []}
    assert '"code":"MALFORMED_RECORD"' in logs.getvalue()


@pytest.mark.parametrize("event", [{}, {"Records": "x"}, [1, 2], {"Records": [None, 5]}])
def test_an_event_that_is_not_a_stream_batch_is_refused(pipeline, event, logs):
    assert run_materialiser(event, build_materialiser(pipeline)) == {"batchItemFailures": []}
    assert '"stream record refused"' in logs.getvalue()


def test_a_forged_version_record_is_refused_before_anything_is_written(pipeline, writer):
    # Given a real version record whose version was forged to a negative number
    record = forged(version_record(pipeline, writer), version={"N": "-5"})

    # When the materialiser gets it
    response = run_materialiser({"Records": [record]}, build_materialiser(pipeline))

    # Then nothing reached SSM or the bus (the old code wrote SSM, then failed to announce)
    assert response == {"batchItemFailures": []}
    assert ssm_value("/config/checkout/production/limit") == "<absent>"
    assert pipeline.bus_events() == []


@pytest.mark.parametrize(
    "attributes",
    [
        {"key": {"S": "bad\udfff"}},
        {"deleted": {"BOOL": False}, "valueJson": {"NULL": True}},
        {"author": {"S": "a\udfff"}},
        {"appliedAt": {"N": "5"}},
    ],
    ids=["surrogate-key", "put-without-value", "surrogate-author", "numeric-time"],
)
def test_a_version_record_no_change_could_produce_is_refused_untouched(pipeline, writer, attributes):
    record = forged(version_record(pipeline, writer), **attributes)

    response = run_materialiser({"Records": [record]}, build_materialiser(pipeline))

    assert response == {"batchItemFailures": []}
    assert ssm_value("/config/checkout/production/limit") == "<absent>"
    assert pipeline.bus_events() == []


def test_a_rejection_record_beyond_the_validators_bounds_is_announced_cut(pipeline, writer):
    # Given a rejection record with a surrogate in its key and a thousand 1 KB reasons
    record = forged(
        version_record(pipeline, writer),
        kind={"S": "change"},
        status={"S": "rejected"},
        pk={"S": "CHANGE#c-1"},
        key={"S": "k\udfff"},
        source={"S": "configpipe.team.checkout"},
        receivedAt={"S": "2026-12-02T10:00:00+00:00"},
        reasons={"L": [{"M": {"code": {"S": "INVALID_KEY"}, "message": {"S": "m" * 1024}}}] * 1000},
    )

    response = run_materialiser({"Records": [record]}, build_materialiser(pipeline))

    # Then it is announced, bounded: valid UTF-8, at most 50 reasons
    assert response == {"batchItemFailures": []}
    [rejected] = pipeline.bus_events("ConfigurationRejected")
    assert rejected["detail"]["key"] == "k\\udfff"  # escaped, visibly
    assert len(rejected["detail"]["reasons"]) == 50


# --- propagator ---------------------------------------------------------------------------


class RecordingInvoker:
    def __init__(self) -> None:
        self.invoked: list[str] = []

    def __call__(self, function_name: str, payload: bytes) -> None:
        self.invoked.append(function_name)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: {**e, "detail": {**e["detail"], "version": "many"}},
        lambda e: {**e, "detail": [1, 2]},
        lambda e: {k: v for k, v in e.items() if k != "id"},
        lambda e: {**e, "detail-type": "Whatever"},
    ],
    ids=["bad-version", "detail-not-object", "no-id", "other-detail-type"],
)
def test_the_propagator_refuses_what_is_not_an_announcement_without_raising(pipeline, writer, mutate, logs):
    event = mutate(announce(pipeline, writer, "feature.beta", True, service="global"))
    invoker = RecordingInvoker()

    result = propagator_handler.handler(event, LambdaContext(), fanout=fanout_with(pipeline, invoker))

    assert result["outcome"] == "rejected"
    assert result["code"] == "MALFORMED_ANNOUNCEMENT"
    assert invoker.invoked == []
    assert pipeline.bus_events() == []
    assert_bounded(logs)


def test_a_forged_announcement_with_a_huge_change_id_reaches_no_service(pipeline, writer, logs):
    # Given a global update (it would reach every service) whose changeId is 100 KB
    event = announce(pipeline, writer, "feature.beta", True, service="global")
    event = {**event, "detail": {**event["detail"], "changeId": HUGE}}
    invoker = RecordingInvoker()

    result = propagator_handler.handler(event, LambdaContext(), fanout=fanout_with(pipeline, invoker))

    # Then no service is invoked, nothing is published, and no log line carries the id
    assert result["outcome"] == "rejected"
    assert invoker.invoked == []
    assert pipeline.bus_events() == []
    assert_bounded(logs)


# --- update-handler building block --------------------------------------------------------


def update_event(pipeline, writer) -> dict[str, Any]:
    """A ConfigurationUpdated exactly as the propagator hands it to an update handler."""
    return json.loads(json.dumps(announce(pipeline, writer, "max_items", 7)))


def handler_with_calls(calls: list[Any]) -> Any:
    return config_update_handler(
        "checkout",
        on_update=lambda update, value: calls.append(update),
        parameters=ParameterStore(boto3.client("ssm", region_name=REGION)),
        secrets=SecretStore(boto3.client("secretsmanager", region_name=REGION)),
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: {**e, "detail": {**e["detail"], "key": "../../other\udfff"}},
        lambda e: {**e, "detail": {**e["detail"], "version": {"n": 1}}},
        lambda e: {**e, "detail-type": ["ConfigurationUpdated"]},
        lambda e: "not an event",
        lambda e: {**e, "detail": {**e["detail"], "reason": HUGE}},
        lambda e: {
            **e,
            "detail": {**e["detail"], "valueInline": False, "parameterName": "/config/payments/production/k"},
        },
    ],
    ids=[
        "forged-key",
        "object-version",
        "list-detail-type",
        "string-event",
        "huge-reason",
        "other-parameter",
    ],
)
def test_the_update_handler_refuses_a_malformed_announcement_without_calling_back(pipeline, writer, mutate):
    calls: list[Any] = []
    event = mutate(update_event(pipeline, writer))

    result = handler_with_calls(calls)(event, LambdaContext())

    assert result["applied"] is False
    assert result["reason"] == "invalid"
    assert all(len(problem) <= 256 for problem in result["errors"])
    assert calls == []


def test_the_update_handler_still_applies_a_valid_announcement(pipeline, writer):
    calls: list[Any] = []

    result = handler_with_calls(calls)(
        {"account": ACCOUNT, **update_event(pipeline, writer)}, LambdaContext()
    )

    assert result == {"applied": True, "version": 1}
    assert [c.key for c in calls] == ["max_items"]


def test_the_update_handler_refuses_an_event_without_a_detail(pipeline):
    # The envelope itself is checked too: an event without a detail is refused, not raised.
    result = handler_with_calls([])(eventbridge_event(None, detail_type="ConfigurationUpdated"), None)
    assert result["reason"] == "invalid"
