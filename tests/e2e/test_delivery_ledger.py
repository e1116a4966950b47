"""Issue 14 on the local pipeline, over HTTP, through the ``configpipe`` CLI: a put is applied by
the deployed update handler, acknowledged on the bus, recorded by the ledger function, and
``configpipe status --require-converged`` passes; a value the service's own check refuses shows as
refused and fails the gate; a key nobody receives is flagged at put; history exports across keys."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, as_json, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"


def configpipe(local: LocalStack, *args: str, source: str = CHECKOUT) -> subprocess.CompletedProcess[str]:
    return local.configpipe(*args, source=source)


def status(local: LocalStack, key: str) -> subprocess.CompletedProcess[str]:
    return configpipe(local, "status", "checkout", "development", key, "--require-converged", "-o", "json")


def test_an_applied_put_converges_and_a_refused_one_fails_the_gate(local: LocalStack, unique: str) -> None:
    key = f"e2e-{unique}.timeout_ms"
    # When a valid timeout is put, the checkout handler applies and acknowledges it
    put = as_json(
        configpipe(local, "put", "checkout", "development", key, "250", "--reason", "e2e", "-o", "json")
    )
    assert put["status"] == "accepted" and put["receivers"] == ["checkout"]

    def gate_passes() -> Any:
        result = status(local, key)
        return result if result.returncode == 0 else None

    converged = eventually(gate_passes, what="converged")
    (service,) = json.loads(converged.stdout)["keys"][0]["services"]
    assert (service["targetService"], service["appliedVersion"], service["state"]) == (
        "checkout",
        1,
        "converged",
    )

    # When the service's own check refuses the next version
    configpipe(local, "put", "checkout", "development", key, '"soon"', "--reason", "e2e", "-o", "json")

    def refused() -> Any:
        result = status(local, key)
        body = json.loads(result.stdout) if result.stdout.strip() else {}
        rows = body.get("keys", [])
        return result if rows and rows[0]["services"][0]["state"] == "refused" else None

    # Then status shows the failure, the service still runs v1, and the gate fails
    result = eventually(refused, what="the refusal in the ledger")
    assert result.returncode == 6
    (service,) = json.loads(result.stdout)["keys"][0]["services"]
    assert (service["appliedVersion"], service["failedVersion"]) == (1, 2)
    assert "milliseconds" in service["failureReason"]
    assert local.applied("checkout", "development", key)["version"] in ("1", 1)


def test_a_put_nobody_receives_is_flagged(local: LocalStack, unique: str) -> None:
    key = f"unrouted_{unique}"  # payments subscribes only to payments. and feature. keys
    result = configpipe(
        local,
        "put",
        "payments",
        "development",
        key,
        "5",
        "--reason",
        "e2e",
        "-o",
        "json",
        source="configpipe.team.payments",
    )
    assert as_json(result)["receivers"] == []
    assert "no service receives" in result.stderr


def test_history_exports_every_key_since_a_time_as_csv(local: LocalStack, unique: str) -> None:
    a, b = f"audit-a-{unique}", f"audit-b-{unique}"
    for key in (a, b):
        as_json(configpipe(local, "put", "checkout", "staging", key, "1", "--reason", "audit", "-o", "json"))
    result = configpipe(
        local, "history", "--service", "checkout", "--env", "staging", "--since", "1h", "--output", "csv"
    )
    assert result.returncode == 0, result.stderr
    rows = [r for r in csv.DictReader(io.StringIO(result.stdout)) if r["key"] in (a, b)]
    assert [(r["key"], r["version"], r["reason"]) for r in rows] == [(a, "1", "audit"), (b, "1", "audit")]
