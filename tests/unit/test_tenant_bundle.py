"""A tenant's bundle (configpipe/tenant_bundle.py): one parameter equal to the tenant's tree,
rebuilt by the materialiser after every write below the tenant's path, even when another
writer moves the tree between the read and the write."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from configpipe.stores import ParameterStore
from configpipe.tenant_bundle import (
    BUNDLE_MAX_BYTES,
    TenantBundles,
    decode_bundle,
    encode_bundle,
    tenant_bundle_name,
)
from configpipe_tools.harness.aws import REGION

PATH = "/config/checkout/production.tenants/acme/"
BUNDLE = "/config/checkout/production.tenants/acme"


@pytest.fixture
def ssm(aws) -> Any:
    return boto3.client("ssm", region_name=REGION)


def put(ssm: Any, name: str, value: str) -> None:
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def bundle(ssm: Any) -> dict[str, str] | None:
    try:
        text = ssm.get_parameter(Name=BUNDLE)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return decode_bundle(text)


def bundles(ssm: Any) -> TenantBundles:
    return TenantBundles(ParameterStore(ssm), lambda service, env, tenant: {"Tenant": tenant})


def test_the_bundle_is_named_by_the_tenants_path_and_is_not_below_it():
    assert tenant_bundle_name("checkout", "production", "acme") == BUNDLE
    assert not BUNDLE.startswith(PATH)


def test_a_tree_round_trips_and_one_too_large_is_marked_paged():
    tree = {"limit": "5", "limit/rollout": '{"weight":10}', "name": '"Zoë"'}
    assert decode_bundle(encode_bundle(tree)) == tree
    large = {f"key{i}": '"' + "x" * 400 + '"' for i in range(12)}
    text = encode_bundle(large)
    assert len(text.encode()) <= BUNDLE_MAX_BYTES and decode_bundle(text) is None
    # what a reader cannot use it reads page by page: junk, another format, wrong types
    for junk in ("not json", "[]", '{"format":2,"parameters":{}}', '{"format":1,"parameters":{"a":1}}'):
        assert decode_bundle(junk) is None


def test_publish_writes_the_tree_skips_an_equal_bundle_and_deletes_it_when_the_tree_empties(ssm):
    put(ssm, f"{PATH}limit", "5")
    put(ssm, f"{PATH}limit/candidate", "6")
    assert bundles(ssm).publish("checkout", "production", "acme")["writes"] == 1
    assert bundle(ssm) == {"limit": "5", "limit/candidate": "6"}
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=BUNDLE)["TagList"]
    assert tags == [{"Key": "Tenant", "Value": "acme"}]

    # a replayed materialisation finds the bundle right and writes nothing
    assert bundles(ssm).publish("checkout", "production", "acme")["writes"] == 0

    ssm.delete_parameter(Name=f"{PATH}limit")
    ssm.delete_parameter(Name=f"{PATH}limit/candidate")
    bundles(ssm).publish("checkout", "production", "acme")
    assert bundle(ssm) is None
    assert ssm.describe_parameters()["Parameters"] == []


def test_a_writer_that_read_the_tree_before_another_writer_does_not_leave_a_stale_bundle(ssm):
    """Writer A reads the tree; writer B then writes a value and publishes its bundle; A writes
    its (stale) bundle last. A's check after writing sees the tree moved and writes again."""
    put(ssm, f"{PATH}limit", "5")
    other = boto3.client("ssm", region_name=REGION)
    reads = 0

    def writer_b_runs_after_a_reads(**_: Any) -> None:
        nonlocal reads
        reads += 1
        if reads == 1:
            put(other, f"{PATH}timeout", "30")
            bundles(other).publish("checkout", "production", "acme")

    ssm.meta.events.register("after-call.ssm.GetParametersByPath", writer_b_runs_after_a_reads)

    published = bundles(ssm).publish("checkout", "production", "acme")

    assert bundle(ssm) == {"limit": "5", "timeout": "30"}
    assert published["converged"] is True
    assert published["writes"] == 2  # the stale bundle, then the one with B's value


def test_a_tree_that_never_settles_is_left_to_the_writer_moving_it(ssm):
    put(ssm, f"{PATH}limit", "0")
    other = boto3.client("ssm", region_name=REGION)
    moves = iter(range(1, 100))

    def another_write_every_read(**_: Any) -> None:
        put(other, f"{PATH}limit", json.dumps(next(moves)))

    ssm.meta.events.register("after-call.ssm.GetParametersByPath", another_write_every_read)

    published = TenantBundles(ParameterStore(ssm), lambda *_: {}, max_rounds=3).publish(
        "checkout", "production", "acme"
    )

    assert published["converged"] is False
    assert published["writes"] == 3
