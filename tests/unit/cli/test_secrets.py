"""Secrets through the CLI: encrypted before they leave the machine, never printed."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from configpipe.crypto import SCOPE_CONTEXT_KEY
from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log, parse_json

SECRET = "s3cr3t-Hunter2"


@pytest.mark.parametrize(
    ("key", "flags"),
    [("db_conn", ["--sensitive"]), ("db_password", [])],  # flagged, or named like a secret
)
def test_sensitive_put_sends_ciphertext_not_the_value(cli, validator: Validator, pipeline, key, flags):
    # When
    result = cli("put", "checkout", "production", key, SECRET, *flags, "--reason", "rotate")

    # Then the pipeline accepted it
    assert_clean_exit(result, 0)
    assert "accepted" in result.stdout
    # and the event on the bus carries only ciphertext
    (event,) = validator.changes()
    detail = event["detail"]
    assert "value" not in detail
    assert detail["sensitive"] is True
    assert SECRET not in json.dumps(event)
    # which is real KMS ciphertext of the value, bound to this key's scope
    plaintext = boto3.client("kms", region_name="us-east-1").decrypt(
        CiphertextBlob=base64.b64decode(detail["encryptedValue"]),
        EncryptionContext={SCOPE_CONTEXT_KEY: f"checkout/production/{key}"},
    )["Plaintext"]
    assert json.loads(plaintext) == SECRET
    # and the secret never reached the terminal
    assert SECRET not in result.output
    # nor the change log in clear
    record = change_log(pipeline).current_record("checkout", "production", key)
    assert record is not None and record.sensitive and record.value_json is None


def test_sensitive_dry_run_shows_no_value_and_no_diff(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "api_token", SECRET, "-r", "r", "--dry-run", "-o", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["dryRun"]["secret"] is True
    assert body["dryRun"]["diff"] is None
    assert SECRET not in result.output
    assert idle_validator.changes() == []


def test_get_history_and_diff_never_show_a_secret(cli, validator: Validator):
    assert_clean_exit(cli("put", "checkout", "production", "api_token", SECRET, "-r", "one"), 0)
    assert_clean_exit(cli("put", "checkout", "production", "api_token", SECRET + "2", "-r", "two"), 0)

    get = cli("get", "checkout", "production", "api_token")
    get_json = cli("get", "checkout", "production", "api_token", "-o", "json")
    history = cli("history", "checkout", "production", "api_token", "-o", "json")
    diff = cli("diff", "checkout", "production", "api_token", "1", "2")

    assert_clean_exit(get, 0)
    assert "secret" in get.stdout
    assert "configpipe/checkout/production/api_token" in get.stdout  # where to read it instead
    body = parse_json(get_json)
    assert "value" not in body and body["sensitive"] is True
    assert all("value" not in v for v in parse_json(history)["versions"])
    assert_clean_exit(diff, 2)
    assert "is a secret" in diff.stderr
    for result in (get, get_json, history, diff):
        assert SECRET not in result.output


def test_missing_kms_key_is_an_aws_error_with_a_hint(cli, idle_validator: Validator):
    result = cli(
        "--secrets-key", "alias/nope", "put", "checkout", "production", "api_token", SECRET, "-r", "r"
    )

    assert_clean_exit(result, 5)
    assert "--secrets-key" in result.stderr
    assert SECRET not in result.output
    assert idle_validator.changes() == []
