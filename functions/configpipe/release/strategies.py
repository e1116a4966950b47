"""Release and rollout strategies: how much traffic (or what share of readers) gets the new
version, as a pure function of the time it has been moving.

One implementation serves alias releases and configuration rollouts. Internally the timeline is
a list of *steps* in **seconds** (:meth:`Strategy.steps`), so sub-minute steps work;
``duration_minutes`` and the minute ``schedule()`` remain for existing callers.

**CodeDeploy** — AWS CodeDeploy's predefined Lambda deployment configurations with their
published semantics (the ``CodeDeployDefault.Lambda`` prefix is accepted and ignored):

* ``Canary<P>Percent<N>Minutes`` — P % at the first shift, 100 % N minutes later.
* ``Linear<P>PercentEvery<N>Minute(s)`` — P % at the first shift and P % more every N minutes;
  the last increment is capped at 100 % (10 %: 10, 20, … 90 at 8N, 100 at 9N).
* ``AllAtOnce`` — 100 % at once.

configpipe adds ``BlueGreen`` / ``BlueGreen<N>Minutes``: 100 % at once with the previous
version kept for an instant (single ``UpdateAlias``) rollback while it bakes for N minutes
(default :data:`DEFAULT_BAKE_MINUTES`), watching alarms; then the release completes.

**AWS AppConfig** — the predefined deployment strategies and custom linear/exponential ones,
with AppConfig's semantics. Sources (AWS AppConfig User Guide):
"Working with deployment strategies"
(https://docs.aws.amazon.com/appconfig/latest/userguide/appconfig-creating-deployment-strategy.html),
"Using predefined deployment strategies"
(https://docs.aws.amazon.com/appconfig/latest/userguide/appconfig-creating-deployment-strategy-predefined.html),
and the API reference ``DeploymentStrategy``
(https://docs.aws.amazon.com/appconfig/2019-10-09/APIReference/API_DeploymentStrategy.html):

* *Linear*: "increments of the growth factor evenly distributed over the deployment"; the
  guide's example, a 10 hour deployment with 20 % linear growth, is 0 h 0 %, 2 h 20 %, 4 h 40 %,
  6 h 60 %, 8 h 80 %, 10 h 100 %. So with growth factor G and deployment duration D there are
  S = ceil(100 / G) steps; step k (1…S) happens at k·D/S with min(100, k·G) %; 0 % before the
  first step; 100 % is reached exactly at D. (The API reference's prose for ``GrowthType``
  says a linear deployment "initially" makes the configuration available to G %; we follow the
  guide's explicit timeline and the predefined descriptions — "20 % of all targets every six
  minutes for a 30 minute deployment" — which agree with each other.)
* *Exponential*: "G*(2^N) … N is the number of steps until the configuration is deployed to all
  targets" (growth factor 2: 2 %, 4 %, 8 %, … until all targets). So the step percentages are
  G, 2G, 4G, … capped at 100 (10: 10, 20, 40, 80, 100). The docs do not give the step times;
  configpipe spreads the S steps evenly over D exactly as for linear (step k at k·D/S), so both
  growth types reach 100 % at D.
* *Final bake* (``FinalBakeTimeInMinutes``): the time AppConfig "monitors for Amazon CloudWatch
  alarms after the configuration has been deployed to 100 % of its targets, before considering
  the deployment to be complete. If an alarm is triggered during this time, AWS AppConfig rolls
  back the deployment." Here: 100 % from D, still watched and rollbackable, complete at D + bake.
* Ranges (API reference): GrowthFactor 1.0-100.0, DeploymentDurationInMinutes 0-1440,
  FinalBakeTimeInMinutes 0-1440, GrowthType LINEAR | EXPONENTIAL.
* Predefined (growth type, G, D, bake), from the predefined-strategies page:
  ``AppConfig.Linear20PercentEvery6Minutes`` (linear, 20 %, 30 min, bake 30 min) → 20 % at 6,
  40 % at 12, 60 % at 18, 80 % at 24, 100 % at 30, complete at 60 min;
  ``AppConfig.Canary10Percent20Minutes`` ("exponentially using a 10 % growth factor over 20
  minutes", bake 10 min) → 10 % at 4, 20 % at 8, 40 % at 12, 80 % at 16, 100 % at 20, complete
  at 30 min; ``AppConfig.AllAtOnce`` ("all targets immediately", bake 10 min) → 100 % at 0,
  complete at 10 min; ``AppConfig.Linear50PercentEvery30Seconds`` ("half of all targets every 30
  seconds for a one-minute deployment", bake 1 min) → 50 % at 30 s, 100 % at 60 s, complete at
  120 s.

Custom AppConfig-style strategies: a :class:`~configpipe.release.contracts.CustomStrategy` with
``type: "appConfig"``, ``growthType`` (``linear``/``exponential``, any case), ``growthFactor``,
``durationMinutes`` and optional ``finalBakeMinutes`` (default 0), or the name
``AppConfig.<Linear|Exponential><G>PercentOver<D>Minutes[Bake<B>Minutes]``.

**Bake override.** Any strategy may carry a final bake (:meth:`Strategy.with_bake`, or a
``Bake<N>Minutes`` suffix on any name, e.g. ``Canary10Percent5MinutesBake10Minutes``): after the
last step (100 %) the release/rollout stays watchable and rollbackable for N more minutes, then
completes. It *replaces* the strategy's own final bake (AppConfig's, or BlueGreen's N); CodeDeploy
strategies have none by default, so their timelines are unchanged unless a bake is asked for.

Custom CodeDeploy-style strategies use the same grammar with other numbers
(``Canary5Percent3Minutes``) or a :class:`~configpipe.release.contracts.CustomStrategy` object.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from configpipe.release.bounds import shown
from configpipe.release.contracts import CustomStrategy, ReleaseReasonCode

DEFAULT_BAKE_MINUTES = 10
MAX_INTERVAL_MINUTES = 24 * 60
CODEDEPLOY_PREFIX = "CodeDeployDefault.Lambda"
APPCONFIG_PREFIX = "AppConfig."
#: AppConfig's GrowthFactor range (API reference ``DeploymentStrategy``).
MIN_GROWTH_FACTOR = 1.0
MAX_GROWTH_FACTOR = 100.0
#: The smallest canary/linear step. CodeDeploy takes whole percentages 1-99 for custom Lambda
#: configurations and AppConfig a growth factor of at least 1, so, like them, no strategy has
#: more than :data:`MAX_STEPS` steps: a release's schedule (announced in ``ReleaseStarted`` and
#: stored with it) stays a few KB, far below DynamoDB's 400 KB item limit. Fractions above 1
#: (``Linear33.333PercentEvery1Minute``) are allowed.
MIN_PERCENTAGE = 1.0
MAX_STEPS = 100
#: Step percentages are kept to 0.01 %: an alias weight is written with 4 decimals of 1.
PERCENT_DECIMALS = 2
_HIGHEST_PARTIAL = 100.0 - 10.0**-PERCENT_DECIMALS

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

GrowthType = Literal["linear", "exponential"]

#: AWS AppConfig's predefined deployment strategies: (growth type, growth factor, deployment
#: minutes, final bake minutes); timelines pinned by tests/unit/release/test_appconfig_strategies.py.
APPCONFIG_STRATEGIES: dict[str, tuple[GrowthType, float, int, int]] = {
    "AppConfig.AllAtOnce": ("linear", 100.0, 0, 10),
    "AppConfig.Linear50PercentEvery30Seconds": ("linear", 50.0, 1, 1),
    "AppConfig.Linear20PercentEvery6Minutes": ("linear", 20.0, 30, 30),
    "AppConfig.Canary10Percent20Minutes": ("exponential", 10.0, 20, 10),
}

# ASCII digits, and not too many: \d also matches other scripts' digits (fullwidth ones), and int() of a
# few thousand digits raises; a longer number is not a strategy anyone means.
_INT = r"[0-9]{1,9}"
_DEC = r"[0-9]{1,9}(?:\.[0-9]{1,9})?"
_CANARY = re.compile(rf"^Canary(?P<p>{_DEC})Percent(?P<n>{_INT})Minutes?$")
_LINEAR = re.compile(rf"^Linear(?P<p>{_DEC})PercentEvery(?P<n>{_INT})Minutes?$")
_BLUE_GREEN = re.compile(rf"^BlueGreen(?:(?P<n>{_INT})Minutes?)?$")
_APPCONFIG = re.compile(rf"^(?P<t>Linear|Exponential)(?P<g>{_DEC})PercentOver(?P<d>{_INT})Minutes?$")
_BAKE_SUFFIX = re.compile(rf"^(?P<base>.+?)Bake(?P<b>{_INT})Minutes?$")
#: Longer names are refused before any pattern runs (the longest valid one is about 80).
MAX_NAME_CHARS = 200

StrategyKind = Literal["canary", "linear", "allAtOnce", "blueGreen", "appConfig"]


class StrategyError(ValueError):
    def __init__(self, code: ReleaseReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _number(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p)


def _minutes(seconds: float) -> int | float:
    """Seconds as minutes: an int when whole (the historical wire form), else a float."""
    minutes = seconds / 60
    return int(minutes) if float(minutes).is_integer() else minutes


class Strategy(BaseModel):
    """A validated strategy. :meth:`steps` is the whole timeline; everything else derives from it.

    ``percentage`` is the CodeDeploy step or the AppConfig growth factor; ``interval_minutes``
    the CodeDeploy interval; ``deployment_minutes`` and ``growth_type`` AppConfig's deployment
    duration and growth type; ``bake_minutes`` the final bake after 100 % (any kind).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StrategyKind
    percentage: float = 100.0
    interval_minutes: int = 0
    bake_minutes: int = 0
    growth_type: GrowthType = "linear"
    deployment_minutes: int = 0

    @property
    def name(self) -> str:
        """The canonical name; ``parse_strategy(s.name) == s``."""
        if self.kind == "blueGreen":
            return (
                "BlueGreen"
                if self.bake_minutes == DEFAULT_BAKE_MINUTES
                else f"BlueGreen{self.bake_minutes}Minutes"
            )
        if self.kind == "appConfig":
            params = (self.growth_type, self.percentage, self.deployment_minutes, self.bake_minutes)
            for predefined, spec in APPCONFIG_STRATEGIES.items():
                if spec == params:
                    return predefined
            growth = "Linear" if self.growth_type == "linear" else "Exponential"
            over = f"{_number(self.percentage)}PercentOver{self.deployment_minutes}Minutes"
            base = f"{APPCONFIG_PREFIX}{growth}{over}"
        elif self.kind == "canary":
            base = f"Canary{_number(self.percentage)}Percent{self.interval_minutes}Minutes"
        elif self.kind == "linear":
            unit = "Minute" if self.interval_minutes == 1 else "Minutes"
            base = f"Linear{_number(self.percentage)}PercentEvery{self.interval_minutes}{unit}"
        else:
            base = "AllAtOnce"
        return f"{base}Bake{self.bake_minutes}Minutes" if self.bake_minutes else base

    def steps(self) -> list[tuple[float, float]]:
        """Every point where the percentage changes, as (seconds after the first shift, percent).

        Starts at 0 s (with 0 % when the first step comes later, as AppConfig's timelines do)
        and ends at 100 %; the final bake follows the last step (see :attr:`duration_seconds`).
        Only the last step is at 100 %: the others are cut to 0.01 % (:func:`_partial`), so a
        step such as 99.999 % (``Linear33.333…``: 33.333, 66.666, 99.999, 100) never becomes a
        weight of 1.0 a step before the strategy ends.
        """
        return [(at, _partial(percent)) for at, percent in self._exact_steps()]

    def _exact_steps(self) -> list[tuple[float, float]]:
        if self.kind == "canary":
            return [(0.0, self.percentage), (self.interval_minutes * 60.0, 100.0)]
        if self.kind == "linear":
            count = math.ceil(round(100.0 / self.percentage, 9))
            return [
                (k * self.interval_minutes * 60.0, min(100.0, round(self.percentage * (k + 1), 6)))
                for k in range(count)
            ]
        if self.kind == "appConfig":
            percents = _growth(self.growth_type, self.percentage)
            duration = self.deployment_minutes * 60.0
            timed = [(k * duration / len(percents), p) for k, p in enumerate(percents, start=1)]
            out: list[tuple[float, float]] = [(0.0, 0.0)]
            for at, percent in timed:
                if out[-1][0] == at:
                    out[-1] = (at, percent)  # a zero-length deployment collapses onto one instant
                else:
                    out.append((at, percent))
            return out
        return [(0.0, 100.0)]

    @property
    def weighted(self) -> bool:
        """Whether the alias ever routes to two versions at once (Lambda's weighted-alias rules apply)."""
        return any(0 < percent < 100 for _, percent in self.steps())

    def percent_at(self, elapsed_seconds: float) -> float:
        """Traffic % due ``elapsed_seconds`` after the first shift (time paused excluded)."""
        elapsed = max(0.0, elapsed_seconds)
        current = 0.0
        for at, percent in self.steps():
            if at > elapsed:
                break
            current = percent
        return current

    @property
    def last_shift_seconds(self) -> float:
        """Seconds from the first shift until 100 % (the last step)."""
        return self.steps()[-1][0]

    @property
    def duration_seconds(self) -> float:
        """Seconds from the first shift until the release/rollout may complete: last step + bake."""
        return self.last_shift_seconds + self.bake_minutes * 60.0

    @property
    def duration_minutes(self) -> int:
        """:attr:`duration_seconds` in minutes (always whole: durations and bakes are minutes)."""
        return math.ceil(round(self.duration_seconds / 60, 9))

    def schedule(self) -> list[tuple[int | float, float]]:
        """Every step as (minute after the first shift, percent); minutes are ints when whole."""
        return [(_minutes(at), percent) for at, percent in self.steps()]

    def next_shift_after(self, elapsed_seconds: float) -> float | None:
        """Seconds (from the first shift) of the next shift after ``elapsed_seconds``, if any."""
        for at, _ in self.steps():
            if at > elapsed_seconds:
                return at
        return None

    def with_bake(self, minutes: int) -> Strategy:
        """This strategy with its final bake set to ``minutes`` (replacing any it had): after 100 %
        the release/rollout stays watchable and rollbackable for that long, then completes."""
        return self.model_copy(update={"bake_minutes": _check_bake(minutes)})


