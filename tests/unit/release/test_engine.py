"""The decision function alone: no AWS, time injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from configpipe.release import engine
from configpipe.release.contracts import ReleaseStatus
from configpipe.release.model import AliasState, AliasTarget, HookSpec, ReleaseState
from configpipe.release.strategies import parse_strategy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(**overrides: object) -> ReleaseState:
    base: dict[str, object] = {
        "release_id": "r",
        "service": "s",
        "function": "f",
        "alias": "live",
        "target_version": "2",
        "strategy": parse_strategy("Linear10PercentEvery1Minute"),
        "author": "a",
        "reason": "r",
        "source": "configpipe.team.s",
        "request_hash": "h",
        "status": ReleaseStatus.SHIFTING,
        "previous": AliasTarget.of("1"),
        "applied": AliasTarget.of("1"),
        "requested_at": T0,
        "shift_started_at": T0,
        "updated_at": T0,
    }
    base.update(overrides)
    return ReleaseState.model_validate(base)


def alias(version: str, weights: dict[str, float] | None = None) -> AliasState:
    return AliasState(function_version=version, weights=weights or {}, revision_id="rev")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_shift_to_the_weight_due() -> None:
    action = engine.decide(state(), alias("1"), [], at(3))
    assert action == engine.Shift(AliasTarget.of("1", {"2": 0.4}), 40.0, "schedule")


def test_nothing_to_do_once_the_due_weight_is_applied() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.4}))
    action = engine.decide(s, alias("1", {"2": 0.4}), [], at(3.5))
    assert isinstance(action, engine.Wait)
    assert action.until == at(4)


def test_alarm_wins_over_progress_and_pause() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.4}), paused_at=at(3))
    action = engine.decide(s, alias("1", {"2": 0.4}), ["errors"], at(5))
    assert isinstance(action, engine.BeginRollback)
    assert action.code == "ALARM"


def test_paused_time_does_not_count() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.2}), paused_seconds=180)
    assert engine.decide(s, alias("1", {"2": 0.2}), [], at(4)) == engine.Wait("next step not due", at(5))


def test_our_own_write_after_a_crash_is_recorded_not_treated_as_a_conflict() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.1}), intent=AliasTarget.of("1", {"2": 0.2}))
    assert engine.decide(s, alias("1", {"2": 0.2}), [], at(1)) == engine.RecordApplied(
        AliasTarget.of("1", {"2": 0.2})
    )


def test_anything_else_is_a_concurrent_change() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.1}))
    assert isinstance(engine.decide(s, alias("1", {"2": 0.5}), [], at(1)), engine.TakeOver)
    assert isinstance(engine.decide(s, None, [], at(1)), engine.TakeOver)


def test_rollback_restores_then_finishes() -> None:
    s = state(
        status=ReleaseStatus.ROLLING_BACK,
        previous=AliasTarget.of("1", {"4": 0.05}),
        applied=AliasTarget.of("1", {"2": 0.3}),
    )
    assert engine.decide(s, alias("1", {"2": 0.3}), [], at(3)) == engine.Restore(
        AliasTarget.of("1", {"4": 0.05})
    )
    restored = s.model_copy(update={"intent": AliasTarget.of("1", {"4": 0.05})})
    assert engine.decide(restored, alias("1", {"4": 0.05}), [], at(3)) == engine.FinishRollback()


def test_pre_traffic_hook_comes_first_and_promote_jumps_to_100() -> None:
    pre = state(status=ReleaseStatus.PRE_TRAFFIC, shift_started_at=None, hooks=HookSpec(pre_traffic="smoke"))
    assert isinstance(engine.decide(pre, alias("1"), [], at(0)), engine.RunHook)
    promoted = state(promoted=True)
    assert engine.decide(promoted, alias("1"), [], at(0)) == engine.Shift(
        AliasTarget.of("2"), 100.0, "promoted"
    )


def test_baking_completes_at_the_strategy_end() -> None:
    s = state(
        strategy=parse_strategy("BlueGreen20Minutes"),
        status=ReleaseStatus.BAKING,
        applied=AliasTarget.of("2"),
    )
    assert isinstance(engine.decide(s, alias("2"), [], at(19.9)), engine.Wait)
    assert engine.decide(s, alias("2"), [], at(20)) == engine.Complete()


def test_a_watched_alarm_that_cannot_be_read_rolls_back_by_default_even_while_paused() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.2}), paused_at=at(2))
    watched = alias("1", {"2": 0.2})

    missing = engine.decide(s, watched, [], at(3), alarms_missing=["errors"])
    unreadable = engine.decide(s, watched, [], at(3), alarm_error="AccessDenied")

    assert isinstance(missing, engine.BeginRollback)
    assert (missing.code, missing.message) == ("ALARM_MISSING", "watched alarm(s) no longer exist: errors")
    assert isinstance(unreadable, engine.BeginRollback)
    assert unreadable.code == "ALARM_UNREADABLE" and "AccessDenied" in unreadable.message


def test_a_release_asked_to_ignore_poll_alarm_failures_goes_on_unwatched() -> None:
    s = state(applied=AliasTarget.of("1", {"2": 0.2}), ignore_poll_alarm_failure=True)
    action = engine.decide(s, alias("1", {"2": 0.2}), [], at(2), alarms_missing=["errors"], alarm_error="x")
    assert action == engine.Shift(AliasTarget.of("1", {"2": 0.3}), 30.0, "schedule")
    # an alarm it can read and that fires still rolls it back
    firing = engine.decide(s, alias("1", {"2": 0.2}), ["other"], at(2), alarms_missing=["errors"])
    assert isinstance(firing, engine.BeginRollback) and firing.code == "ALARM"
