"""Full releases on moto: the alias itself, minute by minute, for each strategy."""

from __future__ import annotations

import pytest

from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import ALIAS, FUNCTION, TEAM, Env, request


def test_canary_release_shifts_10_percent_then_everything_after_5_minutes(env: Env) -> None:
    service = env.service()

    # Given a live alias on version 1, When a canary release of version 2 is requested
    result = service.handle_request(request(), TEAM)

    # Then 10 % goes to version 2 at once, with the primary still version 1
    assert result.outcome == "accepted"
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    for minute in (1, 2, 3, 4, 4.99):
        env.clock.at(minute)
        service.reconcile_all()
        assert env.alias() == AliasTarget.of("1", {"2": 0.1}), minute

    # And at minute 5 the alias points at version 2 with no routing config
    env.clock.at(5)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("2")
    state, history = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    assert [h.detail_type for h in history] == [
        "ReleaseStarted",
        "ReleaseStepped",
        "ReleaseStepped",
        "ReleaseCompleted",
    ]
    assert [e["detail-type"] for e in env.events()] == [h.detail_type for h in history]
    assert [e["detail"]["percent"] for e in env.events("ReleaseStepped")] == [10, 100]
    # the alias lock is released: a new release of the same alias is accepted
    assert service.handle_request(request(releaseId="rel-2", targetVersion="4"), TEAM).outcome == "accepted"


def test_linear_release_adds_10_percent_every_minute(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)

    seen = []
    for minute in range(0, 11):
        env.clock.at(minute)
        service.reconcile_all()
        seen.append(env.alias().percent_on("2"))
    assert seen == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 100]
    assert env.alias() == AliasTarget.of("2")
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    assert [e["detail"]["percent"] for e in env.events("ReleaseStepped")] == [
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
        90,
        100,
    ]


def test_all_at_once_release_completes_in_one_go(env: Env) -> None:
    result = env.service().handle_request(request(strategy="AllAtOnce"), TEAM)

    assert result.state is not None
    assert result.state.status == "COMPLETED"
    assert env.alias() == AliasTarget.of("2")
    assert [e["detail-type"] for e in env.events()] == [
        "ReleaseStarted",
        "ReleaseStepped",
        "ReleaseCompleted",
    ]


def test_blue_green_switches_everything_then_bakes_before_completing(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="BlueGreen15Minutes"), TEAM)

    assert env.alias() == AliasTarget.of("2")
    env.clock.at(14.9)
    state = service.reconcile("rel-1")
    assert state is not None
    assert state.status == "BAKING"
    env.clock.at(15)
    state = service.reconcile("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    assert env.alias() == AliasTarget.of("2")


def test_blue_green_alarm_during_bake_restores_previous_version_instantly(env: Env) -> None:
    env.alarm("checkout-errors")
    service = env.service()
    service.handle_request(request(strategy="BlueGreen", alarms=["checkout-errors"]), TEAM)
    assert env.alias() == AliasTarget.of("2")

    env.clock.at(3)
    env.alarm("checkout-errors", "ALARM")
    state = service.reconcile("rel-1")

    assert state is not None
    assert state.status == "ROLLED_BACK"
    assert env.alias() == AliasTarget.of("1")


def test_a_reconcile_run_twice_at_the_same_moment_changes_nothing_more(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery2Minutes"), TEAM)
    env.clock.at(4)
    service.reconcile_all()
    before_state, before_history = service.status("rel-1")
    before_alias = env.alias()

    service.reconcile_all()
    service.reconcile("rel-1")

    after_state, after_history = service.status("rel-1")
    assert env.alias() == before_alias == AliasTarget.of("1", {"2": 0.3})
    assert after_state == before_state
    assert after_history == before_history


@pytest.mark.parametrize(
    ("strategy", "minute", "expected"),
    [
        ("Canary10Percent10Minutes", 9, AliasTarget.of("1", {"2": 0.1})),
        ("Canary10Percent10Minutes", 10, AliasTarget.of("2")),
        ("Canary10Percent30Minutes", 29, AliasTarget.of("1", {"2": 0.1})),
        ("Linear10PercentEvery3Minutes", 7, AliasTarget.of("1", {"2": 0.3})),
        ("Linear10PercentEvery10Minutes", 89, AliasTarget.of("1", {"2": 0.9})),
        ("Linear10PercentEvery10Minutes", 90, AliasTarget.of("2")),
        ("Canary25Percent2Minutes", 1, AliasTarget.of("1", {"2": 0.25})),
        ({"type": "linear", "percentage": 30, "intervalMinutes": 2}, 5, AliasTarget.of("1", {"2": 0.9})),
        ({"type": "linear", "percentage": 30, "intervalMinutes": 2}, 6, AliasTarget.of("2")),
    ],
)
def test_a_late_first_tick_jumps_straight_to_the_weight_due(
    env: Env, strategy: object, minute: int, expected: AliasTarget
) -> None:
    # Given a release whose first reconcile after the start happens late (e.g. ticks were lost)
    service = env.service()
    service.handle_request(request(strategy=strategy), TEAM)

    # When the next reconcile runs at `minute`
    env.clock.at(minute)
    service.reconcile_all()

    # Then the alias has the weight the strategy prescribes for that moment, no more, no less
    assert env.alias() == expected
    assert (
        env.lam.get_alias(FunctionName=FUNCTION, Name=ALIAS)["FunctionVersion"] == expected.function_version
    )
