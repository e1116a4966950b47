"""`configpipe put` treats a key named by the platform's own sensitive names (cdk.json
``configpipe.registry.sensitiveKeyNames``, read from the deployed registry) as a secret: it
encrypts the value before it leaves the machine, as for ``--sensitive``."""

from __future__ import annotations

import json

import pytest

from configpipe_tools.harness.aws import DEMO_REGISTRY, Pipeline, provision
from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log

IBAN = "DE89370400440532013000"


@pytest.fixture
def pipeline(aws) -> Pipeline:
    return provision(registry={**DEMO_REGISTRY, "sensitiveKeyNames": ["iban"]})


def test_put_encrypts_a_key_named_by_an_added_sensitive_name(cli, validator: Validator, pipeline):
    result = cli("put", "checkout", "production", "customer.iban", IBAN, "--reason", "payout account")

    assert_clean_exit(result, 0)
    assert "accepted" in result.stdout
    (event,) = validator.changes()
    assert "value" not in event["detail"] and "encryptedValue" in event["detail"]
    assert event["detail"]["sensitive"] is True
    assert IBAN not in json.dumps(event) and IBAN not in result.output
    record = change_log(pipeline).current_record("checkout", "production", "customer.iban")
    assert record is not None and record.sensitive and record.value_json is None
