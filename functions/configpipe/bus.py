"""Publishing to the config bus: PutEvents in chunks of 10 (the API's limit), with every
partial failure turned into :class:`EventPublishError` so the caller retries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
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

    def publish(self, entries: Iterable[dict[str, Any]], max_parallel: int = 1) -> int:
        """Publish every entry; raise if any was refused (the whole call is safe to retry:
        consumers are idempotent by changeId and version). Returns the number published.

        With ``max_parallel`` > 1 the chunks are sent concurrently (EventBridge does not
        order events anyway); every chunk is still sent and every refusal still reported."""
        batch = list(entries)
        chunks = [batch[start : start + _CHUNK] for start in range(0, len(batch), _CHUNK)]
        if max_parallel > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=min(max_parallel, len(chunks))) as pool:
                refusals = list(pool.map(self._put_chunk, chunks))
        else:
            refusals = [self._put_chunk(chunk) for chunk in chunks]
        failed = [refusal for chunk_refusals in refusals for refusal in chunk_refusals]
        if failed:
            raise EventPublishError(failed)
        return len(batch)

    def _put_chunk(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self._client.put_events(Entries=chunk)  # type: ignore[arg-type]
        if not response.get("FailedEntryCount", 0):
            return []
        return [
            {**result, "DetailType": sent["DetailType"]}
            for sent, result in zip(chunk, response["Entries"], strict=True)
            if result.get("ErrorCode")
        ]
