"""Materialisation and announcement, driven by real change-log stream records (moto)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog, VersionRecord
from configpipe.crypto import SecretsKey
from configpipe.handlers import materialiser as materialiser_handler
from configpipe.materialise import Materialiser
from configpipe.naming import scope_id
from configpipe.observability import logger
from configpipe.settings import MaterialiserSettings
from configpipe.stores import ParameterStore, SecretStore, secret_version_token
from configpipe.values import canonical_json, value_hash
from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.lambda_context import LambdaContext

SECRET = "s3cr3t-Hunter2-do-not-leak"


# --- helpers (also used by the fan-out and sample-service tests) -------------------------


class ChangeWriter:
    """Appends versions to the change log the way the write path does (one transaction each)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.log = ChangeLog(pipeline.table_name)
        self.kms = SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id)
        self._counter = 0

    def append(
        self,
        key: str,
        value: Any = None,
        *,
        service: str = "checkout",
        environment: str = "production",
        operation: str = "put",
        sensitive: bool = False,
        deleted: bool = False,
        rolled_back_to: int | None = None,
    ) -> VersionRecord:
        current = self.log.current(service, environment, key)
        version = (current.version if current else 0) + 1
        self._counter += 1
        scope = scope_id(service, environment, key)
        record = VersionRecord(
            service=service,
            environment=environment,
            key=key,
            version=version,
            previous_version=current.version if current else None,
            operation=operation,
            change_id=f"change-{key}-{version}-{self._counter}",
            author="alice@example.com",
            reason="test",
            source=f"configpipe.team.{service}",
            applied_at=datetime.now(UTC).isoformat(),
            value_hash=(
                "sha256:deleted"
                if deleted
                else (self.kms.hmac(scope, value) if sensitive else value_hash(value))
            ),
            sensitive=sensitive,
            deleted=deleted,
            value_json=None if (deleted or sensitive) else canonical_json(value),
            secret_ciphertext=self.kms.encrypt(scope, value) if (sensitive and not deleted) else None,
            rolled_back_to=rolled_back_to,
            previous_sensitive=current.sensitive if current else None,
        )
        self.log.append(record, payload_hash="sha256:test", received_at=record.applied_at)
        return record


def build_materialiser(pipeline: Pipeline, bus_client: Any = None, inline_max: int = 1024) -> Materialiser:
    return Materialiser(
        change_log=ChangeLog(pipeline.table_name),
        parameters=ParameterStore(boto3.client("ssm", region_name=REGION)),
        secrets=SecretStore(
            boto3.client("secretsmanager", region_name=REGION), kms_key_id=pipeline.secrets_key_id
        ),
        secrets_key=SecretsKey(pipeline.secrets_key_id),
        bus=ConfigBus(pipeline.bus_name, client=bus_client or boto3.client("events", region_name=REGION)),
        inline_value_max_bytes=inline_max,
    )


def version_sequence_numbers(batch: dict[str, Any], key_suffix: str = "") -> list[str]:
    return [
        r["dynamodb"]["SequenceNumber"]
        for r in batch["Records"]
        if r["dynamodb"]["NewImage"]["kind"]["S"] == "version"
        and r["dynamodb"]["NewImage"]["pk"]["S"].endswith(key_suffix)
    ]


def run_materialiser(event: dict[str, Any], materialiser: Materialiser) -> dict[str, Any]:
    return materialiser_handler.handler(event, LambdaContext(), materialiser=materialiser)


def ssm_value(name: str) -> Any:
    try:
        text = boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"]
    except boto3.client("ssm", region_name=REGION).exceptions.ParameterNotFound:
        return "<absent>"
    return json.loads(text)


def updated_details(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e["detail"] for e in pipeline.bus_events("ConfigurationUpdated")]


@pytest.fixture
def powertools_logs(caplog):
    """Everything the Powertools logger emits, formatted exactly as it goes to CloudWatch
    (JSON with every extra key, exception and stack trace)."""
    caplog.set_level(logging.DEBUG, logger=logger.name)
    caplog.handler.setFormatter(logger.registered_formatter)
    return caplog


