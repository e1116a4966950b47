"""The sample service during rollouts: durable record of rollout steps (hashes only) and the
per-tenant read the demo and e2e tests observe."""

from __future__ import annotations

from typing import Any

import boto3

from configpipe.client import ConfigClient
from configpipe.contracts import RolloutStatus
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app
from sample_service.settings import SampleServiceSettings
from tests.unit.test_client import put
from tests.unit.test_client_rollouts import ROOT, as_bus_event, event_of, materialise, view


def checkout_settings(pipeline: Any, **extra: Any) -> SampleServiceSettings:
    """The sample service's settings as the stack gives them to checkout's handler."""
    return SampleServiceSettings(service_name="checkout", applied_table=pipeline.applied_table_name, **extra)


def rollout_row(pipeline: Any, key: str = "max_items") -> dict[str, Any]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    return table.get_item(Key={"pk": "checkout", "sk": f"production#{key}#rollout"})["Item"]


def test_rollout_steps_are_recorded_durably_newest_first_wins(pipeline):
    put(f"{ROOT}/max_items", 50)
    materialise(view(weight=10, sequence=1))
    # Two execution environments (no shared memory) see the steps out of order
    first = app.build(checkout_settings(pipeline))
    second = app.build(checkout_settings(pipeline))
    assert first(as_bus_event(event_of(view(weight=25, sequence=2))), LambdaContext())["applied"] is True
    second(as_bus_event(event_of(view(weight=10, sequence=1))), LambdaContext())  # older: not recorded
    row = rollout_row(pipeline)
    assert (row["sequence"], row["weight"], row["candidateVersion"], row["status"]) == (
        2,
        "25.0",
        5,
        "ROLLING_OUT",
    )
    assert row["candidateValueHash"] == view().candidate.value_hash
    assert "60" not in {str(v) for v in row.values()}  # no value, only its hash
    # The key's applied-version row is untouched by a rollout
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    assert "Item" not in table.get_item(Key={"pk": "checkout", "sk": "production#max_items"})
    done = event_of(view(weight=100, sequence=3, status=RolloutStatus.COMPLETED))
    second(as_bus_event(done, "ConfigurationRolloutCompleted"), LambdaContext())
    assert rollout_row(pipeline)["status"] == "COMPLETED"


def test_a_secret_rollout_records_only_hashes(pipeline):
    from configpipe.stores import secret_version_token
    from configpipe.values import canonical_json

    sm = boto3.client("secretsmanager", region_name=REGION)
    scope = "checkout/production/db_password"
    sm.create_secret(
        Name="configpipe/checkout/production/db_password",
        SecretString=canonical_json("pw-stable"),
        ClientRequestToken=secret_version_token(scope, 4),
    )
    sm.put_secret_value(
        SecretId="configpipe/checkout/production/db_password",
        SecretString=canonical_json("pw-candidate"),
        ClientRequestToken=secret_version_token(scope, 5),
        VersionStages=["CONFIGPIPE_CANDIDATE"],
    )
    handler = app.build(checkout_settings(pipeline))
    event = event_of(view("db_password", value="hmac", sensitive=True))
    assert handler(as_bus_event(event, "ConfigurationRolloutStarted"), LambdaContext())["applied"] is True
    row = rollout_row(pipeline, "db_password")
    assert row["sensitive"] is True
    assert "pw-" not in repr(row)


def test_a_tenant_reads_what_the_rollout_gives_it(pipeline):
    put(f"{ROOT}/max_items", 50)
    materialise(view(weight=0, targets=("tenant-7",)))
    handler = app.build(
        SampleServiceSettings(
            service_name="checkout",
            applied_table=pipeline.applied_table_name,
            config_environment="production",
        )
    )
    target = handler({"tenant": "tenant-7", "key": "max_items"}, LambdaContext())
    assert (target["value"], target["readsCandidate"], target["candidateVersion"]) == (60, True, 5)
    other = handler({"tenant": "tenant-8", "key": "max_items", "environment": "production"}, LambdaContext())
    assert (other["value"], other["readsCandidate"], other["weight"]) == (50, False, 0)


def test_a_pushed_step_reaches_the_tenant_read_at_once(pipeline):
    put(f"{ROOT}/max_items", 50)
    materialise(view(weight=0, sequence=1))
    client = ConfigClient("checkout", "production")
    handler = app.build(
        checkout_settings(pipeline),
        client=client,
    )
    assert handler({"tenant": "tenant-8", "key": "max_items"}, LambdaContext())["value"] == 50
    handler(as_bus_event(event_of(view(weight=100, sequence=2))), LambdaContext())
    assert handler({"tenant": "tenant-8", "key": "max_items"}, LambdaContext())["value"] == 60
