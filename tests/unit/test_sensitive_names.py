"""Which keys are secrets whatever the publisher's flag says (issue 10, low: the list was narrow,
and the platform may add names to it in cdk.json, never remove any)."""

from __future__ import annotations

import json

import boto3
import pytest
from pydantic import ValidationError

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.registry import Registry
from configpipe.registry_source import RegistrySource
from configpipe.values import is_sensitive
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import DEMO_REGISTRY, Pipeline, provision
from configpipe_tools.harness.events import change, eventbridge_event


@pytest.mark.parametrize(
    "key",
    [
        "db_password",
        "db.pwd",
        "ldap_passwd",
        "orders.dsn",
        "database-connection_string",
        "oauth.client_secret",
        "signing.private_key",
        "auth",
        "upstream.auth.header",
        "tls.cert-key",
        "vault.passphrase",
        "api_token",
    ],
)
def test_named_like_a_secret(key: str) -> None:
    assert is_sensitive(key, None)


@pytest.mark.parametrize(
    "key", ["max_items", "author_display", "authority_url", "dsnless", "feature.oauth_login"]
)
def test_ordinary_names_are_not_secrets(key: str) -> None:
    assert not is_sensitive(key, None)
    assert is_sensitive(key, True)


# --- names the platform adds (cdk.json configpipe.registry.sensitiveKeyNames) -----------------


@pytest.mark.parametrize(
    "key", ["iban", "customer.iban", "IBAN_number", "jwt.signing_key", "jwt-Signing.Key", "signing-key"]
)
def test_an_added_name_marks_whole_segments_of_a_key(key: str) -> None:
    assert not is_sensitive(key, None)
    assert is_sensitive(key, None, ["iban", "signing-key"])


@pytest.mark.parametrize("key", ["libanon", "ibanx", "presigning_key", "signing", "key"])
def test_an_added_name_does_not_match_inside_another_word(key: str) -> None:
    assert not is_sensitive(key, None, ["iban", "signing-key"])


def test_added_names_never_shrink_the_built_in_list() -> None:
    assert is_sensitive("db_password", None, ["iban"])
    assert is_sensitive("orders.dsn", None, ["iban"])


def test_the_registry_carries_the_added_names_and_applies_them() -> None:
    registry = Registry.model_validate({"sensitiveKeyNames": ["iban"]})

    assert registry.is_sensitive("customer.iban", False)
    assert registry.is_sensitive("db_password", False)
    assert not Registry().is_sensitive("customer.iban", False)
    assert json.loads(registry.to_document())["sensitiveKeyNames"] == ["iban"]
    # A registry without added names is written as before they existed (older readers)
    assert "sensitiveKeyNames" not in json.loads(Registry().to_document())


@pytest.mark.parametrize(
    "names",
    [["IBAN"], ["i"], ["two words"], ["iban-"], ["x" * 65], ["na(me"], [f"n{i}" for i in range(101)]],
)
def test_the_registry_refuses_a_malformed_name(names: list[str]) -> None:
    with pytest.raises(ValidationError):
        Registry.model_validate({"sensitiveKeyNames": names})


# --- the validator applies them (moto) ---------------------------------------------------------


@pytest.fixture
def pipeline(aws) -> Pipeline:
    """The demo registry, with ``iban`` added to the sensitive names."""
    return provision(registry={**DEMO_REGISTRY, "sensitiveKeyNames": ["iban"]})


def write_path_of(pipeline: Pipeline) -> WritePath:
    return WritePath(
        change_log=ChangeLog(pipeline.table_name),
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
        secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
    )


def test_the_validator_refuses_an_added_names_value_in_clear_and_writes_nothing_else(pipeline):
    outcome = write_path_of(pipeline).handle(
        eventbridge_event(change("customer.iban", "DE89370400440532013000", change_id="iban-1"))
    )

    assert outcome.codes == ["SENSITIVE_VALUE_IN_CLEAR"]
    assert ChangeLog(pipeline.table_name).current("checkout", "production", "customer.iban") is None
    items = boto3.resource("dynamodb").Table(pipeline.table_name).scan(ConsistentRead=True)["Items"]
    assert "DE89370400440532013000" not in json.dumps(items, default=str)


def test_an_added_names_value_let_in_clear_during_a_migration_is_still_stored_as_a_secret(pipeline):
    # allowSensitiveValuesInClear: the validator encrypts it itself
    write_path = WritePath(
        change_log=ChangeLog(pipeline.table_name),
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
        secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
        sensitive_values_in_clear=True,
    )

    outcome = write_path.handle(
        eventbridge_event(change("customer.iban", "DE89370400440532013000", change_id="iban-2"))
    )

    assert outcome.status == "accepted"
    record = ChangeLog(pipeline.table_name).current_record("checkout", "production", "customer.iban")
    assert record is not None and record.sensitive and record.value_json is None
    assert record.secret_ciphertext is not None