@pytest.fixture
def writer(pipeline: Pipeline) -> ChangeWriter:
    return ChangeWriter(pipeline)


@pytest.fixture
def materialiser(pipeline: Pipeline) -> Materialiser:
    return build_materialiser(pipeline)


# --- ordinary values ----------------------------------------------------------------------


def test_put_is_written_to_ssm_as_canonical_json_and_announced_inline(pipeline, writer, materialiser):
    # Given an accepted put
    writer.append("max_items", {"b": 2, "a": [1, True]})
    # When the materialiser handles the stream batch
    response = run_materialiser(pipeline.stream_event(), materialiser)
    # Then SSM holds the canonical JSON and ConfigurationUpdated carries the value inline
    assert response == {"batchItemFailures": []}
    text = boto3.client("ssm", region_name=REGION).get_parameter(Name="/config/checkout/production/max_items")
    assert text["Parameter"]["Value"] == '{"a":[1,true],"b":2}'
    assert text["Parameter"]["Type"] == "String"
    [detail] = updated_details(pipeline)
    assert detail["version"] == 1
    assert detail["value"] == {"a": [1, True], "b": 2}
    assert detail["valueInline"] is True
    assert detail["parameterName"] == "/config/checkout/production/max_items"
    assert detail["valueHash"] == value_hash({"a": [1, True], "b": 2})
    assert "secretArn" not in detail


def test_large_value_is_announced_by_reference_only(pipeline, writer):
    writer.append("banner", "x" * 2000)
    run_materialiser(pipeline.stream_event(), build_materialiser(pipeline, inline_max=1024))
    [detail] = updated_details(pipeline)
    assert "value" not in detail
    assert detail["valueInline"] is False
    assert detail["parameterName"] == "/config/checkout/production/banner"
    assert ssm_value("/config/checkout/production/banner") == "x" * 2000


def test_delete_removes_the_parameter_and_announces_a_tombstone(pipeline, writer, materialiser):
    writer.append("feature.x", True)
    run_materialiser(pipeline.stream_event(), materialiser)
    pipeline.bus_events()
    # When the key is deleted
    writer.append("feature.x", operation="delete", deleted=True)
    assert run_materialiser(pipeline.stream_event(), materialiser) == {"batchItemFailures": []}
    # Then the parameter is gone and the announcement is a tombstone without a value
    assert ssm_value("/config/checkout/production/feature.x") == "<absent>"
    [detail] = updated_details(pipeline)
    assert detail["deleted"] is True
    assert detail["operation"] == "delete"
    assert detail["version"] == 2
    assert "value" not in detail


def test_rollback_shaped_version_materialises_the_old_value_as_a_new_version(pipeline, writer, materialiser):
    writer.append("rate", 10)
    writer.append("rate", 20)
    writer.append("rate", 10, operation="rollback", rolled_back_to=1)
    run_materialiser(pipeline.stream_event(), materialiser)
    assert ssm_value("/config/checkout/production/rate") == 10
    rollback = [d for d in updated_details(pipeline) if d["version"] == 3]
    assert rollback[0]["operation"] == "rollback"
    assert rollback[0]["rolledBackTo"] == 1
    assert rollback[0]["value"] == 10


def test_replaying_an_old_record_after_a_newer_version_never_writes_the_old_value(
    pipeline, writer, materialiser
):
    # Given v1 materialised, its stream record kept for replay
    writer.append("limit", 1)
    old_batch = pipeline.stream_event()
    run_materialiser(old_batch, materialiser)
    # and v2 materialised after it
    writer.append("limit", 2)
    run_materialiser(pipeline.stream_event(), materialiser)
    assert ssm_value("/config/checkout/production/limit") == 2
    pipeline.bus_events()
    # When v1's record is replayed (redrive from the stream DLQ, ESM retry, ...)
    assert run_materialiser(old_batch, materialiser) == {"batchItemFailures": []}
    # Then SSM still holds v2; the replayed announcement says v1, which consumers holding v2 drop
    assert ssm_value("/config/checkout/production/limit") == 2
    assert [d["version"] for d in updated_details(pipeline)] == [1]


