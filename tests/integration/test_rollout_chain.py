"""A rollout end to end through every function in one process (on moto): a canary runs to
completion, an alarm rolls one back, and a crash between the materialiser's candidate
write and its announcement converges on the no-crash state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.release.health import AlarmHealth
from configpipe.rollout.service import RolloutService
from configpipe_tools.harness.aws import REGION, provision, set_alarm
from configpipe_tools.harness.chain import Chain, Crashes, snapshot
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"
KEY = "/config/checkout/production/max_items"
ALARM = "checkout-errors"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)  # the write path stamps the start with the real time

    def __call__(self) -> datetime:
        return self.now


def tick(chain: Chain, clock: Clock, minutes: float) -> None:
    clock.now += timedelta(minutes=minutes)
    service = RolloutService(
        ChangeLog(chain.pipeline.table_name),
        AlarmHealth(boto3.client("cloudwatch", region_name=REGION)),
        chain.write_path._registry,
        clock=clock,
    )
    # reconcile() per key: the harness's table has no activeRollouts index yet (another
    # branch adds it); reconcile_all() is this loop over that index.
    service.reconcile("checkout", "production", "max_items")
    chain.run()


def alarm(state: str) -> None:
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, state)


def canary(chain: Chain, clock: Clock, fire_alarm: bool) -> None:
    alarm("OK")
    chain.publish(change("max_items", 10, change_id="r1"), CHECKOUT)
    chain.run()
    chain.publish(
        change(
            "max_items",
            20,
            change_id="r2",
            rollout={"strategy": "Canary10Percent5Minutes", "alarms": [ALARM]},
        ),
        CHECKOUT,
    )
    chain.run()
    tick(chain, clock, 1)
    if fire_alarm:
        alarm("ALARM")
    for _ in range(6):
        tick(chain, clock, 5)


def outcome(chain: Chain) -> dict[str, Any]:
    state = snapshot(chain.pipeline)
    types = [e["detail-type"] for e in chain.seen_events]
    rollout_types = [t for t in types if t.startswith("ConfigurationRollout")]
    return {**state, "rolloutEvents": sorted(set(rollout_types))}


def run(fire_alarm: bool, crashes: Crashes | None = None) -> tuple[Chain, dict[str, Any]]:
    chain = Chain(provision(), crashes=crashes)
    canary(chain, Clock(), fire_alarm)
    return chain, outcome(chain)


def unexpected_dead_letters(chain: Chain) -> list[Any]:
    """Dead letters other than update handlers that do not understand rollout events yet
    (the client helpers learn them on another branch)."""
    return [
        d for d in chain.dead_letters if not (len(d) == 3 and str(d[2]).startswith("ConfigurationRollout"))
    ]


def test_a_canary_runs_to_completion_and_every_service_converges(aws):
    chain, state = run(fire_alarm=False)
    assert not unexpected_dead_letters(chain)
    assert state["parameters"][KEY] == "20"
    assert f"{KEY}/rollout" not in state["parameters"]
    assert f"{KEY}/candidate" not in state["parameters"]
    assert {"ConfigurationRolloutStarted", "ConfigurationRolloutCompleted"} <= set(state["rolloutEvents"])
    applied = {(pk, sk): version for pk, sk, version, _, _ in state["applied"]}
    assert applied[("checkout", "production#max_items")] == 2
    delivered = [e["detail"] for e in chain.seen_events if e["detail-type"] == "ConfigurationDelivered"]
    assert any(d["changeId"] == "r2" and d["version"] == 2 for d in delivered)


def test_an_alarm_rolls_back_and_the_stable_value_is_everywhere_again(aws):
    chain, state = run(fire_alarm=True)
    assert not unexpected_dead_letters(chain)
    assert state["parameters"][KEY] == "10"
    assert f"{KEY}/rollout" not in state["parameters"]
    assert "ConfigurationRolloutRolledBack" in state["rolloutEvents"]
    assert "ConfigurationRolloutCompleted" not in state["rolloutEvents"]
    applied = {(pk, sk): version for pk, sk, version, _, _ in state["applied"]}
    assert applied[("checkout", "production#max_items")] == 3  # the restoring version


CRASH_POINTS = [
    # the 2nd PutParameter is the candidate's (1st: v1's value), the 3rd the view
    (("ssm", "PutParameter"), 2, "materialiser-after-candidate-write"),
    (("ssm", "PutParameter"), 3, "materialiser-after-view-write"),
    (("ssm", "DeleteParameter"), 1, "materialiser-after-rollout-cleanup"),
    (("dynamodb", "TransactWriteItems"), 2, "validator-after-rollout-start"),
]
#: ``make test`` runs two of the eight (each function once, each ending once); ``make test-long``
#: the rest.
IN_MAKE_TEST = {"materialiser-after-view-write-completed", "validator-after-rollout-start-rolled-back"}
CRASHES = [
    pytest.param(
        operation,
        nth,
        fire_alarm,
        id=f"{name}-{ending}",
        marks=() if f"{name}-{ending}" in IN_MAKE_TEST else pytest.mark.long,
    )
    for operation, nth, name in CRASH_POINTS
    for fire_alarm, ending in ((False, "completed"), (True, "rolled-back"))
]


@pytest.mark.parametrize(("operation", "nth", "fire_alarm"), CRASHES)
def test_a_crash_during_a_rollout_converges_on_the_no_crash_state(operation, nth, fire_alarm):
    # Given the state the same rollout leaves when nothing goes wrong (its own moto account)
    _, expected = _run_in_fresh_account(fire_alarm, None)
    # When the process dies right after the chosen AWS call, once
    crashes = Crashes(plan={operation: nth})
    chain, state = _run_in_fresh_account(fire_alarm, crashes)
    # Then retries converge on exactly that state
    assert crashes.fired == [operation], "the crash point was never reached"
    assert not unexpected_dead_letters(chain)
    assert state == expected


def _run_in_fresh_account(fire_alarm: bool, crashes: Crashes | None) -> tuple[Chain, dict[str, Any]]:
    from moto import mock_aws

    with mock_aws():
        return run(fire_alarm, crashes)
