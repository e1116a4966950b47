"""Issue 17 on the local pipeline, over HTTP, through the ``configpipe`` CLI as a team runs it:
one tenant gets its own value; it reads it back (CLI, SSM, the sample service's Lambda), while
another tenant and the service itself keep the service's value."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import LocalStack, as_json, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"


def configpipe(local: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return local.configpipe(*args, source=CHECKOUT)


def test_one_tenant_with_its_own_value_through_the_cli(local: LocalStack, unique: str) -> None:
    key = f"tenant-limit-{unique}"
    acme, globex = f"acme-{unique}", f"globex-{unique}"
    put = ("put", "checkout", "development", key)

    # Given the service's value, when tenant acme gets its own
    assert as_json(configpipe(local, *put, "10", "--reason", "default", "-o", "json"))["version"] == 1
    accepted = as_json(configpipe(local, *put, "500", "--tenant", acme, "--reason", "acme", "-o", "json"))
    assert (accepted["status"], accepted["version"], accepted["tenant"]) == ("accepted", 1, acme)

    # Then acme reads its own value back, and globex and the service read the service's
    get = ("get", "checkout", "development", key, "-o", "json")
    mine = as_json(configpipe(local, *get, "--tenant", acme))
    other = as_json(configpipe(local, *get, "--tenant", globex))
    service = as_json(configpipe(local, *get))
    assert (mine["value"], mine["resolvedFrom"]) == (500, "tenant")
    assert (other["value"], other["resolvedFrom"]) == (10, "service")
    assert (service["value"], service["version"], service["tenantOverrides"]) == (10, 1, 1)

    # materialised under the tenant's own path, the service's parameter unchanged
    eventually(
        lambda: local.parameter_named(f"/config/checkout/development.tenants/{acme}/{key}") == 500,
        what="the tenant's parameter",
    )
    assert local.parameter_named(f"/config/checkout/development/{key}") == 10

    # and the service's own Lambda serves each tenant its value (tenant → service)
    assert eventually(lambda: local.tenant_answer(acme, key)["value"] == 500, what="acme's answer")
    answer = local.tenant_answer(globex, key)
    assert (answer["value"], answer["tenantOverride"]) == (10, False)

    # the update handler recorded the tenant's version beside the service's
    def applied_rows() -> dict[str, int]:
        items = local.client("dynamodb").scan(
            TableName=local.outputs["AppliedTableName"], ConsistentRead=True
        )
        return {
            i["sk"]["S"]: int(i["version"]["N"])
            for i in items["Items"]
            if i["sk"]["S"].startswith(f"development#{key}")
        }

    rows = eventually(lambda: len(applied_rows()) == 2 and applied_rows(), what="both applied rows")
    assert rows == {f"development#{key}": 1, f"development#{key}#tenant#{acme}": 1}

    # history and diff per tenant
    history = as_json(
        configpipe(local, "history", "checkout", "development", key, "--tenant", acme, "-o", "json")
    )
    assert [v["value"] for v in history["versions"]] == [500]
    diff = as_json(configpipe(local, "diff", "checkout", "development", key, "--tenant", acme, "-o", "json"))
    assert "-10" in diff["diff"] and "+500" in diff["diff"]
