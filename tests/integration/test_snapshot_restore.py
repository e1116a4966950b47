"""``configpipe snapshot`` through the whole pipeline in one process (moto): the CLI publishes
the restore's changes on the bus, :class:`Chain` runs validator → materialiser → propagator →
update handlers, and the test looks at what a reader would see (SSM, Secrets Manager, the
announcements, the change log)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from configpipe.changelog import ChangeLog
from configpipe_tools.cli.main import app
from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    return Chain(pipeline)


def cli(pipeline: Pipeline, *args: str) -> Result:
    base = ["--secrets-key", pipeline.secrets_key_id, "--source", CHECKOUT, "--author", "ops@example.com"]
    return CliRunner().invoke(app, [*base, *args])


def body(result: Result) -> Any:
    assert result.exit_code in (0, 3), result.output
    return json.loads(result.stdout)


def put(chain: Chain, key: str, value: Any, **extra: Any) -> None:
    detail = change(key, value, **extra)
    # a secret goes out encrypted, as `configpipe put` sends it (SENSITIVE_VALUE_IN_CLEAR)
    chain.publish(chain.sealed(detail) if extra.get("sensitive") else detail, CHECKOUT)
    chain.run()


def parameter(key: str) -> Any:
    ssm = boto3.client("ssm", region_name=REGION)
    try:
        return json.loads(ssm.get_parameter(Name=f"/config/checkout/production/{key}")["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def secret(key: str) -> str | None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    try:
        return sm.get_secret_value(SecretId=f"configpipe/checkout/production/{key}")["SecretString"]
    except (sm.exceptions.ResourceNotFoundException, sm.exceptions.InvalidRequestException):
        return None


def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(
        pipeline.table_name, table=boto3.resource("dynamodb", region_name=REGION).Table(pipeline.table_name)
    )


def test_restore_brings_back_changed_and_deleted_keys_and_deletes_created_ones(
    pipeline: Pipeline, chain: Chain
):
    # Given a service with three keys, snapshotted
    put(chain, "max_items", 10)
    put(chain, "banner", "hello")
    put(chain, "timeout_ms", 500)
    created = body(
        cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "good", "-o", "json")
    )
    assert created["keys"]["max_items"]["version"] == 1 and created["keyCount"] == 3

    # ... then one key changed, one deleted, one created, one unchanged
    put(chain, "max_items", 99)
    chain.publish(change("banner", None, operation="delete"), CHECKOUT)
    put(chain, "new_flag", True)
    assert parameter("banner") is None and parameter("new_flag") is True

    # When the service is restored to the snapshot
    result = body(
        cli(
            pipeline,
            "snapshot",
            "restore",
            "checkout",
            "production",
            "--label",
            "good",
            "-r",
            "bad deploy",
            "--no-wait",
            "-o",
            "json",
        )
    )
    chain.run()

    # Then readers see exactly the snapshot's values again, and the created key is gone
    assert parameter("max_items") == 10
    assert parameter("banner") == "hello"
    assert parameter("timeout_ms") == 500
    assert parameter("new_flag") is None
    planned = {c["key"]: c for c in result["changes"]}
    assert set(planned) == {"max_items", "banner", "new_flag"}  # timeout_ms unchanged: no change sent
    assert planned["max_items"] == {
        **planned["max_items"],
        "operation": "rollback",
        "toVersion": 1,
        "expectedVersion": 2,
    }
    assert planned["banner"]["operation"] == "rollback" and planned["banner"]["toVersion"] == 1
    assert planned["new_flag"]["operation"] == "delete" and planned["new_flag"]["expectedVersion"] == 1

    # and one restore id ties the changes in the history and in the announcements
    restore_id = result["restoreId"]
    history = log(pipeline)
    for key in planned:
        assert history.current_record("checkout", "production", key).restore_id == restore_id  # type: ignore[union-attr]
    announced = [
        e["detail"]
        for e in chain.seen_events
        if e["detail-type"] == "ConfigurationUpdated" and e["detail"].get("restoreId")
    ]
    assert {d["key"] for d in announced} == set(planned)
    assert {d["restoreId"] for d in announced} == {restore_id}
    # and a diff against the snapshot is now empty
    assert (
        body(cli(pipeline, "snapshot", "diff", "checkout", "production", "good", "-o", "json"))["identical"]
        is True
    )


def test_a_concurrent_edit_during_a_restore_is_a_conflict_not_an_overwrite(pipeline: Pipeline, chain: Chain):
    put(chain, "max_items", 10)
    put(chain, "timeout_ms", 500)
    body(cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "good", "-o", "json"))
    put(chain, "max_items", 20)
    put(chain, "timeout_ms", 900)

    # The restore is planned and published (max_items expected at v2) ...
    result = body(
        cli(
            pipeline,
            "snapshot",
            "restore",
            "checkout",
            "production",
            "--label",
            "good",
            "-r",
            "undo",
            "--no-wait",
            "-o",
            "json",
        )
    )
    # ... and someone else's edit reaches the validator before the restore's changes do
    concurrent = change("max_items", 30, change_id="someone-else")
    accepted = chain.write_path.handle({"id": "e1", "source": CHECKOUT, "detail": concurrent})
    assert accepted.status == "accepted" and accepted.version == 3
    chain.run()

    # The other edit stands; the restore's change for that key was rejected as a conflict
    assert parameter("max_items") == 30
    assert parameter("timeout_ms") == 500  # the key nobody else touched was restored
    ids = {c["key"]: c["changeId"] for c in result["changes"]}
    record = log(pipeline).change(ids["max_items"], CHECKOUT)
    assert record is not None and record.status == "rejected"
    assert [r["code"] for r in record.reasons] == ["VERSION_CONFLICT"]


def test_secrets_are_restored_but_only_shown_as_changed_or_unchanged(pipeline: Pipeline, chain: Chain):
    put(chain, "api_token", "s3cr3t-one", sensitive=True)
    put(chain, "db_password", "same-pass", sensitive=True)
    body(cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "before", "-o", "json"))
    put(chain, "api_token", "s3cr3t-two", sensitive=True)

    diffed = cli(pipeline, "snapshot", "diff", "checkout", "production", "before", "--all", "-o", "json")
    dry = cli(
        pipeline,
        "snapshot",
        "restore",
        "checkout",
        "production",
        "--label",
        "before",
        "-r",
        "x",
        "--dry-run",
        "-o",
        "json",
    )
    table = cli(pipeline, "snapshot", "diff", "checkout", "production", "before", "--all")

    rows = {r["key"]: r for r in body(diffed)["keys"]}
    assert rows["api_token"] == {
        "key": "api_token",
        "status": "changed",
        "fromVersion": 1,
        "toVersion": 2,
        "secret": True,
    }
    assert rows["db_password"]["status"] == "unchanged" and rows["db_password"]["secret"] is True
    for output in (diffed.stdout, dry.stdout, table.stdout):
        assert "s3cr3t" not in output and "same-pass" not in output
    assert secret("api_token") == json.dumps("s3cr3t-two")  # the dry run sent nothing

    cli(
        pipeline, "snapshot", "restore", "checkout", "production", "--label", "before", "-r", "x", "--no-wait"
    )
    chain.run()
    assert json.loads(secret("api_token") or "null") == "s3cr3t-one"
    # (the test's own seeding published clear values; the restore and the pipeline never do)
    restore_events = [e for e in chain.seen_events if e["detail"].get("changeId", "").startswith("restore-")]
    assert {e["detail-type"] for e in restore_events} >= {"ConfigurationChange", "ConfigurationUpdated"}
    for event in restore_events:
        assert "s3cr3t" not in json.dumps(event)


def test_restore_to_a_moment_uses_the_versions_accepted_by_then(pipeline: Pipeline, chain: Chain):
    put(chain, "max_items", 10)
    moment = log(pipeline).current_record("checkout", "production", "max_items").applied_at  # type: ignore[union-attr]
    put(chain, "max_items", 20)
    put(chain, "later_key", 1)

    result = body(
        cli(
            pipeline,
            "snapshot",
            "restore",
            "checkout",
            "production",
            "--at",
            moment,
            "-r",
            "pitr",
            "--no-wait",
            "-o",
            "json",
        )
    )
    chain.run()

    assert {c["key"]: c["operation"] for c in result["changes"]} == {
        "max_items": "rollback",
        "later_key": "delete",
    }
    assert parameter("max_items") == 10 and parameter("later_key") is None


def empty_the_stack(pipeline: Pipeline) -> None:
    """What a freshly deployed stack holds: the resources, no configuration."""
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.table_name)
    for item in table.scan()["Items"]:
        table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    ssm = boto3.client("ssm", region_name=REGION)
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/config", Recursive=True):
        for p in page["Parameters"]:
            ssm.delete_parameter(Name=p["Name"])


def test_export_to_s3_then_import_into_an_empty_stack(pipeline: Pipeline, chain: Chain):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="dr-bucket")
    put(chain, "max_items", 10)
    put(chain, "limits", {"cart": 5, "tiers": ["a", "b"]})
    put(chain, "api_token", "s3cr3t", sensitive=True)
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
            "s3://dr-bucket/backups/",
            "-o",
            "json",
        )
    )
    stored = json.loads(
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket="dr-bucket", Key="backups/checkout/production/dr.json")["Body"]
        .read()
    )

    assert exported["uri"] == "s3://dr-bucket/backups/checkout/production/dr.json"
    assert stored["keys"]["limits"]["value"] == {"cart": 5, "tiers": ["a", "b"]}
    assert stored["keys"]["api_token"] == {
        **stored["keys"]["api_token"],
        "secretRef": "configpipe/checkout/production/api_token",
        "sensitive": True,
    }
    assert "value" not in stored["keys"]["api_token"] and "s3cr3t" not in json.dumps(stored)

    # Disaster: a new, empty stack; the export is replayed into it through the pipeline
    empty_the_stack(pipeline)
    assert parameter("max_items") is None
    imported = body(
        cli(
            pipeline,
            "snapshot",
            "import",
            "--from",
            exported["uri"],
            "-r",
            "dr drill",
            "--no-wait",
            "-o",
            "json",
        )
    )
    chain.run()

    assert parameter("max_items") == 10 and parameter("limits") == {"cart": 5, "tiers": ["a", "b"]}
    assert imported["secretsNotImported"] == ["api_token"]
    assert {c["key"] for c in imported["changes"]} == {"max_items", "limits"}
    record = log(pipeline).current_record("checkout", "production", "limits")
    assert record is not None and record.version == 1 and record.restore_id == imported["importId"]

    # Importing again is refused key by key (expectedVersion 0): nothing is overwritten
    put(chain, "max_items", 11)
    again = cli(
        pipeline,
        "snapshot",
        "import",
        "--from",
        exported["uri"],
        "-r",
        "again",
        "--no-wait",
        "-o",
        "json",
    )
    chain.run()
    assert parameter("max_items") == 11
    for change_ in body(again)["changes"]:
        record_ = log(pipeline).change(change_["changeId"], CHECKOUT)
        assert record_ is not None and record_.status == "rejected"


def test_re_running_a_restore_with_its_restore_id_changes_nothing_twice(pipeline: Pipeline, chain: Chain):
    # changeIds are namespaced by source and a reused one is refused (CHANGE_ID_REUSED): a
    # restore re-run with the same --restore-id re-sends the same changes, which stay duplicates.
    put(chain, "max_items", 10)
    body(cli(pipeline, "snapshot", "create", "checkout", "production", "--label", "good", "-o", "json"))
    put(chain, "max_items", 20)
    restore = ("snapshot", "restore", "checkout", "production", "--label", "good", "-r", "undo")

    # Given a restore published twice under one restore id before the pipeline ran
    first = body(cli(pipeline, *restore, "--restore-id", "restore-rerun", "--no-wait", "-o", "json"))
    again = body(cli(pipeline, *restore, "--restore-id", "restore-rerun", "--no-wait", "-o", "json"))
    assert [c["changeId"] for c in first["changes"]] == [c["changeId"] for c in again["changes"]]
    chain.run()

    # Then the key moved once (the second copy changed nothing) and the restore's record stands
    assert parameter("max_items") == 10
    assert log(pipeline).current("checkout", "production", "max_items").version == 3  # type: ignore[union-attr]
    [step] = first["changes"]
    assert log(pipeline).change(step["changeId"], CHECKOUT).status == "accepted"  # type: ignore[union-attr]
