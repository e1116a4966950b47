"""Release strategies: how much traffic the target version gets, as a pure function of the
time traffic has been moving.

The named strategies are AWS CodeDeploy's predefined Lambda deployment configurations with
their published semantics (the ``CodeDeployDefault.Lambda`` prefix is accepted and ignored):

* ``Canary<P>Percent<N>Minutes`` — P % at the first shift, 100 % N minutes later.
* ``Linear<P>PercentEvery<N>Minute(s)`` — P % at the first shift and P % more every N minutes;
  the last increment is capped at 100 % (10 %: 10, 20, … 90 at 8N, 100 at 9N).
* ``AllAtOnce`` — 100 % at once.

configpipe adds ``BlueGreen`` / ``BlueGreen<N>Minutes``: 100 % at once with the previous
version kept for an instant (single ``UpdateAlias``) rollback while it bakes for N minutes
(default :data:`DEFAULT_BAKE_MINUTES`), watching alarms; then the release completes.

Custom strategies use the same grammar with other numbers (``Canary5Percent3Minutes``) or a
:class:`~configpipe.release.contracts.CustomStrategy` object.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from configpipe.release.contracts import CustomStrategy, ReleaseReasonCode

DEFAULT_BAKE_MINUTES = 10
MAX_INTERVAL_MINUTES = 24 * 60
CODEDEPLOY_PREFIX = "CodeDeployDefault.Lambda"

#: CodeDeploy's predefined Lambda configurations (plus configpipe's BlueGreen); the timeline of
#: each is pinned by tests/unit/release/test_strategies.py.
NAMED_STRATEGIES = (
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
    "AllAtOnce",
    "BlueGreen",
)

_CANARY = re.compile(r"^Canary(?P<p>\d+(?:\.\d+)?)Percent(?P<n>\d+)Minutes?$")
_LINEAR = re.compile(r"^Linear(?P<p>\d+(?:\.\d+)?)PercentEvery(?P<n>\d+)Minutes?$")
_BLUE_GREEN = re.compile(r"^BlueGreen(?:(?P<n>\d+)Minutes?)?$")

StrategyKind = Literal["canary", "linear", "allAtOnce", "blueGreen"]


class StrategyError(ValueError):
    def __init__(self, code: ReleaseReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _number(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


class Strategy(BaseModel):
    """A validated strategy. ``percent_at`` is the whole timeline; everything else derives from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StrategyKind
    percentage: float = 100.0
    interval_minutes: int = 0
    bake_minutes: int = 0

    @property
    def name(self) -> str:
        if self.kind == "canary":
            return f"Canary{_number(self.percentage)}Percent{self.interval_minutes}Minutes"
        if self.kind == "linear":
            unit = "Minute" if self.interval_minutes == 1 else "Minutes"
            return f"Linear{_number(self.percentage)}PercentEvery{self.interval_minutes}{unit}"
        if self.kind == "blueGreen":
            return (
                "BlueGreen"
                if self.bake_minutes == DEFAULT_BAKE_MINUTES
                else f"BlueGreen{self.bake_minutes}Minutes"
            )
        return "AllAtOnce"

    @property
    def weighted(self) -> bool:
        """Whether the alias ever routes to two versions at once (Lambda's weighted-alias rules apply)."""
        return self.kind in ("canary", "linear")

    def percent_at(self, elapsed_seconds: float) -> float:
        """Traffic % due ``elapsed_seconds`` after the first shift (time paused excluded)."""
        elapsed = max(0.0, elapsed_seconds)
        if self.kind == "canary":
            return self.percentage if elapsed < self.interval_minutes * 60 else 100.0
        if self.kind == "linear":
            increments = math.floor(elapsed / (self.interval_minutes * 60)) + 1
            return min(100.0, round(self.percentage * increments, 6))
        return 100.0

    @property
    def duration_minutes(self) -> int:
        """Minutes from the first shift until the release may complete (its last shift, or the bake)."""
        if self.kind == "canary":
            return self.interval_minutes
        if self.kind == "linear":
            return (math.ceil(round(100.0 / self.percentage, 9)) - 1) * self.interval_minutes
        if self.kind == "blueGreen":
            return self.bake_minutes
        return 0

    def schedule(self) -> list[tuple[int, float]]:
        """Every shift as (minute after the first shift, percent)."""
        if self.kind == "canary":
            return [(0, self.percentage), (self.interval_minutes, 100.0)]
        if self.kind == "linear":
            steps = math.ceil(round(100.0 / self.percentage, 9))
            return [
                (k * self.interval_minutes, min(100.0, round(self.percentage * (k + 1), 6)))
                for k in range(steps)
            ]
        return [(0, 100.0)]

    def next_shift_after(self, elapsed_seconds: float) -> float | None:
        """Seconds (from the first shift) of the next shift after ``elapsed_seconds``, if any."""
        for minute, _ in self.schedule():
            if minute * 60 > elapsed_seconds:
                return minute * 60.0
        return None


