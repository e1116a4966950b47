"""The service registry: which services exist, who may change them, what they subscribe to.

Written from ``cdk.json`` context at deploy time into one SSM parameter (a JSON document
shaped like :class:`Registry`), read at run time by the validator and the propagator.
Adding a service is a context edit and a deploy, never a code change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from configpipe.contracts import GLOBAL_SERVICE

DEFAULT_ENVIRONMENTS = ("development", "staging", "production")
HANDLER_SUFFIX = "-config-update-handler"


class _RegistryModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, defer_build=True
    )


class ServiceEntry(_RegistryModel):
    #: Function invoked on every update that affects the service.
    handler: str = ""
    #: Event sources (``configpipe.team.<team>``) allowed to change this service's keys.
    publishers: list[str] = Field(default_factory=list)
    #: Environments the service runs in; empty means every allowed environment.
    environments: list[str] = Field(default_factory=list)
    #: Key prefixes the service subscribes to (its own keys and global ones); empty means all.
    key_prefixes: list[str] = Field(default_factory=list)
    #: Optional JSON Schema per key, checked by the validator.
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Lambda functions of this service whose aliases releases may shift (and whose
    #: pre/post-traffic hooks may be invoked); the stack grants alias updates on these only.
    functions: list[str] = Field(default_factory=list)
    #: Deploy the sample update handler for this service (demo services only).
    demo: bool = False


class GlobalEntry(_RegistryModel):
    publishers: list[str] = Field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Registry(_RegistryModel):
    environments: list[str] = Field(default_factory=lambda: list(DEFAULT_ENVIRONMENTS))
    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    global_: GlobalEntry = Field(default_factory=GlobalEntry, alias="global")

    def handler_of(self, service: str) -> str:
        return self.services[service].handler or f"{service}{HANDLER_SUFFIX}"

    def is_known(self, service: str) -> bool:
        return service == GLOBAL_SERVICE or service in self.services

    def publishers_of(self, service: str) -> list[str]:
        if service == GLOBAL_SERVICE:
            return self.global_.publishers
        return self.services[service].publishers

    def schema_for(self, service: str, key: str) -> dict[str, Any] | None:
        schemas = self.global_.schemas if service == GLOBAL_SERVICE else self.services[service].schemas
        return schemas.get(key)

    def affected_services(self, service: str, environment: str, key: str) -> list[str]:
        """Services whose handler must hear about a change of ``service/environment/key``:
        the owning service, or every service for a ``global`` key, narrowed by each
        service's environments and key-prefix subscriptions. Sorted, for stable fan-out."""
        candidates = (
            self.services
            if service == GLOBAL_SERVICE
            else ({service: self.services[service]} if service in self.services else {})
        )
        affected = []
        for name, entry in candidates.items():
            if entry.environments and environment not in entry.environments:
                continue
            if entry.key_prefixes and not any(key.startswith(p) for p in entry.key_prefixes):
                continue
            affected.append(name)
        return sorted(affected)

    def to_document(self) -> str:
        return self.model_dump_json(by_alias=True)
