"""A release that cannot read a watched alarm stops, as CodeDeploy does (``ignorePollAlarmFailure``
false by default); asked to ignore such failures, it goes on."""

from __future__ import annotations

import boto3
from botocore.config import Config

from configpipe.release.health import AlarmHealth
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import REGION, TEAM, Env, request


def test_an_alarm_deleted_mid_release_rolls_the_release_back(env: Env) -> None:
    # Given a linear release watching an alarm, at 30 %
    env.alarm("checkout-errors")
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute", alarms=["checkout-errors"]), TEAM)
    env.clock.at(2)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.3})

    # When the alarm is deleted
    env.cw.delete_alarms(AlarmNames=["checkout-errors"])
    env.clock.at(2.5)
    service.reconcile_all()

    # Then the release does not go on unwatched: the alias is restored, with the reason
    assert env.alias() == AliasTarget.of("1")
    (rolled_back,) = env.events("ReleaseRolledBack")
    assert rolled_back["detail"]["code"] == "ALARM_MISSING"
    assert "checkout-errors" in rolled_back["detail"]["message"]


def test_asked_to_ignore_poll_alarm_failures_a_release_finishes_without_its_alarm(env: Env) -> None:
    env.alarm("checkout-errors")
    service = env.service()
    detail = request(alarms=["checkout-errors"], ignorePollAlarmFailure=True)
    assert service.handle_request(detail, TEAM).outcome == "accepted"
    assert env.events("ReleaseStarted")[0]["detail"]["ignorePollAlarmFailure"] is True

    env.cw.delete_alarms(AlarmNames=["checkout-errors"])
    env.clock.at(5)
    service.reconcile_all()

    assert env.alias() == AliasTarget.of("2")
    state, _ = service.status("rel-1")
    assert state is not None and state.status == "COMPLETED"


def test_a_failing_describe_alarms_is_read_as_unreadable_not_raised(env: Env) -> None:
    # CloudWatch unreachable (nothing listens on port 9), botocore's retries cut to one attempt
    unreachable = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )

    reading = AlarmHealth(unreachable).read(["checkout-errors"])

    assert reading.in_alarm == [] and reading.missing == []
    assert reading.error is not None and "127.0.0.1:9" in reading.error
    assert AlarmHealth(env.cw).read([]).error is None
