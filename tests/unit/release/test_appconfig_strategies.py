"""AWS AppConfig strategies against AppConfig's published semantics (see the docstring of
configpipe.release.strategies for the sources): linear = increments of the growth factor evenly
spread over the deployment duration D (0 % at 0, 100 % exactly at D); exponential = G·2^N
capped at 100, steps spread the same way; then the final bake (still rollbackable) and completion.
Every step boundary is checked just before, at and just after, as the CodeDeploy timelines are."""

from __future__ import annotations

import pytest

from configpipe.release.contracts import CustomStrategy, ReleaseReasonCode
from configpipe.release.strategies import (
    APPCONFIG_STRATEGIES,
    NAMED_STRATEGIES,
    StrategyError,
    parse_strategy,
)

EPS = 0.001

#: name → (steps as (seconds, percent), seconds at which the deployment completes)
EXPECTED: dict[str, tuple[list[tuple[float, float]], float]] = {
    "AppConfig.AllAtOnce": ([(0, 100)], 10 * 60),
    "AppConfig.Linear50PercentEvery30Seconds": ([(0, 0), (30, 50), (60, 100)], 120),
    "AppConfig.Linear20PercentEvery6Minutes": (
        [(0, 0), (360, 20), (720, 40), (1080, 60), (1440, 80), (1800, 100)],
        3600,
    ),
    "AppConfig.Canary10Percent20Minutes": (
        [(0, 0), (240, 10), (480, 20), (720, 40), (960, 80), (1200, 100)],
        1800,
    ),
}