def test_an_out_of_order_record_materialises_the_current_version_not_its_own(pipeline, writer, materialiser):
    writer.append("limit", 1)
    writer.append("limit", 2)
    batch = pipeline.stream_event()
    v1_records = [r for r in batch["Records"] if r["dynamodb"]["NewImage"].get("version", {}).get("N") == "1"]
    v1_only = {"Records": [r for r in v1_records if r["dynamodb"]["NewImage"]["kind"]["S"] == "version"]}
    # When only v1's record is processed (v2's has not been reached yet)
    run_materialiser(v1_only, materialiser)
    # Then SSM already holds v2, the current version
    assert ssm_value("/config/checkout/production/limit") == 2


def test_a_pointer_moving_during_materialisation_is_followed(pipeline, writer):
    """The re-read after the write catches a version accepted while we were writing."""
    writer.append("limit", 1)
    batch = pipeline.stream_event()

    class AcceptsDuringWrite(ParameterStore):
        appended = False

        def put(self, name: str, value: str, tags: dict[str, str] | None = None) -> int:
            version = super().put(name, value, tags)
            if not self.appended:
                self.appended = True
                writer.append("limit", 2)  # a concurrent writer commits v2 right after our write
            return version

    materialiser = build_materialiser(pipeline)
    materialiser._parameters = AcceptsDuringWrite(boto3.client("ssm", region_name=REGION))
    run_materialiser(batch, materialiser)
    assert ssm_value("/config/checkout/production/limit") == 2


# --- crash between steps ------------------------------------------------------------------


class EventsFailingOnce:
    """An EventBridge client whose first PutEvents dies (the process crashing between the SSM
    write and the announcement); later calls go to the real client."""

    def __init__(self) -> None:
        self._real = boto3.client("events", region_name=REGION)
        self.calls = 0

    def put_events(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("process died before announcing")
        return self._real.put_events(**kwargs)


def _final_state(pipeline: Pipeline) -> tuple[Any, list[tuple[int, Any]]]:
    details = updated_details(pipeline)
    return ssm_value("/config/checkout/production/limit"), sorted(
        {(d["version"], json.dumps(d.get("value"))) for d in details}
    )


def test_crash_between_ssm_write_and_announcement_then_retry_equals_no_crash(pipeline, writer):
    writer.append("limit", 5)
    batch = pipeline.stream_event()
    # When the announcement fails once
    crashing = build_materialiser(pipeline, bus_client=EventsFailingOnce())
    first = run_materialiser(batch, crashing)
    # Then the record is reported as a batch item failure (the ESM retries it)
    [failure] = first["batchItemFailures"]
    assert failure["itemIdentifier"] == version_sequence_numbers(batch)[0]
    assert pipeline.bus_events("ConfigurationUpdated") == []
    # When the ESM retries the same record
    assert run_materialiser(batch, crashing) == {"batchItemFailures": []}
    crashed_state = _final_state(pipeline)
    # Then the state equals a run without the crash (replayed into a fresh key for comparison)
    assert crashed_state == (5, [(1, "5")])
    assert run_materialiser(batch, build_materialiser(pipeline)) == {"batchItemFailures": []}
    assert _final_state(pipeline) == crashed_state


def test_one_bad_record_does_not_block_the_others(pipeline, writer, materialiser):
    writer.append("good", 1)
    writer.append("db_password", SECRET, sensitive=True)
    batch = pipeline.stream_event()
    # Corrupt the secret's ciphertext in the change log: decrypt fails for that record only
    boto3.resource("dynamodb", region_name=REGION).Table(pipeline.table_name).update_item(
        Key={"pk": "KEY#checkout#production#db_password", "sk": "V#0000000001"},
        UpdateExpression="SET secretCiphertext = :c",
        ExpressionAttributeValues={":c": b"not a ciphertext"},
    )
    response = run_materialiser(batch, materialiser)
    bad = version_sequence_numbers(batch, "#db_password")
    assert response == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}
    assert ssm_value("/config/checkout/production/good") == 1


