"""The brief's promises, end to end through every function in one process (on moto):
nothing accepted is lost across a crash between any two steps; duplicates have one effect;
out-of-order delivery never lets an older version win; secrets stay secret."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from configpipe.values import is_sensitive
from configpipe_tools.harness.chain import Chain, Crashes, Delivery, snapshot
from configpipe_tools.harness.events import change

PLATFORM = "configpipe.team.platform"
CHECKOUT = "configpipe.team.checkout"
PAYMENTS = "configpipe.team.payments"
SECRET = "pa55-w0rd-that-must-not-leak"

# (detail, source): deterministic changeIds, so two runs can be compared item by item.
SCENARIO: list[tuple[dict[str, Any], str]] = [
    (change("max_items", 10, change_id="c1"), CHECKOUT),
    (change("feature.dark_mode", True, service="global", change_id="c2"), PLATFORM),
    (change("db_password", SECRET, change_id="c3"), CHECKOUT),
    (change("payments.retry", {"max": 3}, service="payments", change_id="c4"), PAYMENTS),
    (change("max_items", 20, change_id="c5"), CHECKOUT),
    (change("max_items", operation="rollback", toVersion=1, change_id="c6"), CHECKOUT),
    (change("payments.retry", service="payments", operation="delete", change_id="c7"), PAYMENTS),
    (change("max_items", 5000, change_id="c8"), CHECKOUT),  # rejected: schema
]


def play(chain: Chain, scenario=SCENARIO) -> None:
    for detail, source in scenario:
        # A secret goes out as encryptedValue, as `configpipe put` sends it (a clear one is
        # refused: SENSITIVE_VALUE_IN_CLEAR).
        chain.publish(chain.sealed(detail) if is_sensitive(detail["key"], None) else detail, source)
        chain.run()


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    """The state the scenario leaves when nothing goes wrong (its own moto account)."""
    from moto import mock_aws

    from configpipe_tools.harness.aws import provision

    with mock_aws():
        chain = Chain(provision())
        play(chain)
        assert not chain.dead_letters
        return snapshot(chain.pipeline)


def test_the_scenario_reaches_every_affected_service(expected):
    applied = {(pk, sk): version for pk, sk, version, _, _ in expected["applied"]}
    # checkout's own keys, and the global flag for every service running in production
    assert applied[("checkout", "production#max_items")] == 3  # the rollback, as v3
    assert applied[("checkout", "production#feature.dark_mode")] == 1
    assert applied[("payments", "production#feature.dark_mode")] == 1  # prefix feature. subscribed
    assert ("search", "production#feature.dark_mode") not in applied  # search is not in production
    assert applied[("payments", "production#payments.retry")] == 2  # the tombstone
    assert applied[("checkout", "production#db_password")] == 1
    assert expected["parameters"]["/config/checkout/production/max_items"] == "10"
    assert "/config/payments/production/payments.retry" not in expected["parameters"]
    assert expected["secrets"]["configpipe/checkout/production/db_password"] == (False, json.dumps(SECRET))
    assert (f"CHANGE#{CHECKOUT}#c8", "rejected", None) in expected["changes"]


#: ``make test`` crashes once in each function; the other points run in ``make test-long``.
LONG = pytest.mark.long
CRASH_POINTS = [
    pytest.param(("dynamodb", "TransactWriteItems"), 1, id="validator-after-commit"),
    pytest.param(("kms", "Decrypt"), 1, id="materialiser-before-secret-write", marks=LONG),
    pytest.param(("secretsmanager", "CreateSecret"), 1, id="materialiser-after-secret-write"),
    pytest.param(("ssm", "PutParameter"), 1, id="materialiser-after-ssm-write", marks=LONG),
    pytest.param(("ssm", "PutParameter"), 4, id="materialiser-after-later-ssm-write", marks=LONG),
    pytest.param(("ssm", "DeleteParameter"), 1, id="materialiser-after-delete", marks=LONG),
    pytest.param(("events", "PutEvents"), 1, id="materialiser-after-announcement", marks=LONG),
    pytest.param(("events", "PutEvents"), 2, id="propagator-after-delivery-record"),
    pytest.param(("events", "PutEvents"), 7, id="late-announcement-or-delivery", marks=LONG),
    pytest.param(("dynamodb", "PutItem"), 1, id="update-handler-after-apply"),
    pytest.param(("dynamodb", "PutItem"), 3, id="later-update-handler-after-apply", marks=LONG),
]


@pytest.mark.parametrize(("operation", "nth"), CRASH_POINTS)
def test_a_crash_between_any_two_steps_ends_in_the_no_crash_state(aws, expected, operation, nth):
    from configpipe_tools.harness.aws import provision

    crashes = Crashes(plan={operation: nth})
    chain = Chain(provision(), crashes=crashes)

    play(chain)

    assert crashes.fired == [operation], "the crash point was never reached"
    assert not chain.dead_letters
    assert snapshot(chain.pipeline) == expected


def test_every_event_and_stream_record_delivered_twice_has_exactly_one_effect(aws, expected):
    from configpipe_tools.harness.aws import provision

    chain = Chain(provision(), delivery=Delivery(duplicate=True))

    play(chain)

    assert snapshot(chain.pipeline) == expected


def test_a_publisher_resending_its_changes_has_exactly_one_effect(aws, expected):
    from configpipe_tools.harness.aws import provision

    chain = Chain(provision())

    play(chain)
    play(chain)  # every change published again with the same changeId

    assert snapshot(chain.pipeline) == expected


def test_out_of_order_delivery_never_lets_an_older_version_win(aws):
    from configpipe_tools.harness.aws import provision

    chain = Chain(provision(), delivery=Delivery(reverse=True))
    # Three versions accepted before anything downstream runs, then every later
    # delivery (stream records, announcements) arrives newest first.
    for value, change_id in ((1, "o1"), (2, "o2"), (3, "o3")):
        chain.publish(change("rate_limit", value, change_id=change_id))
        chain._deliver_bus_events()  # validator only

    chain.run()

    state = snapshot(chain.pipeline)
    assert state["parameters"]["/config/checkout/production/rate_limit"] == "3"
    assert next(a for a in state["applied"] if a[1] == "production#rate_limit")[2] == 3


def test_a_secret_never_reaches_the_bus_the_change_log_ssm_or_a_service_table(aws):
    from configpipe_tools.harness.aws import provision

    chain = Chain(provision())
    chain.publish(chain.sealed(change("api_token", SECRET, change_id="s1")))
    chain.run()

    state = snapshot(chain.pipeline)
    announcements = [e for e in chain.seen_events if e["source"] == "configpipe.pipeline"]
    assert {e["detail-type"] for e in announcements} >= {"ConfigurationUpdated", "ConfigurationDelivered"}
    assert SECRET not in json.dumps(announcements)
    table = boto3.resource("dynamodb").Table(chain.pipeline.table_name).scan()["Items"]
    assert SECRET not in json.dumps(table, default=repr)
    assert SECRET not in json.dumps(state["parameters"]) + json.dumps(state["applied"])
    assert state["secrets"]["configpipe/checkout/production/api_token"] == (False, json.dumps(SECRET))
