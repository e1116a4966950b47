"""Whole-service snapshots: the version of every key of one (service, environment) at one
moment, and what it takes to bring the service back to one.

A snapshot records versions, never values: the change log already holds every version of
every key, so a snapshot is a list of pointers into it (plus each version's value hash, so
a diff needs no further reads). Snapshots live in the change log table under their own
partition, ``SNAPSHOT#{service}#{environment}`` / ``LABEL#{label}`` (docs/architecture.md
says why); the stream filter never hands them to the materialiser (``kind`` is
``snapshot``) and they carry no ``gsi1pk``, so the key index never lists them.

Restoring is not a write around the validator: :func:`restore_plan` turns a diff into
ordinary ``rollback`` / ``delete`` changes, each with ``expectedVersion``, which the CLI
publishes as the caller's team like any other change.

Tenants' own values (issue 17) are part of the service's configuration: a snapshot records
them beside the service's keys (``tenants``: tenant → key → state), a diff and a restore cover
them per (tenant, key) exactly as per key, and an export carries them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from configpipe.changelog import SNAPSHOT_PREFIX, ChangeLog, VersionRecord, utc_now
from configpipe.contracts import CHANGE_ID_PATTERN, Operation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

SNAPSHOT_KIND = "snapshot"
_LABEL_PREFIX = "LABEL#"


def snapshot_pk(service: str, environment: str) -> str:
    return f"{SNAPSHOT_PREFIX}{service}#{environment}"


class SnapshotExistsError(Exception):
    """A label names at most one snapshot, forever: a restore must mean the same thing tomorrow."""

    def __init__(self, label: str) -> None:
        super().__init__(f"snapshot {label!r} already exists")
        self.label = label


@dataclass(frozen=True)
class KeyState:
    """One key as a snapshot (or now) sees it: the version readers get, and its content."""

    version: int
    value_hash: str
    sensitive: bool

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "valueHash": self.value_hash, "sensitive": self.sensitive}

    @classmethod
    def from_record(cls, record: VersionRecord) -> KeyState:
        return cls(record.version, record.value_hash, record.sensitive)


@dataclass(frozen=True)
class Snapshot:
    service: str
    environment: str
    label: str
    created_at: str
    author: str
    reason: str
    #: key → state; a key absent here had no value (never existed, or deleted).
    keys: dict[str, KeyState]
    #: Set when the snapshot was taken of a past moment (``--at``), not of "now".
    as_of: str | None = None
    #: tenant → key → state of every tenant's own value (absent: the tenant had none).
    tenants: dict[str, dict[str, KeyState]] = field(default_factory=dict)

    def tenant_count(self) -> int:
        return sum(len(keys) for keys in self.tenants.values())

    def tenants_json(self) -> dict[str, dict[str, Any]]:
        return {
            t: {k: state.to_json() for k, state in sorted(keys.items())}
            for t, keys in sorted(self.tenants.items())
        }

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": snapshot_pk(self.service, self.environment),
            "sk": _LABEL_PREFIX + self.label,
            "kind": SNAPSHOT_KIND,
            "service": self.service,
            "environment": self.environment,
            "label": self.label,
            "createdAt": self.created_at,
            "author": self.author,
            "reason": self.reason,
            # JSON text: one attribute, no Decimal conversions, and a key name is never an
            # attribute name (keys may contain dots).
            "keys": json.dumps({k: s.to_json() for k, s in sorted(self.keys.items())}, sort_keys=True),
            "keyCount": len(self.keys),
        }
        if self.as_of is not None:
            item["asOf"] = self.as_of
        if self.tenants:
            item["tenants"] = json.dumps(self.tenants_json(), sort_keys=True)
            item["tenantValueCount"] = self.tenant_count()
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Snapshot:
        keys = _states(json.loads(str(item["keys"])))
        tenants = {t: _states(v) for t, v in json.loads(str(item.get("tenants") or "{}")).items()}
        return cls(
            service=str(item["service"]),
            environment=str(item["environment"]),
            label=str(item["label"]),
            created_at=str(item["createdAt"]),
            author=str(item["author"]),
            reason=str(item["reason"]),
            keys=keys,
            as_of=str(item["asOf"]) if item.get("asOf") else None,
            tenants=tenants,
        )

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "service": self.service,
            "environment": self.environment,
            "label": self.label,
            "createdAt": self.created_at,
            "author": self.author,
            "reason": self.reason,
            "keyCount": len(self.keys),
            "tenantValueCount": self.tenant_count(),
        }
        if self.as_of is not None:
            body["asOf"] = self.as_of
        return body


def _states(raw: dict[str, Any]) -> dict[str, KeyState]:
    return {k: KeyState(int(v["version"]), str(v["valueHash"]), bool(v["sensitive"])) for k, v in raw.items()}


class SnapshotStore:
    """Snapshot items in the change log table (``table`` injectable, like :class:`ChangeLog`)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def create(self, snapshot: Snapshot) -> None:
        try:
            self._table.put_item(Item=snapshot.to_item(), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SnapshotExistsError(snapshot.label) from None
            raise

    def get(self, service: str, environment: str, label: str) -> Snapshot | None:
        item = self._table.get_item(
            Key={"pk": snapshot_pk(service, environment), "sk": _LABEL_PREFIX + label}, ConsistentRead=True
        ).get("Item")
        return Snapshot.from_item(item) if item else None

    def list(self, service: str, environment: str) -> list[Snapshot]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(snapshot_pk(service, environment))
            & Key("sk").begins_with(_LABEL_PREFIX),
            "ConsistentRead": True,
        }
        found: list[Snapshot] = []
        while True:
            page = self._table.query(**kwargs)
            found.extend(Snapshot.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda s: s.created_at)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the state of a service: now, or at a past moment ---------------------------------------


