"""Each function's environment, modelled and checked once at cold start: a function
deployed without its configuration fails loudly on its first invocation, not halfway
through a change."""

from __future__ import annotations

import os
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    @classmethod
    def from_environ(cls) -> Self:
        return cls.model_validate(dict(os.environ))


class ValidatorSettings(_Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    secrets_key_id: str = Field(alias="SECRETS_KEY_ID", min_length=1)
    hash_key_id: str = Field(alias="HASH_KEY_ID", min_length=1)


class MaterialiserSettings(_Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    secrets_key_id: str = Field(alias="SECRETS_KEY_ID", min_length=1)
    inline_value_max_bytes: int = Field(alias="INLINE_VALUE_MAX_BYTES", default=1024, ge=0, le=4096)


class PropagatorSettings(_Settings):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)


class RolloutSettings(_Settings):
    change_log_table: str = Field(alias="CHANGE_LOG_TABLE", min_length=1)
    registry_parameter: str = Field(alias="REGISTRY_PARAMETER", min_length=1)
    #: What an alarm in INSUFFICIENT_DATA (or a missing one) means to a rollout: "rollback"
    #: (AWS AppConfig's default) or "ignore". See docs/rollouts.md.
    rollout_insufficient_data: Literal["rollback", "ignore"] = Field(
        alias="ROLLOUT_INSUFFICIENT_DATA", default="rollback"
    )
    #: The release table, read to follow the releases config rollouts ride on.
    release_table: str = Field(alias="RELEASE_TABLE", min_length=1)


#: How long a function trusts its cached copy of the registry.
REGISTRY_MAX_AGE_SECONDS = 60
