"""The sample ``<service>-config-update-handler``: what a service team writes on top of
:func:`configpipe.client.config_update_handler`.

Its callbacks record what it applied in the ``DemoApplied`` table with conditional writes,
durable guards that hold across cold starts and concurrent executions; a lost condition
means something at least as new is already recorded, which is success, not an error:

* ``ConfigurationUpdated`` — pk = service, sk = ``{environment}#{key}``: version, valueHash,
  deleted, appliedAt; condition ``attribute_not_exists(pk) OR version < :v``.
* ``ConfigurationRollout*`` — pk = service, sk = ``{environment}#{key}#rollout`` (a tenant's
  rollout: ``{environment}#{key}#tenant#{tenant}#rollout``): rollout id,
  status, weight, stable and candidate versions, sequence, candidate valueHash; condition on
  (candidateVersion, sequence). A separate row, so a rollout never claims that its
  candidate version is *the* applied version (only completion's ``ConfigurationUpdated``
  does that).

Values themselves are never written (only hashes), so a secret cannot leak into the table.

Its own check (issue 14): a ``timeout_ms`` key (or one ending ``.timeout_ms``) must be a positive
integer of milliseconds the service can use; any other value is refused with
:class:`~configpipe.client.ConfigurationRefusedError` — the last good value stays, and with
``ACK_BUS_NAME`` set the refusal is acknowledged on the bus, where the delivery ledger records it.

The function also answers a direct invoke ``{"tenant": "t-1", "key": "max_items"}`` (optional
``"environment"``) with the value that tenant reads through ``ConfigClient.get(key,
subject=tenant)`` — the per-tenant read the rollout demo and e2e tests observe — and a direct
invoke ``{"tenant": "t-1", "serve": true}`` with how it would serve that tenant's request,
decided by OpenFeature flags from the ``flags`` document (docs/feature-flags.md): the
``maintenance`` flag (503) and the ``rate_limit`` flag, each with its reason. The flags are read
through the same client the update handler applies pushes to, so a flag change shows at once.

Wired like every configpipe function: its environment is
:class:`~sample_service.settings.SampleServiceSettings`, :func:`build` makes the handler from
it (the table and the config client injectable for tests), and :func:`default` builds it once
per execution environment, on first use.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from configpipe.client import (
    BusAcknowledgements,
    ConfigClient,
    ConfigurationRefusedError,
    config_update_handler,
)
from configpipe.naming import TENANT_PATTERN
from configpipe.values import value_hash
from sample_service.settings import SampleServiceSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

    from configpipe.client.update_handler import LambdaHandler
    from configpipe.contracts import ConfigurationRolloutEvent, ConfigurationUpdated

log = logging.getLogger("sample_service")

#: The key of the service's flags document, and the flags the sample serves by.
FLAGS_KEY = "flags"
MAINTENANCE_FLAG = "maintenance"
RATE_LIMIT_FLAG = "rate_limit"
DEFAULT_RATE_LIMIT = 100
#: Keys the sample's own check guards, and the largest timeout it accepts (one minute).
TIMEOUT_KEY = "timeout_ms"
MAX_TIMEOUT_MS = 60_000


def check(update: ConfigurationUpdated, value: Any) -> None:
    """The service's own check of a value before it runs with it ("an invalid value keeps the
    last good one"). The reason names the rule, never the value."""
    if update.deleted or not (update.key == TIMEOUT_KEY or update.key.endswith(f".{TIMEOUT_KEY}")):
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TIMEOUT_MS:
        raise ConfigurationRefusedError(
            f"{update.key} must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}"
        )


def applied_sk(environment: str, key: str, tenant: str | None = None) -> str:
    """The applied record of a key, or of one tenant's value of it (its own version sequence)."""
    return f"{environment}#{key}" if tenant is None else f"{environment}#{key}#tenant#{tenant}"