def state_now(log: ChangeLog, service: str, environment: str) -> tuple[dict[str, KeyState], dict[str, int]]:
    """Every key's readers' state now, and every key's current pointer version (the
    ``expectedVersion`` a restore must send), deleted keys included.

    A key that is rolling out counts with its *stable* version (what readers outside the
    rollout get); one with no stable value yet counts as absent."""
    states: dict[str, KeyState] = {}
    pointers: dict[str, int] = {}
    for key, _ in log.keys(service, environment, include_deleted=True):
        pointer = log.current(service, environment, key)
        if pointer is None:
            continue
        pointers[key] = pointer.version
        readers = pointer.version_for_readers()
        if readers is None:
            continue
        record = log.version(service, environment, key, readers)
        if record is not None and not record.deleted:
            states[key] = KeyState.from_record(record)
    return states, pointers


def tenant_state_now(
    log: ChangeLog, service: str, environment: str
) -> tuple[dict[str, dict[str, KeyState]], dict[tuple[str, str], int]]:
    """:func:`state_now` of every tenant's own values: tenant → key → state, and
    (tenant, key) → pointer version (deleted values included)."""
    states: dict[str, dict[str, KeyState]] = {}
    pointers: dict[tuple[str, str], int] = {}
    for tenant, key, _ in log.tenant_keys(service, environment, include_deleted=True):
        pointer = log.current(service, environment, key, tenant)
        if pointer is None:
            continue
        pointers[(tenant, key)] = pointer.version
        readers = pointer.version_for_readers()
        if readers is None:
            continue
        record = log.version(service, environment, key, readers, tenant)
        if record is not None and not record.deleted:
            states.setdefault(tenant, {})[key] = KeyState.from_record(record)
    return states, pointers


def state_at(log: ChangeLog, service: str, environment: str, moment: datetime) -> dict[str, KeyState]:
    """Every key's state at ``moment``: the newest version accepted at or before it.

    A version that went out through a rollout counts from when it was accepted (the change
    log records acceptance, not each reader's switch)."""
    states: dict[str, KeyState] = {}
    for key, _ in log.keys(service, environment, include_deleted=True):
        record = _as_of(log.history(service, environment, key, newest_first=True), moment)
        if record is not None:
            states[key] = KeyState.from_record(record)
    return states


