"""The rollout decision (pure): steps at the strategy's boundaries, alarms before everything,
pause, promote, bake, and the INSUFFICIENT_DATA policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from configpipe.changelog import RolloutRecord
from configpipe.rollout.engine import (
    Complete,
    InsufficientDataPolicy,
    RollBack,
    RolloutOutcomeCode,
    Step,
    Wait,
    decide,
    elapsed_seconds,
    strategy_of,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rollout(strategy: str = "Canary10Percent5Minutes", **changes) -> RolloutRecord:
    base = RolloutRecord(
        rollout_id="c-1",
        service="checkout",
        environment="production",
        key="max_items",
        stable_version=1,
        candidate_version=2,
        strategy_spec=strategy,
        strategy_name=strategy,
        alarms=[],
        targets=[],
        bake_minutes=None,
        candidate_value_hash="sha256:x",
        candidate_sensitive=False,
        candidate_deleted=False,
        started_at=T0.isoformat(),
        weight=strategy_of(strategy, None).percent_at(0),
    )
    return replace(base, **changes)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_canary_waits_then_steps_to_100_then_completes():
    record = rollout("Canary10Percent5Minutes")
    strategy = strategy_of("Canary10Percent5Minutes", None)

    assert decide(record, strategy, {}, at(299.9)) == Wait("next step not due", at(300))
    assert decide(record, strategy, {}, at(300)) == Step(100.0)
    at_full = replace(record, weight=100.0)
    assert decide(at_full, strategy, {}, at(300)) == Complete("schedule")


def test_appconfig_linear_steps_at_its_boundaries_and_completes_after_the_final_bake():
    name = "AppConfig.Linear50PercentEvery30Seconds"
    strategy = strategy_of(name, None)
    record = rollout(name)
    assert record.weight == 0.0

    assert isinstance(decide(record, strategy, {}, at(29.9)), Wait)
    assert decide(record, strategy, {}, at(30)) == Step(50.0)
    record = replace(record, weight=50.0)
    assert decide(record, strategy, {}, at(60)) == Step(100.0)
    record = replace(record, weight=100.0)
    baking = decide(record, strategy, {}, at(61))
    assert baking == Wait("baking", at(strategy.duration_seconds))
    assert decide(record, strategy, {}, at(strategy.duration_seconds)) == Complete("schedule")


def test_the_rollouts_own_bake_overrides_the_strategys():
    record = rollout("Canary10Percent5Minutes", weight=100.0, bake_minutes=20)
    strategy = strategy_of("Canary10Percent5Minutes", 20)

    assert isinstance(decide(record, strategy, {}, at(300 + 19 * 60)), Wait)
    assert decide(record, strategy, {}, at(300 + 20 * 60)) == Complete("schedule")


def test_an_alarm_in_alarm_rolls_back_even_while_paused():
    record = rollout(
        alarms=["checkout-errors", "checkout-latency"], paused=True, paused_at=at(10).isoformat()
    )
    strategy = strategy_of("Canary10Percent5Minutes", None)
    states = {"checkout-errors": "ALARM", "checkout-latency": "OK"}

    action = decide(record, strategy, states, at(20))

    assert action == RollBack(
        RolloutOutcomeCode.ALARM, "alarm(s) in ALARM: checkout-errors", ["checkout-errors"]
    )


@pytest.mark.parametrize("state", ["INSUFFICIENT_DATA", None])
def test_insufficient_data_or_a_missing_alarm_rolls_back_by_default_and_not_when_ignored(state):
    record = rollout(alarms=["checkout-errors"])
    strategy = strategy_of("Canary10Percent5Minutes", None)
    states = {} if state is None else {"checkout-errors": state}

    default = decide(record, strategy, states, at(10))
    ignored = decide(record, strategy, states, at(10), InsufficientDataPolicy.IGNORE)

    assert isinstance(default, RollBack)
    assert default.code is RolloutOutcomeCode.ALARM_INSUFFICIENT_DATA
    assert isinstance(ignored, Wait)


def test_paused_time_does_not_count_towards_the_next_step():
    # paused from 100 s to 250 s: at 400 s wall time only 250 s have elapsed
    record = rollout(paused_seconds=150.0)
    strategy = strategy_of("Canary10Percent5Minutes", None)

    assert elapsed_seconds(record, at(400)) == 250.0
    assert isinstance(decide(record, strategy, {}, at(400)), Wait)
    assert decide(record, strategy, {}, at(450)) == Step(100.0)


def test_a_paused_rollout_waits_and_its_pause_keeps_growing():
    record = rollout(paused=True, paused_at=at(100).isoformat())
    strategy = strategy_of("Canary10Percent5Minutes", None)

    assert decide(record, strategy, {}, at(10_000)) == Wait("paused")
    assert elapsed_seconds(record, at(10_000)) == 100.0


def test_promoted_completes_at_once_and_an_ended_rollout_does_nothing():
    strategy = strategy_of("Canary10Percent5Minutes", None)

    assert decide(rollout(promoted=True), strategy, {}, at(1)) == Complete("promoted")
    assert decide(rollout(status="COMPLETED"), strategy, {"a": "ALARM"}, at(1)) == Wait("rollout has ended")
