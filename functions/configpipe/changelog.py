"""Data access for the change log (DynamoDB): the single source of truth.

Owns the table's item shapes (see docs/architecture.md) and every conditional write.
Botocore errors are translated here, once, into domain errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from configpipe.errors import DuplicateChangeError, RolloutConflictError, VersionConflictError
from configpipe.naming import environment_segment, scope_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

    from configpipe.contracts import ConfigurationUpdated

CURRENT_SK = "CURRENT"
CHANGE_SK = "CHANGE"
#: Sort-key prefix of a refused reuse of a change id (``REUSED#{requestHash}``), beside the
#: id's change record in its partition: the record that stands is untouched, and the refusal
#: still reaches the stream, so it is announced as ``ConfigurationRejected`` like any other.
REUSED_SK_PREFIX = "REUSED#"
ROLLOUT_SK = "ROLLOUT"
SCOPE_INDEX = "byScope"
#: Sparse index of the rollouts still in progress (``rolloutActive`` is set only while active):
#: the rollout function's tick reads it instead of scanning the table.
ACTIVE_ROLLOUTS_INDEX = "activeRollouts"
ACTIVE = "ACTIVE"
#: Partition prefix of whole-service snapshots (``SNAPSHOT#{service}#{environment}``), written
#: by ``configpipe snapshot create``; the publisher policies confine that write to it.
SNAPSHOT_PREFIX = "SNAPSHOT#"


#: Sort key prefix of the marker a tenant's value leaves in the service key's partition
#: (``TENANT#{tenant}``), so the key's tenant overrides are counted with one query.
TENANT_SK_PREFIX = "TENANT#"


def key_pk(service: str, environment: str, key: str, tenant: str | None = None) -> str:
    """A key's partition; a tenant's value of it has its own (``environment_segment`` holds
    ``.tenants/{tenant}``, which no environment can), so history, versions, the pointer and
    ``expectedVersion`` are per tenant exactly as they are per key."""
    return f"KEY#{service}#{environment_segment(environment, tenant)}#{key}"


def version_sk(version: int) -> str:
    return f"V#{version:010d}"


def change_pk(change_id: str, source: str | None = None) -> str:
    """A change record's partition. A team's change ids are its own: the record is keyed by
    the event's source too, so another team cannot take an id first (docs/security.md, L).
    Rollout controls are keyed the same way. ``source=None``: the un-namespaced form of
    records written before ids (and control ids) were namespaced."""
    return f"CHANGE#{change_id}" if source is None else f"CHANGE#{source}#{change_id}"


def change_id_of(pk: str) -> str:
    """The change id in a change record's partition (ids never contain ``#``)."""
    return pk.rpartition("#")[2]


def scope_pk(service: str, environment: str, tenant: str | None = None) -> str:
    return f"SCOPE#{service}#{environment_segment(environment, tenant)}"


