"""The release function's environment, modelled and checked once at cold start."""

from __future__ import annotations

from pydantic import Field

from configpipe.registry import Registry
from configpipe.settings import Settings


class ReleaseSettings(Settings):
    release_table: str = Field(alias="RELEASE_TABLE", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    #: The registry slice releases need (services' publishers and functions), as a JSON
    #: document. It is written at synth time from the same registry the IAM policy is derived
    #: from, so what the function may release and what it is allowed to touch never disagree.
    release_registry: str = Field(alias="RELEASE_REGISTRY", min_length=2)

    def registry(self) -> Registry:
        return Registry.model_validate_json(self.release_registry)


def release_registry_document(registry: Registry) -> str:
    """The compact registry the release function gets: only services that have functions,
    only the fields releases use."""
    services = {
        name: {"publishers": entry.publishers, "functions": entry.functions}
        for name, entry in sorted(registry.services.items())
        if entry.functions
    }
    return Registry.model_validate({"services": services}).model_dump_json(
        by_alias=True, include={"services": {name: {"publishers", "functions"} for name in services}}
    )
