"""Feature flags on the local pipeline, over HTTP, through the CLI: a team enables a flag for one
tenant with ``configpipe flag``, the sample service (its OpenFeature provider, pushed by its own
update handler) answers that tenant differently and the others as before, then the flag is
disabled; a bad flags document is rejected by the validator Lambda and never reaches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from configpipe_tools.local.runner import CLIENT_ENVIRONMENT
from configpipe_tools.local.template import STACK_NAME
from tests.e2e.conftest import REPO, LocalStack, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"


def configpipe(local: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it against the local pipeline."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from configpipe_tools.cli.main import app; app()",
            "--endpoint-url",
            local.url,
            "--stack",
            STACK_NAME,
            "--source",
            CHECKOUT,
            *args,
        ],
        env={
            **os.environ,
            **CLIENT_ENVIRONMENT,
            "AWS_ENDPOINT_URL": local.url,
            "CONFIGPIPE_AUTHOR": "e2e",
            "PYTHONPATH": f"{REPO / 'functions'}:{REPO / 'tooling'}",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def served(local: LocalStack, tenant: str) -> dict[str, Any]:
    """How the checkout service serves ``tenant`` (its OpenFeature flags), invoked as a Lambda."""
    response = local.client("lambda").invoke(
        FunctionName="checkout-config-update-handler",
        Payload=json.dumps({"tenant": tenant, "serve": True, "environment": "development"}).encode(),
    )
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def test_a_flag_for_one_tenant_through_the_cli_then_disabled(local: LocalStack):
    # Given the flags document, published through the CLI
    result = configpipe(local, "flag", "set", "checkout", "development", "rate_limit", "100", "-r", "e2e")
    assert result.returncode == 0, result.stderr + result.stdout
    result = configpipe(local, "flag", "disable", "checkout", "development", "maintenance", "-r", "e2e")
    assert result.returncode == 0, result.stderr + result.stdout
    eventually(
        lambda: served(local, "t-7").get("maintenanceReason") == "STATIC",
        what="the flag to reach the service",
    )
    assert served(local, "t-7")["statusCode"] == 200

    # When maintenance is enabled for tenant t-7 only
    result = configpipe(
        local, "flag", "enable", "checkout", "development", "maintenance", "--for", "tenant=t-7", "-r", "e2e"
    )
    assert result.returncode == 0, result.stderr + result.stdout

    # Then t-7 gets 503 by a targeting match and t-8 is served as before
    answer = eventually(
        lambda: (a := served(local, "t-7"))["statusCode"] == 503 and a, what="the flag to reach the service"
    )
    assert answer["maintenanceReason"] == "TARGETING_MATCH"
    assert served(local, "t-8")["statusCode"] == 200
    listed = json.loads(configpipe(local, "flag", "list", "checkout", "development", "-o", "json").stdout)
    assert [row["rules"] for row in listed["flags"] if row["flag"] == "maintenance"] == [
        ["configpipe: tenant in list"]
    ]

    # And disabling it for t-7 serves t-7 again
    result = configpipe(
        local, "flag", "disable", "checkout", "development", "maintenance", "--for", "tenant=t-7", "-r", "e2e"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    eventually(lambda: served(local, "t-7")["statusCode"] == 200, what="the flag to reach the service")


def test_a_bad_flags_document_is_rejected_by_the_pipeline(local: LocalStack):
    # Published around the CLI (which would refuse it locally), straight onto the bus
    change_id = local.put_change(
        CHECKOUT, service="checkout", key="flags", value={"maintenance": {"default": "yes"}}
    )
    rejected = eventually(
        lambda: local.bus.events("ConfigurationRejected", changeId=change_id), what="the rejection"
    )
    reasons = rejected[0]["detail"]["reasons"]
    assert [(r["code"], r.get("field")) for r in reasons] == [("INVALID_FEATURE_FLAGS", "value.maintenance")]
    assert "yes" not in json.dumps(rejected[0]["detail"])
