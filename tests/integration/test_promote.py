"""``configpipe promote`` through the whole pipeline in one process (moto, issue 14): the CLI
shows the diff, publishes one compare-and-set put per differing key as the caller's team,
:class:`Chain` runs validator → materialiser → propagator, and the test looks at the target
environment's change log and stores. A secret is promoted as KMS ciphertext re-encrypted for the
target key — never decrypted by the CLI, never on the bus in clear."""

from __future__ import annotations

import base64
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
SECRET = "staging-db-password-7781"


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    chain = Chain(pipeline)
    for env in ("staging", "production"):
        chain.publish(change("max_items", 10, environment=env), CHECKOUT)
    chain.publish(change("prod_only", "kept", environment="production"), CHECKOUT)
    chain.publish(change("max_items", 25, environment="staging"), CHECKOUT)
    chain.publish(change("banner", "new sale", environment="staging"), CHECKOUT)
    chain.publish(change("same", [1, 2], environment="staging"), CHECKOUT)
    chain.publish(change("same", [1, 2], environment="production"), CHECKOUT)
    chain.publish(
        chain.sealed(change("db_password", SECRET, environment="staging", sensitive=True)), CHECKOUT
    )
    chain.run()
    return chain


def cli(pipeline: Pipeline, *args: str) -> Result:
    base = ["--secrets-key", pipeline.secrets_key_id, "--source", CHECKOUT, "--author", "rel@example.com"]
    return CliRunner().invoke(app, [*base, *args])


def body(result: Result) -> Any:
    return json.loads(result.stdout)


def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(
        pipeline.table_name, table=boto3.resource("dynamodb", region_name=REGION).Table(pipeline.table_name)
    )


def parameter(key: str, env: str = "production") -> Any:
    ssm = boto3.client("ssm", region_name=REGION)
    try:
        return json.loads(ssm.get_parameter(Name=f"/config/checkout/{env}/{key}")["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def secret(key: str, env: str = "production") -> Any:
    sm = boto3.client("secretsmanager", region_name=REGION)
    value = sm.get_secret_value(SecretId=f"configpipe/checkout/{env}/{key}", VersionStage="AWSCURRENT")
    return json.loads(value["SecretString"])


def test_dry_run_shows_the_diff_and_sends_nothing(pipeline: Pipeline, chain: Chain):
    result = cli(
        pipeline, "promote", "checkout", "--from", "staging", "--to", "production", "--dry-run", "-o", "json"
    )

    assert result.exit_code == 0, result.output
    plan = body(result)
    assert {row["key"]: row["status"] for row in plan["diff"]} == {
        "banner": "source-only",
        "db_password": "source-only",
        "max_items": "differs",
        "prod_only": "target-only",
    }
    max_items = next(r for r in plan["diff"] if r["key"] == "max_items")
    assert (max_items["sourceValue"], max_items["targetValue"]) == (25, 10)
    assert next(r for r in plan["diff"] if r["key"] == "db_password")["secret"] is True
    assert SECRET not in result.stdout
    assert sorted((c["key"], c["expectedVersion"]) for c in plan["changes"]) == [
        ("banner", 0),
        ("db_password", 0),
        ("max_items", 1),
    ]
    assert pipeline.bus_events("ConfigurationChange") == []
    assert parameter("max_items") == 10


def test_promotes_each_differing_key_with_one_id_and_keeps_target_only_keys(pipeline: Pipeline, chain: Chain):
    result = cli(
        pipeline, "promote", "checkout", "--from", "staging", "--to", "production", "--no-wait", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    promotion = body(result)
    sent = pipeline.bus_events("ConfigurationChange")
    for event in sent:
        chain.publish(event["detail"], CHECKOUT)
    chain.run()

    assert parameter("max_items") == 25 and parameter("banner") == "new sale"
    assert parameter("prod_only") == "kept" and parameter("same") == [1, 2]
    assert secret("db_password") == SECRET
    records = {
        k: log(pipeline).current_record("checkout", "production", k) for k in ("max_items", "db_password")
    }
    assert {r.restore_id for r in records.values() if r} == {promotion["promotionId"]}
    assert records["max_items"] is not None and records["max_items"].version == 2
    assert records["db_password"] is not None and records["db_password"].sensitive

    # the secret went out as ciphertext for production's key, never in clear
    [secret_change] = [e["detail"] for e in sent if e["detail"]["key"] == "db_password"]
    assert "value" not in secret_change and SECRET not in json.dumps(sent)
    kms = boto3.client("kms", region_name=REGION)
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(
            CiphertextBlob=base64.b64decode(secret_change["encryptedValue"]),
            EncryptionContext={"configpipe:scope": "checkout/staging/db_password"},
        )

    # promoted: nothing differs any more, the secret included (its hashes never compare across keys)
    again = cli(pipeline, "promote", "checkout", "--from", "staging", "--to", "production", "-o", "json")
    assert again.exit_code == 0 and body(again)["changes"] == []


def test_a_concurrent_edit_in_the_target_is_a_conflict_not_an_overwrite(pipeline: Pipeline, chain: Chain):
    result = cli(
        pipeline,
        "promote",
        "checkout",
        "--from",
        "staging",
        "--to",
        "production",
        "--key",
        "max_items",
        "--no-wait",
        "-o",
        "json",
    )
    assert [c["key"] for c in body(result)["changes"]] == ["max_items"]
    promoted = pipeline.bus_events("ConfigurationChange")
    # someone changes production between the diff and the promotion's arrival
    chain.publish(change("max_items", 99, environment="production"), CHECKOUT)
    chain.run()
    for event in promoted:
        chain.publish(event["detail"], CHECKOUT)
    chain.run()

    assert parameter("max_items") == 99
    [record] = [r for r in [log(pipeline).change(body(result)["changes"][0]["changeId"], CHECKOUT)] if r]
    assert record.status == "rejected" and record.reasons[0]["code"] == "VERSION_CONFLICT"


def test_bad_input_is_refused_and_sends_nothing(pipeline: Pipeline, chain: Chain):
    for args, code in (
        (("--from", "staging", "--to", "staging"), "INVALID_SCOPE"),
        (("--from", "Staging!", "--to", "production"), "INVALID_SCOPE"),
        (("--from", "staging", "--to", "production", "--key", "nope"), "KEY_NOT_FOUND"),
    ):
        result = cli(pipeline, "promote", "checkout", *args, "-o", "json")
        assert result.exit_code == 2, result.output
        assert body(result)["error"]["code"] == code
    assert pipeline.bus_events("ConfigurationChange") == []
