"""The change log's stream as its consumer sees it: which records reach the materialiser,
and the shape Lambda gives them.

One definition each, used by the stack (the event-source mapping's filter criteria), by
``configpipe ops redrive`` (re-reading a parked batch with GetRecords) and by the tests
that play the stream in-process.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

#: The materialiser's event-source-mapping filter, as Lambda filter patterns: new version
#: items, new rejection records, and every new or changed rollout item (each state change of
#: a rollout is a MODIFY of the key's one ROLLOUT item). The CURRENT pointer and the
#: accepted-change record, written in the same transactions, need no materialisation.
MATERIALISER_FILTER_PATTERNS: list[dict[str, Any]] = [
    {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["version"]}}}},
    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"kind": {"S": ["rollout"]}}}},
    {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"kind": {"S": ["change"]}, "status": {"S": ["rejected"]}}},
    },
]


def passes_materialiser_filter(record: dict[str, Any]) -> bool:
    """Would Lambda hand this stream record to the materialiser? (The patterns above use only
    exact-value lists, so matching them needs nothing more than this.)"""
    return any(_matches(pattern, record) for pattern in MATERIALISER_FILTER_PATTERNS)


def _matches(pattern: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for name, expected in pattern.items():
        actual = value.get(name)
        if isinstance(expected, dict):
            if not _matches(expected, actual):
                return False
        elif actual not in expected:
            return False
    return True


def lambda_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record → the record Lambda hands a stream consumer: binary attributes as
    base64 text, the creation time as epoch seconds, plus eventSource / eventSourceARN / awsRegion."""
    shaped = _as_lambda_json(record)
    dynamodb = dict(shaped.get("dynamodb", {}))
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    region = stream_arn.split(":")[3] if stream_arn.count(":") >= 5 else None
    out = {**shaped, "dynamodb": dynamodb, "eventSource": "aws:dynamodb", "eventSourceARN": stream_arn}
    if region and not out.get("awsRegion"):
        out["awsRegion"] = region
    return out


def _as_lambda_json(value: Any) -> Any:
    if isinstance(value, dict):
        shaped: dict[str, Any] = {}
        for name, item in value.items():
            if name == "B" and isinstance(item, bytes | bytearray):
                shaped[name] = base64.b64encode(item).decode("ascii")
            elif name == "BS" and isinstance(item, list):
                shaped[name] = [
                    base64.b64encode(b).decode("ascii") if isinstance(b, bytes | bytearray) else b
                    for b in item
                ]
            else:
                shaped[name] = _as_lambda_json(item)
        return shaped
    if isinstance(value, list):
        return [_as_lambda_json(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value
