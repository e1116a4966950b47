"""Snapshots cover tenants' own values (issues 17 and 19): a snapshot records each tenant's
values beside the service's keys, a restore brings a tenant's changed, deleted and created
values back per (tenant, key) with ``expectedVersion``, and an export carries them. Through the
whole pipeline in one process (moto), the CLI publishing the restore's changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change
from tests.integration.test_snapshot_restore import CHECKOUT, body, cli, empty_the_stack, log, put


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    return Chain(pipeline)


def tenant_parameter(tenant: str, key: str) -> Any:
    ssm = boto3.client("ssm", region_name=REGION)
    name = f"/config/checkout/production.tenants/{tenant}/{key}"
    try:
        return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def restore(pipeline: Pipeline, *target: str) -> dict[str, Any]:
    args = [
        "snapshot",
        "restore",
        "checkout",
        "production",
        *target,
        "-r",
        "bad edit",
        "--no-wait",
        "-o",
        "json",
    ]
    result: dict[str, Any] = body(cli(pipeline, *args))
    return result


def test_a_restore_brings_each_tenants_values_back_and_removes_those_created_since(
    pipeline: Pipeline, chain: Chain
):
    # Given a service value and three tenant values, snapshotted
    put(chain, "max_items", 10)
    put(chain, "max_items", 20, tenant="acme")
    put(chain, "banner", "acme!", tenant="acme")
    put(chain, "max_items", 30, tenant="globex")
    created = body(
        cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "t1", "-o", "json")
    )
    assert created["tenants"]["acme"]["max_items"]["version"] == 1
    assert (created["keyCount"], created["tenantValueCount"]) == (1, 3)

    # ... then one tenant value changed, one deleted, one created; the service value left alone
    put(chain, "max_items", 25, tenant="acme")
    chain.publish(change("banner", None, operation="delete", tenant="acme"), CHECKOUT)
    chain.run()
    put(chain, "max_items", 40, tenant="initech")
    diffed = body(cli(pipeline, "snapshot", "diff", "checkout", "production", "t1", "-o", "json"))
    assert {(r.get("tenant"), r["key"], r["status"]) for r in diffed["keys"]} == {
        ("acme", "max_items", "changed"),
        ("acme", "banner", "removed"),
        ("initech", "max_items", "added"),
    }
    assert {r["fromValue"] for r in diffed["keys"] if r["status"] == "changed"} == {20}

    # When the service is restored to the snapshot
    result = restore(pipeline, "--label", "t1")
    chain.run()

    # Then each tenant reads exactly its snapshotted values again
    assert tenant_parameter("acme", "max_items") == 20
    assert tenant_parameter("acme", "banner") == "acme!"
    assert tenant_parameter("globex", "max_items") == 30
    assert tenant_parameter("initech", "max_items") is None  # back to the service's value
    planned = {(c["tenant"], c["key"]): c for c in result["changes"]}
    assert set(planned) == {("acme", "max_items"), ("acme", "banner"), ("initech", "max_items")}
    assert planned[("acme", "max_items")]["expectedVersion"] == 2
    assert planned[("initech", "max_items")]["operation"] == "delete"
    # one change id per (tenant, key): acme's and initech's max_items are different changes
    assert len({c["changeId"] for c in result["changes"]}) == 3
    history = log(pipeline)
    record = history.current_record("checkout", "production", "max_items", tenant="acme")
    assert record is not None and record.restore_id == result["restoreId"]
    # and nothing differs from the snapshot any more, the service's own value untouched
    assert body(cli(pipeline, "snapshot", "diff", "checkout", "production", "t1", "-o", "json"))["identical"]
    assert history.current_record("checkout", "production", "max_items").version == 1  # type: ignore[union-attr]


def test_a_restore_to_a_moment_covers_the_tenant_values_accepted_by_then(pipeline: Pipeline, chain: Chain):
    put(chain, "max_items", 20, tenant="acme")
    moment = datetime.now(UTC)
    put(chain, "max_items", 21, tenant="acme")
    put(chain, "max_items", 50, tenant="globex")

    result = restore(pipeline, "--at", moment.isoformat())
    chain.run()

    assert tenant_parameter("acme", "max_items") == 20
    assert tenant_parameter("globex", "max_items") is None
    assert {(c["tenant"], c["operation"]) for c in result["changes"]} == {
        ("acme", "rollback"),
        ("globex", "delete"),
    }


def test_an_export_carries_tenant_values_and_an_import_replays_them(pipeline: Pipeline, chain: Chain):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="dr-bucket")
    put(chain, "max_items", 10)
    put(chain, "max_items", 20, tenant="acme")
    put(chain, "api_token", "acme-s3cr3t", tenant="acme", sensitive=True)
    body(cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "dr", "-o", "json"))
    exported = body(
        cli(
            pipeline,
            "snapshot",
            "export",
            "checkout",
            "production",
            "dr",
            "--to",
            "s3://dr-bucket/x",
            "-o",
            "json",
        )
    )
    stored = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="dr-bucket", Key="x/checkout/production/dr.json")["Body"]
        .read()
    )
    assert stored["tenants"]["acme"]["max_items"]["value"] == 20
    assert (
        stored["tenants"]["acme"]["api_token"]["secretRef"]
        == "configpipe/checkout/production.tenants/acme/api_token"
    )
    assert "acme-s3cr3t" not in json.dumps(stored)

    empty_the_stack(pipeline)
    imported = body(
        cli(
            pipeline,
            "snapshot",
            "import",
            "--from",
            exported["uri"],
            "-r",
            "drill",
            "--no-wait",
            "-o",
            "json",
        )
    )
    chain.run()

    assert tenant_parameter("acme", "max_items") == 20
    assert {(c.get("tenant"), c["key"]) for c in imported["changes"]} == {
        (None, "max_items"),
        ("acme", "max_items"),
    }
    assert imported["secretsNotImported"] == ["api_token [tenant acme]"]


def test_a_restore_with_a_rollout_rolls_a_tenants_value_back_progressively(pipeline: Pipeline, chain: Chain):
    put(chain, "max_items", 20, tenant="acme")
    body(cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "before", "-o", "json"))
    put(chain, "max_items", 25, tenant="acme")

    restore(pipeline, "--label", "before", "--rollout", "Canary10Percent30Minutes")
    chain.run()

    rollout = log(pipeline).rollout("checkout", "production", "max_items", tenant="acme")
    assert rollout is not None and (rollout.status, rollout.tenant) == ("ROLLING_OUT", "acme")
    assert tenant_parameter("acme", "max_items") == 25  # the stable value until the rollout completes