def tenant_state_at(
    log: ChangeLog, service: str, environment: str, moment: datetime
) -> dict[str, dict[str, KeyState]]:
    """:func:`state_at` of every tenant's own values."""
    states: dict[str, dict[str, KeyState]] = {}
    for tenant, key, _ in log.tenant_keys(service, environment, include_deleted=True):
        record = _as_of(log.history(service, environment, key, newest_first=True, tenant=tenant), moment)
        if record is not None:
            states.setdefault(tenant, {})[key] = KeyState.from_record(record)
    return states


def _as_of(newest_first: Iterable[VersionRecord], moment: datetime) -> VersionRecord | None:
    """The newest version accepted at or before ``moment``, None if that one is a deletion
    (or there is none)."""
    for record in newest_first:
        if datetime.fromisoformat(record.applied_at) <= moment:
            return None if record.deleted else record
    return None


def capture(
    log: ChangeLog,
    service: str,
    environment: str,
    label: str,
    author: str,
    reason: str,
    at: datetime | None = None,
) -> Snapshot:
    keys = (
        state_at(log, service, environment, at) if at is not None else state_now(log, service, environment)[0]
    )
    tenants = (
        tenant_state_at(log, service, environment, at)
        if at is not None
        else tenant_state_now(log, service, environment)[0]
    )
    return Snapshot(
        service=service,
        environment=environment,
        label=label,
        created_at=utc_now().isoformat(),
        author=author,
        reason=reason,
        keys=keys,
        as_of=at.isoformat() if at is not None else None,
        tenants=tenants,
    )


# --- diff and restore plan -------------------------------------------------------------------

UNCHANGED, CHANGED, ADDED, REMOVED = "unchanged", "changed", "added", "removed"


@dataclass(frozen=True)
class KeyDiff:
    """One key, from ``before`` (the snapshot) to ``after`` (now, or another snapshot).
    ``added``: exists only after; ``removed``: only before."""

    key: str
    status: str
    before: KeyState | None
    after: KeyState | None
    #: Set for a tenant's own value of the key.
    tenant: str | None = None

    @property
    def secret(self) -> bool:
        return bool((self.before and self.before.sensitive) or (self.after and self.after.sensitive))


def diff(before: dict[str, KeyState], after: dict[str, KeyState], tenant: str | None = None) -> list[KeyDiff]:
    """Content equality is value-hash equality (a secret's hash is a keyed HMAC, so two
    versions holding the same secret compare equal without anyone seeing it)."""
    out: list[KeyDiff] = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b is None:
            status = ADDED
        elif a is None:
            status = REMOVED
        elif (b.value_hash, b.sensitive) == (a.value_hash, a.sensitive):
            status = UNCHANGED
        else:
            status = CHANGED
        out.append(KeyDiff(key, status, b, a, tenant))
    return out


def diff_tenants(
    before: dict[str, dict[str, KeyState]], after: dict[str, dict[str, KeyState]]
) -> list[KeyDiff]:
    """:func:`diff` of every tenant's own values, tenant by tenant (sorted)."""
    return [
        entry
        for tenant in sorted(set(before) | set(after))
        for entry in diff(before.get(tenant, {}), after.get(tenant, {}), tenant)
    ]


def diff_view(
    log: ChangeLog, service: str, environment: str, entries: Iterable[KeyDiff]
) -> list[dict[str, Any]]:
    """The diff as the CLI shows it: versions always; values only for keys that are not
    secret on either side (a secret is only ever "changed" or "unchanged")."""
    shown: list[dict[str, Any]] = []
    for entry in entries:
        row: dict[str, Any] = {
            "key": entry.key,
            "status": entry.status,
            "fromVersion": entry.before.version if entry.before else None,
            "toVersion": entry.after.version if entry.after else None,
        }
        if entry.tenant is not None:
            row["tenant"] = entry.tenant
        if entry.secret:
            row["secret"] = True
        elif entry.status != UNCHANGED:
            for side, state in (("from", entry.before), ("to", entry.after)):
                if state is not None:
                    record = log.version(service, environment, entry.key, state.version, entry.tenant)
                    if record is not None and record.value_json is not None:
                        row[f"{side}Value"] = json.loads(record.value_json)
        shown.append(row)
    return shown


