"""Bad requests are rejected with a clear code before any traffic moves, and write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import TEAM, Env, request


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"function": "payments-api"}, "SOURCE_NOT_AUTHORIZED"),
        ({"function": "not-registered"}, "FUNCTION_NOT_REGISTERED"),
        ({"function": "checkout-smoke", "alias": "live"}, "UNKNOWN_ALIAS"),
        ({"alias": "blue"}, "UNKNOWN_ALIAS"),
        ({"targetVersion": "$LATEST"}, "TARGET_IS_LATEST"),
        ({"targetVersion": "v2"}, "INVALID_VERSION"),
        ({"targetVersion": "²"}, "INVALID_VERSION"),  # str.isdigit() says yes, int() raises
        ({"targetVersion": "\uff11\uff12"}, "INVALID_VERSION"),  # fullwidth digits
        ({"targetVersion": "02"}, "INVALID_VERSION"),
        ({"targetVersion": "9" * 5000}, "INVALID_VERSION"),
        ({"targetVersion": "1"}, "TARGET_IS_CURRENT"),
        ({"targetVersion": "99"}, "UNKNOWN_VERSION"),
        ({"targetVersion": "3"}, "INCOMPATIBLE_VERSION_CONFIG"),
        ({"strategy": "Canary10Percent5Hours"}, "UNKNOWN_STRATEGY"),
        ({"strategy": "Fast"}, "UNKNOWN_STRATEGY"),
        ({"strategy": "Canary150Percent5Minutes"}, "INVALID_PERCENTAGE"),
        ({"strategy": "Linear0PercentEvery1Minute"}, "INVALID_PERCENTAGE"),
        ({"strategy": "Linear0.001PercentEvery1Minute"}, "INVALID_PERCENTAGE"),  # 100,000 steps
        ({"strategy": "Canary0.004Percent5Minutes"}, "INVALID_PERCENTAGE"),  # a weight of 0
        ({"strategy": "Canary\uff11\uff10Percent5Minutes"}, "UNKNOWN_STRATEGY"),
        ({"strategy": {"type": "canary", "percentage": -5, "intervalMinutes": 5}}, "INVALID_PERCENTAGE"),
        ({"strategy": {"type": "linear", "percentage": 100, "intervalMinutes": 1}}, "INVALID_PERCENTAGE"),
        ({"strategy": "Canary10Percent0Minutes"}, "INVALID_INTERVAL"),
        ({"strategy": {"type": "rainbow"}}, "INVALID_FIELD"),
        ({"alarms": ["no-such-alarm"]}, "UNKNOWN_ALARM"),
        ({"alarms": [f"a{i}" for i in range(11)]}, "TOO_MANY_ALARMS"),
        ({"preTrafficHook": "payments-api"}, "HOOK_NOT_REGISTERED"),
        ({"releaseId": "has spaces"}, "INVALID_FIELD"),
        ({"author": None}, "MALFORMED_EVENT"),
        ({"colour": "blue"}, "MALFORMED_EVENT"),
    ],
)
def test_bad_requests_are_rejected_with_a_clear_code_and_write_nothing(
    env: Env, overrides: dict[str, Any], code: str
) -> None:
    result = env.service().handle_request(request(**overrides), TEAM)

    assert result.outcome == "rejected"
    assert code in [r.code for r in result.reasons]
    assert env.alias() == AliasTarget.of("1")
    assert env.table_items() == []
    rejected = env.events("ReleaseRejected")
    assert len(rejected) == 1
    assert code in [r["code"] for r in rejected[0]["detail"]["reasons"]]


def test_unknown_function_in_the_registry_is_rejected(env: Env) -> None:
    result = env.service().handle_request(request(function="ghost-fn"), "configpipe.team.payments")
    assert [r.code for r in result.reasons] == ["UNKNOWN_FUNCTION"]


def test_an_alarm_already_firing_is_rejected_before_any_traffic(env: Env) -> None:
    env.alarm("checkout-errors", "ALARM")
    result = env.service().handle_request(request(alarms=["checkout-errors"]), TEAM)
    assert [r.code for r in result.reasons] == ["ALARM_ACTIVE"]
    assert env.alias() == AliasTarget.of("1")


def test_different_role_is_fine_without_weights(env: Env) -> None:
    # Lambda only refuses *weighted* aliases across roles; AllAtOnce never weights.
    result = env.service().handle_request(request(targetVersion="3", strategy="AllAtOnce"), TEAM)
    assert result.outcome == "accepted"
    assert env.alias() == AliasTarget.of("3")


def test_a_second_release_of_an_active_alias_is_rejected(env: Env) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)

    second = service.handle_request(request(releaseId="rel-2", targetVersion="4"), TEAM)

    assert [r.code for r in second.reasons] == ["RELEASE_IN_PROGRESS"]
    assert "rel-1" in second.reasons[0].message
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})


def test_a_reused_release_id_with_another_request_is_rejected(env: Env) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)
    assert service.handle_request(request(), TEAM).outcome == "duplicate"
    conflict = service.handle_request(request(targetVersion="4"), TEAM)
    assert [r.code for r in conflict.reasons] == ["RELEASE_ID_CONFLICT"]


def test_controls_on_unknown_releases_are_rejected(env: Env) -> None:
    result = env.service().handle_control(
        {"releaseId": "nope", "controlId": "c1", "action": "abort", "author": "me"}, TEAM
    )
    assert [r.code for r in result.reasons] == ["RELEASE_NOT_FOUND"]
    bad = env.service().handle_control(
        {"releaseId": "nope", "controlId": "c1", "action": "explode", "author": "me"}, TEAM
    )
    assert bad.outcome == "rejected"


@pytest.mark.parametrize(
    ("overrides", "codes"),
    [
        ({"targetVersion": "99", "alarms": ["no-such-alarm"]}, {"UNKNOWN_VERSION", "UNKNOWN_ALARM"}),
        (
            {"strategy": "Fast", "targetVersion": "99", "alarms": ["no-such-alarm"]},
            {"UNKNOWN_STRATEGY", "UNKNOWN_VERSION", "UNKNOWN_ALARM"},
        ),
        (
            {"alias": "blue", "preTrafficHook": "ghost-fn", "alarms": ["no-such-alarm"]},
            {"UNKNOWN_ALIAS", "HOOK_NOT_REGISTERED", "UNKNOWN_ALARM"},
        ),
        ({"targetVersion": "²", "alarms": ["no-such-alarm"]}, {"INVALID_VERSION", "UNKNOWN_ALARM"}),
    ],
)
def test_one_rejection_lists_every_reason_at_once(
    env: Env, overrides: dict[str, Any], codes: set[str]
) -> None:
    # Given a request with several independent problems, some only Lambda or CloudWatch can tell
    result = env.service().handle_request(request(**overrides), TEAM)

    # Then one rejection names all of them, not one per attempt
    assert result.outcome == "rejected"
    assert {r.code for r in result.reasons} == codes
    (rejected,) = env.events("ReleaseRejected")
    assert {r["code"] for r in rejected["detail"]["reasons"]} == codes
    assert env.table_items() == []


def test_a_caller_who_may_not_release_the_function_learns_nothing_about_aws(env: Env) -> None:
    result = env.service().handle_request(
        request(function="payments-api", targetVersion="99", alarms=["no-such-alarm"]), TEAM
    )
    assert [r.code for r in result.reasons] == ["SOURCE_NOT_AUTHORIZED"]