def _partial(percent: float) -> float:
    """A step's percent at the precision it is written: 100 stays 100, anything below it is
    rounded *down* to 0.01 % and never reaches 100 (nor, being at least 1 %, 0)."""
    if percent >= 100.0:
        return 100.0
    cut = math.floor(round(percent * 10**PERCENT_DECIMALS, 6)) / 10**PERCENT_DECIMALS
    return min(cut, _HIGHEST_PARTIAL)


def _growth(growth_type: GrowthType, factor: float) -> list[float]:
    """The step percentages: linear G, 2G, 3G, …; exponential G·2^0, G·2^1, …; capped at 100."""
    if growth_type == "linear":
        count = math.ceil(round(100.0 / factor, 9))
        return [min(100.0, round(factor * k, 6)) for k in range(1, count + 1)]
    percents = [round(factor, 6)]
    while percents[-1] < 100.0:
        percents.append(min(100.0, round(factor * 2 ** len(percents), 6)))
    return percents


def _check_percentage(p: float) -> float:
    if not MIN_PERCENTAGE <= p < 100:
        raise StrategyError(
            ReleaseReasonCode.INVALID_PERCENTAGE,
            f"percentage must be at least {_number(MIN_PERCENTAGE)} (at most {MAX_STEPS} steps) "
            f"and below 100, got {shown(p)}",
        )
    return float(p)