class AppliedVersions:
    """The DemoApplied table: the version of each key this service has applied, and the latest
    step of each key's rollout it has seen."""

    def __init__(self, service: str, table_name: str, table: Table | None = None) -> None:
        if table is None:
            import boto3

            table = boto3.resource("dynamodb").Table(table_name)
        self._service = service
        self._table = table

    def record(self, update: ConfigurationUpdated, value: Any) -> bool:
        """Record ``update`` as applied unless a version at least as new already is.
        ``value`` is deliberately unused: only the hash is kept."""
        return self._put(
            {
                "pk": self._service,
                "sk": applied_sk(update.environment, update.key, update.tenant),
                **({"tenant": update.tenant} if update.tenant is not None else {}),
                "service": update.service,
                "key": update.key,
                "environment": update.environment,
                "version": update.version,
                "valueHash": update.value_hash,
                "deleted": update.deleted,
                "changeId": update.change_id,
                "appliedAt": datetime.now(UTC).isoformat(),
            },
            condition="attribute_not_exists(pk) OR version < :v",
            values={":v": update.version},
            names={},
            key=update.key,
            version=update.version,
        )

    def record_rollout(self, event: ConfigurationRolloutEvent, stable: Any, candidate: Any) -> bool:
        """Record the rollout step ``event`` unless a step at least as new (candidate version,
        sequence) already is. ``stable`` / ``candidate`` are deliberately unused: only the
        candidate's hash (from the event) is kept."""
        item: dict[str, Any] = {
            "pk": self._service,
            # A tenant's value rolls out with candidate versions of its own: its own row.
            "sk": f"{applied_sk(event.environment, event.key, event.tenant)}#rollout",
            **({"tenant": event.tenant} if event.tenant is not None else {}),
            "service": event.service,
            "key": event.key,
            "environment": event.environment,
            "rolloutId": event.rollout_id,
            "status": str(event.status),
            "weight": str(event.weight),  # DynamoDB numbers refuse floats; the text is exact
            "candidateVersion": event.candidate_version,
            "sequence": event.sequence,
            "candidateValueHash": event.candidate.value_hash,
            "sensitive": event.candidate.sensitive,
            "appliedAt": datetime.now(UTC).isoformat(),
        }
        if event.stable_version is not None:
            item["stableVersion"] = event.stable_version
        return self._put(
            item,
            condition=(
                "attribute_not_exists(pk) OR candidateVersion < :cv "
                "OR (candidateVersion = :cv AND #sequence < :seq)"
            ),
            values={":cv": event.candidate_version, ":seq": event.sequence},
            names={"#sequence": "sequence"},
            key=event.key,
            version=event.candidate_version,
        )

    def _put(
        self,
        item: dict[str, Any],
        condition: str,
        values: dict[str, Any],
        names: dict[str, str],
        key: str,
        version: int,
    ) -> bool:
        kwargs: dict[str, Any] = {
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._table.put_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            log.info(
                "something at least as new is already recorded",
                extra={"configService": self._service, "key": key, "version": version},
            )
            return False
        return True

    def get(self, environment: str, key: str, tenant: str | None = None) -> dict[str, Any] | None:
        return self._table.get_item(
            Key={"pk": self._service, "sk": applied_sk(environment, key, tenant)}, ConsistentRead=True
        ).get("Item")

    def get_rollout(self, environment: str, key: str, tenant: str | None = None) -> dict[str, Any] | None:
        sk = f"{applied_sk(environment, key, tenant)}#rollout"
        item = self._table.get_item(Key={"pk": self._service, "sk": sk}, ConsistentRead=True).get("Item")
        return dict(item) if item else None


def answer(client: ConfigClient, tenant: str, key: str) -> dict[str, Any]:
    """What ``tenant`` reads for ``key`` right now, and whether that is a rollout's candidate.
    Non-sensitive keys only (``get`` never reads Secrets Manager), so no secret is returned.
    A tenant with its own value of the key (``configpipe put --tenant``) reads that value
    (tenant → service → global); while that value rolls out (``put --tenant … --rollout``) the
    tenant is the subject of its own rollout."""
    valid = TENANT_PATTERN.fullmatch(tenant) is not None
    overrides = client.tenant_overrides(tenant) if valid else {}
    tenant_rollout = client.tenant_rollout(tenant, key) if valid else None
    if key in overrides or tenant_rollout is not None:
        value = client.get_for_tenant(tenant, key, subject=tenant)
        reads_candidate = tenant_rollout is not None and client.reads_tenant_candidate(
            tenant, key, subject=tenant
        )
        return {
            "service": client.service,
            "environment": client.environment,
            "tenant": tenant,
            "key": key,
            "value": value,
            "valueHash": value_hash(value),
            "tenantOverride": key in overrides or reads_candidate,
            "readsCandidate": reads_candidate,
            "candidateVersion": tenant_rollout["candidateVersion"] if tenant_rollout else None,
            "weight": tenant_rollout["weight"] if tenant_rollout else None,
            "tenantRollout": tenant_rollout is not None,
        }
    value = client.get(key, subject=tenant)
    rollout = client.rollout(key)
    return {
        "service": client.service,
        "environment": client.environment,
        "tenant": tenant,
        "key": key,
        "value": value,
        "valueHash": value_hash(value),
        "tenantOverride": False,
        "readsCandidate": client.reads_candidate(key, subject=tenant),
        "candidateVersion": rollout["candidateVersion"] if rollout else None,
        "weight": rollout["weight"] if rollout else None,
        "tenantRollout": False,
    }


def serve(client: ConfigClient, tenant: str) -> dict[str, Any]:
    """How a request from ``tenant`` is served, decided by OpenFeature flags (the provider is
    made once per client, on first use: the SDK is imported only by a service that serves)."""
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from configpipe.client.feature_flags import ConfigPipeStore
    from configpipe.client.openfeature import ConfigPipeProvider

    # One OpenFeature domain per client: the SDK's registry keeps the provider (and so the
    # client) alive, so the id is never reused while the domain exists.
    domain = f"{client.service}/{client.environment}/{id(client)}"
    if domain not in _domains:
        api.set_provider_and_wait(ConfigPipeProvider(ConfigPipeStore(client, FLAGS_KEY)), domain=domain)
        _domains.add(domain)
    flags = api.get_client(domain)
    context = EvaluationContext(targeting_key=tenant, attributes={"tenant": tenant})
    maintenance = flags.get_boolean_details(MAINTENANCE_FLAG, False, context)
    limit = flags.get_integer_details(RATE_LIMIT_FLAG, DEFAULT_RATE_LIMIT, context)
    return {
        "service": client.service,
        "environment": client.environment,
        "tenant": tenant,
        "statusCode": 503 if maintenance.value else 200,
        "maintenance": maintenance.value,
        "maintenanceReason": str(maintenance.reason),
        "rateLimit": limit.value,
        "rateLimitReason": str(limit.reason),
    }


#: OpenFeature domains with a provider set, one per config client of this execution environment.
_domains: set[str] = set()


def build(
    settings: SampleServiceSettings,
    *,
    table: Table | None = None,
    client: ConfigClient | None = None,
    events_client: Any = None,
) -> LambdaHandler:
    """The function's handler: config announcements go to the update handler; a direct
    invoke naming a ``tenant`` is a per-tenant read."""
    from pydantic import BaseModel, ConfigDict, Field

    class TenantRead(BaseModel):
        """A direct invoke asking what one tenant reads."""

        model_config = ConfigDict(extra="forbid")
        tenant: str = Field(min_length=1, max_length=128)
        key: str = Field(min_length=1, max_length=200)
        environment: str | None = None

    class ServeRequest(BaseModel):
        """A direct invoke asking how one tenant's request would be served (flags)."""

        model_config = ConfigDict(extra="forbid")
        tenant: str = Field(min_length=1, max_length=128)
        serve: Literal[True]
        environment: str | None = None

    applied = AppliedVersions(settings.service_name, settings.applied_table, table)
    if client is None and settings.config_environment:
        client = ConfigClient(settings.service_name, settings.config_environment)
    readers: dict[str, ConfigClient] = {client.environment: client} if client else {}

    def on_update(update: ConfigurationUpdated, value: Any) -> None:
        check(update, value)
        applied.record(update, value)
        # Readers this environment made for direct invokes hear the push too (the settings'
        # client gets it from the update handler itself), so a flag change shows at once.
        reader = readers.get(update.environment)
        if reader is not None and reader is not client:
            reader.apply_update(update, value)

    def on_rollout(event: ConfigurationRolloutEvent, stable: Any, candidate: Any) -> None:
        applied.record_rollout(event, stable, candidate)
        reader = readers.get(event.environment)
        if reader is not None and reader is not client:
            reader.apply_rollout(event)  # reads the candidate itself: None may mean "gone"

    acks = (
        BusAcknowledgements(settings.service_name, settings.ack_bus_name, events_client)
        if settings.ack_bus_name
        else None
    )
    updates = config_update_handler(
        settings.service_name,
        on_update=on_update,
        client=client,
        on_rollout=on_rollout,
        acknowledgements=acks,
    )

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if "detail-type" in event:
            return updates(event, context)
        read: TenantRead | ServeRequest = (
            ServeRequest.model_validate(event) if "serve" in event else TenantRead.model_validate(event)
        )
        default_environment = settings.config_environment or (client.environment if client else None)
        read_environment = read.environment or default_environment
        if not read_environment:
            raise ValueError("a tenant read needs an environment (in the event, or the function's settings)")
        if read_environment not in readers:
            readers[read_environment] = ConfigClient(settings.service_name, read_environment)
        if isinstance(read, ServeRequest):
            return serve(readers[read_environment], read.tenant)
        return answer(readers[read_environment], read.tenant, read.key)

    return handler


@cache
def default() -> LambdaHandler:
    """Built from the environment once per execution environment, on first use."""
    return build(SampleServiceSettings.from_environ())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return default()(event, context)
