"""``ConfigPipeStore`` under the real Powertools ``FeatureFlags``: rules, defaults, pushes that
change ``evaluate`` before any TTL, the last good document when the store is unreachable or
holds something invalid, envelopes. SSM is moto; AWS calls are counted on the client's hooks."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from configpipe.client import ConfigClient, config_update_handler
from configpipe.client.feature_flags import ConfigPipeStore
from configpipe_tools.harness.aws import REGION
from tests.unit.test_client import CallCounter, Clock, as_event, put, update

ROOT = "/config/checkout/production"

FLAGS: dict[str, Any] = {
    "maintenance": {"default": False},
    "new_checkout": {
        "default": False,
        "rules": {
            "tenant-7 first": {
                "when_match": True,
                "conditions": [{"action": "EQUALS", "key": "tenant", "value": "tenant-7"}],
            }
        },
    },
    "rate_limit": {
        "default": 100,
        "boolean_type": False,
        "rules": {
            "big tenants": {
                "when_match": 1000,
                "conditions": [{"action": "IN", "key": "tenant", "value": ["tenant-1", "tenant-2"]}],
            }
        },
    },
}


@pytest.fixture
def ssm(aws):
    client = boto3.client("ssm", region_name=REGION)
    return client, CallCounter(client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(ssm, clock) -> ConfigClient:
    put(f"{ROOT}/flags", FLAGS)
    return ConfigClient("checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock)


@pytest.fixture
def flags(client) -> FeatureFlags:
    return FeatureFlags(store=ConfigPipeStore(client, "flags"))


def test_it_is_a_powertools_store_provider(client):
    assert isinstance(ConfigPipeStore(client, "flags"), StoreProvider)


def test_evaluate_applies_rules_defaults_and_non_boolean_flags(flags):
    assert flags.evaluate(name="maintenance", default=True) is False
    assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is True
    assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-8"}, default=False) is False
    assert flags.evaluate(name="rate_limit", context={"tenant": "tenant-2"}, default=1) == 1000
    assert flags.evaluate(name="rate_limit", context={"tenant": "tenant-9"}, default=1) == 100
    assert flags.evaluate(name="no_such_flag", default="fallback") == "fallback"
    # Powertools counts a non-boolean flag with a truthy value as enabled
    assert flags.get_enabled_features(context={"tenant": "tenant-7"}) == ["new_checkout", "rate_limit"]
    assert flags.get_enabled_features(context={"tenant": "tenant-8"}) == ["rate_limit"]


def test_a_cache_hit_makes_no_aws_call(flags, ssm):
    flags.evaluate(name="maintenance", default=True)
    calls = len(ssm[1].calls)
    for _ in range(100):
        flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False)
    assert len(ssm[1].calls) == calls


def test_a_push_through_the_update_handler_flips_evaluate_before_any_ttl(client, flags, clock):
    # Given a warm store that has read the document
    assert flags.evaluate(name="maintenance", default=False) is False
    handler = config_update_handler("checkout", on_update=lambda u, v: None, client=client)
    # When the update handler applies a new version (the clock does not move: no TTL expires)
    document = {**FLAGS, "maintenance": {"default": True}}
    result = handler(as_event(update("flags", 2, document)), None)
    # Then the very next evaluate sees it
    assert result["applied"] is True
    assert flags.evaluate(name="maintenance", default=False) is True


def test_the_last_good_document_is_served_while_the_store_is_unreachable(client, flags, ssm, clock):
    store = flags.store
    assert isinstance(store, ConfigPipeStore)
    assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is True
    ssm[1].outage = "network"
    clock.now += 61  # the TTL expires: the refresh fails
    assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is True
    assert store.stale is True
    ssm[1].outage = None
    clock.now += 61
    assert flags.evaluate(name="maintenance", default=True) is False
    assert store.stale is False


def test_a_cold_store_that_cannot_read_evaluates_to_the_callers_default(ssm, clock):
    ssm[1].outage = "throttled"
    client = ConfigClient("checkout", "production", ssm_client=ssm[0], clock=clock)
    flags = FeatureFlags(store=ConfigPipeStore(client, "flags"))
    assert flags.evaluate(name="maintenance", default=True) is True
    with pytest.raises(ConfigurationStoreError):
        flags.store.get_configuration()


def test_an_invalid_document_keeps_the_last_good_one(client, flags):
    assert flags.evaluate(name="maintenance", default=True) is False
    # A key the registry does not mark as a flags document can be given anything
    bad = {"maintenance": {"rules": "not rules"}}
    client.apply_update(update("flags", 2, bad))
    assert flags.evaluate(name="maintenance", default=True) is False
    assert flags.evaluate(name="new_checkout", context={"tenant": "tenant-7"}, default=False) is True


def test_a_missing_or_invalid_document_without_a_good_one_gives_the_default(ssm, clock):
    put(f"{ROOT}/flags", ["not", "a", "document"])
    client = ConfigClient("checkout", "production", ssm_client=ssm[0], clock=clock)
    assert FeatureFlags(store=ConfigPipeStore(client, "flags")).evaluate(name="x", default="d") == "d"
    assert FeatureFlags(store=ConfigPipeStore(client, "absent")).evaluate(name="x", default="d") == "d"
    hostile = {"x": {"default": False, "rules": {"r": {"when_match": True, "conditions": [{"action": []}]}}}}
    put(f"{ROOT}/hostile", hostile)
    put(f"{ROOT}/broken", {"x": {"default": "not a boolean"}})
    client.refresh()
    assert FeatureFlags(store=ConfigPipeStore(client, "broken")).evaluate(name="x", default=True) is True
    assert FeatureFlags(store=ConfigPipeStore(client, "hostile")).evaluate(name="x", default=True) is True


def test_an_envelope_selects_the_flags_inside_a_larger_document(ssm, clock):
    put(f"{ROOT}/settings", {"features": FLAGS, "other": {"timeout": 3}})
    client = ConfigClient("checkout", "production", ssm_client=ssm[0], clock=clock)
    store = ConfigPipeStore(client, "settings", envelope="features")
    assert store.get_raw_configuration["other"] == {"timeout": 3}
    assert set(store.get_configuration()) == set(FLAGS)
    assert (
        FeatureFlags(store=store).evaluate(name="rate_limit", context={"tenant": "tenant-1"}, default=0)
        == 1000
    )


def test_a_global_flags_document_is_read_when_the_service_has_none(ssm, clock):
    put("/config/global/production/flags", {"maintenance": {"default": True}})
    client = ConfigClient("checkout", "production", ssm_client=ssm[0], clock=clock)
    assert FeatureFlags(store=ConfigPipeStore(client, "flags")).evaluate(name="maintenance", default=False)
