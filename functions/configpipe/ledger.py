"""Data access for the delivery ledger (DynamoDB): which version of each key each subscribed
service has applied, and its last refusal (issue 14).

One item per (configuration service, environment, key, target service):
``pk = {service}#{environment}``, ``sk = {key}#{targetService}``, so ``configpipe status`` reads a
whole service's environment with one Query. A tenant's own value of a key has its own version
sequence, so its acknowledgements have their own partition,
``{service}#{environment}.tenants/{tenant}`` (the change log's and the parameters' tenant
segment): a tenant's version 1 never reads as the service's. Two facets, each written by one
conditional update that only ever moves forward, so acknowledgements may arrive duplicated and in
any order:

* **applied** (``appliedVersion``, ``appliedAt``, ``appliedChangeId``) — condition
  ``appliedVersion < :v``: an older or repeated "applied" changes nothing;
* **refused** (``failedVersion``, ``failedAt``, ``failureReason``, ``failedChangeId``) — condition
  ``failedVersion < :v``: the newest refusal is kept.

Kept apart because they are independent facts: a late "applied 3" after "refused 4" is still
true (the service runs 3, having refused 4), and one guard over both would drop it. The key is
failing while ``failedVersion > appliedVersion``. Every acknowledgement is one write, so there is
no step to crash between. The table holds versions and the service's own reasons, never values.
Botocore errors are translated here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from configpipe.contracts import AckOutcome, ConfigurationAcknowledged
from configpipe.naming import environment_segment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


def ledger_pk(service: str, environment: str, tenant: str | None = None) -> str:
    return f"{service}#{environment_segment(environment, tenant)}"


def ledger_sk(key: str, target_service: str) -> str:
    # Neither a key nor a service name can contain '#' (contracts' patterns).
    return f"{key}#{target_service}"


@dataclass(frozen=True)
class LedgerEntry:
    """What one service has done with one key, as the ledger holds it."""

    service: str
    environment: str
    key: str
    target_service: str
    applied_version: int | None = None
    applied_at: str | None = None
    applied_change_id: str | None = None
    failed_version: int | None = None
    failed_at: str | None = None
    failure_reason: str | None = None
    tenant: str | None = None

    @property
    def failing(self) -> bool:
        """The service refused a version newer than the one it runs."""
        return self.failed_version is not None and self.failed_version > (self.applied_version or 0)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        def opt_int(name: str) -> int | None:
            value = item.get(name)
            return int(value) if value is not None else None

        def opt_str(name: str) -> str | None:
            value = item.get(name)
            return str(value) if value is not None else None

        return cls(
            service=str(item["service"]),
            environment=str(item["environment"]),
            key=str(item["key"]),
            target_service=str(item["targetService"]),
            applied_version=opt_int("appliedVersion"),
            applied_at=opt_str("appliedAt"),
            applied_change_id=opt_str("appliedChangeId"),
            failed_version=opt_int("failedVersion"),
            failed_at=opt_str("failedAt"),
            failure_reason=opt_str("failureReason"),
            tenant=opt_str("tenant"),
        )

    def to_view(self) -> dict[str, Any]:
        """camelCase, without empty fields (the CLI's JSON)."""
        view = {
            "targetService": self.target_service,
            "appliedVersion": self.applied_version,
            "appliedAt": self.applied_at,
            "appliedChangeId": self.applied_change_id,
            "failedVersion": self.failed_version,
            "failedAt": self.failed_at,
            "failureReason": self.failure_reason,
        }
        return {k: v for k, v in view.items() if v is not None}


class DeliveryLedger:
    """The delivery ledger table. ``table`` is injectable for tests; by default a boto3 resource."""

    def __init__(self, table_name: str, table: Table | None = None) -> None:
        self.table_name = table_name
        self._table = table or boto3.resource("dynamodb").Table(table_name)

    def record(self, ack: ConfigurationAcknowledged) -> bool:
        """Record ``ack`` unless the ledger already holds its facet at this version or a newer
        one. True if it changed the ledger; False for a duplicate or an out-of-order ack."""
        facet = "appliedVersion" if ack.outcome is AckOutcome.APPLIED else "failedVersion"
        values: dict[str, Any] = {
            ":service": ack.service,
            ":environment": ack.environment,
            ":key": ack.key,
            ":target": ack.target_service,
            ":v": ack.version,
            ":at": ack.reported_at.astimezone(UTC).isoformat(),
            ":change": ack.change_id,
            ":recorded": datetime.now(UTC).isoformat(),
        }
        names = {"#service": "service", "#environment": "environment", "#key": "key", "#facet": facet}
        common = (
            "#service = :service, #environment = :environment, #key = :key, "
            "targetService = :target, recordedAt = :recorded"
        )
        if ack.tenant is not None:
            common += ", tenant = :tenant"
            values[":tenant"] = ack.tenant
        if ack.outcome is AckOutcome.APPLIED:
            update = f"SET {common}, #facet = :v, appliedAt = :at, appliedChangeId = :change"
        else:
            update = (
                f"SET {common}, #facet = :v, failedAt = :at, failedChangeId = :change, failureReason = :why"
            )
            values[":why"] = ack.reason or "refused by the service's check"
        try:
            self._table.update_item(
                Key={
                    "pk": ledger_pk(ack.service, ack.environment, ack.tenant),
                    "sk": ledger_sk(ack.key, ack.target_service),
                },
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#facet) OR #facet < :v",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def entries(
        self, service: str, environment: str, key: str | None = None, tenant: str | None = None
    ) -> list[LedgerEntry]:
        """Every entry of ``service`` in ``environment`` (of one key, if given; of one tenant's
        own values, if given), by key then target."""
        condition = Key("pk").eq(ledger_pk(service, environment, tenant))
        if key is not None:
            condition = condition & Key("sk").begins_with(f"{key}#")
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ConsistentRead": True}
        found: list[LedgerEntry] = []
        while True:
            page = self._table.query(**kwargs)
            # begins_with("k#") never matches "k2#…": '#' ends a key, which cannot contain one.
            found.extend(LedgerEntry.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