@dataclass(frozen=True)
class RestoreStep:
    """One change of a restore: roll ``key`` back to ``to_version`` (changed or removed since
    the snapshot), or delete it (added since), only if it is still at ``expected_version``."""

    key: str
    operation: Operation
    expected_version: int
    to_version: int | None
    change_id: str
    tenant: str | None = None


def restore_plan(
    entries: Iterable[KeyDiff],
    pointers: dict[str, int],
    restore_id: str,
    tenant_pointers: dict[tuple[str, str], int] | None = None,
) -> list[RestoreStep]:
    steps: list[RestoreStep] = []
    for entry in entries:
        if entry.status == UNCHANGED:
            continue
        # A key with no pointer at all (its history is gone, e.g. a change log restored from an
        # older backup): expectedVersion 0, and the validator answers UNKNOWN_VERSION for it.
        if entry.tenant is None:
            expected = pointers.get(entry.key, 0)
        else:
            expected = (tenant_pointers or {}).get((entry.tenant, entry.key), 0)
        change_id = step_change_id(restore_id, entry.key, entry.tenant)
        if entry.status == ADDED:
            steps.append(RestoreStep(entry.key, Operation.DELETE, expected, None, change_id, entry.tenant))
        else:
            assert entry.before is not None
            steps.append(
                RestoreStep(
                    entry.key, Operation.ROLLBACK, expected, entry.before.version, change_id, entry.tenant
                )
            )
    return steps


def step_change_id(restore_id: str, key: str, tenant: str | None = None) -> str:
    """Derived, so re-running a restore with the same ``--restore-id`` re-sends the same
    changes (duplicates change nothing) instead of new ones. Keys can be 200 characters and
    change ids 128, hence a digest of the key (of ``tenant/key`` for a tenant's value: ``/``
    occurs in neither, so no tenant's step can share a key's id)."""
    scoped = key if tenant is None else f"{tenant}/{key}"
    change_id = f"{restore_id}.{hashlib.sha256(scoped.encode()).hexdigest()[:16]}"
    assert CHANGE_ID_PATTERN.fullmatch(change_id), change_id
    return change_id


# --- disaster-recovery export / import -------------------------------------------------------

EXPORT_FORMAT = "configpipe.snapshot/1"


def export_document(log: ChangeLog, snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as a self-contained document: each key's value when it is not sensitive;
    a sensitive key only as a reference (its secret's name and the value's keyed hash), so the
    export never holds a secret in clear."""
    from configpipe.naming import secret_name

    def entries(states: dict[str, KeyState], tenant: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, state in sorted(states.items()):
            entry: dict[str, Any] = state.to_json()
            if state.sensitive:
                entry["secretRef"] = secret_name(snapshot.service, snapshot.environment, key, tenant=tenant)
            else:
                record = log.version(snapshot.service, snapshot.environment, key, state.version, tenant)
                if record is None or record.value_json is None:
                    where = key if tenant is None else f"{key} of tenant {tenant}"
                    raise ValueError(f"version {state.version} of {where} is missing from the change log")
                entry["value"] = json.loads(record.value_json)
            out[key] = entry
        return out

    document = {"format": EXPORT_FORMAT, **snapshot.summary(), "keys": entries(snapshot.keys, None)}
    if snapshot.tenants:
        document["tenants"] = {t: entries(keys, t) for t, keys in sorted(snapshot.tenants.items())}
    return document


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` → (bucket, key prefix without surrounding slashes)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def export_key(prefix: str, service: str, environment: str, label: str) -> str:
    name = f"{service}/{environment}/{label}.json"
    return f"{prefix}/{name}" if prefix else name
