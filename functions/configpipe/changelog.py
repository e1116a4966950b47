"""Data access for the change log (DynamoDB): the single source of truth.

Owns the table's item shapes (see docs/architecture.md) and every conditional write.
Botocore errors are translated here, once, into domain errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from configpipe.errors import DuplicateChangeError, VersionConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

CURRENT_SK = "CURRENT"
CHANGE_SK = "CHANGE"
SCOPE_INDEX = "byScope"


def key_pk(service: str, environment: str, key: str) -> str:
    return f"KEY#{service}#{environment}#{key}"


def version_sk(version: int) -> str:
    return f"V#{version:010d}"


def change_pk(change_id: str) -> str:
    return f"CHANGE#{change_id}"


def scope_pk(service: str, environment: str) -> str:
    return f"SCOPE#{service}#{environment}"


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

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": key_pk(self.service, self.environment, self.key),
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
        )


@dataclass(frozen=True)
class CurrentPointer:
    version: int
    deleted: bool
    change_id: str
    sensitive: bool = False


@dataclass(frozen=True)
class ChangeRecord:
    change_id: str
    status: str
    payload_hash: str
    version: int | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


class ChangeLog:
    """The change log table. ``table`` is injectable for tests; by default a boto3 resource."""

    def __init__(self, table_name: str, table: Table | None = None) -> None:
        self.table_name = table_name
        self._table = table or boto3.resource("dynamodb").Table(table_name)

    # --- reads ------------------------------------------------------------------------

    def current(self, service: str, environment: str, key: str) -> CurrentPointer | None:
        item = self._table.get_item(
            Key={"pk": key_pk(service, environment, key), "sk": CURRENT_SK}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return CurrentPointer(
            version=int(item["version"]),  # type: ignore[arg-type]
            deleted=bool(item.get("deleted", False)),
            change_id=str(item["changeId"]),
            sensitive=bool(item.get("sensitive", False)),
        )

    def version(self, service: str, environment: str, key: str, version: int) -> VersionRecord | None:
        item = self._table.get_item(
            Key={"pk": key_pk(service, environment, key), "sk": version_sk(version)}, ConsistentRead=True
        ).get("Item")
        return VersionRecord.from_item(item) if item else None

    def current_record(self, service: str, environment: str, key: str) -> VersionRecord | None:
        pointer = self.current(service, environment, key)
        return self.version(service, environment, key, pointer.version) if pointer else None

    def change(self, change_id: str) -> ChangeRecord | None:
        item = self._table.get_item(
            Key={"pk": change_pk(change_id), "sk": CHANGE_SK}, ConsistentRead=True
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
        )

    def history(
        self, service: str, environment: str, key: str, newest_first: bool = True, limit: int | None = None
    ) -> Iterator[VersionRecord]:
        """Every version of a key, paginated lazily."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(key_pk(service, environment, key))
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

    def keys(self, service: str, environment: str, include_deleted: bool = False) -> list[tuple[str, int]]:
        """(key, current version) for every key of one service+environment."""
        kwargs: dict[str, Any] = {
            "IndexName": SCOPE_INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(scope_pk(service, environment)),
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

    # --- writes -----------------------------------------------------------------------

    def append(self, record: VersionRecord, payload_hash: str, received_at: str) -> None:
        """Append ``record`` as the key's next version, atomically with its current pointer
        and its change record.

        Raises :class:`DuplicateChangeError` if the changeId was seen before and
        :class:`VersionConflictError` if the key moved past ``record.previous_version``.
        """
        pk = key_pk(record.service, record.environment, record.key)
        pointer_condition: dict[str, Any]
        if record.previous_version is None:
            pointer_condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            pointer_condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": record.previous_version},
            }
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        "pk": change_pk(record.change_id),
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
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": record.to_item(),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        "pk": pk,
                        "sk": CURRENT_SK,
                        "kind": "current",
                        "version": record.version,
                        "deleted": record.deleted,
                        "sensitive": record.sensitive,
                        "changeId": record.change_id,
                        "updatedAt": record.applied_at,
                        "gsi1pk": scope_pk(record.service, record.environment),
                        "gsi1sk": record.key,
                    },
                    **pointer_condition,
                }
            },
        ]
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
                current = self.current(record.service, record.environment, record.key)
                raise VersionConflictError(
                    record.previous_version, current.version if current else 0
                ) from error
            raise  # TransactionConflict etc.: let the caller's retry path decide

    def record_rejection(
        self,
        change_id: str,
        payload_hash: str,
        source: str,
        reasons: list[dict[str, Any]],
        identity: dict[str, Any],
        received_at: str,
    ) -> None:
        """The only write a rejected change makes. Raises DuplicateChangeError if the
        changeId already has a record (a redelivery: the first outcome stands)."""
        item = {
            "pk": change_pk(change_id),
            "sk": CHANGE_SK,
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
