"""A bad cdk.json context stops synth with a message naming the bad field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stacks.settings import PipelineSettings, SettingsError
from tests.infrastructure.conftest import cdk_context

pytestmark = pytest.mark.infrastructure


def _context(**changes: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context()["configpipe"])
    context.update(changes)
    return context


def test_the_shipped_context_is_valid() -> None:
    settings = PipelineSettings.from_context(_context())
    assert settings.demo_services == ["checkout", "payments", "search"]
    assert settings.bus_name == "configpipe-config-bus"
    assert settings.publisher_accounts == ()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"registry": {"services": {"checkout": {"publisherz": []}}}}, "registry"),
        ({"registry": {"services": {"Bad_Name": {}}}}, "registry.services.Bad_Name"),
        ({"registry": {"services": {"global": {}}}}, "registry.services.global"),
        (
            {"registry": {"environments": ["dev"], "services": {"a": {"environments": ["prod"]}}}},
            "registry.services.a.environments",
        ),
        # issue 19: Owner and CostCenter become the tags of everything materialised
        ({"registry": {"services": {"a": {"costCenter": "CC-1"}}}}, "registry.services.a.owner"),
        ({"registry": {"services": {"a": {"owner": "team-a"}}}}, "registry.services.a.costCenter"),
        (
            {"registry": {"services": {"a": {"owner": "team-a", "costCenter": "CC#1"}}}},
            "registry.services.a.costCenter",
        ),
        (
            {"registry": {"global": {"publishers": ["configpipe.team.p"]}, "services": {}}},
            "registry.global.owner",
        ),
        ({"logRetentionDays": 31}, "logRetentionDays"),
        ({"publisherAccounts": ["12345"]}, "publisherAccounts"),
        ({"inlineValueMaxBytes": 100_000}, "inlineValueMaxBytes"),
        ({"retainData": "yes"}, "retainData"),
        ({"busName": "default"}, "busName"),
        ({"powertoolsLayerVersion": 0}, "powertoolsLayerVersion"),
        ({"registy": {}}, "registy"),
    ],
)
def test_bad_context_is_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError, match=r"configpipe\.") as raised:
        PipelineSettings.from_context(_context(**changes))
    assert raised.value.field == field


def test_missing_context_is_rejected() -> None:
    with pytest.raises(SettingsError, match="missing"):
        PipelineSettings.from_context(None)


# --- sensitive key names (docs/security.md, L) ----------------------------------------------


def _with_sensitive_names(names: list[str], **service: object) -> dict[str, object]:
    context = _context()
    registry = copy.deepcopy(context["registry"])
    registry["sensitiveKeyNames"] = names
    if service:
        registry["services"]["checkout"] = {**registry["services"]["checkout"], **service}
    context["registry"] = registry
    return context


def test_added_sensitive_names_reach_the_registry_document() -> None:
    settings = PipelineSettings.from_context(_with_sensitive_names(["iban", "signing-key"]))

    assert settings.registry.sensitive_key_names == ["iban", "signing-key"]
    assert json.loads(settings.registry.to_document())["sensitiveKeyNames"] == ["iban", "signing-key"]
    assert settings.registry.is_sensitive("db_password", False)  # the built-in list stays


@pytest.mark.parametrize(
    ("names", "service", "problem"),
    [
        (["IBAN"], {}, "sensitiveKeyNames"),
        (["iban", "iban"], {}, "more than once"),
        (["flags"], {"featureFlags": ["checkout.flags"]}, "feature-flags key 'checkout.flags'"),
    ],
)
def test_bad_sensitive_names_stop_synth(names: list[str], service: dict[str, object], problem: str) -> None:
    with pytest.raises(SettingsError, match=r"configpipe\.registry") as raised:
        PipelineSettings.from_context(_with_sensitive_names(names, **service))
    assert problem in str(raised.value)
