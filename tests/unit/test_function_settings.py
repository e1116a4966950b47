"""Each function's settings model is the only place its environment-variable names are spelled;
:func:`environment_for` builds an environment from field names, validated by the model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from configpipe.release.settings import ReleaseSettings
from configpipe.settings import (
    MaterialiserSettings,
    PropagatorSettings,
    Settings,
    ValidatorSettings,
    environment_for,
)
from sample_service.settings import SampleServiceSettings

REPO = Path(__file__).resolve().parents[2]
MODELS: tuple[type[Settings], ...] = (
    ValidatorSettings,
    MaterialiserSettings,
    PropagatorSettings,
    ReleaseSettings,
    SampleServiceSettings,
)
SETTINGS_MODULES = {
    REPO / "functions/configpipe/settings.py",
    REPO / "functions/configpipe/release/settings.py",
    REPO / "functions/sample_service/settings.py",
}


def test_environment_for_maps_field_names_to_the_models_variables() -> None:
    assert environment_for(
        MaterialiserSettings,
        change_log_table="ChangeLog",
        event_bus_name="bus",
        secrets_key_id="key",
        registry_parameter="/r",
        inline_value_max_bytes=512,
    ) == {
        "CHANGE_LOG_TABLE": "ChangeLog",
        "EVENT_BUS_NAME": "bus",
        "SECRETS_KEY_ID": "key",
        "REGISTRY_PARAMETER": "/r",
        "INLINE_VALUE_MAX_BYTES": "512",
    }


def test_environment_for_leaves_an_optional_variable_unset_when_none() -> None:
    env = environment_for(
        SampleServiceSettings, service_name="checkout", applied_table="t", config_environment=None
    )
    assert env == {"SERVICE_NAME": "checkout", "APPLIED_TABLE": "t"}


def test_environment_for_refuses_an_unknown_field() -> None:
    with pytest.raises(ValueError, match="event_bus"):
        environment_for(PropagatorSettings, event_bus="bus", registry_parameter="/r")


def test_environment_for_refuses_a_missing_or_invalid_value() -> None:
    with pytest.raises(ValidationError, match="REGISTRY_PARAMETER"):
        environment_for(PropagatorSettings, event_bus_name="bus")
    with pytest.raises(ValidationError, match="inline_value_max_bytes"):
        environment_for(
            MaterialiserSettings,
            change_log_table="t",
            event_bus_name="b",
            secrets_key_id="k",
            registry_parameter="/r",
            inline_value_max_bytes=10_000,
        )


def test_the_environment_round_trips_through_from_environ() -> None:
    env = environment_for(PropagatorSettings, event_bus_name="bus", registry_parameter="/r")
    assert PropagatorSettings.from_environ(env) == PropagatorSettings(
        event_bus_name="bus", registry_parameter="/r"
    )


def test_no_code_outside_the_settings_models_spells_an_environment_variable_name() -> None:
    names = {Model.env_name(field) for Model in MODELS for field in Model.model_fields}
    offenders = []
    for root in ("functions", "tooling", "stacks", "scripts"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path in SETTINGS_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    spelled = {name for name in names if name in node.value.split() or node.value == name}
                    offenders += [f"{path.relative_to(REPO)}:{node.lineno}: {name}" for name in spelled]
    assert offenders == []
