"""The release event contracts: one definition each, shared by the release Lambda, the CLI
and the tests.

Requests come from a team's own source (``configpipe.team.<team>``):

* ``ReleaseRequested`` — shift ``function:alias`` to ``targetVersion`` with a strategy.
* ``ReleaseControl`` — ``promote`` / ``pause`` / ``resume`` / ``abort`` / ``status`` on a release.

Everything else is announced by the pipeline (source ``configpipe.pipeline``):
``ReleaseStarted``, ``ReleaseHookCompleted``, ``ReleaseStepped``, ``ReleasePaused``,
``ReleaseResumed``, ``ReleaseCompleted``, ``ReleaseRolledBack``, ``ReleaseAborted``,
``ReleaseRejected`` and ``ReleaseStatusReported``. JSON is camelCase. The requests derive
from :class:`~configpipe.contracts.Command` (unknown fields refused), the announcements
from :class:`~configpipe.contracts.Announcement` (unknown fields ignored by consumers).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from configpipe.contracts import CHANGE_ID_PATTERN, Announcement, Command


class ReleaseDetailType(StrEnum):
    RELEASE_REQUESTED = "ReleaseRequested"
    RELEASE_CONTROL = "ReleaseControl"
    RELEASE_STARTED = "ReleaseStarted"
    RELEASE_HOOK_COMPLETED = "ReleaseHookCompleted"
    RELEASE_STEPPED = "ReleaseStepped"
    RELEASE_PAUSED = "ReleasePaused"
    RELEASE_RESUMED = "ReleaseResumed"
    RELEASE_COMPLETED = "ReleaseCompleted"
    RELEASE_ROLLED_BACK = "ReleaseRolledBack"
    RELEASE_ABORTED = "ReleaseAborted"
    RELEASE_REJECTED = "ReleaseRejected"
    RELEASE_STATUS_REPORTED = "ReleaseStatusReported"
    RELEASE_ANALYSIS_HELD = "ReleaseAnalysisHeld"


class ReleaseReasonCode(StrEnum):
    """Why a release request or control was refused. Stable strings: never rename one."""

    MALFORMED_EVENT = "MALFORMED_EVENT"
    INVALID_FIELD = "INVALID_FIELD"
    SOURCE_NOT_AUTHORIZED = "SOURCE_NOT_AUTHORIZED"
    FUNCTION_NOT_REGISTERED = "FUNCTION_NOT_REGISTERED"
    UNKNOWN_FUNCTION = "UNKNOWN_FUNCTION"
    UNKNOWN_ALIAS = "UNKNOWN_ALIAS"
    TARGET_IS_LATEST = "TARGET_IS_LATEST"
    INVALID_VERSION = "INVALID_VERSION"
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    TARGET_IS_CURRENT = "TARGET_IS_CURRENT"
    ALIAS_ON_LATEST = "ALIAS_ON_LATEST"
    INCOMPATIBLE_VERSION_CONFIG = "INCOMPATIBLE_VERSION_CONFIG"
    UNKNOWN_STRATEGY = "UNKNOWN_STRATEGY"
    INVALID_PERCENTAGE = "INVALID_PERCENTAGE"
    INVALID_INTERVAL = "INVALID_INTERVAL"
    HOOK_NOT_REGISTERED = "HOOK_NOT_REGISTERED"
    UNKNOWN_HOOK_FUNCTION = "UNKNOWN_HOOK_FUNCTION"
    TOO_MANY_ALARMS = "TOO_MANY_ALARMS"
    UNKNOWN_ALARM = "UNKNOWN_ALARM"
    ALARM_ACTIVE = "ALARM_ACTIVE"
    RELEASE_IN_PROGRESS = "RELEASE_IN_PROGRESS"
    RELEASE_ID_CONFLICT = "RELEASE_ID_CONFLICT"
    RELEASE_NOT_FOUND = "RELEASE_NOT_FOUND"
    RELEASE_NOT_ACTIVE = "RELEASE_NOT_ACTIVE"
    CONTROL_ID_CONFLICT = "CONTROL_ID_CONFLICT"
    ANALYSIS_NOT_APPLICABLE = "ANALYSIS_NOT_APPLICABLE"  # analysis on a strategy with no split step
    BETA_ALIAS_IN_USE = "BETA_ALIAS_IN_USE"  # another active release shifts or maintains that alias


class ReleaseOutcomeCode(StrEnum):
    """Why an accepted release ended without completing. Stable strings: never rename one."""

    ALARM = "ALARM"
    PRE_TRAFFIC_HOOK_FAILED = "PRE_TRAFFIC_HOOK_FAILED"
    POST_TRAFFIC_HOOK_FAILED = "POST_TRAFFIC_HOOK_FAILED"
    HOOK_TIMED_OUT = "HOOK_TIMED_OUT"
    MANUAL_ABORT = "MANUAL_ABORT"
    CONCURRENT_ALIAS_CHANGE = "CONCURRENT_ALIAS_CHANGE"
    ALIAS_UPDATE_REFUSED = "ALIAS_UPDATE_REFUSED"
    ALARM_MISSING = "ALARM_MISSING"  # a watched alarm was deleted while the release ran
    ALARM_UNREADABLE = "ALARM_UNREADABLE"  # DescribeAlarms failed: the release could not be watched
    ANALYSIS_FAILED = "ANALYSIS_FAILED"  # a gate judged the candidate worse than allowed (issue 16)


class ReleaseStatus(StrEnum):
    PRE_TRAFFIC = "PRE_TRAFFIC"  # accepted; the pre-traffic hook has not passed yet; no traffic moved
    SHIFTING = "SHIFTING"  # traffic moves per the strategy
    POST_TRAFFIC = "POST_TRAFFIC"  # all traffic on the target; post-traffic hook pending
    BAKING = (
        "BAKING"  # hooks passed; waiting for the strategy's end (BlueGreen bake), rollback still one call
    )
    ROLLING_BACK = "ROLLING_BACK"  # restoring the alias to its recorded previous state
    COMPLETED = "COMPLETED"
    ROLLED_BACK = "ROLLED_BACK"
    ABORTED = "ABORTED"

    @property
    def terminal(self) -> bool:
        return self in (ReleaseStatus.COMPLETED, ReleaseStatus.ROLLED_BACK, ReleaseStatus.ABORTED)


class ControlAction(StrEnum):
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    STATUS = "status"


class HookPhase(StrEnum):
    PRE_TRAFFIC = "PreTraffic"
    POST_TRAFFIC = "PostTraffic"


FUNCTION_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ALIAS_NAME_PATTERN = re.compile(r"^(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}$")
MAX_ALARMS = 10
BETA_SUFFIX = "-candidate"
MAX_HOOK_TIMEOUT_SECONDS = 300


# --- requests (published by teams) --------------------------------------------------------


class CustomStrategy(Command):
    """A strategy spelled as parameters instead of a name (``strategy`` may also be a name,
    e.g. ``Canary10Percent5Minutes`` or ``Linear20PercentEvery2Minutes``; see
    :mod:`configpipe.release.strategies`). Range checks live there so that a bad value is
    reported with its own reason code rather than as a generic field error."""

    type: Literal["canary", "linear", "allAtOnce", "blueGreen", "appConfig"]
    percentage: float | None = None
    interval_minutes: int | None = None
    bake_minutes: int | None = None
    # type "appConfig": AWS AppConfig's DeploymentStrategy parameters (growthType LINEAR or
    # EXPONENTIAL, any case; growthFactor 1-100; durationMinutes and finalBakeMinutes 0-1440).
    growth_type: str | None = None
    growth_factor: float | None = None
    duration_minutes: int | None = None
    final_bake_minutes: int | None = None


class AnalysisMetric(StrEnum):
    """What a gate compares. The built-in ones are Lambda's own per-version metrics (namespace
    ``AWS/Lambda``, dimensions ``FunctionName``, ``Resource`` = ``function:alias`` and
    ``ExecutedVersion``); ``custom`` is any CloudWatch metric that has a version dimension."""

    ERRORS = "errors"  # Errors, Sum
    ERROR_RATE = "errorRate"  # 100 * Errors Sum / Invocations Sum, computed by configpipe
    THROTTLES = "throttles"  # Throttles, Sum
    DURATION_AVERAGE = "durationAverage"  # Duration, Average (ms)
    DURATION_P50 = "durationP50"  # Duration, p50 (ms)
    DURATION_P99 = "durationP99"  # Duration, p99 (ms)
    CUSTOM = "custom"


CUSTOM_STATISTIC_PATTERN = re.compile(r"^(Sum|Average|Maximum|Minimum|SampleCount|p(\d{1,2}(\.\d{1,2})?))$")
MAX_ANALYSIS_GATES = 10
_CW_NAME = re.compile(r"^[^\x00-\x1f]{1,255}$")


class AnalysisGate(Command):
    """One comparison of the candidate (target version) with the baseline (previous version)
    over a step's window. Lower is better for every metric; the candidate fails the gate when
    it is above ``maxValue`` or more than ``maxIncreasePercent`` % above the baseline."""

    metric: AnalysisMetric
    max_value: float | None = Field(default=None, ge=0, description="Absolute upper bound for the candidate")
    max_increase_percent: float | None = Field(
        default=None, ge=0, le=100_000, description="Upper bound relative to the baseline, in %"
    )
    # metric "custom" only:
    name: str | None = Field(default=None, description="Label of a custom gate in verdicts")
    namespace: str | None = None
    metric_name: str | None = None
    statistic: str | None = Field(default=None, description="Sum|Average|Maximum|Minimum|SampleCount|pNN")
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="Fixed dimensions of a custom metric"
    )
    version_dimension: str = Field(
        default="ExecutedVersion", description="Dimension that carries the version"
    )

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisGate:
        if (self.max_value is None) == (self.max_increase_percent is None):
            raise ValueError("a gate needs exactly one of maxValue and maxIncreasePercent")
        custom = (self.namespace, self.metric_name, self.statistic)
        if self.metric is AnalysisMetric.CUSTOM:
            if any(part is None for part in custom):
                raise ValueError("a custom gate needs namespace, metricName and statistic")
            if not CUSTOM_STATISTIC_PATTERN.fullmatch(self.statistic or ""):
                raise ValueError("statistic is Sum, Average, Maximum, Minimum, SampleCount or pNN")
            names = [
                self.namespace,
                self.metric_name,
                self.version_dimension,
                *self.dimensions,
                *self.dimensions.values(),
            ]
            if any(not _CW_NAME.fullmatch(str(n)) for n in names) or len(self.dimensions) > 20:
                raise ValueError("CloudWatch names are 1-255 printable characters; at most 20 dimensions")
            if self.name is not None and not _CW_NAME.fullmatch(self.name):
                raise ValueError("name is 1-255 printable characters")
        elif any(part is not None for part in (*custom, self.name)) or self.dimensions:
            raise ValueError(
                "name, namespace, metricName, statistic and dimensions are for custom gates only"
            )
        return self

    @property
    def label(self) -> str:
        if self.metric is AnalysisMetric.CUSTOM:
            return self.name or f"{self.namespace}/{self.metric_name}:{self.statistic}"
        return self.metric.value


class ReleaseAnalysis(Command):
    """Judge each traffic step by the versions' own metrics (issue 16): at the end of every step
    that splits traffic, every gate compares candidate and baseline over the step's window."""

    gates: list[AnalysisGate] = Field(min_length=1, max_length=MAX_ANALYSIS_GATES)
    min_invocations: int = Field(
        default=100, ge=1, le=100_000_000, description="Per version and window; fewer is inconclusive"
    )
    inconclusive_limit_minutes: int = Field(
        default=10, ge=1, le=1440, description="How long a step is held for data before the release pauses"
    )


