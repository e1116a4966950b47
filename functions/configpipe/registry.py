"""The service registry: which services exist, who may change them, what they subscribe to.

Written from ``cdk.json`` context at deploy time into one SSM parameter (a JSON document
shaped like :class:`Registry`), read at run time by the validator and the propagator.
Adding a service is a context edit and a deploy, never a code change.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from configpipe.contracts import (
    GLOBAL_SERVICE,
    PIPELINE_SOURCE,
    ROLLOUT_EVENT_TYPES,
    DetailType,
)
from configpipe.values import SENSITIVE_KEY_NAME_PATTERN, is_sensitive

DEFAULT_ENVIRONMENTS = ("development", "staging", "production")
HANDLER_SUFFIX = "-config-update-handler"
#: Lower-case words joined by hyphens, short enough that ``configpipe-<service>-<consumer>``
#: (and its ``-dlq``) stays a valid queue name.
CONSUMER_NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
CONSUMER_NAME_MAX = 18
SUBSCRIBER_QUEUE_PREFIX = "configpipe-sub-"
#: Receives of one message before SQS moves it to the consumer's DLQ: a callback that keeps
#: failing on one version stops holding up that key's later versions after this many tries.
SUBSCRIBER_MAX_RECEIVES = 5
#: What a consumer's queue receives: new versions, the rollout steps of its keys, and the
#: delivery outcomes (so a consumer can see what its Lambda siblings applied).
SUBSCRIBED_DETAIL_TYPES = (
    DetailType.CONFIGURATION_UPDATED,
    *ROLLOUT_EVENT_TYPES,
    DetailType.CONFIGURATION_DELIVERED,
    DetailType.CONFIGURATION_DELIVERY_FAILED,
)


class _RegistryModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, defer_build=True
    )


#: The tag every parameter and secret configpipe materialises carries, so a sweep can tell
#: them from parameters made by hand (docs/cost.md, docs/architecture.md "Tags").
MANAGED_BY_TAG = ("ManagedBy", "configpipe")


class TenantEntry(_RegistryModel):
    #: Event sources allowed to change this tenant's values, on top of the service's publishers:
    #: a source must be in both lists. Empty: every publisher of the service.
    publishers: list[str] = Field(default_factory=list)


class ServiceEntry(_RegistryModel):
    #: Function invoked on every update that affects the service.
    handler: str = ""
    #: Who answers for the service (team or person) and whom its AWS cost is charged to: the
    #: ``Owner`` and ``CostCenter`` tags of everything materialised for it (required at synth).
    owner: str = ""
    cost_center: str = ""
    #: Event sources (``configpipe.team.<team>``) allowed to change this service's keys.
    publishers: list[str] = Field(default_factory=list)
    #: Environments the service runs in; empty means every allowed environment.
    environments: list[str] = Field(default_factory=list)
    #: Key prefixes the service subscribes to (its own keys and global ones); empty means all.
    key_prefixes: list[str] = Field(default_factory=list)
    #: Optional JSON Schema per key, checked by the validator.
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Keys holding a feature-flags document (docs/feature-flags.md), checked by the validator
    #: with Powertools' feature-flag schema.
    feature_flags: list[str] = Field(default_factory=list)
    #: Lambda functions of this service whose aliases releases may shift (and whose
    #: pre/post-traffic hooks may be invoked); the stack grants alias updates on these only.
    functions: list[str] = Field(default_factory=list)
    #: Deploy the sample update handler for this service (demo services only).
    demo: bool = False
    #: Long-running consumers (containers, jobs, other runtimes) that follow this service's
    #: configuration from a durable queue of their own (docs/consuming.md); the stack creates
    #: each queue, its DLQ and alarm, and a managed policy that reads it.
    consumers: list[
        Annotated[str, StringConstraints(pattern=CONSUMER_NAME_PATTERN, max_length=CONSUMER_NAME_MAX)]
    ] = Field(default_factory=list)
    #: Tenants whose values only some of the service's publishers may change (docs/security.md,
    #: "Tenants"); a tenant not named here may be changed by every publisher of the service.
    tenants: dict[str, TenantEntry] = Field(default_factory=dict)


class GlobalEntry(_RegistryModel):
    publishers: list[str] = Field(default_factory=list)
    owner: str = ""
    cost_center: str = ""
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    feature_flags: list[str] = Field(default_factory=list)


#: At most this many names may be added to the built-in sensitive-name list.
MAX_SENSITIVE_KEY_NAMES = 100


class Registry(_RegistryModel):
    environments: list[str] = Field(default_factory=lambda: list(DEFAULT_ENVIRONMENTS))
    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    global_: GlobalEntry = Field(default_factory=GlobalEntry, alias="global")
    #: Names that mark a key as a secret in addition to the built-in list (never instead of
    #: it): the validator and the CLI read them from this document (docs/security.md).
    sensitive_key_names: list[
        Annotated[str, StringConstraints(pattern=SENSITIVE_KEY_NAME_PATTERN, min_length=2, max_length=64)]
    ] = Field(default_factory=list, max_length=MAX_SENSITIVE_KEY_NAMES)

    def is_sensitive(self, key: str, flagged: bool | None) -> bool:
        """Whether ``key``'s value is a secret: flagged, or named like one (built-in or added)."""
        return is_sensitive(key, flagged, self.sensitive_key_names)

    def handler_of(self, service: str) -> str:
        return self.services[service].handler or f"{service}{HANDLER_SUFFIX}"

    def is_known(self, service: str) -> bool:
        return service == GLOBAL_SERVICE or service in self.services

    def publishers_of(self, service: str) -> list[str]:
        if service == GLOBAL_SERVICE:
            return self.global_.publishers
        return self.services[service].publishers

    def may_publish_tenant(self, service: str, tenant: str, source: str) -> bool:
        """Whether ``source`` (already a publisher of ``service``) may change ``tenant``'s values."""
        entry = self.services.get(service)
        restriction = entry.tenants.get(tenant) if entry is not None else None
        return restriction is None or not restriction.publishers or source in restriction.publishers

    def schema_for(self, service: str, key: str) -> dict[str, Any] | None:
        schemas = self.global_.schemas if service == GLOBAL_SERVICE else self.services[service].schemas
        return schemas.get(key)

    def tags_for(self, service: str, environment: str) -> dict[str, str]:
        """The tags of every parameter and secret materialised for ``service`` in
        ``environment``. Owner / CostCenter are left out only for a service the registry does
        not (or no longer) name, never written empty."""
        entry: ServiceEntry | GlobalEntry | None = (
            self.global_ if service == GLOBAL_SERVICE else self.services.get(service)
        )
        tags = {"Service": service, "Environment": environment, MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1]}
        if entry is not None and entry.owner:
            tags["Owner"] = entry.owner
        if entry is not None and entry.cost_center:
            tags["CostCenter"] = entry.cost_center
        return tags

    def is_feature_flags(self, service: str, key: str) -> bool:
        """Whether ``service``'s ``key`` holds a feature-flags document."""
        if service == GLOBAL_SERVICE:
            return key in self.global_.feature_flags
        entry = self.services.get(service)
        return entry is not None and key in entry.feature_flags

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

    def subscribers(self) -> list[tuple[str, str]]:
        """(service, consumer) of every declared queue consumer, sorted."""
        return sorted((name, c) for name, entry in self.services.items() for c in entry.consumers)

    def subscription_pattern(self, service: str) -> dict[str, Any]:
        """The EventBridge pattern of ``service``'s queue subscriptions: the pipeline's
        announcements for its own and the global keys, narrowed like
        :meth:`affected_services` by its environments and key prefixes."""
        entry = self.services[service]
        detail: dict[str, Any] = {"service": [service, GLOBAL_SERVICE]}
        if entry.environments:
            detail["environment"] = list(entry.environments)
        if entry.key_prefixes:
            detail["key"] = [{"prefix": p} for p in entry.key_prefixes]
        return {
            "source": [PIPELINE_SOURCE],
            "detail-type": [str(t) for t in SUBSCRIBED_DETAIL_TYPES],
            "detail": detail,
        }

    def to_document(self) -> str:
        # Without added names the document stays as it was before they could be added.
        unused = {"sensitive_key_names"} if not self.sensitive_key_names else None
        return self.model_dump_json(by_alias=True, exclude=unused)


def subscriber_queue_name(service: str, consumer: str) -> str:
    """The durable queue of one declared consumer (its DLQ adds ``-dlq``)."""
    return f"{SUBSCRIBER_QUEUE_PREFIX}{service}-{consumer}"