def _check_growth_factor(g: float) -> float:
    if not MIN_GROWTH_FACTOR <= g <= MAX_GROWTH_FACTOR:
        raise StrategyError(
            ReleaseReasonCode.INVALID_PERCENTAGE,
            f"growthFactor must be {_number(MIN_GROWTH_FACTOR)}-{_number(MAX_GROWTH_FACTOR)}, got {shown(g)}",
        )
    return float(g)


def _check_interval(n: int, what: str = "interval") -> int:
    if not 1 <= n <= MAX_INTERVAL_MINUTES:
        raise StrategyError(
            ReleaseReasonCode.INVALID_INTERVAL,
            f"{what} must be 1-{MAX_INTERVAL_MINUTES} minutes, got {shown(n)}",
        )
    return n


def _check_bake(n: int, what: str = "bake") -> int:
    if not 0 <= n <= MAX_INTERVAL_MINUTES:
        raise StrategyError(
            ReleaseReasonCode.INVALID_INTERVAL,
            f"{what} must be 0-{MAX_INTERVAL_MINUTES} minutes, got {shown(n)}",
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


def appconfig(
    growth_type: str, growth_factor: float, duration_minutes: int, final_bake_minutes: int = 0
) -> Strategy:
    """An AppConfig-style strategy (growth type ``linear``/``exponential`` in any case)."""
    kind = growth_type.lower()
    if kind not in ("linear", "exponential"):
        raise StrategyError(
            ReleaseReasonCode.UNKNOWN_STRATEGY,
            f"growthType must be LINEAR or EXPONENTIAL, got {shown(growth_type)}",
        )
    return Strategy(
        kind="appConfig",
        growth_type="linear" if kind == "linear" else "exponential",
        percentage=_check_growth_factor(growth_factor),
        deployment_minutes=_check_bake(duration_minutes, "deployment duration"),
        bake_minutes=_check_bake(final_bake_minutes, "final bake"),
    )


def parse_strategy(spec: str | CustomStrategy) -> Strategy:
    """A name or a parameter object → :class:`Strategy`, or :class:`StrategyError` with a reason code."""
    if isinstance(spec, CustomStrategy):
        return _from_object(spec)
    if len(spec) > MAX_NAME_CHARS:
        raise StrategyError(
            ReleaseReasonCode.UNKNOWN_STRATEGY,
            f"unknown strategy {shown(spec, 64)}: a strategy name has at most {MAX_NAME_CHARS} characters",
        )
    if spec in APPCONFIG_STRATEGIES:
        return appconfig(*APPCONFIG_STRATEGIES[spec])
    name = spec.removeprefix(CODEDEPLOY_PREFIX)
    if m := _BAKE_SUFFIX.fullmatch(name):
        return _parse_name(m["base"], spec).with_bake(int(m["b"]))
    return _parse_name(name, spec)


def _parse_name(name: str, spec: str) -> Strategy:
    if name in APPCONFIG_STRATEGIES:
        return appconfig(*APPCONFIG_STRATEGIES[name])
    if name.startswith(APPCONFIG_PREFIX):
        if m := _APPCONFIG.fullmatch(name.removeprefix(APPCONFIG_PREFIX)):
            return appconfig(m["t"], float(m["g"]), int(m["d"]))
    elif name == "AllAtOnce":
        return all_at_once()
    elif m := _BLUE_GREEN.fullmatch(name):
        return blue_green(int(m["n"]) if m["n"] is not None else DEFAULT_BAKE_MINUTES)
    elif m := _CANARY.fullmatch(name):
        return canary(float(m["p"]), int(m["n"]))
    elif m := _LINEAR.fullmatch(name):
        return linear(float(m["p"]), int(m["n"]))
    raise StrategyError(
        ReleaseReasonCode.UNKNOWN_STRATEGY,
        f"unknown strategy {shown(spec)}; "
        f"use one of {', '.join([*NAMED_STRATEGIES, *APPCONFIG_STRATEGIES])}, "
        "Canary<P>Percent<N>Minutes, Linear<P>PercentEvery<N>Minutes, BlueGreen<N>Minutes or "
        "AppConfig.<Linear|Exponential><G>PercentOver<D>Minutes, optionally followed by Bake<N>Minutes",
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
    if spec.type == "appConfig":
        if spec.growth_type is None or spec.growth_factor is None or spec.duration_minutes is None:
            raise StrategyError(
                ReleaseReasonCode.UNKNOWN_STRATEGY,
                "an appConfig strategy needs growthType, growthFactor and durationMinutes",
            )
        return appconfig(
            spec.growth_type,
            spec.growth_factor,
            spec.duration_minutes,
            0 if spec.final_bake_minutes is None else spec.final_bake_minutes,
        )
    return all_at_once()
