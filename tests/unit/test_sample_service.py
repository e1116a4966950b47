"""The sample ``<service>-config-update-handler``: durable apply-by-version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from configpipe.contracts import ConfigurationUpdated
from configpipe.values import value_hash
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app
from sample_service.settings import SampleServiceSettings


def updated(version: int, value: Any, key: str = "max_items", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "change_id": f"c-{version}",
        "service": "checkout",
        "environment": "production",
        "key": key,
        "operation": "put",
        "version": version,
        "value_hash": value_hash(value),
        "value": value,
        "value_inline": True,
        "author": "alice",
        "reason": "test",
        "applied_at": datetime.now(UTC),
    }
    fields.update(overrides)
    detail = ConfigurationUpdated(**fields).to_detail()
    return eventbridge_event(detail, detail_type="ConfigurationUpdated", source="configpipe.pipeline")


def update_handler(pipeline: Any) -> Any:
    settings = SampleServiceSettings(service_name="checkout", applied_table=pipeline.applied_table_name)
    return app.build(settings)


def applied_row(pipeline: Any, key: str = "max_items") -> dict[str, Any]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    return table.get_item(Key={"pk": "checkout", "sk": f"production#{key}"})["Item"]


def test_out_of_order_updates_leave_the_newest_version_applied(pipeline):
    # (built from the environment the stack gives the function, as a mapping: no test changes os.environ)
    environ = {"SERVICE_NAME": "checkout", "APPLIED_TABLE": pipeline.applied_table_name}
    handler = app.build(SampleServiceSettings.from_environ(environ))
    # When v3 arrives before v2
    assert handler(updated(3, 30), LambdaContext())["applied"] is True
    assert handler(updated(2, 20), LambdaContext())["applied"] is False
    # Then v3 stays applied
    row = applied_row(pipeline)
    assert row["version"] == 3
    assert row["valueHash"] == value_hash(30)
    assert row["deleted"] is False


def test_the_durable_guard_holds_across_cold_starts(pipeline):
    # Two execution environments (no shared memory): v3 applied by one, v2 delivered to the other
    first = update_handler(pipeline)
    second = update_handler(pipeline)
    first(updated(3, 30), LambdaContext())
    second(updated(2, 20), LambdaContext())  # a lost condition is "already newer", not an error
    assert applied_row(pipeline)["version"] == 3
    second(updated(4, 40), LambdaContext())
    assert applied_row(pipeline)["version"] == 4


def test_a_secret_value_is_never_written_to_the_table(pipeline):
    sm = boto3.client("secretsmanager", region_name=REGION)
    from configpipe.stores import secret_version_token

    arn = sm.create_secret(
        Name="configpipe/checkout/production/db_password",
        SecretString='"pw-very-secret"',
        ClientRequestToken=secret_version_token("checkout/production/db_password", 1),
    )["ARN"]
    handler = update_handler(pipeline)
    event = updated(
        1,
        None,
        key="db_password",
        sensitive=True,
        value_inline=False,
        secret_arn=arn,
        value_hash="hmac-sha256:ab",
    )
    assert handler(event, LambdaContext())["applied"] is True
    row = applied_row(pipeline, "db_password")
    assert row["valueHash"] == "hmac-sha256:ab"
    assert "pw-very-secret" not in repr(row)


def test_a_delete_is_recorded_as_a_deleted_version(pipeline):
    handler = update_handler(pipeline)
    handler(updated(1, 5), LambdaContext())
    handler(updated(2, None, deleted=True, operation="delete", value_inline=False), LambdaContext())
    row = applied_row(pipeline)
    assert (row["version"], row["deleted"]) == (2, True)
