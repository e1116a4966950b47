"""The release decision: pure logic, no I/O.

Given the stored release, the alias as just read from Lambda, the watched alarms now in
ALARM and the time, :func:`decide` returns the ONE next action. The service applies it,
re-reads, and asks again until the answer is :class:`Wait`. Because the desired weight is a
pure function of (strategy, first-shift time, paused time, now) and every action is checked
against what the alias really is, running a reconcile twice at the same moment does nothing
the second time, and a reconcile after a crash converges on a weight the strategy allows.

Order of precedence (first match wins):

1. terminal release → ``Wait``;
2. rolling back and the alias is already the recorded previous state → ``FinishRollback``;
3. the alias is what we were about to write (``intent``) → ``RecordApplied`` (our write
   landed, the crash happened before we recorded it);
4. the alias is neither what we last wrote nor the intent → ``TakeOver`` (a concurrent change:
   the release stops and leaves the alias alone; it never overwrites somebody else's change);
5. rolling back → ``Restore`` the previous state;
6. a watched alarm in ALARM → ``BeginRollback`` (also while paused: pause stops progress, not
   safety); a watched alarm that cannot be read — deleted (``ALARM_MISSING``) or DescribeAlarms
   failing (``ALARM_UNREADABLE``) — → ``BeginRollback`` too, unless the release was asked to
   ``ignorePollAlarmFailure`` (CodeDeploy's default and option: a release nobody can watch stops);
7. the beta alias (if any) not yet pointed at the target → ``PointBeta`` (before any hook or
   shift, so a pre-traffic hook and testers can reach the target through it); paused → ``Wait``;
8. pre-traffic hook not passed → ``RunHook(PreTraffic)``;
9. shifting: the strategy wants another weight → ``Shift``; at 100 % → ``TrafficComplete``;
   but when the release has an analysis and the step being left splits traffic (0 < % < 100),
   the step must pass it first → ``Analyse`` (a held step is analysed again once a minute;
   a promote or a person's resume after an analysis pause skips it);
10. post-traffic hook not passed → ``RunHook(PostTraffic)``;
11. the strategy's end (last shift plus its final bake, e.g. BlueGreen's or AppConfig's) reached
    or promoted → ``Complete``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from configpipe.release.contracts import HookPhase, ReleaseOutcomeCode, ReleaseStatus
from configpipe.release.model import AliasState, AliasTarget, ReleaseState, target_for


@dataclass(frozen=True)
class Wait:
    reason: str
    until: datetime | None = None


@dataclass(frozen=True)
class RecordApplied:
    target: AliasTarget


@dataclass(frozen=True)
class TakeOver:
    observed: AliasState | None


@dataclass(frozen=True)
class BeginRollback:
    code: ReleaseOutcomeCode
    message: str
    alarms_in_alarm: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Restore:
    target: AliasTarget


@dataclass(frozen=True)
class FinishRollback:
    pass


@dataclass(frozen=True)
class RunHook:
    phase: HookPhase
    function: str


@dataclass(frozen=True)
class Shift:
    target: AliasTarget
    percent: float
    cause: str  # "schedule" | "promoted"


@dataclass(frozen=True)
class PointBeta:
    """Point the release's beta alias at the target, so testers reach it directly."""


@dataclass(frozen=True)
class Analyse:
    """Judge the step now applied, over its window, before the strategy leaves it."""

    window_start: datetime


#: A held step is analysed again at most this often (the durable timer ticks once a minute).
REANALYSE_SECONDS = 60


@dataclass(frozen=True)
class TrafficComplete:
    pass


@dataclass(frozen=True)
class Complete:
    pass


Action = (
    Wait
    | RecordApplied
    | TakeOver
    | BeginRollback
    | Restore
    | FinishRollback
    | RunHook
    | Shift
    | PointBeta
    | Analyse
    | TrafficComplete
    | Complete
)


def desired_percent(state: ReleaseState, now: datetime) -> float:
    """What the strategy allows right now (100 once promoted)."""
    if state.promoted:
        return 100.0
    return state.strategy.percent_at(state.elapsed_seconds(now))