def tenants_scope_pk(service: str, environment: str) -> str:
    """The index partition of every tenant marker of one service+environment (sort key
    ``{tenant}#{key}``): one query lists which tenants hold which keys (whole-service
    snapshots). ``{environment}.tenants`` is no environment (no ``.``) and no tenant's scope
    (those end ``.tenants/{tenant}``), and it sits under ``SCOPE#{service}#`` as a team's read
    policy already allows."""
    return f"SCOPE#{service}#{environment}.tenants"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VersionRecord:
    """One version of one key, as the change log holds it."""

    service: str
    environment: str
    key: str
    version: int
    previous_version: int | None
    operation: str
    change_id: str
    author: str
    reason: str
    source: str
    applied_at: str
    value_hash: str
    sensitive: bool = False
    deleted: bool = False
    value_json: str | None = None
    secret_ciphertext: bytes | None = None
    rolled_back_to: int | None = None
    #: Whether the version before this one was sensitive (None: no previous version, or a
    #: record written before this was tracked). The materialiser removes a key's copy from
    #: the store it no longer uses only when sensitivity flips.
    previous_sensitive: bool | None = None
    #: The rollout this version went out with (the request: strategy, alarms, bakeMinutes,
    #: targets), if any. Its progress lives in the key's ROLLOUT item.
    rollout: dict[str, Any] | None = None
    #: The snapshot restore this version was written by (``configpipe snapshot restore``).
    restore_id: str | None = None
    #: Set on a tenant's value of the key (its own partition, history and pointer).
    tenant: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": key_pk(self.service, self.environment, self.key, self.tenant),
            "sk": version_sk(self.version),
            "kind": "version",
            "service": self.service,
            "environment": self.environment,
            "key": self.key,
            "version": self.version,
            "operation": self.operation,
            "changeId": self.change_id,
            "author": self.author,
            "reason": self.reason,
            "source": self.source,
            "appliedAt": self.applied_at,
            "valueHash": self.value_hash,
            "sensitive": self.sensitive,
            "deleted": self.deleted,
        }
        optional = {
            "previousVersion": self.previous_version,
            "valueJson": self.value_json,
            "secretCiphertext": self.secret_ciphertext,
            "rolledBackTo": self.rolled_back_to,
            "previousSensitive": self.previous_sensitive,
            # JSON text: a custom strategy may carry non-integer numbers (DynamoDB wants Decimals)
            "rollout": json.dumps(self.rollout, sort_keys=True) if self.rollout is not None else None,
            "restoreId": self.restore_id,
            "tenant": self.tenant,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> VersionRecord:
        ciphertext = item.get("secretCiphertext")
        if ciphertext is not None and not isinstance(ciphertext, bytes):
            ciphertext = bytes(ciphertext.value if hasattr(ciphertext, "value") else ciphertext)
        previous = item.get("previousVersion")
        rolled = item.get("rolledBackTo")
        previous_sensitive = item.get("previousSensitive")
        return cls(
            service=item["service"],
            environment=item["environment"],
            key=item["key"],
            version=int(item["version"]),
            previous_version=int(previous) if previous is not None else None,
            operation=item["operation"],
            change_id=item["changeId"],
            author=item["author"],
            reason=item["reason"],
            source=item["source"],
            applied_at=item["appliedAt"],
            value_hash=item["valueHash"],
            sensitive=bool(item.get("sensitive", False)),
            deleted=bool(item.get("deleted", False)),
            value_json=item.get("valueJson"),
            secret_ciphertext=ciphertext,
            rolled_back_to=int(rolled) if rolled is not None else None,
            previous_sensitive=bool(previous_sensitive) if previous_sensitive is not None else None,
            rollout=json.loads(str(item["rollout"])) if item.get("rollout") is not None else None,
            restore_id=str(item["restoreId"]) if item.get("restoreId") else None,
            tenant=str(item["tenant"]) if item.get("tenant") else None,
        )

    def announcement(self, *, inline_max_bytes: int, secret_arn: str | None = None) -> ConfigurationUpdated:
        """The ``ConfigurationUpdated`` of this version — the one definition of it, used by the
        materialiser (which announces it) and by ``Subscription``'s catch-up (which replays it),
        so a caught-up version reaches a callback in exactly the shape of a pushed one. The value
        rides inline when it is not sensitive and at most ``inline_max_bytes``; a secret carries
        ``secret_arn`` when the caller knows it (the materialiser), never a value."""
        from configpipe.contracts import ConfigurationUpdated, Operation
        from configpipe.naming import parameter_name

        fields: dict[str, Any] = {}
        if self.sensitive and not self.deleted:
            if secret_arn is not None:
                fields["secret_arn"] = secret_arn
        elif not self.deleted:
            fields["parameter_name"] = parameter_name(
                self.service, self.environment, self.key, tenant=self.tenant
            )
            if self.value_json is not None and len(self.value_json.encode("utf-8")) <= inline_max_bytes:
                fields["value"] = json.loads(self.value_json)
                fields["value_inline"] = True
        return ConfigurationUpdated(
            change_id=self.change_id,
            service=self.service,
            environment=self.environment,
            key=self.key,
            operation=Operation(self.operation),
            version=self.version,
            previous_version=self.previous_version,
            value_hash=self.value_hash,
            deleted=self.deleted,
            sensitive=self.sensitive,
            rolled_back_to=self.rolled_back_to,
            restore_id=self.restore_id,
            tenant=self.tenant,
            author=self.author,
            reason=self.reason,
            applied_at=datetime.fromisoformat(self.applied_at),
            **fields,
        )


@dataclass(frozen=True)
class CurrentPointer:
    version: int
    deleted: bool
    change_id: str
    sensitive: bool = False
    #: While a rollout is active: its id, and the version every reader outside it keeps.
    rollout_id: str | None = None
    stable_version: int | None = None

    def version_for_readers(self) -> int | None:
        """The version the key's main store holds: the stable one while a rollout is active
        (None: the key had no value before the rollout), else the current one."""
        return self.stable_version if self.rollout_id is not None else self.version


class RolloutScope(NamedTuple):
    """Where a rollout lives: a key of a service, or one tenant's value of it."""

    service: str
    environment: str
    key: str
    tenant: str | None = None

    def label(self) -> str:
        return scope_id(self.service, self.environment, self.key, self.tenant)


@dataclass(frozen=True)
class RolloutRecord:
    """A key's current or last rollout, as the change log holds it (sk ``ROLLOUT``)."""

    rollout_id: str
    service: str
    environment: str
    key: str
    stable_version: int | None
    candidate_version: int
    #: The request's strategy as sent (a name or a custom object), and its canonical name.
    strategy_spec: str | dict[str, Any]
    strategy_name: str
    alarms: list[str]
    targets: list[str]
    bake_minutes: int | None
    candidate_value_hash: str
    candidate_sensitive: bool
    candidate_deleted: bool
    started_at: str
    status: str = "ROLLING_OUT"
    sequence: int = 0
    weight: float = 0.0
    paused: bool = False
    paused_at: str | None = None
    paused_seconds: float = 0.0
    promoted: bool = False
    #: The last event (a ``ConfigurationRollout*`` detail-type), who caused it and why.
    event: str = "ConfigurationRolloutStarted"
    updated_at: str = ""
    author: str = ""
    reason: str = ""
    outcome: dict[str, Any] | None = None
    #: A rollout that goes out with a code release: {releaseId, function, targetVersion}.
    release: dict[str, str] | None = None
    #: Set when one tenant's value of the key rolls out (its own partition, beside its versions).
    tenant: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "ROLLING_OUT"

    def next(self, **changes: Any) -> RolloutRecord:
        """The record after one more state change (sequence + 1)."""
        return replace(self, sequence=self.sequence + 1, **changes)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": key_pk(self.service, self.environment, self.key, self.tenant),
            "sk": ROLLOUT_SK,
            "kind": "rollout",
            "rolloutId": self.rollout_id,
            "service": self.service,
            "environment": self.environment,
            "key": self.key,
            "candidateVersion": self.candidate_version,
            "strategySpec": json.dumps(self.strategy_spec, sort_keys=True),
            "strategy": self.strategy_name,
            "alarms": list(self.alarms),
            "targets": list(self.targets),
            "candidateValueHash": self.candidate_value_hash,
            "candidateSensitive": self.candidate_sensitive,
            "candidateDeleted": self.candidate_deleted,
            "startedAt": self.started_at,
            "status": self.status,
            "sequence": self.sequence,
            "weight": Decimal(str(self.weight)),
            "paused": self.paused,
            "pausedSeconds": Decimal(str(self.paused_seconds)),
            "promoted": self.promoted,
            "event": self.event,
            "updatedAt": self.updated_at or self.started_at,
            "author": self.author,
            "reason": self.reason,
        }
        optional = {
            "stableVersion": self.stable_version,
            "bakeMinutes": self.bake_minutes,
            "pausedAt": self.paused_at,
            "outcome": self.outcome,
            "release": self.release,
            "tenant": self.tenant,
            "rolloutActive": ACTIVE if self.active else None,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RolloutRecord:
        def opt_int(name: str) -> int | None:
            value = item.get(name)
            return int(value) if value is not None else None

        return cls(
            rollout_id=str(item["rolloutId"]),
            service=str(item["service"]),
            environment=str(item["environment"]),
            key=str(item["key"]),
            stable_version=opt_int("stableVersion"),
            candidate_version=int(item["candidateVersion"]),
            strategy_spec=json.loads(str(item["strategySpec"])),
            strategy_name=str(item["strategy"]),
            alarms=[str(a) for a in item.get("alarms", [])],
            targets=[str(t) for t in item.get("targets", [])],
            bake_minutes=opt_int("bakeMinutes"),
            candidate_value_hash=str(item["candidateValueHash"]),
            candidate_sensitive=bool(item.get("candidateSensitive", False)),
            candidate_deleted=bool(item.get("candidateDeleted", False)),
            started_at=str(item["startedAt"]),
            status=str(item["status"]),
            sequence=int(item["sequence"]),
            weight=float(item.get("weight", 0)),
            paused=bool(item.get("paused", False)),
            paused_at=str(item["pausedAt"]) if item.get("pausedAt") else None,
            paused_seconds=float(item.get("pausedSeconds", 0)),
            promoted=bool(item.get("promoted", False)),
            event=str(item.get("event", "")),
            updated_at=str(item.get("updatedAt", "")),
            author=str(item.get("author", "")),
            reason=str(item.get("reason", "")),
            outcome=_plain(item["outcome"]) if item.get("outcome") else None,
            release={k: str(v) for k, v in item["release"].items()} if item.get("release") else None,
            tenant=str(item["tenant"]) if item.get("tenant") else None,
        )


@dataclass(frozen=True)
class ChangeRecord:
    change_id: str
    status: str
    payload_hash: str
    version: int | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    #: What the change asked for (its fields, the value only as a hash), whatever its outcome:
    #: a redelivery matches it, a reuse of the id for something else does not. None on records
    #: written before it was kept.
    request_hash: str | None = None


class ChangeLog:
    """The change log table. ``table`` is injectable for tests; by default a boto3 resource."""

    def __init__(self, table_name: str, table: Table | None = None) -> None:
        self.table_name = table_name
        self._table = table or boto3.resource("dynamodb").Table(table_name)

    @property
    def table(self) -> Table:
        """The table itself, for tooling that keeps its own items in it (snapshots)."""
        return self._table

    # --- reads ------------------------------------------------------------------------

    def current(
        self, service: str, environment: str, key: str, tenant: str | None = None
    ) -> CurrentPointer | None:
        item = self._table.get_item(
            Key={"pk": key_pk(service, environment, key, tenant), "sk": CURRENT_SK}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return CurrentPointer(
            version=int(item["version"]),  # type: ignore[arg-type]
            deleted=bool(item.get("deleted", False)),
            change_id=str(item["changeId"]),
            sensitive=bool(item.get("sensitive", False)),
            rollout_id=str(item["rolloutId"]) if item.get("rolloutId") else None,
            stable_version=int(item["stableVersion"]) if item.get("stableVersion") is not None else None,  # type: ignore[arg-type]
        )

    def version(
        self, service: str, environment: str, key: str, version: int, tenant: str | None = None
    ) -> VersionRecord | None:
        item = self._table.get_item(
            Key={"pk": key_pk(service, environment, key, tenant), "sk": version_sk(version)},
            ConsistentRead=True,
        ).get("Item")
        return VersionRecord.from_item(item) if item else None

    def current_record(
        self, service: str, environment: str, key: str, tenant: str | None = None
    ) -> VersionRecord | None:
        pointer = self.current(service, environment, key, tenant)
        return self.version(service, environment, key, pointer.version, tenant) if pointer else None

    def change(self, change_id: str, source: str | None = None) -> ChangeRecord | None:
        """The outcome of ``source``'s change or rollout control ``change_id`` (``source=None``:
        a record written before ids were namespaced)."""
        item = self._table.get_item(
            Key={"pk": change_pk(change_id, source), "sk": CHANGE_SK}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        version = item.get("version")
        return ChangeRecord(
            change_id=change_id,
            status=str(item["status"]),
            payload_hash=str(item.get("payloadHash", "")),
            version=int(version) if version is not None else None,  # type: ignore[arg-type]
            reasons=list(item.get("reasons", [])),  # type: ignore[arg-type]
            request_hash=str(item["requestHash"]) if item.get("requestHash") else None,
        )

    def history(
        self,
        service: str,
        environment: str,
        key: str,
        newest_first: bool = True,
        limit: int | None = None,
        tenant: str | None = None,
    ) -> Iterator[VersionRecord]:
        """Every version of a key (or of one tenant's value of it), paginated lazily."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(key_pk(service, environment, key, tenant))
            & Key("sk").begins_with("V#"),
            "ScanIndexForward": not newest_first,
        }
        if limit:
            kwargs["Limit"] = limit
        returned = 0
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield VersionRecord.from_item(item)
                returned += 1
                if limit and returned >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def keys(
        self, service: str, environment: str, include_deleted: bool = False, tenant: str | None = None
    ) -> list[tuple[str, int]]:
        """(key, current version) for every key of one service+environment (or of one tenant)."""
        kwargs: dict[str, Any] = {
            "IndexName": SCOPE_INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(scope_pk(service, environment, tenant)),
        }
        found: list[tuple[str, int]] = []
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                if include_deleted or not item.get("deleted", False):
                    found.append((str(item["gsi1sk"]), int(item["version"])))  # type: ignore[arg-type]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def tenant_keys(
        self, service: str, environment: str, include_deleted: bool = False
    ) -> list[tuple[str, str, int]]:
        """(tenant, key, current version) of every tenant's own value in one service+environment,
        sorted; from the tenant markers' index entries (eventually consistent, like ``keys``)."""
        kwargs: dict[str, Any] = {
            "IndexName": SCOPE_INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(tenants_scope_pk(service, environment)),
        }
        found: list[tuple[str, str, int]] = []
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                if include_deleted or not item.get("deleted", False):
                    tenant, _, key = str(item["gsi1sk"]).partition("#")  # a tenant has no "#"
                    found.append((tenant, key, int(item["version"])))  # type: ignore[arg-type]
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def tenant_overrides(self, service: str, environment: str, key: str) -> list[str]:
        """The tenants that hold a value of their own for the key now (not deleted), sorted:
        one query of the markers in the service key's partition."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(key_pk(service, environment, key))
            & Key("sk").begins_with(TENANT_SK_PREFIX),
            "ConsistentRead": True,
        }
        found: list[str] = []
        while True:
            page = self._table.query(**kwargs)
            found += [str(i["tenant"]) for i in page.get("Items", []) if not i.get("deleted", False)]
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- writes -----------------------------------------------------------------------

    def append(
        self,
        record: VersionRecord,
        payload_hash: str,
        received_at: str,
        rollout: RolloutRecord | None = None,
        request_hash: str | None = None,
    ) -> None:
        """Append ``record`` as the key's next version, atomically with its current pointer
        and its change record (and, for a change that goes out progressively, its rollout:
        the pointer then names the rollout and the stable version readers keep).

        Raises :class:`DuplicateChangeError` if the changeId was seen before and
        :class:`VersionConflictError` if the key moved past ``record.previous_version`` or
        is rolling out.
        """
        items = [
            self._change_record_put(record, payload_hash, received_at, request_hash),
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": record.to_item(),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._pointer_put(record, record.previous_version, rollout),
        ]
        if rollout is not None:
            items.append({"Put": {"TableName": self.table_name, "Item": rollout.to_item()}})
        if record.tenant is not None:
            items.append({"Put": {"TableName": self.table_name, "Item": _tenant_marker(record)}})
        try:
            # The resource's client serialises plain Python values itself (boto3's
            # transformation injector), so items are written here as plain dicts.
            self._table.meta.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateChangeError(record.change_id) from error
            if "ConditionalCheckFailed" in reasons:
                current = self.current(record.service, record.environment, record.key, record.tenant)
                raise VersionConflictError(
                    record.previous_version, current.version if current else 0
                ) from error
            raise  # TransactionConflict etc.: let the caller's retry path decide

    def _change_record_put(
        self, record: VersionRecord, payload_hash: str, received_at: str, request_hash: str | None = None
    ) -> dict[str, Any]:
        optional = {"requestHash": request_hash} if request_hash else {}
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    **optional,
                    "pk": change_pk(record.change_id, record.source),
                    "sk": CHANGE_SK,
                    "kind": "change",
                    "status": "accepted",
                    "payloadHash": payload_hash,
                    "version": record.version,
                    "service": record.service,
                    "environment": record.environment,
                    "key": record.key,
                    "operation": record.operation,
                    "source": record.source,
                    "receivedAt": received_at,
                    **({"tenant": record.tenant} if record.tenant is not None else {}),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _pointer_put(
        self,
        record: VersionRecord,
        expected_version: int | None,
        rollout: RolloutRecord | None = None,
        expected_rollout: str | None = None,
    ) -> dict[str, Any]:
        """Move the key's pointer to ``record``, if it is still at ``expected_version`` and
        rolling out exactly ``expected_rollout`` (None: not rolling out)."""
        condition: dict[str, Any]
        if expected_version is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        elif expected_rollout is None:
            condition = {
                "ConditionExpression": "version = :expected AND attribute_not_exists(rolloutId)",
                "ExpressionAttributeValues": {":expected": expected_version},
            }
        else:
            condition = {
                "ConditionExpression": "version = :expected AND rolloutId = :rollout",
                "ExpressionAttributeValues": {":expected": expected_version, ":rollout": expected_rollout},
            }
        item: dict[str, Any] = {
            "pk": key_pk(record.service, record.environment, record.key, record.tenant),
            "sk": CURRENT_SK,
            "kind": "current",
            "version": record.version,
            "deleted": record.deleted,
            "sensitive": record.sensitive,
            "changeId": record.change_id,
            "updatedAt": record.applied_at,
            "gsi1pk": scope_pk(record.service, record.environment, record.tenant),
            "gsi1sk": record.key,
        }
        if record.tenant is not None:
            item["tenant"] = record.tenant
        if rollout is not None:
            item["rolloutId"] = rollout.rollout_id
            if rollout.stable_version is not None:
                item["stableVersion"] = rollout.stable_version
        return {"Put": {"TableName": self.table_name, "Item": item, **condition}}

    def record_rejection(
        self,
        change_id: str,
        payload_hash: str,
        source: str,
        reasons: list[dict[str, Any]],
        identity: dict[str, Any],
        received_at: str,
        request_hash: str | None = None,
        namespaced: bool = True,
        reused: bool = False,
    ) -> None:
        """The only write a rejected change makes. Raises DuplicateChangeError if the
        source's changeId already has a record (the caller tells a redelivery from a reuse).
        ``namespaced=False``: keyed by the id alone (records written before ids were
        namespaced). ``reused``: the refusal of another request (``request_hash``) under an id
        that has its record already, written beside it (:data:`REUSED_SK_PREFIX`); raises
        DuplicateChangeError if that very request was refused before."""
        if reused and not request_hash:
            raise ValueError("a refused reuse is keyed by its request hash")
        item = {
            **({"requestHash": request_hash} if request_hash else {}),
            "pk": change_pk(change_id, source if namespaced else None),
            "sk": f"{REUSED_SK_PREFIX}{request_hash}" if reused else CHANGE_SK,
            "kind": "change",
            "status": "rejected",
            "payloadHash": payload_hash,
            "source": source,
            "reasons": reasons,
            "receivedAt": received_at,
            **{k: v for k, v in identity.items() if v is not None},
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise DuplicateChangeError(change_id) from error
            raise

    # --- rollouts -----------------------------------------------------------------------

    def rollout(
        self, service: str, environment: str, key: str, tenant: str | None = None
    ) -> RolloutRecord | None:
        """The key's current or last rollout (``tenant``: of that tenant's value of the key)."""
        item = self._table.get_item(
            Key={"pk": key_pk(service, environment, key, tenant), "sk": ROLLOUT_SK}, ConsistentRead=True
        ).get("Item")
        return RolloutRecord.from_item(item) if item else None

    def active_rollouts(self) -> list[RolloutScope]:
        """(service, environment, key, tenant) of every rollout in progress (tenant None: the
        service's value). The index is eventually consistent: callers re-read each rollout
        (consistently) before acting on it."""
        kwargs: dict[str, Any] = {
            "IndexName": ACTIVE_ROLLOUTS_INDEX,
            "KeyConditionExpression": Key("rolloutActive").eq(ACTIVE),
        }
        found: list[RolloutScope] = []
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                found.append(
                    RolloutScope(
                        str(item["service"]),
                        str(item["environment"]),
                        str(item["key"]),
                        str(item["tenant"]) if item.get("tenant") else None,
                    )
                )
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_rollout(
        self, record: RolloutRecord, expected_sequence: int, control: dict[str, Any] | None = None
    ) -> None:
        """Write a rollout's next state (a step, pause, resume) if nobody moved it since
        ``expected_sequence`` was read; else :class:`RolloutConflictError`. ``control``: the
        person's control that caused it, recorded in the same write (a redelivered control
        raises :class:`DuplicateChangeError` and changes nothing)."""
        self._transact([self._rollout_put(record, expected_sequence)], record.rollout_id, control)

    def record_control(self, control: dict[str, Any]) -> None:
        """Record a control that had nothing to change (pause while paused): a redelivery is
        then recognised as a duplicate."""
        self._transact([], str(control["controlId"]), control)

    def _rollout_put(self, record: RolloutRecord, expected_sequence: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": record.to_item(),
                "ConditionExpression": "#seq = :seq AND rolloutId = :id",
                "ExpressionAttributeNames": {"#seq": "sequence"},
                "ExpressionAttributeValues": {":seq": expected_sequence, ":id": record.rollout_id},
            }
        }

    def _transact(self, items: list[dict[str, Any]], rollout_id: str, control: dict[str, Any] | None) -> None:
        if control is not None:
            items = [*items, self._control_put(control)]
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if control is not None and reasons and reasons[-1] == "ConditionalCheckFailed":
                raise DuplicateChangeError(str(control["controlId"])) from error
            if "ConditionalCheckFailed" in reasons:
                raise RolloutConflictError(rollout_id) from error
            raise

    def _control_put(self, control: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": change_pk(str(control["controlId"]), str(control["source"])),
                    "sk": CHANGE_SK,
                    "kind": "change",
                    "status": "accepted",
                    **{k: v for k, v in control.items() if k != "controlId"},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def finish_rollout(
        self,
        record: RolloutRecord,
        expected_sequence: int,
        restore: VersionRecord | None = None,
        payload_hash: str = "",
        control: dict[str, Any] | None = None,
    ) -> None:
        """End a rollout in one transaction with the key's pointer.

        Completed (``restore`` None): the pointer stays on the candidate and stops naming
        the rollout, so the candidate is now every reader's value. Rolled back or aborted:
        ``restore`` (a copy of the stable version, the next version number) is appended
        and becomes current. Raises :class:`RolloutConflictError` if the rollout or the
        pointer moved, :class:`DuplicateChangeError` if ``control`` was applied before."""
        pk = key_pk(record.service, record.environment, record.key, record.tenant)
        items: list[dict[str, Any]] = [self._rollout_put(record, expected_sequence)]
        if restore is None:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": pk, "sk": CURRENT_SK},
                        "UpdateExpression": "REMOVE rolloutId, stableVersion",
                        "ConditionExpression": "version = :candidate AND rolloutId = :id",
                        "ExpressionAttributeValues": {
                            ":candidate": record.candidate_version,
                            ":id": record.rollout_id,
                        },
                    }
                }
            )
        else:
            items += [
                self._change_record_put(restore, payload_hash, restore.applied_at),
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": restore.to_item(),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                self._pointer_put(restore, record.candidate_version, expected_rollout=record.rollout_id),
            ]
            if restore.tenant is not None:
                # A tenant's first version rolled back is a tombstone: the marker says the
                # tenant no longer overrides the key (it reads the service's value again).
                items.append({"Put": {"TableName": self.table_name, "Item": _tenant_marker(restore)}})
        self._transact(items, record.rollout_id, control)


def _tenant_marker(record: VersionRecord) -> dict[str, Any]:
    """The marker a tenant's value keeps in the service key's partition, rewritten with every
    version in the same transaction (so it is never out of step with the tenant's pointer)."""
    return {
        "pk": key_pk(record.service, record.environment, record.key),
        "sk": f"{TENANT_SK_PREFIX}{record.tenant}",
        "kind": "tenant",
        "tenant": record.tenant,
        "version": record.version,
        "deleted": record.deleted,
        "updatedAt": record.applied_at,
        # listed with every other tenant value of the service+environment (``tenant_keys``)
        "gsi1pk": tenants_scope_pk(record.service, record.environment),
        "gsi1sk": f"{record.tenant}#{record.key}",
    }


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats (a map or list as the resource returns it)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
