"""The sample ``<service>-config-update-handler``: what a service team writes on top of
:func:`configpipe.client.config_update_handler`.

Its callback records what it applied in the ``DemoApplied`` table (pk = service,
sk = ``{environment}#{key}``: version, valueHash, deleted, appliedAt) with a conditional
write ``attribute_not_exists(pk) OR version < :v``: a durable stale-version guard that
holds across cold starts and concurrent executions. A lost condition means a newer (or
the same) version is already applied, which is success, not an error. The value itself is
never written (only its hash), so a secret cannot leak into the table.

Wired like every configpipe function: its environment is
:class:`~sample_service.settings.SampleServiceSettings`, :func:`build` makes the handler from
it (the table and the config client injectable for tests), and :func:`default` builds it once
per execution environment, on first use.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from configpipe.client import ConfigClient, config_update_handler
from sample_service.settings import SampleServiceSettings

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


def build(
    settings: SampleServiceSettings, *, table: Table | None = None, client: ConfigClient | None = None
) -> LambdaHandler:
    applied = AppliedVersions(settings.service_name, settings.applied_table, table)
    if client is None and settings.config_environment:
        client = ConfigClient(settings.service_name, settings.config_environment)

    def on_update(update: ConfigurationUpdated, value: Any) -> None:
        applied.record(update, value)

    return config_update_handler(settings.service_name, on_update=on_update, client=client)


@cache
def default() -> LambdaHandler:
    """Built from the environment once per execution environment, on first use."""
    return build(SampleServiceSettings.from_environ())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return default()(event, context)
