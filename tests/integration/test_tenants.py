"""Tenants (issue 17): a tenant's value of a key over the service's, through the whole chain in
one process on moto — its own versions, history, rollback, compare-and-set, store location,
KMS encryption context, publishers, announcements and update-handler ordering."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from configpipe.changelog import ChangeLog
from configpipe.client import ConfigClient
from configpipe.crypto import SecretsKey, encode_ciphertext
from configpipe.naming import scope_id
from configpipe_tools.harness.aws import DEMO_REGISTRY, REGION, Pipeline, provision
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"
VIP_OPS = "configpipe.team.vip-ops"


@pytest.fixture
def pipeline(aws) -> Pipeline:
    """The demo registry, plus a tenant ``vip`` of checkout that only vip-ops may change
    (vip-ops also publishes for checkout, so the tenant rule is what refuses checkout's team)."""
    registry: dict[str, Any] = copy.deepcopy(DEMO_REGISTRY)
    checkout = registry["services"]["checkout"]
    checkout["publishers"] = [CHECKOUT, VIP_OPS]
    checkout["tenants"] = {"vip": {"publishers": [VIP_OPS]}}
    return provision(registry)


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    return Chain(pipeline)


@pytest.fixture
def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(pipeline.table_name)


def parameter(name: str) -> Any:
    try:
        value = boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            return None
        raise
    return json.loads(value)


def updates(chain: Chain) -> list[dict[str, Any]]:
    return [e["detail"] for e in chain.seen_events if e["detail-type"] == "ConfigurationUpdated"]


def test_a_tenant_value_has_its_own_versions_store_and_announcement(chain: Chain, log: ChangeLog):
    # Given the service's value at version 2
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.publish(change("max_items", 20), CHECKOUT)
    chain.run()

    # When tenant acme gets its own value twice
    chain.publish(change("max_items", 500, tenant="acme"), CHECKOUT)
    chain.publish(change("max_items", 600, tenant="acme"), CHECKOUT)
    chain.run()

    # Then the tenant's value is versioned on its own, under the tenant's path,
    assert [r.version for r in log.history("checkout", "production", "max_items", tenant="acme")] == [2, 1]
    assert log.current("checkout", "production", "max_items", tenant="acme").version == 2
    assert parameter("/config/checkout/production.tenants/acme/max_items") == 600
    # and the service's value and versions are untouched
    assert log.current("checkout", "production", "max_items").version == 2
    assert [r.version for r in log.history("checkout", "production", "max_items")] == [2, 1]
    assert parameter("/config/checkout/production/max_items") == 20
    assert log.keys("checkout", "production") == [("max_items", 2)]
    assert log.keys("checkout", "production", tenant="acme") == [("max_items", 2)]
    assert log.tenant_overrides("checkout", "production", "max_items") == ["acme"]
    tags = boto3.client("ssm", region_name=REGION).list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/config/checkout/production.tenants/acme/max_items"
    )["TagList"]
    assert {t["Key"]: t["Value"] for t in tags}.items() >= {"Service": "checkout", "Tenant": "acme"}.items()

    # The announcement carries the tenant and the tenant's parameter; the sample service
    # applied it beside (not over) the service's value.
    tenant_updates = [u for u in updates(chain) if u.get("tenant") == "acme"]
    assert [(u["version"], u["parameterName"]) for u in tenant_updates] == [
        (1, "/config/checkout/production.tenants/acme/max_items"),
        (2, "/config/checkout/production.tenants/acme/max_items"),
    ]
    applied = boto3.resource("dynamodb", region_name=REGION).Table(chain.pipeline.applied_table_name)
    rows = {i["sk"]: int(i["version"]) for i in applied.scan(ConsistentRead=True)["Items"]}
    assert rows["production#max_items"] == 2
    assert rows["production#max_items#tenant#acme"] == 2


def test_a_client_reads_a_tenant_with_twenty_values_in_one_call(chain: Chain):
    # Given 20 values of acme's own, written through the whole chain (validator, change log,
    # materialiser)
    chain.publish(change("max_items", 10), CHECKOUT)
    for i in range(20):
        chain.publish(change(f"limit_{i:02}", i, tenant="acme"), CHECKOUT)
    chain.run()
    bundle = parameter("/config/checkout/production.tenants/acme")
    assert bundle["parameters"] == {f"limit_{i:02}": str(i) for i in range(20)}

    # When a service's client reads acme cold
    ssm = boto3.client("ssm", region_name=REGION)
    calls: list[str] = []
    ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    client = ConfigClient("checkout", "production", ssm_client=ssm)
    client.get("max_items")
    calls.clear()

    # Then one call brought every value (GetParametersByPath needed 3: two full pages and an
    # empty one), and the service's value still shows through where acme has none
    assert client.get_for_tenant("acme", "limit_19") == 19
    assert client.get_for_tenant("acme", "max_items") == 10
    assert calls == ["GetParameter"]
    assert client.tenant_overrides("acme") == {f"limit_{i:02}": i for i in range(20)}


