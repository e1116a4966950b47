"""Make the emulator's DynamoDB as atomic as DynamoDB, while the local pipeline runs.

moto applies a transaction's writes one by one and, if a condition fails, restores a copy of
the whole table taken before it. With a threaded server and several functions calling it at
once, that has two effects real DynamoDB never has: another request can observe (or lose) a
half-applied transaction, and a cancelled transaction's writes leave stream records behind in
the shard object that existing iterators still point at. A rejected duplicate then surfaces as
a phantom ``INSERT`` on the stream.

So every DynamoDB and DynamoDB Streams backend call runs under one lock (DynamoDB's own
serialisability, coarsely), and the stream poller asks for a fresh iterator after its
checkpoint on every poll instead of following ``NextShardIterator`` into a detached shard.
This is the same correction the project's in-process tests apply
(``configpipe_tools/harness/aws.py``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_DYNAMODB = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
    "batch_get_item",
)
_STREAMS = ("describe_stream", "get_shard_iterator", "get_records")


class SerialisedDynamoDB:
    """Installs the lock on moto's backend classes; ``remove()`` restores them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._originals: list[tuple[type, str, Callable[..., Any]]] = []

    def install(self) -> SerialisedDynamoDB:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodbstreams.models import DynamoDBStreamsBackend

        for cls, names in ((DynamoDBBackend, _DYNAMODB), (DynamoDBStreamsBackend, _STREAMS)):
            for name in names:
                original = cls.__dict__.get(name)
                if original is None:
                    continue
                self._originals.append((cls, name, original))
                wrapped = _without_phantom_records(original) if name == "transact_write_items" else original
                setattr(cls, name, self._locked(wrapped))
        return self

    def remove(self) -> None:
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()

    def _locked(self, original: Callable[..., Any]) -> Callable[..., Any]:
        lock = self._lock

        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call


def _without_phantom_records(transact_write_items: Callable[..., Any]) -> Callable[..., Any]:
    """A cancelled transaction leaves no stream records, as in DynamoDB (moto rolls the table
    back but keeps the records its partial writes appended to the stream shard)."""

    @functools.wraps(transact_write_items)
    def call(backend: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        names = {next(iter(item.values())).get("TableName") for item in transact_items}
        before = {}
        for name in names:
            table = backend.tables.get(name)
            if table is not None and table.stream_shard is not None:
                before[name] = (table.stream_shard, len(table.stream_shard.items))
        try:
            return transact_write_items(backend, transact_items, *args, **kwargs)
        except Exception:
            for name, (shard, count) in before.items():
                live = backend.tables.get(name)
                shards = [shard] + ([live.stream_shard] if live is not None and live.stream_shard else [])
                for candidate in shards:
                    del candidate.items[count:]
            raise

    return call
