"""Publishing to the config bus: PutEvents in chunks of 10 (the API's limit), with every
partial failure turned into :class:`EventPublishError` so the caller retries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import boto3

from configpipe.contracts import PIPELINE_SOURCE, Contract, DetailType
from configpipe.errors import EventPublishError
from configpipe.values import canonical_json

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

_CHUNK = 10


class ConfigBus:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None, source: str = PIPELINE_SOURCE):
        self._bus_name = bus_name
        self._source = source
        self._client = client or boto3.client("events")

    def entry(
        self, detail_type: DetailType, detail: Contract, resources: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {
            "EventBusName": self._bus_name,
            "Source": self._source,
            "DetailType": detail_type.value,
            "Detail": canonical_json(detail.to_detail()),
            "Resources": list(resources),
        }

    def publish(self, entries: Iterable[dict[str, Any]]) -> int:
        """Publish every entry; raise if any was refused (the whole call is safe to retry:
        consumers are idempotent by changeId and version). Returns the number published."""
        batch = list(entries)
        failed: list[dict[str, Any]] = []
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start : start + _CHUNK]
            response = self._client.put_events(Entries=chunk)  # type: ignore[arg-type]
            if response.get("FailedEntryCount", 0):
                failed.extend(
                    {**result, "DetailType": sent["DetailType"]}
                    for sent, result in zip(chunk, response["Entries"], strict=True)
                    if result.get("ErrorCode")
                )
        if failed:
            raise EventPublishError(failed)
        return len(batch)
