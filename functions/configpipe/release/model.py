"""The release's durable state and the alias states it reasons about.

A release remembers three alias states: ``previous`` (exactly as found when it was accepted;
a rollback restores it), ``applied`` (the last state it knows it wrote) and ``intent`` (a
state it is about to write — recorded *before* ``UpdateAlias`` so that, after a crash, the
next reconcile can tell its own write from somebody else's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configpipe.release.contracts import (
    AnalysisVerdict,
    ReleaseAnalysis,
    ReleaseDetailType,
    ReleaseOutcomeCode,
    ReleaseStatus,
)
from configpipe.release.strategies import Strategy

#: Weights are compared at this precision: Lambda stores doubles, we send fractions of 1e-4.
_WEIGHT_DIGITS = 6


def normalise_weights(weights: dict[str, float] | None) -> dict[str, float]:
    return {version: round(float(w), _WEIGHT_DIGITS) for version, w in sorted((weights or {}).items()) if w}


class AliasTarget(BaseModel):
    """What an alias routes to: its primary version and the additional version weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function_version: str
    weights: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def of(cls, function_version: str, weights: dict[str, float] | None = None) -> AliasTarget:
        return cls(function_version=function_version, weights=normalise_weights(weights))

    def percent_on(self, version: str) -> float:
        if self.function_version == version:
            return round(100.0 * (1 - sum(w for v, w in self.weights.items() if v != version)), 4)
        return round(100.0 * self.weights.get(version, 0.0), 4)

    def same_routing(self, other: AliasTarget | None) -> bool:
        return other is not None and (self.function_version, self.weights) == (
            other.function_version,
            other.weights,
        )


class AliasState(AliasTarget):
    """An alias as read from Lambda, with the revision that guards the next update."""

    revision_id: str = ""

    def target(self) -> AliasTarget:
        return AliasTarget(function_version=self.function_version, weights=self.weights)


def target_for(percent: float, previous_version: str, target_version: str) -> AliasTarget:
    """The alias state that gives ``target_version`` ``percent`` % of the traffic.

    Below 100 % the primary stays the previous version and the target is the one additional
    version; at 100 % the primary is the target and there is no routing config at all."""
    if percent >= 100:
        return AliasTarget.of(target_version)
    return AliasTarget.of(previous_version, {target_version: round(percent / 100.0, 4)})


class HookSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pre_traffic: str | None = None
    post_traffic: str | None = None
    timeout_seconds: int = 60


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ReleaseOutcomeCode
    message: str
    #: ``ReleaseRolledBack`` (automatic) or ``ReleaseAborted`` (manual, or alias taken over).
    aborted: bool = False
    author: str | None = None
    alarms_in_alarm: list[str] = Field(default_factory=list)
    analysis: AnalysisVerdict | None = None


class ReleaseState(BaseModel):
    """One release, as stored in the release table (item ``RELEASE#{id}`` / ``STATE``)."""

    model_config = ConfigDict(extra="forbid")

    release_id: str
    service: str
    function: str
    alias: str
    target_version: str
    strategy: Strategy
    alarms: list[str] = Field(default_factory=list)
    #: Keep going when a watched alarm cannot be read (CodeDeploy's ignorePollAlarmFailure).
    ignore_poll_alarm_failure: bool = False
    hooks: HookSpec = Field(default_factory=HookSpec)
    author: str
    reason: str
    source: str
    request_hash: str

    status: ReleaseStatus
    previous: AliasTarget
    previous_revision_id: str = ""
    applied: AliasTarget
    intent: AliasTarget | None = None

    requested_at: datetime
    shift_started_at: datetime | None = None
    traffic_completed_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    promoted: bool = False
    pre_hook_passed: bool = False
    post_hook_passed: bool = False
    outcome: Outcome | None = None
    ended_at: datetime | None = None
    updated_at: datetime

    # --- analysis (issue 16); all empty for a release without one, so its timeline is unchanged
    analysis: ReleaseAnalysis | None = None
    #: When the weight now applied was written: the start of the step's analysis window.
    step_started_at: datetime | None = None
    #: The current step's passing verdict, announced with the shift that leaves the step.
    step_verdict: AnalysisVerdict | None = None
    #: An inconclusive step holds the strategy's clock (like a pause) from here until a verdict.
    held_since: datetime | None = None
    held_seconds: float = 0.0
    #: When the held step was last analysed: it is analysed again a minute later, not in a loop.
    analysed_at: datetime | None = None
    #: The release paused itself because a step stayed inconclusive past the limit; a person's
    #: resume then waives that step's analysis (``analysis_waived_percent``).
    analysis_paused: bool = False
    analysis_waived_percent: float | None = None

    # --- beta alias (issue 16): points at the target while the release runs
    beta_alias: str | None = None
    #: The beta alias as found at acceptance (None: it did not exist); a rollback restores it.
    beta_previous: AliasTarget | None = None
    beta_pointed: bool = False

    #: Optimistic-concurrency counter: every save is conditional on the value read, so two
    #: reconciles (or a reconcile and a control) of one release cannot both act.
    seq: int = 0
    #: Number of history entries (announcements are numbered 1, 2, 3, … without gaps).
    history_count: int = 0

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def percent(self) -> float:
        return self.applied.percent_on(self.target_version)

    def elapsed_seconds(self, now: datetime) -> float:
        """Time traffic has been moving, pause time excluded: the strategy's clock."""
        if self.shift_started_at is None:
            return 0.0
        paused_now = (now - self.paused_at).total_seconds() if self.paused_at else 0.0
        held_now = (now - self.held_since).total_seconds() if self.held_since else 0.0
        stopped = self.paused_seconds + paused_now + self.held_seconds + held_now
        return max(0.0, (now - self.shift_started_at).total_seconds() - stopped)


class HistoryEntry(BaseModel):
    """One transition, appended in the same transaction as the state change it describes.

    ``detail`` is the announcement's detail as it goes on the bus; an entry is marked
    unannounced until it has been published, so a crash after the write is repaired by the
    next reconcile (the release table is the outbox)."""

    model_config = ConfigDict(extra="forbid")

    release_id: str
    seq: int
    at: datetime
    detail_type: ReleaseDetailType
    detail: dict[str, Any]