def test_rollback_delete_and_expected_version_work_per_tenant(chain: Chain, log: ChangeLog):
    chain.publish(change("max_items", 10), CHECKOUT)
    for value in (100, 200, 300):
        chain.publish(change("max_items", value, tenant="acme"), CHECKOUT)
    chain.run()

    # expectedVersion is compared with the tenant's version (3), not the service's (1)
    chain.publish(change("max_items", 7, tenant="acme", expectedVersion=1, change_id="stale"), CHECKOUT)
    chain.publish(change("max_items", 400, tenant="acme", expectedVersion=3, change_id="fresh"), CHECKOUT)
    chain.run()
    assert log.change("stale", CHECKOUT).reasons[0]["code"] == "VERSION_CONFLICT"
    assert log.change("fresh", CHECKOUT).version == 4

    # rollback to one of the tenant's versions copies that version
    chain.publish(change("max_items", operation="rollback", toVersion=1, tenant="acme"), CHECKOUT)
    chain.run()
    assert parameter("/config/checkout/production.tenants/acme/max_items") == 100
    assert log.current("checkout", "production", "max_items", tenant="acme").version == 5

    # deleting the tenant's value removes only its parameter; the override is no longer counted
    chain.publish(change("max_items", operation="delete", tenant="acme"), CHECKOUT)
    chain.run()
    assert parameter("/config/checkout/production.tenants/acme/max_items") is None
    assert parameter("/config/checkout/production/max_items") == 10
    assert parameter("/config/checkout/production.tenants/acme") is None  # its bundle went with it
    assert log.tenant_overrides("checkout", "production", "max_items") == []
    assert log.current("checkout", "production", "max_items").version == 1


def test_a_tenant_secret_is_bound_to_its_tenant_in_the_kms_encryption_context(
    chain: Chain, log: ChangeLog, pipeline: Pipeline
):
    kms = boto3.client("kms", region_name=REGION)
    key = SecretsKey(pipeline.secrets_key_id, client=kms)
    # A ciphertext made for the service's scope is not accepted for a tenant's value...
    service_sealed = encode_ciphertext(key.encrypt(scope_id("checkout", "production", "api_token"), "s3cr3t"))
    wrong = change("api_token", tenant="acme", encryptedValue=service_sealed, change_id="wrong-scope")
    del wrong["value"]
    chain.publish(wrong, CHECKOUT)
    # ...one made for the tenant's scope is.
    chain.publish(chain.sealed(change("api_token", "acme-s3cr3t", tenant="acme")), CHECKOUT)
    chain.run()

    assert [r["code"] for r in log.change("wrong-scope", CHECKOUT).reasons] == ["INVALID_ENCRYPTED_VALUE"]
    record = log.current_record("checkout", "production", "api_token", tenant="acme")
    assert record is not None and record.sensitive and record.secret_ciphertext is not None
    assert (
        key.decrypt("checkout/production.tenants/acme/api_token", record.secret_ciphertext) == '"acme-s3cr3t"'
    )
    with pytest.raises(Exception, match="not valid"):
        key.decrypt(scope_id("checkout", "production", "api_token"), record.secret_ciphertext)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    stored = secrets.get_secret_value(SecretId="configpipe/checkout/production.tenants/acme/api_token")
    assert json.loads(stored["SecretString"]) == "acme-s3cr3t"
    # never in clear on the bus
    assert "acme-s3cr3t" not in json.dumps(chain.seen_events)


def test_a_restricted_tenant_is_refused_to_other_publishers_and_nothing_is_written(
    chain: Chain, log: ChangeLog
):
    chain.publish(change("max_items", 50, tenant="vip", change_id="by-checkout"), CHECKOUT)
    chain.publish(change("max_items", 60, tenant="vip", change_id="by-vip-ops"), VIP_OPS)
    # an unrestricted tenant of the service takes every publisher of the service
    chain.publish(change("max_items", 70, tenant="acme", change_id="acme-by-vip-ops"), VIP_OPS)
    chain.run()

    refused = log.change("by-checkout", CHECKOUT)
    assert [r["code"] for r in refused.reasons] == ["TENANT_NOT_AUTHORIZED"]
    assert log.change("by-vip-ops", VIP_OPS).status == "accepted"
    assert log.change("acme-by-vip-ops", VIP_OPS).status == "accepted"
    assert [r.change_id for r in log.history("checkout", "production", "max_items", tenant="vip")] == [
        "by-vip-ops"
    ]
    rejected = [e["detail"] for e in chain.seen_events if e["detail-type"] == "ConfigurationRejected"]
    assert [(r["changeId"], r["tenant"]) for r in rejected] == [("by-checkout", "vip")]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"tenant": "Acme"}, "INVALID_TENANT"),
        ({"tenant": "acme/other"}, "INVALID_TENANT"),
        ({"tenant": "-acme"}, "INVALID_TENANT"),
        ({"tenant": "acme", "service": "global"}, "INVALID_TENANT"),
    ],
)
def test_bad_tenants_are_rejected_with_a_stable_code_and_write_nothing(
    chain: Chain, log: ChangeLog, extra: dict[str, Any], code: str
):
    source = "configpipe.team.platform" if extra.get("service") == "global" else CHECKOUT
    chain.publish(change("max_items", 5, change_id="bad", **extra), source)
    chain.run()

    assert code in [r["code"] for r in log.change("bad", source).reasons]
    table = boto3.resource("dynamodb", region_name=REGION).Table(chain.pipeline.table_name)
    assert [i["kind"] for i in table.scan(ConsistentRead=True)["Items"]] == ["change"]
