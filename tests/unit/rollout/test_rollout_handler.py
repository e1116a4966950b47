"""The rollout function's entry point: the scheduled tick moves every active rollout, a
team's control acts at once, the pipeline's rejection of a release rolls back the config riding
on it, anything else is ignored; outcomes are counted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from configpipe.handlers import rollout as rollout_handler
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.rollout.test_rollout_service import KEY, bound, start

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


def _release_rejected(action: str = "request") -> dict[str, Any]:
    detail = {
        "releaseId": "rel-1",
        "action": action,
        "source": "configpipe.team.checkout",
        "reasons": [{"code": "ALARM_ACTIVE", "message": "alarm in ALARM"}],
        "rejectedAt": "2026-12-01T12:00:00+00:00",
    }
    return eventbridge_event(detail, detail_type="ReleaseRejected", source="configpipe.pipeline")


def test_a_rejected_release_request_rolls_back_the_config_riding_on_it(write_path, following, log):
    bound(write_path)

    result = rollout_handler.handler(_release_rejected(), LambdaContext(), service=following)

    assert result == {"outcome": "rolled_back", "rolledBack": ["/".join(KEY)]}
    assert log.rollout(*KEY).outcome["code"] == "RELEASE_REJECTED"  # type: ignore[index,union-attr]


def test_only_the_pipelines_rejection_of_a_request_is_acted_on(write_path, following, log):
    bound(write_path)
    forged = {**_release_rejected(), "source": "configpipe.team.checkout"}

    results = [
        rollout_handler.handler(forged, LambdaContext(), service=following),
        rollout_handler.handler(_release_rejected("promote"), LambdaContext(), service=following),
        rollout_handler.handler(
            {**_release_rejected(), "detail": {"releaseId": 7}}, LambdaContext(), service=following
        ),
    ]

    assert results == [{"outcome": "ignored"}] * 3
    assert log.rollout(*KEY).status == "ROLLING_OUT"  # type: ignore[union-attr]
