"""The rollout function's entry point: the scheduled tick moves every active rollout, a
team's control acts at once, anything else is ignored; outcomes are counted."""

from __future__ import annotations

from datetime import timedelta

from configpipe.handlers import rollout as rollout_handler
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.rollout.test_rollout_service import KEY, start

TICK = {
    "version": "0",
    "id": "tick-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-01T12:05:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def test_the_tick_moves_every_active_rollout(write_path, service, log, clock):
    start(write_path)
    clock.advance(timedelta(minutes=5).total_seconds())

    result = rollout_handler.handler(TICK, LambdaContext(), service=service)

    assert result == {"reconciled": 1, "moved": 1}
    assert log.rollout(*KEY).status == "COMPLETED"  # type: ignore[union-attr]


def test_a_control_acts_at_once_and_a_stranger_event_is_ignored(write_path, service, log):
    start(write_path)
    control = {
        "controlId": "h-1",
        "service": "checkout",
        "environment": "production",
        "key": "max_items",
        "action": "abort",
        "author": "bob@example.com",
        "reason": "wrong value",
    }

    result = rollout_handler.handler(
        eventbridge_event(control, detail_type="ConfigurationRolloutControl"),
        LambdaContext(),
        service=service,
    )
    ignored = rollout_handler.handler(
        eventbridge_event({}, detail_type="SomethingElse"), LambdaContext(), service=service
    )

    assert result["outcome"] == "accepted"
    assert log.rollout(*KEY).status == "ABORTED"  # type: ignore[union-attr]
    assert ignored == {"outcome": "ignored"}
