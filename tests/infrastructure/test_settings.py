"""A bad cdk.json context stops synth with a message naming the bad field."""

from __future__ import annotations

import copy
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
