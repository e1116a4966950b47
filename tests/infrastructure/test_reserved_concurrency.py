"""Every function has reserved concurrency from the ``reservedConcurrency`` context (defaults in
stacks/settings.py), so a flood of events cannot take the account's concurrency or starve one
pipeline function for another (docs/security.md, L); a bad value stops synth."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.settings import DEFAULT_RESERVED_CONCURRENCY, PipelineSettings, SettingsError
from tests.infrastructure.conftest import cdk_context, resources

pytestmark = pytest.mark.infrastructure


def _context(**changes: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context()["configpipe"])
    context.update(changes)
    return context


def _service_name(function: dict[str, Any]) -> str:
    return str(function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"])


def test_every_function_reserves_its_default_concurrency(template_json: dict[str, Any]) -> None:
    functions = resources(template_json, "AWS::Lambda::Function")
    ours = {k: f for k, f in functions.items() if "POWERTOOLS_SERVICE_NAME" in str(f["Properties"])}
    assert ours  # the pipeline's functions, not CDK's own custom-resource providers

    reserved = {_service_name(f): f["Properties"].get("ReservedConcurrentExecutions") for f in ours.values()}
    expected = {
        name: DEFAULT_RESERVED_CONCURRENCY[
            "updateHandler" if name.endswith("-config-update-handler") else name
        ]
        for name in reserved
    }
    assert reserved == expected
    assert reserved["validator"] == 10 and reserved["redrive"] == 1


def test_the_context_overrides_a_default_and_null_leaves_a_function_unreserved() -> None:
    settings = PipelineSettings.from_context(
        _context(reservedConcurrency={"validator": 50, "updateHandler": None})
    )
    assert settings.reserved_concurrency["validator"] == 50
    assert settings.reserved_concurrency["updateHandler"] is None
    assert settings.reserved_concurrency["propagator"] == DEFAULT_RESERVED_CONCURRENCY["propagator"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"validatr": 5}, "reservedConcurrency.validatr"),
        ({"validator": 0}, "reservedConcurrency.validator"),  # 0 stops it: an outage, not a limit
        ({"validator": -1}, "reservedConcurrency.validator"),
        ({"validator": "10"}, "reservedConcurrency.validator"),
        ({"validator": True}, "reservedConcurrency.validator"),
        ({"validator": 1001}, "reservedConcurrency.validator"),
        ([10], "reservedConcurrency"),
    ],
)
def test_a_bad_reserved_concurrency_stops_synth_naming_the_field(value: Any, field: str) -> None:
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_context(_context(reservedConcurrency=value))
    assert error.value.field == field
