"""Tenant reads in ``ConfigClient`` (tenant → service → global, lazy, LRU-bounded, counted AWS
calls) and per-tenant ordering in the update-handler building block (issue 17)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from configpipe.client import ConfigClient, config_update_handler
from configpipe_tools.harness.aws import REGION
from tests.unit.test_client import CallCounter, Clock, as_event, put, update

TENANTS = "/config/checkout/production.tenants"


def tenant_update(key: str, version: int, value: Any, tenant: str) -> Any:
    """A ``ConfigurationUpdated`` of ``tenant``'s value, as the materialiser announces it."""
    return update(key, version, value, tenant=tenant, parameter_name=f"{TENANTS}/{tenant}/{key}")


@pytest.fixture
def ssm(aws):
    client = boto3.client("ssm", region_name=REGION)
    return client, CallCounter(client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(ssm, clock) -> ConfigClient:
    put("/config/checkout/production/max_items", 50)
    put("/config/checkout/production/endpoint", "https://api.example.com")
    put("/config/global/production/region_label", "eu")
    put(f"{TENANTS}/acme/max_items", 500)
    put(f"{TENANTS}/acme/region_label", "acme-eu")
    return ConfigClient(
        "checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock, max_tenants=3
    )


def test_a_tenant_reads_its_own_value_then_the_service_then_the_global_one(config):
    assert config.get_for_tenant("acme", "max_items") == 500  # its own
    assert config.get_for_tenant("acme", "endpoint") == "https://api.example.com"  # the service's
    assert config.get_for_tenant("acme", "region_label") == "acme-eu"  # its own over global
    assert config.get_for_tenant("globex", "region_label") == "eu"  # global
    assert config.get_for_tenant("globex", "missing", 7) == 7
    # and the service's own reads never see a tenant's values
    assert config.get("max_items") == 50 and config.get("region_label") == "eu"
    assert config.tenant_overrides("acme") == {"max_items": 500, "region_label": "acme-eu"}


def test_the_service_refresh_does_not_read_the_tenants(config, ssm):
    _, counter = ssm
    config.get("max_items")
    # one GetParametersByPath per origin (service, global); none below the tenants' path
    assert counter.calls == ["GetParametersByPath", "GetParametersByPath"]


def test_a_cold_tenant_costs_one_call_however_many_values_and_nothing_while_cached(config, ssm, clock):
    _, counter = ssm
    # 20 values and a rollout of one of them: 22 parameters, 3 pages of GetParametersByPath
    for i in range(20):
        put(f"{TENANTS}/big/key{i}", i)
    put(f"{TENANTS}/big/key0/candidate", 100)
    config.get("max_items")
    counter.calls.clear()

    assert config.get_for_tenant("big", "key7") == 7
    assert counter.calls == ["GetParameter"]  # the tenant's bundle
    assert config.tenant_overrides("big") == {f"key{i}": i for i in range(20)}

    counter.calls.clear()
    assert config.get_for_tenant("nobody", "max_items") == 50  # no values of its own: one call...
    assert counter.calls == ["GetParameter"]  # ...answered "not found"
    counter.calls.clear()
    for _ in range(100):
        config.get_for_tenant("nobody", "max_items")
        config.get_for_tenant("big", "key3")
    assert counter.calls == []  # ...and none after that while cached

    clock.now += 61  # past the TTL: read again (the tenant's bundle; the service's two paths)
    config.get_for_tenant("nobody", "max_items")
    assert sorted(counter.calls) == ["GetParameter", "GetParametersByPath", "GetParametersByPath"]


def test_a_tenant_too_large_for_one_bundle_is_read_page_by_page(config, ssm):
    _, counter = ssm
    long_text = "x" * 400
    for i in range(12):  # 12 x 400 bytes: more than one 4 KB standard parameter holds
        put(f"{TENANTS}/large/key{i}", long_text)
    config.get("max_items")
    counter.calls.clear()

    assert config.get_for_tenant("large", "key11") == long_text
    assert counter.calls == ["GetParameter", "GetParametersByPath", "GetParametersByPath"]
    assert len(config.tenant_overrides("large")) == 12


def test_the_tenant_cache_is_bounded_and_drops_the_least_recently_read(config, ssm):
    _, counter = ssm
    for tenant in ("t1", "t2", "t3"):
        config.get_for_tenant(tenant, "max_items")
    config.get_for_tenant("t1", "max_items")  # t1 is now the most recently read
    config.get_for_tenant("t4", "max_items")  # evicts t2

    assert config.tenants_held == 3
    counter.calls.clear()
    config.get_for_tenant("t1", "max_items")
    assert counter.calls == []
    config.get_for_tenant("t2", "max_items")
    assert counter.calls == ["GetParameter"]
    assert config.tenants_held == 3


def test_a_tenant_id_that_is_not_one_is_refused_before_any_call(config, ssm):
    _, counter = ssm
    config.get("max_items")
    counter.calls.clear()
    for bad in ("../checkout", "Acme", "a/b", ""):
        with pytest.raises(ValueError, match="tenant"):
            config.get_for_tenant(bad, "max_items")
    assert counter.calls == []


def test_a_pushed_tenant_update_makes_the_next_read_fresh_and_never_touches_the_service_value(config):
    assert config.get_for_tenant("acme", "max_items") == 500
    put(f"{TENANTS}/acme/max_items", 900)
    assert config.get_for_tenant("acme", "max_items") == 500  # cached

    assert config.apply_update(tenant_update("max_items", 2, 900, "acme")) is True

    assert config.get_for_tenant("acme", "max_items") == 900
    assert config.get("max_items") == 50


def test_the_update_handler_orders_each_tenant_apart_and_tells_the_callback_the_tenant(config):
    seen: list[tuple[str | None, int, Any]] = []
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: seen.append((u.tenant, u.version, v)), client=config
    )

    # Given the service's value at version 5
    assert handler(as_event(update("max_items", 5, 55)), None)["applied"] is True
    # a tenant's version 1 is not "older" than the service's 5: its sequence is its own
    assert handler(as_event(tenant_update("max_items", 1, 501, "acme")), None)["applied"]
    assert handler(as_event(tenant_update("max_items", 3, 503, "acme")), None)["applied"]
    # an older version of the tenant's value is dropped; another tenant is not affected
    stale = handler(as_event(tenant_update("max_items", 2, 502, "acme")), None)
    assert stale == {"applied": False, "reason": "stale", "version": 2, "heldVersion": 3}
    assert handler(as_event(tenant_update("max_items", 2, 702, "globex")), None)["applied"]
    # and the service's own ordering is unchanged by the tenants' versions
    assert handler(as_event(update("max_items", 4, 44)), None)["applied"] is False

    assert seen == [(None, 5, 55), ("acme", 1, 501), ("acme", 3, 503), ("globex", 2, 702)]
    assert config.get("max_items") == 55