class ReleaseRequested(Command):
    release_id: str = Field(description="Client idempotency key, like changeId")
    function: str = Field(description="Name of a function listed in the registry's services[*].functions")
    alias: str
    target_version: str = Field(description="A published version number (never $LATEST)")
    strategy: str | CustomStrategy
    alarms: list[str] = Field(
        default_factory=list, description=f"CloudWatch alarm names, at most {MAX_ALARMS}"
    )
    pre_traffic_hook: str | None = Field(
        default=None, description="Registered function invoked before traffic"
    )
    post_traffic_hook: str | None = Field(default=None, description="Registered function invoked after 100%")
    hook_timeout_seconds: int = Field(default=60, ge=1, le=MAX_HOOK_TIMEOUT_SECONDS)
    ignore_poll_alarm_failure: bool | None = Field(
        default=None,
        description="CodeDeploy's ignorePollAlarmFailure: true keeps the release going when a watched "
        "alarm cannot be read (deleted, or DescribeAlarms failing); by default (false) it rolls back. "
        "Optional and None when absent, so requests without it keep their idempotency hash.",
    )
    analysis: ReleaseAnalysis | None = Field(
        default=None, description="Per-step candidate-vs-baseline gates; None: time and alarms only"
    )
    beta_alias: str | bool | None = Field(
        default=None,
        description="Alias that points at the target during the release, for testers: a name, or false "
        "for none; absent: '<alias>-candidate'",
    )
    author: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)

    @field_validator("target_version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        # A version is a number on the wire as often as a string; both mean the same version.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("release_id")
    @classmethod
    def _release_id(cls, v: str) -> str:
        if not CHANGE_ID_PATTERN.fullmatch(v):
            raise ValueError("releaseId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return v

    @field_validator("function", "pre_traffic_hook", "post_traffic_hook")
    @classmethod
    def _function_name(cls, v: str | None) -> str | None:
        if v is not None and not FUNCTION_NAME_PATTERN.fullmatch(v):
            raise ValueError("a function is named by 1-64 characters of A-Z a-z 0-9 _ - (a name, not an ARN)")
        return v

    @field_validator("alias")
    @classmethod
    def _alias(cls, v: str) -> str:
        if not ALIAS_NAME_PATTERN.fullmatch(v):
            raise ValueError("alias must be 1-128 characters of A-Z a-z 0-9 _ - and not only digits")
        return v

    @field_validator("beta_alias")
    @classmethod
    def _beta_alias(cls, v: str | bool | None) -> str | bool | None:
        if v is True:
            raise ValueError("betaAlias is an alias name, or false for none")
        if isinstance(v, str) and not ALIAS_NAME_PATTERN.fullmatch(v):
            raise ValueError("betaAlias must be 1-128 characters of A-Z a-z 0-9 _ - and not only digits")
        return v

    @model_validator(mode="after")
    def _beta_is_another_alias(self) -> ReleaseRequested:
        if self.beta_alias == self.alias:
            raise ValueError("betaAlias must differ from alias")
        if self.beta_alias is None and len(self.alias) > 128 - len(BETA_SUFFIX):
            raise ValueError(f"alias is too long for the default betaAlias '<alias>{BETA_SUFFIX}'; name one")
        return self

    @property
    def beta_alias_name(self) -> str | None:
        """The beta alias this release maintains (None: off)."""
        if self.beta_alias is False:
            return None
        if isinstance(self.beta_alias, str):
            return self.beta_alias
        return f"{self.alias}{BETA_SUFFIX}"

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, v: list[str]) -> list[str]:
        if any(not name or len(name) > 255 for name in v):
            raise ValueError("alarm names are 1-255 characters")
        return list(dict.fromkeys(v))  # de-duplicated, order kept


class ReleaseControl(Command):
    release_id: str
    control_id: str = Field(description="Client idempotency key of this control")
    action: ControlAction
    author: str = Field(min_length=1, max_length=256)
    reason: str = Field(default="", max_length=1024)

    @field_validator("release_id", "control_id")
    @classmethod
    def _ids(cls, v: str) -> str:
        if not CHANGE_ID_PATTERN.fullmatch(v):
            raise ValueError("ids must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return v


# --- announcements (published by the pipeline) --------------------------------------------


class ReleaseReason(Announcement):
    code: ReleaseReasonCode
    message: str
    field: str | None = None


class ReleaseRejected(Announcement):
    """A request or control refused before it had any effect."""

    release_id: str
    action: str = Field(description="'request' or the control action")
    control_id: str | None = None
    function: str | None = None
    alias: str | None = None
    target_version: str | None = None
    source: str
    reasons: list[ReleaseReason] = Field(min_length=1)
    rejected_at: datetime


Weights = dict[str, float]


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class GateResult(Announcement):
    """One gate's figures: what the candidate and the baseline measured, and the limit."""

    gate: str
    verdict: Verdict
    candidate: float | None = None
    baseline: float | None = None
    limit: float | None = Field(default=None, description="The candidate's largest passing value")
    message: str = ""


class AnalysisVerdict(Announcement):
    """A step's verdict and the figures behind it, as recorded in the history and announced."""

    verdict: Verdict
    window_start: datetime
    window_end: datetime
    candidate_version: str
    baseline_version: str
    candidate_invocations: float
    baseline_invocations: float
    step_percent: float = Field(description="Traffic % on the candidate during the window")
    gates: list[GateResult]


class _ReleaseEvent(Announcement):
    """Fields every lifecycle announcement carries, so a consumer needs no lookup."""

    release_id: str
    seq: int = Field(description="Position in the release's history; consumers dedupe on (releaseId, seq)")
    function: str
    alias: str
    target_version: str
    previous_version: str
    strategy: str
    status: ReleaseStatus
    percent: float = Field(description="Traffic percentage on the target version after this event")
    at: datetime


class ReleaseStarted(_ReleaseEvent):
    previous_weights: Weights
    schedule: list[tuple[int | float, float]] = Field(
        description="(minute after first shift, percent) pairs; fractional for sub-minute steps"
    )
    alarms: list[str]
    pre_traffic_hook: str | None = None
    post_traffic_hook: str | None = None
    ignore_poll_alarm_failure: bool = False
    #: The request's analysis as sent (a plain object: an announcement tolerates what it does not know).
    analysis: dict[str, Any] | None = None
    beta_alias: str | None = Field(default=None, description="The alias testers reach the target through")
    author: str
    reason: str
    source: str


class ReleaseHookCompleted(_ReleaseEvent):
    phase: HookPhase
    hook: str
    passed: bool
    message: str = ""


class ReleaseStepped(_ReleaseEvent):
    previous_percent: float
    cause: Literal["schedule", "promoted", "recovered"]
    analysis: AnalysisVerdict | None = Field(default=None, description="The verdict of the step just left")


class ReleasePaused(_ReleaseEvent):
    author: str
    reason: str = ""
    analysis: AnalysisVerdict | None = Field(
        default=None, description="Set when analysis paused it: inconclusive past the limit"
    )


class ReleaseAnalysisHeld(_ReleaseEvent):
    """A step's analysis was inconclusive (too little traffic): the step is held, its clock stops,
    and the analysis is repeated on every tick until it passes, fails or the limit pauses it."""

    analysis: AnalysisVerdict
    hold_limit_at: datetime


class ReleaseResumed(_ReleaseEvent):
    author: str
    reason: str = ""
    paused_seconds: float


class _BetaAliasEnd(_ReleaseEvent):
    """What became of the beta alias when the release ended: ``betaAliasVersion`` is the version
    it points at now (the released one after completion, its old one after a rollback), absent
    when it was removed (it did not exist before the release)."""

    beta_alias: str | None = None
    beta_alias_version: str | None = None


class ReleaseCompleted(_BetaAliasEnd):
    duration_seconds: float


class ReleaseRolledBack(_BetaAliasEnd):
    code: ReleaseOutcomeCode
    message: str
    restored_version: str
    restored_weights: Weights
    alarms_in_alarm: list[str] = Field(default_factory=list)
    analysis: AnalysisVerdict | None = Field(default=None, description="Set for ANALYSIS_FAILED")


class ReleaseAborted(_BetaAliasEnd):
    code: ReleaseOutcomeCode
    message: str
    alias_restored: bool = Field(
        description="False when the alias was left to whoever changed it concurrently"
    )
    restored_version: str | None = None
    restored_weights: Weights | None = None
    observed_version: str | None = None
    observed_weights: Weights | None = None
    author: str | None = None


class ReleaseStatusReported(_ReleaseEvent):
    """The answer to a ``status`` control. Recorded in the release's history like every other
    announcement, so its ``seq`` is its own (a consumer deduping on ``(releaseId, seq)`` keeps
    both it and the lifecycle event before it)."""

    paused: bool
    promoted: bool
    next_step_at: datetime | None = None
    control_id: str | None = None


#: Detail type → contract, to rebuild an announcement from the history it was stored in.
ANNOUNCEMENT_CONTRACTS: dict[ReleaseDetailType, type[_ReleaseEvent]] = {
    ReleaseDetailType.RELEASE_STARTED: ReleaseStarted,
    ReleaseDetailType.RELEASE_HOOK_COMPLETED: ReleaseHookCompleted,
    ReleaseDetailType.RELEASE_STEPPED: ReleaseStepped,
    ReleaseDetailType.RELEASE_PAUSED: ReleasePaused,
    ReleaseDetailType.RELEASE_RESUMED: ReleaseResumed,
    ReleaseDetailType.RELEASE_COMPLETED: ReleaseCompleted,
    ReleaseDetailType.RELEASE_ROLLED_BACK: ReleaseRolledBack,
    ReleaseDetailType.RELEASE_ABORTED: ReleaseAborted,
    ReleaseDetailType.RELEASE_STATUS_REPORTED: ReleaseStatusReported,
    ReleaseDetailType.RELEASE_ANALYSIS_HELD: ReleaseAnalysisHeld,
}
