"""Event sources of the local pipeline, with Lambda's delivery semantics.

- :class:`AsyncInvocations`: Lambda's asynchronous invocation queue of one function. Rule targets
  (the emulator's EventBridge put matched events on it) and ``Invoke(InvocationType=Event)`` land
  on an SQS queue in the emulator; this poller runs the function, retries a failed event
  ``MaximumRetryAttempts`` times (delays scaled down from Lambda's 1 and 2 minutes), then sends
  Lambda's invocation record to the on-failure destination. At-least-once: the message is
  deleted only after the outcome is settled; a runner that dies mid-way gets it redelivered.
- :class:`StreamPoller`: an event-source mapping on a DynamoDB stream: filter criteria (matched
  by the emulator's own EventBridge pattern matcher), batch size, ``ReportBatchItemFailures``
  checkpointing, retries with bisection, maximum record age, on-failure destination with the
  ``DDBStreamBatchInfo`` record.
- :class:`ScheduledRule`: ``rate(...)`` rules, which the emulator accepts but never fires.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

# One shape of a stream record as Lambda delivers it, shared with the stack's tests, redrive and
# the in-process chain.
from configpipe.streams import lambda_stream_record

if TYPE_CHECKING:
    from collections.abc import Callable

    from configpipe_tools.local.provision import Schedule, StreamMapping
    from configpipe_tools.local.sandbox import FunctionRuntime, InvocationResult

_ATTEMPT = "configpipe-local-attempt"
_FIRST_SEEN = "configpipe-local-first-seen"
_REQUEST_ID = "configpipe-local-request-id"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Destinations:
    """Sends a record to a destination ARN: SQS queue, SNS topic, event bus or function."""

    def __init__(self, client: Callable[[str], Any], enqueue: Callable[[str, bytes], None]) -> None:
        self._client = client
        self._enqueue = enqueue
        self._queue_urls: dict[str, str] = {}

    def send(self, arn: str, record: dict[str, Any], *, success: bool = False) -> None:
        body = json.dumps(record)
        service = arn.split(":")[2]
        if service == "sqs":
            name = arn.rsplit(":", 1)[1]
            if name not in self._queue_urls:
                self._queue_urls[name] = self._client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
            self._client("sqs").send_message(QueueUrl=self._queue_urls[name], MessageBody=body)
        elif service == "sns":
            self._client("sns").publish(TopicArn=arn, Message=body)
        elif service == "events":
            outcome = "Success" if success else "Failure"
            self._client("events").put_events(
                Entries=[
                    {
                        "EventBusName": arn,
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": body,
                    }
                ]
            )
        elif service == "lambda":
            self._enqueue(arn.split(":")[6], body.encode())


class _Poller:
    name = "poller"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 30) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (BotoCoreError, ClientError, RuntimeError):
                if self._stop.is_set():
                    return
                self._stop.wait(0.5)  # the emulator is going away or busy: try again shortly

    def poll(self) -> None:
        raise NotImplementedError


class AsyncInvocations(_Poller):
    """Runs up to ``concurrency`` of the function's queued events at once, as Lambda runs
    asynchronous invocations on as many execution environments as the function may have
    (the runtime's ``max_concurrency``): a slow event does not hold up the others."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        queue_url: str,
        client: Callable[[str], Any],
        destinations: Destinations,
        *,
        retry_delay: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        super().__init__()
        self.name = f"async:{runtime.spec.name}"
        self._runtime = runtime
        self._queue_url = queue_url
        self._client = client
        self._destinations = destinations
        self._retry_delay = retry_delay
        self._concurrency = max(1, concurrency)
        #: one slot per event being run; the poller receives only as many as are free
        self._slots = threading.BoundedSemaphore(self._concurrency)
        self._workers = ThreadPoolExecutor(self._concurrency, thread_name_prefix=self.name)

    def poll(self) -> None:
        if not self._slots.acquire(timeout=0.5):
            return  # every slot busy: look again (and at stop) shortly
        taken = 1
        while taken < min(10, self._concurrency) and self._slots.acquire(blocking=False):
            taken += 1
        try:
            messages = (
                self._client("sqs")
                .receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=taken,
                    # moto wakes a waiting receive as soon as a message arrives, so a longer
                    # wait costs no latency; it only makes stop() take up to 5 s. With 1 s, the
                    # idle pipeline's ~12 pollers made it use 13 % of a core (measured: 3.8 s of
                    # CPU per idle 30 s; 1.9 s with 5 s).
                    WaitTimeSeconds=5,
                    MessageAttributeNames=["All"],
                    AttributeNames=["SentTimestamp"],
                )
                .get("Messages", [])
            )
        except BaseException:
            for _ in range(taken):
                self._slots.release()
            raise
        for _ in range(taken - len(messages)):
            self._slots.release()
        for message in messages:
            self._workers.submit(self._run, message)

    def _run(self, message: dict[str, Any]) -> None:
        try:
            if self._stop.is_set():
                return  # left invisible; redelivered after the visibility timeout, as in AWS
            self._handle(message)
            self._client("sqs").delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError, RuntimeError):
            pass  # the emulator is going away or busy: the message is redelivered, as in AWS
        finally:
            self._slots.release()

    def join(self, timeout: float = 30) -> None:
        super().join(timeout)
        self._workers.shutdown(wait=True)

    def _handle(self, message: dict[str, Any]) -> None:
        spec = self._runtime.spec
        attributes = message.get("MessageAttributes", {})
        attempt = int(attributes.get(_ATTEMPT, {}).get("StringValue", "0"))
        first_seen = float(
            attributes.get(_FIRST_SEEN, {}).get(
                "StringValue", int(message["Attributes"]["SentTimestamp"]) / 1000
            )
        )
        request_id = attributes.get(_REQUEST_ID, {}).get("StringValue") or str(uuid.uuid4())
        payload = message["Body"].encode()
        result = self._runtime.invoke(payload)
        if result.ok:
            if spec.on_success:
                self._destinations.send(
                    spec.on_success,
                    self._record(payload, result, attempt, request_id, "Success"),
                    success=True,
                )
            return
        age = time.time() - first_seen
        if attempt < spec.async_retry_attempts and age < spec.async_max_event_age:
            self._client("sqs").send_message(
                QueueUrl=self._queue_url,
                MessageBody=message["Body"],
                DelaySeconds=min(900, round(self._retry_delay * 2**attempt)),
                MessageAttributes={
                    _ATTEMPT: {"DataType": "Number", "StringValue": str(attempt + 1)},
                    _FIRST_SEEN: {"DataType": "Number", "StringValue": f"{first_seen:.3f}"},
                    _REQUEST_ID: {"DataType": "String", "StringValue": request_id},
                },
            )
            return
        if spec.on_failure:
            condition = "RetriesExhausted" if attempt >= spec.async_retry_attempts else "EventAgeExceeded"
            self._destinations.send(
                spec.on_failure, self._record(payload, result, attempt, request_id, condition)
            )

    def _record(
        self, payload: bytes, result: InvocationResult, attempt: int, request_id: str, condition: str
    ) -> dict[str, Any]:
        """Lambda's asynchronous invocation record, as destinations receive it."""
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if not result.ok:
            response["functionError"] = "Unhandled"
        return {
            "version": "1.0",
            "timestamp": _now(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{self._runtime.spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": attempt + 1,
            },
            "requestPayload": json.loads(payload),
            "responseContext": response,
            "responsePayload": json.loads(result.payload) if result.ok else result.error,
        }


@dataclass
class _Batch:
    shard_id: str
    records: list[dict[str, Any]]
    attempts: int = 0


class StreamPoller(_Poller):
    """One event-source mapping on a DynamoDB stream."""

    def __init__(
        self,
        mapping: StreamMapping,
        runtime: FunctionRuntime,
        client: Callable[[str], Any],
        destinations: Destinations,
        *,
        interval: float = 0.25,
        retry_delay: float = 0.2,
    ) -> None:
        super().__init__()
        self.name = f"stream:{mapping.function}"
        self._mapping = mapping
        self._runtime = runtime
        self._client = client
        self._destinations = destinations
        self._interval = interval
        self._retry_delay = retry_delay
        #: last sequence number read per shard; LATEST mappings follow their first iterator until then
        self._checkpoints: dict[str, str] = {}
        self._latest: dict[str, str] = {}
        self._pending: deque[_Batch] = deque()
        self._filters = [self._load_pattern(p) for p in mapping.filters]

    @staticmethod
    def _load_pattern(pattern: str) -> Any:
        # The emulator's EventBridge matcher: Lambda filter criteria use EventBridge's pattern syntax.
        from moto.events.models import EventPattern

        return EventPattern.load(pattern)

    def matches(self, record: dict[str, Any]) -> bool:
        return not self._filters or any(f.matches_event(record) for f in self._filters)

    def poll(self) -> None:
        if not self._pending and not self._read():
            self._stop.wait(self._interval)
            return
        batch = self._pending[0]
        result = self._runtime.invoke(json.dumps({"Records": batch.records}).encode())
        failed_from = self._failed_index(batch, result)
        if failed_from is None:
            self._pending.popleft()
            return
        self._retry(batch, failed_from, bisect=not result.ok)

    def _read(self) -> bool:
        streams = self._client("dynamodbstreams")
        arn = self._mapping.source_arn
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        found = False
        for shard in shards:
            shard_id = shard["ShardId"]
            # A fresh iterator after the checkpoint on every poll (see configpipe_tools.local.consistency).
            if shard_id in self._checkpoints:
                iterator = streams.get_shard_iterator(
                    StreamArn=arn,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=self._checkpoints[shard_id],
                )["ShardIterator"]
            elif shard_id in self._latest:
                iterator = self._latest[shard_id]
            else:
                iterator = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType=self._mapping.starting_position
                )["ShardIterator"]
            response = streams.get_records(ShardIterator=iterator, Limit=self._mapping.batch_size)
            raw = response.get("Records", [])
            if raw:
                self._checkpoints[shard_id] = raw[-1]["dynamodb"]["SequenceNumber"]
            elif shard_id not in self._checkpoints and response.get("NextShardIterator"):
                self._latest[shard_id] = response["NextShardIterator"]
            records = [lambda_stream_record(r, arn) for r in raw]
            selected = [r for r in records if self.matches(r)]
            if selected:
                self._pending.append(_Batch(shard_id, selected))
                found = True
        return found

    def _failed_index(self, batch: _Batch, result: InvocationResult) -> int | None:
        """None when the batch is done; else the index to retry from."""
        if not result.ok:
            return 0
        if not self._mapping.report_batch_item_failures:
            return None
        try:
            response = json.loads(result.payload)
        except ValueError:
            return None
        failures = (response.get("batchItemFailures") if isinstance(response, dict) else None) or []
        if not failures:
            return None
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in batch.records]
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in sequence_numbers:
                return 0  # an invalid identifier fails the whole batch, as in AWS
            indexes.append(sequence_numbers.index(identifier))
        return min(indexes)

    def _retry(self, batch: _Batch, failed_from: int, *, bisect: bool) -> None:
        remaining = batch.records[failed_from:]
        attempts = batch.attempts + 1
        limit = self._mapping.max_retry_attempts
        oldest = remaining[0]["dynamodb"].get("ApproximateCreationDateTime", time.time())
        too_old = self._mapping.max_record_age != -1 and time.time() - oldest > self._mapping.max_record_age
        self._pending.popleft()
        if too_old or (limit != -1 and attempts > limit):
            self._discard(_Batch(batch.shard_id, remaining, attempts), too_old=too_old)
            return
        if bisect and self._mapping.bisect_on_error and len(remaining) > 1:
            half = len(remaining) // 2
            self._pending.appendleft(_Batch(batch.shard_id, remaining[half:], attempts))
            self._pending.appendleft(_Batch(batch.shard_id, remaining[:half], attempts))
        else:
            self._pending.appendleft(_Batch(batch.shard_id, remaining, attempts))
        self._stop.wait(min(5.0, self._retry_delay * 2 ** min(attempts, 5)))

    def _discard(self, batch: _Batch, *, too_old: bool) -> None:
        """Lambda skips the batch and sends its description (not its records) on failure."""
        if not self._mapping.on_failure:
            return
        first, last = batch.records[0]["dynamodb"], batch.records[-1]["dynamodb"]
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._runtime.spec.arn,
                "condition": "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted",
                "approximateInvokeCount": batch.attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": _now(),
            "DDBStreamBatchInfo": {
                "shardId": batch.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch.records),
                "streamArn": self._mapping.source_arn,
            },
        }
        self._destinations.send(self._mapping.on_failure, record)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between firings of ``rate(N unit)``; None for ``cron(...)`` (not emulated)."""
    if not expression.startswith("rate(") or not expression.endswith(")"):
        return None
    amount, _, unit = expression[5:-1].strip().partition(" ")
    return int(amount) * _RATE_UNITS[unit.strip()]


class ScheduledRule(_Poller):
    """Fires a ``rate(...)`` rule's ``Scheduled Event`` at its function's async queue."""

    def __init__(
        self,
        schedule: Schedule,
        enqueue: Callable[[str, bytes], None],
        *,
        region: str,
        account: str,
        speedup: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = f"schedule:{schedule.rule}"
        self._schedule = schedule
        self._enqueue = enqueue
        self._region = region
        self._account = account
        self._period = (rate_seconds(schedule.expression) or 0) / speedup

    def poll(self) -> None:
        if self._period <= 0 or self._stop.wait(self._period):
            self._stop.wait(3600) if self._period <= 0 else None
            return
        event = self._schedule.input or json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self._account,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self._region,
                "resources": [f"arn:aws:events:{self._region}:{self._account}:rule/{self._schedule.rule}"],
                "detail": {},
            }
        )
        self._enqueue(self._schedule.function, event.encode())
