"""Each function's environment, modelled and checked once at cold start: a function
deployed without its configuration fails loudly on its first invocation, not halfway
through a change.

The models are the only place environment-variable names are spelled (as field aliases):
the stack builds each function's environment from them with :func:`environment_for`, and
the handlers read it with :meth:`Settings.from_environ`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """A function's environment: one field per variable, the variable's name as its alias."""

    # defer_build: a function builds the validator of its own settings model only, not all five.
    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """From the process environment (Lambda's), or from ``environ`` (tests: no test changes
        os.environ, which background threads read)."""
        return cls.model_validate(dict(os.environ if environ is None else environ))

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that holds ``field``."""
        alias = cls.model_fields[field].alias
        if alias is None:  # pragma: no cover - every field of a settings model has one
            raise TypeError(f"{cls.__name__}.{field} has no environment variable")
        return alias


def environment_for(model: type[Settings], /, **values: object) -> dict[str, str]:
    """The environment of a function configured by ``model``, from field names:
    ``environment_for(PropagatorSettings, event_bus_name=..., registry_parameter=...)``.

    The values are validated by the model, so a missing or misspelt field fails at synth, not
    at the function's first invocation. ``None`` leaves an optional variable unset."""
    given = {name: value for name, value in values.items() if value is not None}
    unknown = sorted(set(given) - set(model.model_fields))
    if unknown:
        raise ValueError(f"{model.__name__} has no field {', '.join(unknown)}")
    model.model_validate(given)
    return {model.env_name(name): str(value) for name, value in given.items()}


class ValidatorSettings(Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    secrets_key_id: str = Field(alias="SECRETS_KEY_ID", min_length=1)
    hash_key_id: str = Field(alias="HASH_KEY_ID", min_length=1)
    #: Accept a sensitive key's value in clear (cdk.json ``allowSensitiveValuesInClear``, for a
    #: migration only; docs/security.md M3). Off: SENSITIVE_VALUE_IN_CLEAR.
    sensitive_values_in_clear: bool = Field(alias="ALLOW_SENSITIVE_VALUES_IN_CLEAR", default=False)


class MaterialiserSettings(Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    secrets_key_id: str = Field(alias="SECRETS_KEY_ID", min_length=1)
    #: Read for the Owner / CostCenter tags of what it materialises.
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    inline_value_max_bytes: int = Field(alias="INLINE_VALUE_MAX_BYTES", default=1024, ge=0, le=4096)


class PropagatorSettings(Settings):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    #: Upper bound of concurrent Invoke (and PutEvents) calls of one propagator invocation.
    max_parallel_invokes: int = Field(alias="MAX_PARALLEL_INVOKES", default=100, ge=1, le=256)


class RolloutSettings(Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    #: What an alarm in INSUFFICIENT_DATA (or a missing one) means to a rollout: "rollback"
    #: (AWS AppConfig's default) or "ignore". See docs/rollouts.md.
    rollout_insufficient_data: Literal["rollback", "ignore"] = Field(
        alias="ROLLOUT_INSUFFICIENT_DATA", default="rollback"
    )
    #: The release table, read to follow the releases config rollouts ride on.
    release_table: str = Field(alias="RELEASE_TABLE", min_length=1)


class DriftSettings(Settings):
    """The drift reconcile (issue 14): the materialiser's stores and announcements, plus its mode."""

    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    secrets_key_id: str = Field(alias="SECRETS_KEY_ID", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    #: What a scheduled reconcile does with drift (cdk.json ``drift.mode``); an on-demand
    #: request says it itself (``configpipe drift [--repair]``).
    drift_mode: Literal["repair", "report"] = Field(alias="DRIFT_MODE", default="repair")


#: How long a function trusts its cached copy of the registry.
REGISTRY_MAX_AGE_SECONDS = 60


class RedriveSettings(Settings):
    #: JSON ``{"<queue name>": [function names]}``: the stack's DLQs and
    #: the functions each one holds failures of (configpipe.redrive.parse_queues).
    redrive_queues: str = Field(alias="REDRIVE_QUEUES", min_length=2)


class LedgerSettings(Settings):
    """The delivery-ledger function (issue 14): it writes acknowledgements to this table only."""

    delivery_ledger_table: str = Field(alias="DELIVERY_LEDGER_TABLE", min_length=1)
