"""Progressive configuration rollouts on the local pipeline, over HTTP, as a service team and
its service code see them in AWS: a change with a rollout goes to some tenants first, service
code reads per tenant from what is materialised, an alarm rolls it back, controls move it, and
a code release carries config that only its new version reads.

The session's pipeline fires the rollout tick every 2 s (``--schedule-speedup``), so an alarm
is acted on within seconds; strategies still count real minutes, so the tests use long ones
and move them with controls or alarms.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from configpipe.client import ConfigClient
from configpipe.contracts import ConfigurationRolloutControl, RolloutAction
from configpipe.release.contracts import ReleaseDetailType, ReleaseRequested
from configpipe_tools.harness.aws import set_alarm
from tests.e2e.conftest import LocalStack, eventually
from tests.e2e.test_releases import alias

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"
SEARCH = "configpipe.team.search"
#: for something stuck, not slow: a rollback chain (alarm → release tick → rollout abort → view)
#: takes seconds, but took over 30 s once at a load average of 10-15 on 2 cores
DEADLINE = 90.0
TENANTS = [f"tenant-{i}" for i in range(2000)]


def alarm(local: LocalStack, name: str, state: str) -> None:
    set_alarm(local.client("cloudwatch"), name, state, reason="e2e")


def view(local: LocalStack, service: str, environment: str, key: str) -> dict[str, Any] | None:
    ssm = local.client("ssm")
    try:
        text = ssm.get_parameter(Name=f"/config/{service}/{environment}/{key}/rollout")["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    found: dict[str, Any] = json.loads(text)
    return found


def rollout_item(local: LocalStack, service: str, environment: str, key: str) -> dict[str, Any]:
    items = local.change_log_items(f"KEY#{service}#{environment}#{key}")
    rollout = next((i for i in items if i["sk"]["S"] == "ROLLOUT"), None)
    return {k: next(iter(v.values())) for k, v in rollout.items()} if rollout else {}


def reader(local: LocalStack, service: str, ttl_seconds: int = 0, **identity: str) -> ConfigClient:
    """Service code's view, through the emulator's SSM: no push, only what is materialised.
    ``ttl_seconds=0`` reads again on every ``get``; a TTL reads once, as service code does, so
    asking for thousands of subjects costs one read, not thousands."""
    return ConfigClient(
        service, "development", ttl_seconds=ttl_seconds, ssm_client=local.client("ssm"), **identity
    )


def control(
    local: LocalStack, source: str, key: str, action: RolloutAction, service: str = "checkout"
) -> None:
    detail = ConfigurationRolloutControl(
        control_id=f"e2e-{uuid.uuid4()}",
        service=service,
        environment="development",
        key=key,
        action=action,
        author="e2e",
        reason=f"e2e {action.value}",
    ).to_detail()
    response = local.client("events").put_events(
        Entries=[
            {
                "EventBusName": local.bus_name,
                "Source": source,
                "DetailType": "ConfigurationRolloutControl",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0, response


def test_a_canary_reaches_some_tenants_first_and_an_alarm_rolls_it_back(
    local: LocalStack, unique: str
) -> None:
    key = f"rate_limit_{unique}"
    alarm_name = f"checkout-errors-{unique}"
    alarm(local, alarm_name, "OK")
    local.put_change(CHECKOUT, service="checkout", key=key, value=100)
    eventually(lambda: local.parameter("checkout", "development", key) == 100, what="stable value")

    # When the new value goes out as a 10 % canary, with one tenant named first
    change_id = local.put_change(
        CHECKOUT,
        service="checkout",
        key=key,
        value=200,
        rollout={"strategy": "Canary10Percent30Minutes", "alarms": [alarm_name], "targets": ["tenant-vip"]},
    )

    # Then readers see a consistent view from what is materialised, without any push
    current = eventually(lambda: view(local, "checkout", "development", key), timeout=DEADLINE, what="view")
    assert (current["rolloutId"], current["weight"], current["candidateVersion"]) == (change_id, 10.0, 2)
    assert local.parameter("checkout", "development", key) == 100, "the stable value stays where it was"
    client = reader(local, "checkout", ttl_seconds=600)  # one read of the view, every subject from it
    share = sum(client.get(key, subject=t) == 200 for t in TENANTS) / len(TENANTS)
    assert 0.07 <= share <= 0.13, share
    assert client.get(key, subject="tenant-vip") == 200
    # and the sample service answers per tenant the same way
    assert local.tenant_answer("tenant-vip", key)["value"] == 200
    outsider = next(t for t in TENANTS if client.get(key, subject=t) == 100)
    assert local.tenant_answer(outsider, key)["value"] == 100
    started = eventually(
        lambda: local.bus.events("ConfigurationRolloutStarted", key=key), timeout=DEADLINE, what="started"
    )
    assert started[0]["detail"]["weight"] == 10.0

    # When the alarm fires
    alarm(local, alarm_name, "ALARM")

    # Then within a tick everyone is back on the stable value, announced, and history shows it
    eventually(
        lambda: view(local, "checkout", "development", key) is None, timeout=DEADLINE, what="view gone"
    )
    rolled = rollout_item(local, "checkout", "development", key)
    assert rolled["status"] == "ROLLED_BACK"
    assert rolled["outcome"]["code"]["S"] == "ALARM"
    assert local.parameter("checkout", "development", key) == 100
    assert eventually(
        lambda: local.bus.events("ConfigurationRolloutRolledBack", key=key),
        timeout=DEADLINE,
        what="announced",
    )
    eventually(
        lambda: (a := local.applied("checkout", "development", key)) and int(a["version"]) == 3,
        timeout=DEADLINE,
        what="the handler applied the restoring version",
    )
    after = reader(local, "checkout", ttl_seconds=600)
    assert all(after.get(key, subject=t) == 100 for t in TENANTS)


def test_a_change_to_a_key_rolling_out_is_refused_until_it_is_promoted(
    local: LocalStack, unique: str
) -> None:
    key = f"feature_{unique}"
    local.put_change(CHECKOUT, service="checkout", key=key, value="off")
    eventually(lambda: local.parameter("checkout", "development", key) == "off", what="stable")
    local.put_change(
        CHECKOUT,
        service="checkout",
        key=key,
        value="on",
        rollout={"strategy": "Linear10PercentEvery10Minutes"},
    )
    eventually(lambda: view(local, "checkout", "development", key), timeout=DEADLINE, what="view")

    refused = local.put_change(CHECKOUT, service="checkout", key=key, value="maybe")
    rejected = eventually(
        lambda: local.bus.events("ConfigurationRejected", changeId=refused),
        timeout=DEADLINE,
        what="rejection",
    )
    assert [r["code"] for r in rejected[0]["detail"]["reasons"]] == ["ROLLOUT_IN_PROGRESS"]

    control(local, CHECKOUT, key, RolloutAction.PROMOTE)

    eventually(
        lambda: local.parameter("checkout", "development", key) == "on", timeout=DEADLINE, what="promoted"
    )
    # the materialiser writes the main value first, then removes the view: wait for both
    eventually(
        lambda: view(local, "checkout", "development", key) is None, timeout=DEADLINE, what="view gone"
    )
    assert rollout_item(local, "checkout", "development", key)["status"] == "COMPLETED"
    assert eventually(
        lambda: local.bus.events("ConfigurationRolloutCompleted", key=key), timeout=DEADLINE, what="completed"
    )
    eventually(
        lambda: (a := local.applied("checkout", "development", key)) and int(a["version"]) == 2,
        timeout=DEADLINE,
        what="the candidate applied everywhere",
    )


def request_search_release(local: LocalStack, release_id: str, alarm_name: str, reason: str) -> None:
    """search-api:live → version 2 as a 30-minute canary watched by ``alarm_name``."""
    request = ReleaseRequested(
        release_id=release_id,
        function="search-api",
        alias="live",
        target_version="2",
        strategy="Canary10Percent30Minutes",
        alarms=[alarm_name],
        author="e2e",
        reason=reason,
    )
    response = local.client("events").put_events(
        Entries=[
            {
                "EventBusName": local.bus_name,
                "Source": SEARCH,
                "DetailType": ReleaseDetailType.RELEASE_REQUESTED.value,
                "Detail": json.dumps(request.to_detail()),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_a_release_carries_config_that_only_its_new_version_reads_and_both_roll_back_on_its_alarm(
    local: LocalStack, unique: str
) -> None:
    assert alias(local, "search-api") == ("1", {}), "the stand-in's alias as `up` leaves it"
    key = f"search_boost_{unique}"
    alarm_name = f"search-errors-{unique}"
    alarm(local, alarm_name, "OK")
    local.put_change(SEARCH, service="search", key=key, value=1.0)
    eventually(lambda: local.parameter("search", "development", key) == 1.0, what="stable")
    release_id = f"e2e-combined-{unique}"

    # One release: the config change rides on it, then the alias shift starts
    local.put_change(
        SEARCH,
        service="search",
        key=key,
        value=2.5,
        rollout={"release": {"releaseId": release_id, "function": "search-api", "targetVersion": "2"}},
    )
    eventually(lambda: view(local, "search", "development", key), timeout=DEADLINE, what="config bound")
    request_search_release(local, release_id, alarm_name, "code and config together")
    # (by its weight: moto answers ``RoutingConfig: {"AdditionalVersionWeights": {}}`` for an alias
    # whose routing was cleared, so "has a RoutingConfig" could hold before the release started; the
    # test then set the alarm first and the release was rightly refused with ALARM_ACTIVE)
    eventually(
        lambda: alias(local, "search-api") == ("1", {"2": 0.1}),
        timeout=DEADLINE,
        what="canary traffic on version 2",
    )

    # Then each function version reads the config it was written for
    assert reader(local, "search", function_name="search-api", function_version="2").get(key) == 2.5
    assert reader(local, "search", function_name="search-api", function_version="1").get(key) == 1.0

    # When the release's alarm fires, code and config roll back together
    alarm(local, alarm_name, "ALARM")
    rolled = eventually(
        lambda: local.bus.events("ReleaseRolledBack", releaseId=release_id),
        timeout=DEADLINE,
        what="rolled back",
    )
    assert rolled[0]["detail"]["code"] == "ALARM"
    assert alias(local, "search-api") == ("1", {})
    eventually(
        lambda: view(local, "search", "development", key) is None, timeout=DEADLINE, what="config back"
    )
    item = rollout_item(local, "search", "development", key)
    assert (item["status"], item["outcome"]["code"]["S"]) == ("ROLLED_BACK", "RELEASE_ROLLED_BACK")
    assert reader(local, "search", function_name="search-api", function_version="2").get(key) == 1.0
    assert local.parameter("search", "development", key) == 1.0


def test_config_riding_on_a_refused_release_rolls_back_at_once(local: LocalStack, unique: str) -> None:
    # Given a stable value, and a watched alarm already in ALARM
    key = f"search_limit_{unique}"
    alarm_name = f"search-refused-{unique}"
    alarm(local, alarm_name, "ALARM")
    local.put_change(SEARCH, service="search", key=key, value=10)
    eventually(lambda: local.parameter("search", "development", key) == 10, what="stable")
    release_id = f"e2e-refused-{unique}"
    local.put_change(
        SEARCH,
        service="search",
        key=key,
        value=20,
        rollout={"release": {"releaseId": release_id, "function": "search-api", "targetVersion": "2"}},
    )
    eventually(lambda: view(local, "search", "development", key), timeout=DEADLINE, what="config bound")

    # When the release it rides on is requested and refused (its alarm is in ALARM)
    request_search_release(local, release_id, alarm_name, "refused")
    [refused] = eventually(
        lambda: local.bus.events("ReleaseRejected", releaseId=release_id), timeout=DEADLINE, what="refusal"
    )
    assert [r["code"] for r in refused["detail"]["reasons"]] == ["ALARM_ACTIVE"]

    # Then the config rolls back now, not after the 15-minute start grace period
    eventually(lambda: view(local, "search", "development", key) is None, timeout=DEADLINE, what="view gone")
    item = rollout_item(local, "search", "development", key)
    assert (item["status"], item["outcome"]["code"]["S"]) == ("ROLLED_BACK", "RELEASE_REJECTED")
    assert reader(local, "search", function_name="search-api", function_version="2").get(key) == 10
