"""Client helpers: cached reads, typed access, TTL, fallback, pushed updates, the update
handler building block. AWS calls are counted on the clients' own event hooks."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from configpipe.client import (
    ConfigClient,
    ConfigTypeError,
    ConfigUnavailableError,
    config_update_handler,
)
from configpipe.client import config as client_config
from configpipe.contracts import GLOBAL_SERVICE, ConfigurationUpdated
from configpipe.stores import ParameterStore, secret_version_token
from configpipe.tenant_bundle import TenantBundles
from configpipe.values import canonical_json, value_hash
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.events import eventbridge_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CallCounter:
    """Counts every API call a boto3 client makes (before it is sent) and can simulate an
    outage of the store."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.outage: str | None = None  # None, "network" or "throttled"
        client.meta.events.register("before-call.*.*", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> Any:
        self.calls.append(model.name)
        if self.outage == "network":
            raise EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com")
        if self.outage == "throttled":

            class Http:
                status_code = 400

            return Http(), {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return None


TENANT_PARAMETER = re.compile(r"/config/([^/]+)/([^/.]+)\.tenants/([^/]+)/.+")


def put(name: str, value: Any) -> None:
    """Write a parameter as the materialiser does: below a tenant's path, the tenant's bundle
    follows (configpipe/tenant_bundle.py), which is what ``get_for_tenant`` reads."""
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=name, Value=canonical_json(value), Type="String", Overwrite=True)
    publish_bundle_of(name, ssm)


def publish_bundle_of(name: str, ssm: Any = None) -> None:
    """The materialiser's last step after a write below a tenant's path (nothing otherwise)."""
    below_tenant = TENANT_PARAMETER.fullmatch(name)
    if below_tenant is not None:
        store = ParameterStore(ssm or boto3.client("ssm", region_name=REGION))
        TenantBundles(store, lambda *_: {}).publish(*below_tenant.groups())


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
    put("/config/checkout/production/enabled", True)
    put("/config/checkout/production/ratio", 0.25)
    put("/config/checkout/production/endpoint", "https://api.example.com")
    put("/config/checkout/production/limits", {"burst": 10, "rate": 5})
    put("/config/global/production/enabled", False)
    put("/config/global/production/region_label", "eu")
    put("/config/checkout/staging/max_items", 9)
    return ConfigClient("checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock)


def update(key: str, version: int, value: Any = None, **overrides: Any) -> ConfigurationUpdated:
    fields: dict[str, Any] = {
        "change_id": f"c-{key}-{version}",
        "service": "checkout",
        "environment": "production",
        "key": key,
        "operation": "put",
        "version": version,
        "previous_version": version - 1 or None,
        "value_hash": value_hash(value),
        "value": value,
        "value_inline": True,
        "author": "alice",
        "reason": "test",
        "applied_at": datetime.now(UTC),
    }
    fields.update(overrides)
    # the key's own parameter, as the materialiser announces it (whatever scope overrides chose)
    fields.setdefault("parameter_name", f"/config/{fields['service']}/{fields['environment']}/{key}")
    return ConfigurationUpdated(**fields)


def as_event(u: ConfigurationUpdated) -> dict[str, Any]:
    return eventbridge_event(u.to_detail(), detail_type="ConfigurationUpdated", source="configpipe.pipeline")


# --- reads ---------------------------------------------------------------------------------


def test_reads_service_keys_over_global_keys_with_types_and_defaults(config):
    assert config.get_int("max_items") == 50
    assert config.get_bool("enabled") is True  # service key wins over the global one
    assert config.get_str("region_label") == "eu"  # global key, not overridden
    assert config.get_float("ratio") == 0.25
    assert config.get_str("endpoint") == "https://api.example.com"
    assert config.get_json("limits") == {"burst": 10, "rate": 5}
    assert config.get_int("missing", default=7) == 7
    assert config.get_bool("missing", default=True) is True
    assert config.get("missing") is None
    assert config.get_all()["region_label"] == "eu"
    with pytest.raises(ConfigTypeError):
        config.get_int("endpoint")
    with pytest.raises(ConfigTypeError):
        config.get_bool("limits")


def test_a_cache_hit_makes_no_aws_call(config, ssm):
    _, counter = ssm
    config.get("max_items")
    loads = list(counter.calls)
    assert loads == ["GetParametersByPath", "GetParametersByPath"]  # service path + global path
    for _ in range(1000):
        config.get_int("max_items")
        config.get_bool("enabled")
    assert counter.calls == loads


def test_ttl_expiry_refreshes(config, ssm, clock):
    _, counter = ssm
    assert config.get_int("max_items") == 50
    put("/config/checkout/production/max_items", 60)
    clock.now += 59
    assert config.get_int("max_items") == 50  # still within the TTL: cached
    calls = len(counter.calls)
    clock.now += 2
    assert config.get_int("max_items") == 60
    assert len(counter.calls) == calls + 2


def test_a_key_deleted_from_the_store_disappears_on_refresh(config, clock):
    assert config.get_int("max_items") == 50
    boto3.client("ssm", region_name=REGION).delete_parameter(Name="/config/checkout/production/max_items")
    clock.now += 61
    assert config.get("max_items") is None


@pytest.mark.parametrize("outage", ["network", "throttled"])
def test_fallback_serves_the_last_good_value_when_the_store_is_unreachable(
    config, ssm, clock, outage, caplog
):
    _, counter = ssm
    assert config.get_int("max_items") == 50
    # When the store becomes unreachable after the TTL expired
    counter.outage = outage
    clock.now += 61
    # Then the last good value is served and the outage is logged
    with caplog.at_level(logging.WARNING, logger="configpipe.client"):
        assert config.get_int("max_items") == 50
    assert "serving the last good values" in caplog.text
    # and the store is not hammered: no new attempt until the retry delay has passed
    calls = len(counter.calls)
    clock.now += 1
    assert config.get_int("max_items") == 50
    assert len(counter.calls) == calls
    # When the store is back, the next attempt refreshes
    counter.outage = None
    put("/config/checkout/production/max_items", 70)
    clock.now += 5
    assert config.get_int("max_items") == 70


def test_no_last_good_value_is_a_clear_error(ssm, clock):
    client, counter = ssm
    counter.outage = "network"
    config = ConfigClient("checkout", "production", ssm_client=client, clock=clock)
    with pytest.raises(ConfigUnavailableError, match="EndpointConnectionError"):
        config.get("max_items")


def test_secrets_are_read_from_secrets_manager_and_cached(aws, clock):
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.create_secret(Name="configpipe/checkout/production/db_password", SecretString=canonical_json("pw-1"))
    sm.create_secret(Name="configpipe/global/production/shared_token", SecretString=canonical_json("tok"))
    counter = CallCounter(sm)
    config = ConfigClient("checkout", "production", ttl_seconds=60, secrets_client=sm, clock=clock)
    assert config.get_secret("db_password") == "pw-1"
    assert config.get_secret("shared_token") == "tok"  # global secret
    calls = len(counter.calls)
    for _ in range(100):
        assert config.get_secret("db_password") == "pw-1"
    assert len(counter.calls) == calls
    # Fallback to the last good secret while Secrets Manager is unreachable
    counter.outage = "network"
    clock.now += 61
    assert config.get_secret("db_password") == "pw-1"
    with pytest.raises(ConfigUnavailableError):
        config.get_secret("never_read")  # nothing to fall back to


# --- pushed updates --------------------------------------------------------------------


def test_stale_pushed_updates_are_ignored(config):
    config.get("max_items")
    assert config.apply_update(update("max_items", 3, 300)) is True
    assert config.apply_update(update("max_items", 2, 200)) is False
    assert config.apply_update(update("max_items", 3, 999)) is False  # duplicate
    assert config.get_int("max_items") == 300
    assert config.version_of("max_items") == 3


def test_updates_for_other_scopes_are_ignored(config):
    config.get("max_items")
    assert config.apply_update(update("max_items", 5, 1, environment="staging")) is False
    assert config.apply_update(update("max_items", 5, 1, service="payments")) is False
    assert config.get_int("max_items") == 50


def test_a_refresh_does_not_replace_a_newer_pushed_value_with_an_older_store_copy(config, clock):
    config.get("max_items")
    # Given a pushed v2 while the store still (for a moment) holds the older value
    clock.now += 50
    config.apply_update(update("max_items", 2, 75))
    # When the TTL refresh reads the older copy
    clock.now += 11
    # Then the pushed value stays
    assert config.get_int("max_items") == 75
    # Once the push is a TTL old, the store is authoritative again
    put("/config/checkout/production/max_items", 80)
    clock.now += 61
    assert config.get_int("max_items") == 80


def test_pushed_delete_hides_the_key(config):
    config.get("max_items")
    config.apply_update(update("max_items", 4, None, deleted=True, operation="delete", value_inline=False))
    assert config.get("max_items") is None


def test_global_constant_matches_the_contracts():
    assert client_config.GLOBAL_SERVICE == GLOBAL_SERVICE


def test_importing_the_client_is_cheap():
    code = (
        "import sys, configpipe.client; "
        "heavy = [m for m in ('boto3', 'pydantic', 'aws_lambda_powertools') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


# --- the update handler building block ---------------------------------------------------


def test_update_handler_applies_new_versions_and_ignores_stale_ones(config):
    seen: list[tuple[int, Any]] = []
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: seen.append((u.version, v)), client=config
    )
    assert handler(as_event(update("max_items", 3, 300)), None)["applied"] is True
    assert handler(as_event(update("max_items", 2, 200)), None) == {
        "applied": False,
        "reason": "stale",
        "version": 2,
        "heldVersion": 3,
    }
    assert handler(as_event(update("max_items", 3, 300)), None)["applied"] is False  # duplicate delivery
    assert seen == [(3, 300)]
    assert config.get_int("max_items") == 300  # the cache was refreshed by the push


def test_update_handler_reads_a_large_value_from_ssm_exactly_at_its_version(ssm):
    client, _ = ssm
    name = "/config/checkout/production/banner"
    put(name, "a" * 2000)  # v1
    put(name, "b" * 2000)  # v2 is already in the store when v1's announcement arrives
    seen: list[tuple[int, Any]] = []
    handler = config_update_handler(
        "checkout",
        on_update=lambda u, v: seen.append((u.version, v)),
        client=ConfigClient("checkout", "production", ssm_client=client),
    )
    v1 = update("banner", 1, None, value_inline=False, value_hash=value_hash("a" * 2000))
    v2 = update("banner", 2, None, value_inline=False, value_hash=value_hash("b" * 2000))
    handler(as_event(v1), None)
    handler(as_event(v2), None)
    assert seen == [(1, "a" * 2000), (2, "b" * 2000)]


def test_update_handler_reads_a_secret_by_its_version_id_not_from_the_event(aws):
    sm = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/db_password"
    scope = "checkout/production/db_password"
    arn = sm.create_secret(
        Name=name, SecretString=canonical_json("pw-1"), ClientRequestToken=secret_version_token(scope, 1)
    )["ARN"]
    sm.put_secret_value(
        SecretId=name, SecretString=canonical_json("pw-2"), ClientRequestToken=secret_version_token(scope, 2)
    )
    seen: list[tuple[int, Any]] = []
    config = ConfigClient("checkout", "production", secrets_client=sm)
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: seen.append((u.version, v)), client=config
    )
    v1 = update(
        "db_password",
        1,
        None,
        sensitive=True,
        value_inline=False,
        parameter_name=None,
        secret_arn=arn,
        value_hash="hmac-sha256:x",
    )
    handler(as_event(v1), None)
    assert seen == [(1, "pw-1")]  # exactly v1, although v2 is current
    assert json.loads(json.dumps(as_event(v1))).get("detail", {}).get("value") is None


def test_update_handler_skips_a_version_no_longer_in_the_store(ssm):
    client, _ = ssm
    put("/config/checkout/production/banner", "new")
    seen: list[Any] = []
    handler = config_update_handler(
        "checkout",
        on_update=lambda u, v: seen.append(v),
        client=ConfigClient("checkout", "production", ssm_client=client),
    )
    gone = update("banner", 1, None, value_inline=False, value_hash=value_hash("never stored"))
    assert handler(as_event(gone), None)["reason"] == "superseded"
    assert seen == []


def test_a_failing_callback_lets_the_update_be_retried(config):
    attempts: list[int] = []

    def flaky(u: ConfigurationUpdated, v: Any) -> None:
        attempts.append(u.version)
        if len(attempts) == 1:
            raise RuntimeError("downstream unavailable")

    handler = config_update_handler("checkout", on_update=flaky, client=config)
    with pytest.raises(RuntimeError):
        handler(as_event(update("max_items", 4, 1)), None)
    assert handler(as_event(update("max_items", 4, 1)), None)["applied"] is True
    assert attempts == [4, 4]