# --- secrets ------------------------------------------------------------------------------


def test_sensitive_value_goes_to_secrets_manager_only_and_never_leaks(
    pipeline, writer, materialiser, powertools_logs
):
    writer.append("db_password", SECRET, sensitive=True)
    response = run_materialiser(pipeline.stream_event(), materialiser)
    assert response == {"batchItemFailures": []}
    sm = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/db_password"
    scope = "checkout/production/db_password"
    # Secrets Manager holds it, under the pipeline's key, version id derived from (key, version)
    current = sm.get_secret_value(SecretId=name)
    assert json.loads(current["SecretString"]) == SECRET
    assert current["VersionId"] == secret_version_token(scope, 1)
    described = sm.describe_secret(SecretId=name)
    assert described["KmsKeyId"] == pipeline.secrets_key_id
    assert {"Key": "configpipe:service", "Value": "checkout"} in described["Tags"]
    # Not SSM
    assert ssm_value("/config/checkout/production/db_password") == "<absent>"
    params = boto3.client("ssm", region_name=REGION).get_parameters_by_path(Path="/config/", Recursive=True)
    assert SECRET not in json.dumps(params, default=str)
    # Not the bus: only the ARN
    events = pipeline.bus_events()
    assert SECRET not in json.dumps(events)
    [detail] = [e["detail"] for e in events if e["detail-type"] == "ConfigurationUpdated"]
    assert detail["secretArn"] == described["ARN"]
    assert detail["sensitive"] is True
    assert "value" not in detail
    # Not the logs
    assert "secret materialised" in powertools_logs.text
    assert SECRET not in powertools_logs.text


def test_a_secret_never_reaches_the_logs_even_when_its_record_fails(pipeline, writer, powertools_logs):
    writer.append("api_token", SECRET, sensitive=True)
    batch = pipeline.stream_event()
    materialiser = build_materialiser(pipeline, bus_client=EventsFailingOnce())
    response = run_materialiser(batch, materialiser)
    assert len(response["batchItemFailures"]) == 1
    assert '"message":"stream record failed' in powertools_logs.text
    assert "Traceback" in powertools_logs.text
    assert SECRET not in powertools_logs.text


def test_secret_retry_is_a_no_op_and_delete_then_put_restores_it(pipeline, writer, materialiser):
    sm = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/db_password"
    writer.append("db_password", "first", sensitive=True)
    batch = pipeline.stream_event()
    run_materialiser(batch, materialiser)
    run_materialiser(batch, materialiser)  # ESM retry of the same record
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert len(versions) == 1
    # When the key is deleted, the secret is scheduled for deletion
    writer.append("db_password", operation="delete", deleted=True, sensitive=True)
    run_materialiser(pipeline.stream_event(), materialiser)
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    # When it is put again, the secret is restored with the new value
    writer.append("db_password", "second", sensitive=True)
    run_materialiser(pipeline.stream_event(), materialiser)
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert json.loads(sm.get_secret_value(SecretId=name)["SecretString"]) == "second"


# --- rejections ---------------------------------------------------------------------------


def test_rejected_change_is_announced_with_its_reasons_and_no_value(pipeline, materialiser):
    ChangeLog(pipeline.table_name).record_rejection(
        change_id="bad-1",
        payload_hash="sha256:x",
        source="configpipe.team.checkout",
        reasons=[
            {"code": "VALUE_TOO_LARGE", "message": "value is 5000 bytes, at most 4096", "field": "value"}
        ],
        identity={"service": "checkout", "environment": "production", "key": "max_items", "operation": "put"},
        received_at="2026-11-25T08:00:00+00:00",
    )
    assert run_materialiser(pipeline.stream_event(), materialiser) == {"batchItemFailures": []}
    [event] = pipeline.bus_events("ConfigurationRejected")
    assert event["source"] == "configpipe.pipeline"
    assert event["detail"] == {
        "changeId": "bad-1",
        "service": "checkout",
        "environment": "production",
        "key": "max_items",
        "operation": "put",
        "source": "configpipe.team.checkout",
        "reasons": [
            {"code": "VALUE_TOO_LARGE", "message": "value is 5000 bytes, at most 4096", "field": "value"}
        ],
        "rejectedAt": "2026-11-25T08:00:00Z",
    }
    assert pipeline.bus_events("ConfigurationUpdated") == []


