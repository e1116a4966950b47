"""The rollout decision: pure logic, no I/O.

Given a key's rollout as the change log holds it, the states of its watched alarms and the
time, :func:`decide` returns the ONE next action. The service applies it with a write
conditional on the rollout's ``sequence``, re-reads, and asks again until the answer is
:class:`Wait`. The weight due is a pure function of (strategy, start, paused time, now), so a
lost tick is repaired by the next one and two reconciles at the same moment change nothing
more than one.

Order of precedence (first match wins):

1. ended → ``Wait``;
2. a watched alarm in ``ALARM`` — or in ``INSUFFICIENT_DATA`` / missing, under the default
   policy (AppConfig's) — → ``RollBack`` (also while paused: pause stops progress, not safety);
3. promoted → ``Complete``;
4. paused → ``Wait``;
5. the strategy wants another weight → ``Step``;
6. at 100 % and past the strategy's end (last step plus final bake) → ``Complete``;
7. otherwise ``Wait`` until the next step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from configpipe.changelog import RolloutRecord
from configpipe.release.contracts import CustomStrategy
from configpipe.release.strategies import Strategy, parse_strategy


class RolloutOutcomeCode(StrEnum):
    """Why a rollout ended other than by completing. Stable strings, never renamed."""

    ALARM = "ALARM"
    ALARM_INSUFFICIENT_DATA = "ALARM_INSUFFICIENT_DATA"
    ABORTED = "ABORTED"
    #: The code release the rollout rode on was rolled back or aborted.
    RELEASE_ROLLED_BACK = "RELEASE_ROLLED_BACK"
    #: The code release never started (never requested, or its rejection went unseen) within
    #: the grace period.
    RELEASE_NOT_STARTED = "RELEASE_NOT_STARTED"
    #: The code release's request was rejected (``ReleaseRejected``): it will not start.
    RELEASE_REJECTED = "RELEASE_REJECTED"


#: How long a rollout bound to a release waits for the release to exist before it gives up.
RELEASE_START_GRACE_SECONDS = 15 * 60


class InsufficientDataPolicy(StrEnum):
    """What an alarm without data (or one that does not exist) means to a rollout."""

    #: AppConfig's default: no data is not evidence of health.
    ROLLBACK = "rollback"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Wait:
    reason: str
    until: datetime | None = None


@dataclass(frozen=True)
class Step:
    weight: float


@dataclass(frozen=True)
class Complete:
    cause: str  # "schedule" | "promoted"


@dataclass(frozen=True)
class RollBack:
    code: RolloutOutcomeCode
    message: str
    alarms: list[str] = field(default_factory=list)


Action = Wait | Step | Complete | RollBack


def strategy_of(spec: str | dict[str, Any], bake_minutes: int | None) -> Strategy:
    """A rollout's strategy: the one implementation releases use, with the rollout's bake
    override. Raises ``StrategyError`` (or pydantic's ``ValidationError`` for a malformed
    custom object) when it is not valid."""
    parsed = parse_strategy(spec if isinstance(spec, str) else CustomStrategy.model_validate(spec))
    return parsed if bake_minutes is None else parsed.with_bake(bake_minutes)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def elapsed_seconds(record: RolloutRecord, now: datetime) -> float:
    """Seconds the rollout has been moving: since its start, minus the time it was paused."""
    paused = record.paused_seconds
    if record.paused and record.paused_at:
        paused += max(0.0, (now - parse_time(record.paused_at)).total_seconds())
    return max(0.0, (now - parse_time(record.started_at)).total_seconds() - paused)


def unhealthy_alarms(
    watched: list[str], states: Mapping[str, str], policy: InsufficientDataPolicy
) -> tuple[RolloutOutcomeCode, list[str]] | None:
    """The alarms that stop the rollout, and why; None if it may go on."""
    in_alarm = sorted(a for a in watched if states.get(a) == "ALARM")
    if in_alarm:
        return RolloutOutcomeCode.ALARM, in_alarm
    if policy is InsufficientDataPolicy.ROLLBACK:
        no_data = sorted(a for a in watched if states.get(a) in (None, "INSUFFICIENT_DATA"))
        if no_data:
            return RolloutOutcomeCode.ALARM_INSUFFICIENT_DATA, no_data
    return None


def decide_with_release(record: RolloutRecord, release_status: str | None, now: datetime) -> Action:
    """A rollout bound to a code release follows it: the release's traffic decides who reads
    the candidate (its target version), its alarms and hooks decide its fate, and the config
    ends exactly when the release does, so code and the config it was written for never mix."""
    if not record.active:
        return Wait("rollout has ended")
    if record.promoted or release_status == "COMPLETED":
        return Complete("release completed" if release_status == "COMPLETED" else "promoted")
    if release_status in ("ROLLED_BACK", "ABORTED"):
        return RollBack(RolloutOutcomeCode.RELEASE_ROLLED_BACK, f"release ended {release_status}")
    if release_status is None and elapsed_seconds(record, now) >= RELEASE_START_GRACE_SECONDS:
        return RollBack(
            RolloutOutcomeCode.RELEASE_NOT_STARTED,
            f"release did not start within {RELEASE_START_GRACE_SECONDS // 60} minutes",
        )
    return Wait("following the release")


def decide(
    record: RolloutRecord,
    strategy: Strategy,
    alarm_states: Mapping[str, str],
    now: datetime,
    policy: InsufficientDataPolicy = InsufficientDataPolicy.ROLLBACK,
) -> Action:
    if not record.active:
        return Wait("rollout has ended")
    unhealthy = unhealthy_alarms(record.alarms, alarm_states, policy)
    if unhealthy is not None:
        code, alarms = unhealthy
        what = (
            "in ALARM" if code is RolloutOutcomeCode.ALARM else "without data (INSUFFICIENT_DATA or missing)"
        )
        return RollBack(code, f"alarm(s) {what}: {', '.join(alarms)}", alarms)
    if record.promoted:
        return Complete("promoted")
    if record.paused:
        return Wait("paused")
    elapsed = elapsed_seconds(record, now)
    weight = strategy.percent_at(elapsed)
    if weight != record.weight:
        return Step(weight)
    if weight >= 100 and elapsed >= strategy.duration_seconds:
        return Complete("schedule")
    upcoming = strategy.next_shift_after(elapsed)
    end = strategy.duration_seconds
    if upcoming is None and end > elapsed:
        upcoming = end
    until = None if upcoming is None else now + timedelta(seconds=upcoming - elapsed)
    return Wait("baking" if weight >= 100 else "next step not due", until)
