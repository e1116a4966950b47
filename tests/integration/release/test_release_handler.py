"""The Lambda entry point on moto: EventBridge envelopes in, alias and announcements out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from configpipe.handlers import release as release_handler
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import TEAM, Env, control, request


@dataclass
class Context:
    function_name: str = "release"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:release"
    aws_request_id: str = "req-1"


def envelope(detail_type: str, detail: dict[str, Any], source: str = TEAM) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "evt-1",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-03-02T09:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


@pytest.fixture
def invoke(env: Env) -> Any:
    """The Lambda entry point with the release service injected (built by the test's Env on its
    own region; the handler's environment wiring is covered by tests/unit/test_function_settings.py)."""
    service = env.service()
    return lambda event: release_handler.handler(event, Context(), service=service)  # type: ignore[arg-type]


def test_request_control_and_tick_through_the_handler(env: Env, invoke: Any) -> None:
    assert invoke(envelope("ReleaseRequested", request(strategy="AllAtOnce")))["outcome"] == "accepted"
    assert env.alias() == AliasTarget.of("2")

    assert invoke(envelope("ReleaseControl", control("status")))["outcome"] == "reported"
    tick = envelope("Scheduled Event", {}, source="aws.events")
    assert invoke(tick) == {"reconciled": 0, "announced": 0}


def test_malformed_request_is_rejected_not_crashed(env: Env, invoke: Any) -> None:
    result = invoke(envelope("ReleaseRequested", {"releaseId": "x", "strategy": 42}))
    assert result["outcome"] == "rejected"
    assert env.events("ReleaseRejected")[0]["detail"]["reasons"][0]["code"] in (
        "MALFORMED_EVENT",
        "INVALID_FIELD",
    )
    assert env.table_items() == []


def test_a_warm_invocation_does_not_log_the_previous_requests_release_id(
    env: Env, invoke: Any, logs: Any
) -> None:
    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]

    # Given a first invocation about release rel-first, in this (warm) execution environment
    invoke(envelope("ReleaseRequested", request(releaseId="rel-first", strategy="AllAtOnce")))
    first = lines()
    assert first and all(line.get("release_id") == "rel-first" for line in first)

    # When the next invocation is a reconcile tick, which is about no release in particular
    assert invoke(envelope("Scheduled Event", {}, source="aws.events")) == {"reconciled": 0, "announced": 0}

    # Then none of its log lines carries the first request's release id
    second = lines()[len(first) :]
    assert second, "the tick logs its summary"
    assert all("release_id" not in line for line in second), second