def test_handler_builds_its_dependencies_from_the_environment(pipeline, writer):
    materialiser = materialiser_handler.build(MaterialiserSettings.from_environ(pipeline.env()))
    writer.append("max_items", 7)
    answer = materialiser_handler.handler(pipeline.stream_event(), LambdaContext(), materialiser=materialiser)
    assert answer == {"batchItemFailures": []}
    assert ssm_value("/config/checkout/production/max_items") == 7


# --- a key moving between SSM and Secrets Manager ------------------------------------------------


def secret_state(name: str) -> str:
    client = boto3.client("secretsmanager", region_name=REGION)
    try:
        described = client.describe_secret(SecretId=name)
    except client.exceptions.ResourceNotFoundException:
        return "<absent>"
    return "scheduled-for-deletion" if "DeletedDate" in described else "live"


def test_a_key_that_becomes_sensitive_leaves_no_clear_copy_in_ssm(pipeline, writer, materialiser):
    writer.append("vendor_key", "plain-v1")
    run_materialiser(pipeline.stream_event(), materialiser)
    writer.append("vendor_key", "now-a-secret", sensitive=True)

    run_materialiser(pipeline.stream_event(), materialiser)

    assert ssm_value("/config/checkout/production/vendor_key") == "<absent>"
    assert secret_state("configpipe/checkout/production/vendor_key") == "live"


def test_a_key_that_stops_being_sensitive_schedules_its_secret_for_deletion(pipeline, writer, materialiser):
    writer.append("vendor_key", "secret-v1", sensitive=True)
    run_materialiser(pipeline.stream_event(), materialiser)
    writer.append("vendor_key", "plain-v2")

    run_materialiser(pipeline.stream_event(), materialiser)

    assert ssm_value("/config/checkout/production/vendor_key") == "plain-v2"
    assert secret_state("configpipe/checkout/production/vendor_key") == "scheduled-for-deletion"


def test_a_late_record_of_a_flip_still_cleans_up_when_the_current_version_is_not_a_flip(
    pipeline, writer, materialiser
):
    # Given plain v1, secret v2, plain v3 — all accepted before the stream is processed,
    # so v2's record is materialised while v3 (plain → plain, no flip) is already current
    writer.append("vendor_key", "plain-v1")
    run_materialiser(pipeline.stream_event(), materialiser)
    writer.append("vendor_key", "secret-v2", sensitive=True)
    batch = pipeline.stream_event()
    run_materialiser(batch, materialiser)  # v2 materialised: the secret exists
    writer.append("vendor_key", "plain-v3")
    pending = pipeline.stream_event()

    # When v2's record is redelivered late, then v3's arrives
    run_materialiser(batch, materialiser)
    run_materialiser(pending, materialiser)

    # Then no copy of the secret survives and SSM holds v3
    assert ssm_value("/config/checkout/production/vendor_key") == "plain-v3"
    assert secret_state("configpipe/checkout/production/vendor_key") == "scheduled-for-deletion"


def test_a_plain_update_makes_no_secrets_manager_call(pipeline, writer, materialiser):
    writer.append("rate_limit", 1)
    run_materialiser(pipeline.stream_event(), materialiser)
    writer.append("rate_limit", 2)
    calls: list[str] = []
    secrets_client = materialiser._secrets.client
    secrets_client.meta.events.register(
        "before-call.secrets-manager", lambda model, **_: calls.append(model.name)
    )

    run_materialiser(pipeline.stream_event(), materialiser)

    assert ssm_value("/config/checkout/production/rate_limit") == 2
    assert calls == []
