"""The weight timeline of every named strategy against CodeDeploy's published semantics:
Canary10PercentNMinutes = 10 % at the first shift, 100 % N minutes later; Linear10PercentEveryNMinutes
= 10 % at the first shift and 10 % more every N minutes (90 % at 8N, 100 % at 9N); AllAtOnce = 100 %."""

from __future__ import annotations

import pytest

from configpipe.release.contracts import CustomStrategy, ReleaseReasonCode
from configpipe.release.strategies import NAMED_STRATEGIES, StrategyError, parse_strategy


def canary(n: int, minutes: int) -> list[float]:
    return [10.0 if m < n else 100.0 for m in range(minutes)]


def linear(n: int, minutes: int) -> list[float]:
    return [min(100.0, 10.0 * (m // n + 1)) for m in range(minutes)]


EXPECTED = {
    "Canary10Percent5Minutes": [10, 10, 10, 10, 10, 100, 100],
    "Canary10Percent10Minutes": [10] * 10 + [100, 100],
    "Canary10Percent15Minutes": [10] * 15 + [100, 100],
    "Canary10Percent30Minutes": [10] * 30 + [100, 100],
    "Linear10PercentEvery1Minute": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 100],
    "Linear10PercentEvery2Minutes": [
        10,
        10,
        20,
        20,
        30,
        30,
        40,
        40,
        50,
        50,
        60,
        60,
        70,
        70,
        80,
        80,
        90,
        90,
        100,
        100,
    ],
    "Linear10PercentEvery3Minutes": [p for p in range(10, 100, 10) for _ in range(3)] + [100, 100, 100],
    "Linear10PercentEvery10Minutes": [p for p in range(10, 100, 10) for _ in range(10)] + [100] * 3,
    "AllAtOnce": [100, 100],
    "BlueGreen": [100, 100],
}


def test_every_named_strategy_has_a_pinned_timeline() -> None:
    assert set(EXPECTED) == set(NAMED_STRATEGIES)


@pytest.mark.parametrize("name", NAMED_STRATEGIES)
def test_weight_at_each_minute_boundary_matches_the_published_semantics(name: str) -> None:
    strategy = parse_strategy(name)
    expected = [float(p) for p in EXPECTED[name]]

    at_boundaries = [strategy.percent_at(minute * 60) for minute in range(len(expected))]
    just_before_next = [strategy.percent_at(minute * 60 + 59.999) for minute in range(len(expected))]

    assert at_boundaries == expected
    assert just_before_next == expected  # nothing moves between boundaries
    assert strategy.name == name


def test_the_generic_formulas_agree_with_the_tables() -> None:
    for n in (5, 10, 15, 30):
        assert EXPECTED[f"Canary10Percent{n}Minutes"] == canary(n, n + 2)
    assert EXPECTED["Linear10PercentEvery10Minutes"] == linear(10, 93)


@pytest.mark.parametrize(
    ("name", "duration", "schedule"),
    [
        ("Canary10Percent5Minutes", 5, [(0, 10), (5, 100)]),
        ("Linear10PercentEvery1Minute", 9, [(m, 10 * (m + 1)) for m in range(10)]),
        ("Linear10PercentEvery10Minutes", 90, [(10 * m, 10 * (m + 1)) for m in range(10)]),
        ("AllAtOnce", 0, [(0, 100)]),
        ("BlueGreen", 10, [(0, 100)]),
        ("BlueGreen45Minutes", 45, [(0, 100)]),
        ("Linear30PercentEvery2Minutes", 6, [(0, 30), (2, 60), (4, 90), (6, 100)]),
        ("CodeDeployDefault.LambdaCanary10Percent15Minutes", 15, [(0, 10), (15, 100)]),
    ],
)
def test_schedule_and_duration(name: str, duration: int, schedule: list[tuple[int, float]]) -> None:
    strategy = parse_strategy(name)
    assert strategy.duration_minutes == duration
    assert strategy.schedule() == [(m, float(p)) for m, p in schedule]


def test_custom_strategies_from_objects() -> None:
    assert (
        parse_strategy(CustomStrategy(type="canary", percentage=5, interval_minutes=3)).name
        == "Canary5Percent3Minutes"
    )
    linear_ = parse_strategy(CustomStrategy(type="linear", percentage=25, interval_minutes=1))
    assert [linear_.percent_at(m * 60) for m in range(5)] == [25, 50, 75, 100, 100]
    assert parse_strategy(CustomStrategy(type="blueGreen", bake_minutes=0)).duration_minutes == 0


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ("Canary10Percent", ReleaseReasonCode.UNKNOWN_STRATEGY),
        ("canary10percent5minutes", ReleaseReasonCode.UNKNOWN_STRATEGY),
        ("Canary100Percent5Minutes", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("Canary0Percent5Minutes", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("Linear101PercentEvery1Minute", ReleaseReasonCode.INVALID_PERCENTAGE),
        ("Linear10PercentEvery0Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        ("Canary10Percent99999Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        ("BlueGreen99999Minutes", ReleaseReasonCode.INVALID_INTERVAL),
        (CustomStrategy(type="canary", percentage=10), ReleaseReasonCode.UNKNOWN_STRATEGY),
        (
            CustomStrategy(type="linear", percentage=-1, interval_minutes=1),
            ReleaseReasonCode.INVALID_PERCENTAGE,
        ),
    ],
)
def test_bad_strategies_are_refused_with_their_code(
    spec: str | CustomStrategy, code: ReleaseReasonCode
) -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(spec)
    assert caught.value.code == code
