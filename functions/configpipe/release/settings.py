"""The release function's environment, modelled and checked once at cold start."""

from __future__ import annotations

import json

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


class VersionPruneSettings(Settings):
    """The scheduled version prune (issue 16, configpipe.handlers.version_prune)."""

    release_table: str = Field(alias="RELEASE_TABLE", min_length=1)
    #: JSON ``{"<function name>": <keep>}``: the functions whose scheduled prune is on, each
    #: with how many newest versions it always keeps. Written at synth from the same setting
    #: the IAM policy and the schedules are derived from; a request for any other function is
    #: refused before any AWS call.
    prune_functions: str = Field(alias="PRUNE_FUNCTIONS", min_length=2)

    def keep_per_function(self) -> dict[str, int]:
        parsed = json.loads(self.prune_functions)
        return {str(name): int(keep) for name, keep in parsed.items()}
