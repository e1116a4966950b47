"""Strategies from hostile or careless input: bounded step counts, ASCII numbers only, and
step percentages that are exactly what the alias gets (only the last step is 100 %)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configpipe.release.contracts import CustomStrategy, ReleaseReasonCode
from configpipe.release.model import target_for
from configpipe.release.strategies import (
    MAX_INTERVAL_MINUTES,
    MAX_STEPS,
    StrategyError,
    appconfig,
    canary,
    linear,
    parse_strategy,
)


def code_of(spec: str | CustomStrategy) -> ReleaseReasonCode:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(spec)
    return caught.value.code


@pytest.mark.parametrize(
    "spec",
    [
        "Linear0.001PercentEvery1Minute",  # was 100,000 steps: the release record outgrew DynamoDB's item
        "Canary0.004Percent5Minutes",  # was a weight of 0.0000: no canary traffic at all
        "Linear0.99PercentEvery1Minute",
        "AppConfig.Linear0.5PercentOver5Minutes",
        CustomStrategy(type="linear", percentage=0.5, interval_minutes=1),
        CustomStrategy(type="canary", percentage=0.001, interval_minutes=1),
    ],
)
def test_a_step_below_one_percent_is_refused(spec: str | CustomStrategy) -> None:
    assert code_of(spec) == ReleaseReasonCode.INVALID_PERCENTAGE


@pytest.mark.parametrize(
    "spec",
    [
        "Canary\uff11\uff10Percent5Minutes",  # fullwidth digits
        "Linear10PercentEvery\uff11Minute",
        "BlueGreen²Minutes",  # a superscript passes str.isdigit(), not int()
        "Canary10Percent5MinutesBake²Minutes",
        "Canary10Percent" + "1" * 5000 + "Minutes",  # int() refuses more than 4300 digits
        "AppConfig.Linear" + "9" * 5000 + "PercentOver5Minutes",
        "x" * 1_000_000,
    ],
)
def test_names_with_other_digits_or_huge_numbers_are_unknown_strategies(spec: str) -> None:
    assert code_of(spec) == ReleaseReasonCode.UNKNOWN_STRATEGY


def test_a_refused_name_is_echoed_bounded() -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy("Fast" * 100_000)
    assert len(caught.value.message) < 1000
    assert "…(truncated)" in caught.value.message


def test_a_step_that_would_round_to_100_stays_below_it_until_the_last_step() -> None:
    # 33.333 % a minute: 33.333, 66.666, 99.999, 100 — written as weights with 4 decimals,
    # 99.999 % used to become 1.0, i.e. everything a minute early and a second "100 %".
    strategy = parse_strategy("Linear33.333PercentEvery1Minute")

    assert strategy.steps() == [(0.0, 33.33), (60.0, 66.66), (120.0, 99.99), (180.0, 100.0)]
    assert target_for(99.99, "1", "2").weights == {"2": 0.9999}
    assert strategy.last_shift_seconds == 180.0


def _strategies() -> st.SearchStrategy:
    percentage = st.floats(min_value=1.0, max_value=100.0, exclude_max=True)
    minutes = st.integers(min_value=1, max_value=MAX_INTERVAL_MINUTES)
    return st.one_of(
        st.builds(canary, percentage, minutes),
        st.builds(linear, percentage, minutes),
        st.builds(
            appconfig,
            st.sampled_from(["linear", "exponential"]),
            st.floats(min_value=1.0, max_value=100.0),
            st.integers(min_value=0, max_value=MAX_INTERVAL_MINUTES),
        ),
    )


@given(_strategies())
def test_every_accepted_strategy_has_a_bounded_schedule_ending_in_its_only_100_percent_step(
    strategy,  # type: ignore[no-untyped-def]
) -> None:
    steps = strategy.steps()

    assert len([p for _, p in steps if p > 0]) <= MAX_STEPS
    assert steps[-1][1] == 100.0
    for _, percent in steps[:-1]:
        assert percent == 0.0 or 1.0 <= percent < 100.0  # 0 only before AppConfig's first step
        weight = target_for(percent, "1", "2").weights.get("2", 0.0)
        assert percent == 0.0 or 0.0 < weight < 1.0
    percents = [p for _, p in steps]
    assert percents == sorted(percents) and len(set(percents)) == len(percents)