def test_every_appconfig_strategy_has_a_pinned_timeline() -> None:
    assert set(EXPECTED) == set(APPCONFIG_STRATEGIES)
    assert not set(APPCONFIG_STRATEGIES) & set(NAMED_STRATEGIES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_percent_just_before_at_and_after_every_step(name: str) -> None:
    strategy = parse_strategy(name)
    steps, complete_at = EXPECTED[name]
    assert strategy.steps() == [(float(t), float(p)) for t, p in steps]
    previous = 0.0
    for at, percent in steps:
        if at > 0:
            assert strategy.percent_at(at - EPS) == previous
        assert strategy.percent_at(at) == percent
        assert strategy.percent_at(at + EPS) == percent
        previous = float(percent)
    # 100 % holds through the bake and after it
    assert strategy.percent_at(complete_at - EPS) == 100.0
    assert strategy.percent_at(complete_at + 10_000) == 100.0
    assert strategy.name == name
    assert parse_strategy(strategy.name) == strategy


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bake_then_complete(name: str) -> None:
    strategy = parse_strategy(name)
    steps, complete_at = EXPECTED[name]
    assert strategy.last_shift_seconds == steps[-1][0]
    assert strategy.duration_seconds == complete_at
    assert strategy.duration_minutes * 60 == complete_at
    # no more shifts after the last step: the engine waits for the bake end
    assert strategy.next_shift_after(steps[-1][0]) is None


def test_next_shift_after_walks_sub_minute_steps() -> None:
    strategy = parse_strategy("AppConfig.Linear50PercentEvery30Seconds")
    assert strategy.next_shift_after(0) == 30.0
    assert strategy.next_shift_after(29.999) == 30.0
    assert strategy.next_shift_after(30) == 60.0
    assert strategy.next_shift_after(60) is None
    assert strategy.schedule() == [(0, 0.0), (0.5, 50.0), (1, 100.0)]
    assert strategy.weighted
    assert not parse_strategy("AppConfig.AllAtOnce").weighted


def test_documented_exponential_example_growth_factor_2() -> None:
    # "growth factor of 2 … 2% of the targets, 4% of the targets, 8% …" until all targets
    s = parse_strategy(
        CustomStrategy(type="appConfig", growth_type="EXPONENTIAL", growth_factor=2, duration_minutes=7)
    )
    assert [p for _, p in s.steps()[1:]] == [2, 4, 8, 16, 32, 64, 100]
    assert [t for t, _ in s.steps()] == [0, 60, 120, 180, 240, 300, 360, 420]


def test_documented_linear_example_10_hours_20_percent() -> None:
    # the guide's table: 0 h 0 %, 2 h 20 %, 4 h 40 %, 6 h 60 %, 8 h 80 %, 10 h 100 %
    s = parse_strategy(
        CustomStrategy(type="appConfig", growth_type="linear", growth_factor=20, duration_minutes=600)
    )
    assert s.steps() == [(h * 3600.0, h * 10.0) for h in range(0, 11, 2)]
    assert s.duration_seconds == 600 * 60  # no final bake by default


def test_custom_linear_with_uneven_growth_caps_the_last_step() -> None:
    s = parse_strategy("AppConfig.Linear30PercentOver8MinutesBake3Minutes")
    assert s.steps() == [(0, 0), (120, 30), (240, 60), (360, 90), (480, 100)]
    assert [s.percent_at(t) for t in (119.999, 120, 479.999, 480)] == [0, 30, 90, 100]
    assert s.duration_seconds == 480 + 180
    assert s.name == "AppConfig.Linear30PercentOver8MinutesBake3Minutes"


def test_custom_exponential_from_object_and_name_agree() -> None:
    obj = parse_strategy(
        CustomStrategy(
            type="appConfig",
            growth_type="exponential",
            growth_factor=10,
            duration_minutes=20,
            final_bake_minutes=10,
        )
    )
    assert obj == parse_strategy("AppConfig.Canary10Percent20Minutes")
    assert obj.name == "AppConfig.Canary10Percent20Minutes"
    assert parse_strategy("AppConfig.Exponential10PercentOver20MinutesBake10Minutes") == obj


def test_zero_duration_collapses_to_one_instant() -> None:
    s = parse_strategy("AppConfig.Linear25PercentOver0Minutes")
    assert s.steps() == [(0.0, 100.0)]
    assert s.duration_seconds == 0


def test_camel_case_wire_form() -> None:
    spec = CustomStrategy.model_validate(
        {
            "type": "appConfig",
            "growthType": "LINEAR",
            "growthFactor": 50,
            "durationMinutes": 1,
            "finalBakeMinutes": 1,
        }
    )
    assert parse_strategy(spec).name == "AppConfig.Linear50PercentEvery30Seconds"


# --- the bake override ------------------------------------------------------------------------


def test_with_bake_adds_a_bake_after_100_percent_without_moving_any_step() -> None:
    base = parse_strategy("Canary10Percent5Minutes")
    baked = base.with_bake(10)
    assert baked.steps() == base.steps()
    assert baked.duration_seconds == 15 * 60
    assert baked.name == "Canary10Percent5MinutesBake10Minutes"
    assert parse_strategy(baked.name) == baked
    assert (
        parse_strategy("CodeDeployDefault.LambdaLinear10PercentEvery1MinuteBake2Minutes").duration_minutes
        == 11
    )
    assert parse_strategy("AllAtOnceBake5Minutes").duration_seconds == 300


def test_with_bake_replaces_an_existing_final_bake() -> None:
    assert parse_strategy("BlueGreen").with_bake(3) == parse_strategy("BlueGreen3Minutes")
    s = parse_strategy("AppConfig.Linear20PercentEvery6Minutes").with_bake(5)
    assert s.duration_seconds == 1800 + 300
    assert s.name == "AppConfig.Linear20PercentOver30MinutesBake5Minutes"
    assert parse_strategy(s.name) == s
    assert parse_strategy("AppConfig.AllAtOnce").with_bake(0).duration_seconds == 0


def test_with_bake_is_validated() -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy("AllAtOnce").with_bake(-1)
    assert caught.value.code == ReleaseReasonCode.INVALID_INTERVAL


# --- invalid parameters -----------------------------------------------------------------------


def app(**kw: object) -> CustomStrategy:
    base: dict[str, object] = {
        "type": "appConfig",
        "growth_type": "linear",
        "growth_factor": 20,
        "duration_minutes": 10,
    }
    base.update(kw)
    return CustomStrategy.model_validate(base)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ("AppConfig.Linear20PercentEvery7Minutes", ReleaseReasonCode.UNKNOWN_STRATEGY),
        ("AppConfig.Sideways10PercentOver5Minutes", ReleaseReasonCode.UNKNOWN_STRATEGY),
        ("appconfig.AllAtOnce", ReleaseReasonCode.UNKNOWN_STRATEGY),
        ("AppConfig.Linear0PercentOver5Minutes", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("AppConfig.Linear0.5PercentOver5Minutes", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("AppConfig.Exponential101PercentOver5Minutes", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("AppConfig.Linear10PercentOver1441Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        ("AppConfig.Linear10PercentOver10MinutesBake1441Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        ("Canary10Percent5MinutesBake99999Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        (app(growth_type="sideways"), ReleaseReasonCode.UNKNOWN_STRATEGY),
        (app(growth_type=None), ReleaseReasonCode.UNKNOWN_STRATEGY),
        (app(growth_factor=None), ReleaseReasonCode.UNKNOWN_STRATEGY),
        (app(duration_minutes=None), ReleaseReasonCode.UNKNOWN_STRATEGY),
        (app(growth_factor=0), ReleaseReasonCode.INVALID_PERCENTAGE),
        (app(growth_factor=100.5), ReleaseReasonCode.INVALID_PERCENTAGE),
        (app(duration_minutes=-1), ReleaseReasonCode.INVALID_INTERVAL),
        (app(duration_minutes=1441), ReleaseReasonCode.INVALID_INTERVAL),
        (app(final_bake_minutes=-1), ReleaseReasonCode.INVALID_INTERVAL),
        (app(final_bake_minutes=1441), ReleaseReasonCode.INVALID_INTERVAL),
    ],
)
def test_bad_appconfig_strategies_are_refused_with_their_code(
    spec: str | CustomStrategy, code: ReleaseReasonCode
) -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(spec)
    assert caught.value.code == code
