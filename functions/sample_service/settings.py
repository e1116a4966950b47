"""The sample update handler's environment, modelled and checked once at cold start."""

from __future__ import annotations

from pydantic import Field

from configpipe.settings import Settings


class SampleServiceSettings(Settings):
    #: The service whose configuration updates this function applies.
    service_name: str = Field(alias="SERVICE_NAME", min_length=1)
    applied_table: str = Field(alias="APPLIED_TABLE", min_length=1)
    #: The environment whose config cache this function keeps warm; unset: no cache.
    config_environment: str | None = Field(alias="CONFIG_ENVIRONMENT", default=None)
    #: The config bus its update handler acknowledges on (issue 14); unset: no acknowledgements.
    ack_bus_name: str | None = Field(alias="ACK_BUS_NAME", default=None)