def next_step_at(state: ReleaseState, now: datetime) -> datetime | None:
    """When the strategy next changes the weight or may complete (None when paused or not started)."""
    if state.shift_started_at is None or state.paused or state.status.terminal:
        return None
    elapsed = state.elapsed_seconds(now)
    upcoming = state.strategy.next_shift_after(elapsed)
    end = state.strategy.duration_seconds
    if upcoming is None and end > elapsed:
        upcoming = end
    return None if upcoming is None else now + timedelta(seconds=upcoming - elapsed)


def analysis_due(state: ReleaseState) -> bool:
    """Whether the step now applied must pass analysis before the release leaves it."""
    return (
        state.analysis is not None
        and not state.promoted
        and 0 < state.percent < 100
        and state.step_verdict is None
        and state.analysis_waived_percent != state.percent
    )


def unwatched(
    state: ReleaseState, alarms_missing: Sequence[str], alarm_error: str | None
) -> BeginRollback | None:
    """The rollback due when the release cannot see its alarms (None if it can, or may go on)."""
    if state.ignore_poll_alarm_failure:
        return None
    if alarm_error is not None:
        return BeginRollback(
            ReleaseOutcomeCode.ALARM_UNREADABLE, f"alarm states could not be read: {alarm_error}"
        )
    if alarms_missing:
        return BeginRollback(
            ReleaseOutcomeCode.ALARM_MISSING,
            f"watched alarm(s) no longer exist: {', '.join(sorted(alarms_missing))}",
        )
    return None


def decide(
    state: ReleaseState,
    observed: AliasState | None,
    alarms_in_alarm: list[str],
    now: datetime,
    alarms_missing: Sequence[str] = (),
    alarm_error: str | None = None,
) -> Action:
    if state.status.terminal:
        return Wait("release has ended")

    current = observed.target() if observed is not None else None
    if state.status is ReleaseStatus.ROLLING_BACK and state.previous.same_routing(current):
        return FinishRollback()
    if (
        state.intent is not None
        and state.intent.same_routing(current)
        and not state.applied.same_routing(current)
    ):
        return RecordApplied(state.intent)
    if not state.applied.same_routing(current):
        return TakeOver(observed)
    if state.status is ReleaseStatus.ROLLING_BACK:
        return Restore(state.previous)

    if alarms_in_alarm:
        return BeginRollback(
            ReleaseOutcomeCode.ALARM,
            f"alarm(s) in ALARM: {', '.join(sorted(alarms_in_alarm))}",
            sorted(alarms_in_alarm),
        )
    if (blind := unwatched(state, alarms_missing, alarm_error)) is not None:
        return blind
    if state.beta_alias is not None and not state.beta_pointed:
        return PointBeta()
    if state.paused:
        return Wait("paused")

    if state.status is ReleaseStatus.PRE_TRAFFIC:
        if state.hooks.pre_traffic and not state.pre_hook_passed:
            return RunHook(HookPhase.PRE_TRAFFIC, state.hooks.pre_traffic)
        # Without a hook the release is created SHIFTING; this is the hook-passed-but-not-recorded path.
        return Wait("waiting for the pre-traffic hook result to be recorded")

    if state.status is ReleaseStatus.SHIFTING:
        percent = desired_percent(state, now)
        wanted = target_for(percent, state.previous.function_version, state.target_version)
        if not wanted.same_routing(state.applied):
            if analysis_due(state):
                if state.held_since is not None and state.analysed_at is not None:
                    assert state.analysis is not None
                    limit = state.held_since + timedelta(minutes=state.analysis.inconclusive_limit_minutes)
                    again = min(state.analysed_at + timedelta(seconds=REANALYSE_SECONDS), limit)
                    if now < again:
                        return Wait("step held: analysis inconclusive", again)
                return Analyse(state.step_started_at or state.shift_started_at or state.requested_at)
            return Shift(wanted, percent, "promoted" if state.promoted else "schedule")
        if percent >= 100:
            return TrafficComplete()
        return Wait("next step not due", next_step_at(state, now))

    if state.status is ReleaseStatus.POST_TRAFFIC:
        if state.hooks.post_traffic and not state.post_hook_passed:
            return RunHook(HookPhase.POST_TRAFFIC, state.hooks.post_traffic)
        return Wait("waiting for the post-traffic hook result to be recorded")

    # BAKING: every shift done and every hook passed; the previous version stays one call away.
    if state.promoted or state.elapsed_seconds(now) >= state.strategy.duration_seconds:
        return Complete()
    return Wait("baking", next_step_at(state, now))
