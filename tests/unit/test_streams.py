"""Which change-log stream records the materialiser gets (the same patterns the stack
gives the event-source mapping), and the shape Lambda gives them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from configpipe.streams import lambda_stream_record, passes_materialiser_filter


def record(event: str, **image: str) -> dict:
    return {"eventName": event, "dynamodb": {"NewImage": {k: {"S": v} for k, v in image.items()}}}


@pytest.mark.parametrize(
    ("stream_record", "passes"),
    [
        (record("INSERT", kind="version"), True),
        (record("INSERT", kind="change", status="rejected"), True),
        (record("INSERT", kind="change", status="accepted"), False),
        (record("INSERT", kind="current"), False),
        (record("MODIFY", kind="current"), False),
        (record("MODIFY", kind="version"), False),
        (record("REMOVE", kind="version"), False),
        ({"eventName": "INSERT", "dynamodb": {}}, False),
    ],
)
def test_only_new_versions_and_rejections_reach_the_materialiser(stream_record, passes):
    assert passes_materialiser_filter(stream_record) is passes


def test_a_record_is_shaped_as_lambda_delivers_it():
    raw = {
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 11, 25, tzinfo=UTC),
            "NewImage": {"secretCiphertext": {"B": b"\x00\x01"}, "kind": {"S": "version"}},
        },
    }
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/ChangeLog/stream/2026"

    shaped = lambda_stream_record(raw, arn)

    assert shaped["dynamodb"]["NewImage"]["secretCiphertext"]["B"] == base64.b64encode(b"\x00\x01").decode()
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == datetime(2026, 11, 25, tzinfo=UTC).timestamp()
    assert (shaped["eventSource"], shaped["eventSourceARN"], shaped["awsRegion"]) == (
        "aws:dynamodb",
        arn,
        "eu-west-1",
    )
