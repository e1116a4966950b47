"""The sample ``<service>-config-update-handler``: what a service team writes on top of
:func:`configpipe.client.config_update_handler`.

Its callback records what it applied in the ``DemoApplied`` table (pk = service,
sk = ``{environment}#{key}``: version, valueHash, deleted, appliedAt) with a conditional
write ``attribute_not_exists(pk) OR version < :v``: a durable stale-version guard that
holds across cold starts and concurrent executions. A lost condition means a newer (or
the same) version is already applied, which is success, not an error. The value itself is
never written (only its hash), so a secret cannot leak into the table.

Environment: ``SERVICE_NAME``, ``APPLIED_TABLE``; optional ``CONFIG_ENVIRONMENT`` (the
environment whose config cache this function keeps warm).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from configpipe.client import ConfigClient, config_update_handler

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

    from configpipe.client.update_handler import LambdaHandler
    from configpipe.contracts import ConfigurationUpdated

log = logging.getLogger("sample_service")


class AppliedVersions:
    """The DemoApplied table: the version of each key this service has applied."""

    def __init__(self, service: str, table_name: str, table: Table | None = None) -> None:
        if table is None:
            import boto3

            table = boto3.resource("dynamodb").Table(table_name)
        self._service = service
        self._table = table

    def record(self, update: ConfigurationUpdated, value: Any) -> bool:
        """Record ``update`` as applied unless a version at least as new already is.
        ``value`` is deliberately unused: only the hash is kept."""
        try:
            self._table.put_item(
                Item={
                    "pk": self._service,
                    "sk": f"{update.environment}#{update.key}",
                    "service": update.service,
                    "key": update.key,
                    "environment": update.environment,
                    "version": update.version,
                    "valueHash": update.value_hash,
                    "deleted": update.deleted,
                    "changeId": update.change_id,
                    "appliedAt": datetime.now(UTC).isoformat(),
                },
                ConditionExpression="attribute_not_exists(pk) OR version < :v",
                ExpressionAttributeValues={":v": update.version},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            log.info(
                "a version at least as new is already applied",
                extra={"configService": self._service, "key": update.key, "version": update.version},
            )
            return False
        return True

    def get(self, environment: str, key: str) -> dict[str, Any] | None:
        return self._table.get_item(
            Key={"pk": self._service, "sk": f"{environment}#{key}"}, ConsistentRead=True
        ).get("Item")


def make_handler(
    service: str,
    applied_table: str,
    environment: str | None = None,
    table: Table | None = None,
    client: ConfigClient | None = None,
) -> LambdaHandler:
    applied = AppliedVersions(service, applied_table, table)
    if client is None and environment:
        client = ConfigClient(service, environment)

    def on_update(update: ConfigurationUpdated, value: Any) -> None:
        applied.record(update, value)

    return config_update_handler(service, on_update=on_update, client=client)


_handler: LambdaHandler | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = make_handler(
            os.environ["SERVICE_NAME"],
            os.environ["APPLIED_TABLE"],
            environment=os.environ.get("CONFIG_ENVIRONMENT") or None,
        )
    return _handler(event, context)
