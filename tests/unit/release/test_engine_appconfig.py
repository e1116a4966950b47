"""The release engine driven by an AppConfig strategy: sub-minute steps and the final bake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from configpipe.release import engine
from configpipe.release.contracts import ReleaseStatus
from configpipe.release.model import AliasState, AliasTarget, ReleaseState
from configpipe.release.strategies import parse_strategy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(**overrides: object) -> ReleaseState:
    base: dict[str, object] = {
        "release_id": "r",
        "service": "s",
        "function": "f",
        "alias": "live",
        "target_version": "2",
        "strategy": parse_strategy("AppConfig.Linear50PercentEvery30Seconds"),
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


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_linear_50_every_30_seconds_steps_at_0_30_60_then_bakes_and_completes() -> None:
    # 0 s: the strategy is at 0 % (AppConfig's first step comes after D/S): nothing to shift yet.
    s = state()
    assert engine.decide(s, alias("1"), [], at(0)) == engine.Wait("next step not due", at(30))
    assert engine.decide(s, alias("1"), [], at(29.9)) == engine.Wait("next step not due", at(30))

    # 30 s: half the traffic.
    half = AliasTarget.of("1", {"2": 0.5})
    assert engine.decide(s, alias("1"), [], at(30)) == engine.Shift(half, 50.0, "schedule")
    s = state(applied=half)
    assert engine.decide(s, alias("1", {"2": 0.5}), [], at(59.9)) == engine.Wait("next step not due", at(60))

    # 60 s: all of it.
    full = AliasTarget.of("2")
    assert engine.decide(s, alias("1", {"2": 0.5}), [], at(60)) == engine.Shift(full, 100.0, "schedule")
    s = state(applied=full)
    assert engine.decide(s, alias("2"), [], at(60)) == engine.TrafficComplete()

    # the final bake (1 min): still watched, an alarm rolls back; complete at 120 s.
    baking = state(applied=full, status=ReleaseStatus.BAKING)
    assert engine.decide(baking, alias("2"), [], at(90)) == engine.Wait("baking", at(120))
    assert isinstance(engine.decide(baking, alias("2"), ["errors"], at(119.9)), engine.BeginRollback)
    assert engine.decide(baking, alias("2"), [], at(120)) == engine.Complete()


def test_a_bake_override_delays_completion_of_a_codedeploy_strategy() -> None:
    s = state(
        strategy=parse_strategy("Canary10Percent5Minutes").with_bake(10),
        status=ReleaseStatus.BAKING,
        applied=AliasTarget.of("2"),
    )
    assert engine.decide(s, alias("2"), [], at(5 * 60)) == engine.Wait("baking", at(15 * 60))
    assert engine.decide(s, alias("2"), [], at(15 * 60)) == engine.Complete()