def _check_percentage(p: float) -> float:
    if not 0 < p < 100:
        raise StrategyError(
            ReleaseReasonCode.INVALID_PERCENTAGE, f"percentage must be above 0 and below 100, got {p}"
        )
    return float(p)


def _check_interval(n: int, what: str = "interval") -> int:
    if not 1 <= n <= MAX_INTERVAL_MINUTES:
        raise StrategyError(
            ReleaseReasonCode.INVALID_INTERVAL, f"{what} must be 1-{MAX_INTERVAL_MINUTES} minutes, got {n}"
        )
    return n


def _check_bake(n: int) -> int:
    if not 0 <= n <= MAX_INTERVAL_MINUTES:
        raise StrategyError(
            ReleaseReasonCode.INVALID_INTERVAL, f"bake must be 0-{MAX_INTERVAL_MINUTES} minutes, got {n}"
        )
    return n


def canary(percentage: float, interval_minutes: int) -> Strategy:
    return Strategy(
        kind="canary",
        percentage=_check_percentage(percentage),
        interval_minutes=_check_interval(interval_minutes),
    )


def linear(percentage: float, interval_minutes: int) -> Strategy:
    return Strategy(
        kind="linear",
        percentage=_check_percentage(percentage),
        interval_minutes=_check_interval(interval_minutes),
    )


def all_at_once() -> Strategy:
    return Strategy(kind="allAtOnce")


def blue_green(bake_minutes: int = DEFAULT_BAKE_MINUTES) -> Strategy:
    return Strategy(kind="blueGreen", bake_minutes=_check_bake(bake_minutes))


def parse_strategy(spec: str | CustomStrategy) -> Strategy:
    """A name or a parameter object → :class:`Strategy`, or :class:`StrategyError` with a reason code."""
    if isinstance(spec, CustomStrategy):
        return _from_object(spec)
    name = spec.removeprefix(CODEDEPLOY_PREFIX)
    if name == "AllAtOnce":
        return all_at_once()
    if m := _BLUE_GREEN.fullmatch(name):
        return blue_green(int(m["n"]) if m["n"] is not None else DEFAULT_BAKE_MINUTES)
    if m := _CANARY.fullmatch(name):
        return canary(float(m["p"]), int(m["n"]))
    if m := _LINEAR.fullmatch(name):
        return linear(float(m["p"]), int(m["n"]))
    raise StrategyError(
        ReleaseReasonCode.UNKNOWN_STRATEGY,
        f"unknown strategy {spec!r}; use one of {', '.join(NAMED_STRATEGIES)}, "
        "Canary<P>Percent<N>Minutes, Linear<P>PercentEvery<N>Minutes or BlueGreen<N>Minutes",
    )


def _from_object(spec: CustomStrategy) -> Strategy:
    if spec.type in ("canary", "linear"):
        if spec.percentage is None or spec.interval_minutes is None:
            raise StrategyError(
                ReleaseReasonCode.UNKNOWN_STRATEGY,
                f"a {spec.type} strategy needs percentage and intervalMinutes",
            )
        build = canary if spec.type == "canary" else linear
        return build(spec.percentage, spec.interval_minutes)
    if spec.type == "blueGreen":
        return blue_green(DEFAULT_BAKE_MINUTES if spec.bake_minutes is None else spec.bake_minutes)
    return all_at_once()
