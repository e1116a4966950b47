"""Issue 17, item 7 on the local pipeline, over HTTP, through the ``configpipe`` CLI: one tenant's
own value goes out as a canary (to some of the tenant's users first), its alarm rolls it back,
and the tenant reads its stable override again — while the service's value and another tenant's
never move."""

from __future__ import annotations

from typing import Any

import pytest

from configpipe.client import ConfigClient
from configpipe_tools.harness.aws import set_alarm
from tests.e2e.conftest import LocalStack, as_json, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"
#: for something stuck, not slow (see test_rollouts.py)
DEADLINE = 90.0
USERS = [f"user-{i}" for i in range(2000)]


def reader(local: LocalStack) -> ConfigClient:
    """A client that reads the store now and holds what it read for the rest of the phase."""
    return ConfigClient("checkout", "development", ttl_seconds=3600, ssm_client=local.client("ssm"))


def configpipe(local: LocalStack, *args: str) -> Any:
    return as_json(local.configpipe(*args, "-o", "json", source=CHECKOUT))


def test_a_tenants_canary_rolled_back_by_its_alarm(local: LocalStack, unique: str) -> None:
    key = f"tenant-rate-{unique}"
    acme, globex = f"acme-{unique}", f"globex-{unique}"
    alarm = f"acme-errors-{unique}"
    base = f"/config/checkout/development.tenants/{acme}/{key}"
    set_alarm(local.client("cloudwatch"), alarm, "OK", reason="e2e")
    put = ("put", "checkout", "development", key)

    # Given the service's value, acme's own and globex's own
    assert configpipe(local, *put, "10", "--reason", "default")["status"] == "accepted"
    assert configpipe(local, *put, "100", "--tenant", acme, "--reason", "acme")["version"] == 1
    assert configpipe(local, *put, "200", "--tenant", globex, "--reason", "globex")["version"] == 1

    # When acme's value goes out as a 10 % canary by user, one user named first
    started = configpipe(
        local, *put, "150", "--tenant", acme, "--rollout", "Canary10Percent30Minutes",
        "--alarm", alarm, "--target", "user-vip", "--reason", "acme canary",
    )  # fmt: skip
    assert (started["status"], started["version"], started["rollout"]["tenant"]) == ("accepted", 2, acme)

    # Then, once announced (the materialiser announces after acme's bundle holds the view: what a
    # client reads), what is materialised under acme's path gives the candidate to about 10 % of
    # its users
    announced = eventually(
        lambda: local.bus.events("ConfigurationRolloutStarted", key=key), timeout=DEADLINE, what="started"
    )
    assert announced[0]["detail"]["tenant"] == acme
    view = local.parameter_named(f"{base}/rollout")
    assert (view["tenant"], view["weight"], view["candidateVersion"]) == (acme, 10.0, 2)
    assert local.parameter_named(base) == 100, "acme's stable value stays where it was"
    # A client as a service runs one: it reads acme (its bundle) once and buckets every user in
    # memory (a TTL of 0 made 2,000 reads of the moto server: 30 s of this test)
    client = reader(local)
    share = sum(client.get_for_tenant(acme, key, subject=u) == 150 for u in USERS) / len(USERS)
    assert 0.07 <= share <= 0.13, share
    assert {client.get_for_tenant(acme, key, subject=u) for u in USERS} == {100, 150}
    assert client.get_for_tenant(acme, key, subject="user-vip") == 150
    status = configpipe(local, "rollout", "status", "checkout", "development", key, "--tenant", acme)
    assert (status["status"], status["tenant"]) == ("ROLLING_OUT", acme)
    # the service's value and globex's do not roll out
    assert {client.get(key, subject=u) for u in USERS[:300]} == {10}
    assert {client.get_for_tenant(globex, key, subject=u) for u in USERS[:300]} == {200}
    answer = local.tenant_answer(acme, key)
    assert answer["tenantRollout"] is True and answer["candidateVersion"] == 2

    # When acme's alarm fires
    set_alarm(local.client("cloudwatch"), alarm, "ALARM", reason="e2e")

    # Then within a tick acme reads its stable override again, everywhere
    assert eventually(
        lambda: local.bus.events("ConfigurationRolloutRolledBack", key=key, tenant=acme),
        timeout=DEADLINE,
        what="rolled back, announced with the tenant",
    )
    assert local.parameter_named(f"{base}/rollout") is None
    assert local.parameter_named(f"{base}/candidate") is None
    rolled = configpipe(local, "rollout", "status", "checkout", "development", key, "--tenant", acme)
    assert (rolled["status"], rolled["outcome"]["code"]) == ("ROLLED_BACK", "ALARM")
    assert local.parameter_named(base) == 100
    client = reader(local)
    assert {client.get_for_tenant(acme, key, subject=u) for u in [*USERS[:300], "user-vip"]} == {100}
    assert local.tenant_answer(acme, key)["value"] == 100
    history = configpipe(local, "history", "checkout", "development", key, "--tenant", acme)
    versions = {v["version"]: v for v in history["versions"]}
    assert versions[2]["rollout"]["status"] == "ROLLED_BACK"
    assert (versions[3]["operation"], versions[3]["rolledBackTo"]) == ("rollback", 1)
    # and the service's value and globex's never moved
    service = configpipe(local, "get", "checkout", "development", key)
    assert (service["value"], service["version"]) == (10, 1)
    assert configpipe(local, "get", "checkout", "development", key, "--tenant", globex)["value"] == 200
    assert local.parameter("checkout", "development", key) == 10
