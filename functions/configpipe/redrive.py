"""Redrive: turn what a dead-letter queue holds back into deliveries to the function it was for.

Every configpipe DLQ holds one of three shapes (see docs/operations.md):

* **rule-target** — an EventBridge rule target's DLQ: the body *is* the original event;
  the message attributes ``RULE_ARN`` / ``TARGET_ARN`` / ``ERROR_CODE`` / ``ERROR_MESSAGE``
  say which target it could not be delivered to.
* **async-failure** — a Lambda asynchronous on-failure destination record:
  ``{requestContext: {functionArn, condition, approximateInvokeCount, …}, requestPayload:
  <the original event>, responseContext, responsePayload}``.
* **stream-batch** — a DynamoDB-stream event-source-mapping on-failure record:
  ``{requestContext: {functionArn, …}, DDBStreamBatchInfo: {shardId, startSequenceNumber,
  endSequenceNumber, streamArn, batchSize, approximateArrivalOf{First,Last}Record}}``. The
  records themselves are not in it: they are read back from the stream (which keeps them 24 h)
  and handed to the materialiser as the event-source mapping would have.

Each message is re-delivered by invoking its function directly with the original payload
(``InvocationType=Event``, through the :class:`configpipe.fanout.Invoker` port) — never by
re-publishing on the bus, which only the pipeline's own roles may do with the pipeline source,
and which would give the event a new id. A message is deleted only once its re-delivery was
accepted; anything else is left in the queue (made visible again at the end of the run).

This runs inside the redrive *function* (``configpipe.handlers.redrive``), never with an
operator's own credentials: the operator may invoke only that function, which reads only the
stack's dead-letter queues (:class:`RedriveQueue`, from its environment) and re-invokes only
the functions each queue was the dead-letter queue of. So an operator can re-deliver what the
pipeline itself parked, and cannot hand a payload of their own to the validator, the
propagator, an update handler or the release manager (docs/security.md, H1).

Nothing here prints or returns a value: what identifies a message (detail-type, changeId,
service/environment/key, version) is picked from a fixed list of fields, never the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from configpipe.contracts import PIPELINE_SOURCE, TEAM_SOURCE_PREFIX
from configpipe.fanout import InvocationError, Invoker, LambdaInvoker
from configpipe.streams import lambda_stream_record, passes_materialiser_filter

RULE_TARGET = "rule-target"
ASYNC_FAILURE = "async-failure"
STREAM_BATCH = "stream-batch"
UNKNOWN = "unknown"

REDRIVEN = "redriven"
WOULD_REDRIVE = "would-redrive"
SKIPPED = "skipped"
FAILED = "failed"

#: Errors of DynamoDB Streams that mean "those records are gone": trimmed after 24 h, the
#: stream (or shard) no longer exists, or an iterator that outlived its 15 minutes.
STREAM_GONE_CODES = frozenset(
    {"TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException"}
)
#: An open shard answers an iterator past its last record with empty pages forever.
MAX_EMPTY_PAGES = 5
#: What may be shown of an event's detail or a stream item: identity only, never a value.
IDENTITY_FIELDS = (
    "changeId",
    "service",
    "environment",
    "key",
    "version",
    "operation",
    "targetService",
    "releaseId",
    "function",
    "alias",
)
STREAM_IDENTITY_FIELDS = ("kind", "status", "changeId", "service", "environment", "key", "version")
SCHEDULED_EVENT = ("aws.events", "Scheduled Event")

EXPIRED_HINT = (
    "The change log is the source of truth: every version in it is still there. Find the keys "
    "changed in that window (`configpipe history SERVICE ENV KEY`), then re-publish each key's "
    "current value: `configpipe rollback SERVICE ENV KEY --to <current version> --reason redrive` "
    "writes it again as a new version, which re-materialises and re-announces it. Then delete "
    "this message (`aws sqs delete-message`)."
)


#: The most messages one invocation of the redrive function handles: each may mean a stream
#: read and an Invoke, and the function has a timeout; run the redrive again for more.
MAX_MESSAGES_PER_RUN = 200

#: Stable codes of a refused redrive request (the function's answer, and the CLI's error code).
INVALID_REQUEST = "INVALID_REDRIVE_REQUEST"
QUEUE_NOT_REDRIVABLE = "QUEUE_NOT_REDRIVABLE"


class RedriveRequest(BaseModel):
    """What an operator asks the redrive function for (``configpipe ops redrive``). A command:
    an unknown field is refused. Carries no payload: what is re-delivered comes from the queue."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    queue: str = Field(min_length=1, max_length=1024, description="the queue's URL, ARN or name")
    function: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="re-deliver to this function; must be one the queue is the DLQ of",
    )
    max_messages: int = Field(
        default=MAX_MESSAGES_PER_RUN, ge=1, le=MAX_MESSAGES_PER_RUN, alias="maxMessages"
    )
    dry_run: bool = Field(default=False, alias="dryRun")


@dataclass(frozen=True)
class RedriveQueue:
    """One of the stack's dead-letter queues and the functions whose failures it holds: the
    only functions a message of this queue is ever re-delivered to."""

    name: str
    targets: frozenset[str]


def queue_name(queue: str) -> str:
    """The queue's name from its URL, ARN or name (the three forms an alarm or output shows)."""
    if queue.startswith(("https://", "http://")):
        return queue.rstrip("/").rsplit("/", 1)[-1]
    if queue.startswith("arn:"):
        return queue.rsplit(":", 1)[-1]
    return queue


def function_name(function: str) -> str:
    """A function's bare name from a name, a partial or full ARN, with or without qualifier."""
    if ":function:" in function:
        function = function.split(":function:", 1)[1]
    return function.split(":", 1)[0]


class StreamRecordsGoneError(Exception):
    """The stream no longer holds the records of a parked batch."""


@dataclass
class MessageOutcome:
    message_id: str
    shape: str
    status: str
    function: str | None = None
    identities: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messageId": self.message_id,
            "shape": self.shape,
            "status": self.status,
            "function": self.function,
            "identities": self.identities,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.hint:
            body["hint"] = self.hint
        return body

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MessageOutcome:
        return cls(
            str(raw["messageId"]),
            str(raw["shape"]),
            str(raw["status"]),
            function=raw.get("function"),
            identities=list(raw.get("identities") or []),
            reason=raw.get("reason"),
            hint=raw.get("hint"),
        )


@dataclass
class RedriveReport:
    queue_url: str
    dry_run: bool
    outcomes: list[MessageOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def all_unrecognised(self) -> bool:
        """Messages were read and not one had a configpipe DLQ shape."""
        return bool(self.outcomes) and all(o.shape == UNKNOWN for o in self.outcomes)

    @property
    def complete(self) -> bool:
        """Every message read was (or, in a dry run, would be) redriven."""
        return all(o.status in {REDRIVEN, WOULD_REDRIVE} for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        return {
            "total": len(self.outcomes),
            "redriven": self.count(REDRIVEN),
            "wouldRedrive": self.count(WOULD_REDRIVE),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "queueUrl": self.queue_url,
            "dryRun": self.dry_run,
            "summary": self.summary(),
            "messages": [o.to_dict() for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RedriveReport:
        """The report as the redrive function answered it (the CLI renders it)."""
        return cls(
            str(raw["queueUrl"]),
            bool(raw["dryRun"]),
            [MessageOutcome.from_dict(m) for m in raw.get("messages") or []],
        )


@dataclass
class _Plan:
    """What to deliver for one message, or why not."""

    shape: str
    function: str | None = None
    payloads: list[Any] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    skip: str | None = None
    hint: str | None = None


class Redriver:
    """Reads a DLQ and re-delivers each message. ``invoker`` is the port that hands a payload
    to a function (default: Lambda ``Invoke`` with ``InvocationType=Event``)."""

    def __init__(
        self,
        *,
        sqs: Any,
        streams: Any,
        invoker: Invoker | None = None,
        lambda_client: Any = None,
        wait_seconds: int = 1,
        visibility_timeout: int = 300,
    ) -> None:
        self._sqs = sqs
        self._streams = streams
        self._invoke: Invoker = invoker or LambdaInvoker(lambda_client)
        self._wait = wait_seconds
        self._visibility = visibility_timeout

    # --- the queue --------------------------------------------------------------------------

    def run(
        self,
        queue: RedriveQueue,
        *,
        function: str | None = None,
        max_messages: int | None = None,
        dry_run: bool = False,
    ) -> RedriveReport:
        queue_url = str(self._sqs.get_queue_url(QueueName=queue.name)["QueueUrl"])
        report = RedriveReport(queue_url, dry_run)
        kept: list[str] = []
        try:
            for message in self._messages(queue_url, max_messages):
                outcome = self._redrive_one(message, function, dry_run, queue.targets)
                report.outcomes.append(outcome)
                if outcome.status == REDRIVEN:
                    self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    kept.append(message["ReceiptHandle"])
        finally:
            self._release(queue_url, kept)
        return report

    def _messages(self, queue_url: str, max_messages: int | None) -> Iterator[dict[str, Any]]:
        """Each message once, until the queue is drained or ``max_messages`` were read. Read
        messages stay invisible for the run, so none is seen twice."""
        seen: set[str] = set()
        while max_messages is None or len(seen) < max_messages:
            wanted = 10 if max_messages is None else min(10, max_messages - len(seen))
            messages = self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self._wait,
                VisibilityTimeout=self._visibility,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                return
            for message in fresh:
                seen.add(message["MessageId"])
                yield message

    def _release(self, queue_url: str, receipt_handles: list[str]) -> None:
        """Make the messages left in the queue visible again at once (not after the run's
        visibility timeout), so the next run and the queue-depth alarm see them."""
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            self._sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, handle in enumerate(chunk)
                ],
            )

    # --- one message ------------------------------------------------------------------------

    def _redrive_one(
        self, message: dict[str, Any], function: str | None, dry_run: bool, targets: frozenset[str]
    ) -> MessageOutcome:
        plan = self._plan(message, function)
        if plan.skip is None and plan.function is not None and function_name(plan.function) not in targets:
            # A message names its function itself (TARGET_ARN, functionArn): whoever could
            # write to the queue could name any function. Only this queue's own are served.
            plan.skip = (
                f"{function_name(plan.function)} is not a function this queue is the dead-letter queue "
                f"of ({', '.join(sorted(targets)) or 'none'})"
            )
            plan.payloads = []
        outcome = MessageOutcome(
            message["MessageId"],
            plan.shape,
            SKIPPED,
            function=plan.function,
            identities=plan.identities,
            reason=plan.skip,
            hint=plan.hint,
        )
        if plan.skip is not None or plan.function is None:
            return outcome
        if dry_run:
            outcome.status = WOULD_REDRIVE
            return outcome
        for payload in plan.payloads:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            try:
                self._invoke(plan.function, body)
            except InvocationError as error:
                outcome.status = FAILED
                outcome.reason = f"Lambda refused the invocation: {error.code}: {error.message}"
                outcome.hint = (
                    "The message stays in the queue. Check the function exists and is not throttled; "
                    "then run the redrive again."
                )
                return outcome
        outcome.status = REDRIVEN
        return outcome

    def _plan(self, message: dict[str, Any], function: str | None) -> _Plan:
        try:
            body = json.loads(message.get("Body", ""))
        except ValueError:
            return _Plan(UNKNOWN, skip="the body is not JSON: not a configpipe dead letter")
        if not isinstance(body, dict):
            return _Plan(UNKNOWN, skip="the body is not a JSON object: not a configpipe dead letter")
        context = body.get("requestContext")
        if isinstance(context, dict) and isinstance(body.get("DDBStreamBatchInfo"), dict):
            return self._plan_stream_batch(body, function or _function_of(context))
        if isinstance(context, dict) and "requestPayload" in body:
            return _plan_async_failure(body, function or _function_of(context))
        if _is_event(body):
            attributes = {
                name: str(value.get("StringValue", ""))
                for name, value in (message.get("MessageAttributes") or {}).items()
            }
            return _plan_rule_target(body, attributes, function)
        return _Plan(
            UNKNOWN,
            skip="not a configpipe dead letter: neither an EventBridge event, a Lambda on-failure "
            "record, nor a stream batch record",
        )

    def _plan_stream_batch(self, body: dict[str, Any], function: str | None) -> _Plan:
        info = body["DDBStreamBatchInfo"]
        window = (
            f"records {info.get('startSequenceNumber')}..{info.get('endSequenceNumber')} of shard "
            f"{info.get('shardId')} (arrived {info.get('approximateArrivalOfFirstRecord', '?')} .. "
            f"{info.get('approximateArrivalOfLastRecord', '?')})"
        )
        if not function:
            return _Plan(STREAM_BATCH, skip="the record names no function (requestContext.functionArn)")
        missing = [
            k for k in ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber") if not info.get(k)
        ]
        if missing:
            return _Plan(STREAM_BATCH, function, skip=f"DDBStreamBatchInfo lacks {', '.join(missing)}")
        try:
            records = [r for r in self._read_stream(info) if passes_materialiser_filter(r)]
        except StreamRecordsGoneError as gone:
            return _Plan(
                STREAM_BATCH,
                function,
                skip=f"{window} have expired ({gone}); nothing left to redrive",
                hint=EXPIRED_HINT,
            )
        if not records:
            return _Plan(
                STREAM_BATCH,
                function,
                skip=f"{window} were not found in the stream (expired: it keeps records 24 h)",
                hint=EXPIRED_HINT,
            )
        stream_arn = str(info["streamArn"])
        lambda_records = [lambda_stream_record(r, stream_arn) for r in records]
        return _Plan(
            STREAM_BATCH,
            function,
            payloads=[{"Records": lambda_records}],
            identities=[_stream_identity(r) for r in records],
        )

    def _read_stream(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """The shard's records from startSequenceNumber through endSequenceNumber, as GetRecords
        returns them."""
        start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        records: list[dict[str, Any]] = []
        try:
            iterator = self._streams.get_shard_iterator(
                StreamArn=info["streamArn"],
                ShardId=info["shardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=str(info["startSequenceNumber"]),
            ).get("ShardIterator")
            empty = 0
            while iterator and empty < MAX_EMPTY_PAGES:
                page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                batch = page.get("Records", [])
                empty = 0 if batch else empty + 1
                for record in batch:
                    sequence = int(record["dynamodb"]["SequenceNumber"])
                    if sequence > end:
                        return records
                    if sequence >= start:
                        records.append(record)
                    if sequence == end:
                        return records
                iterator = page.get("NextShardIterator")
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in STREAM_GONE_CODES:
                raise StreamRecordsGoneError(code) from error
            raise
        return records


# --- shapes ---------------------------------------------------------------------------------


def _plan_async_failure(body: dict[str, Any], function: str | None) -> _Plan:
    payload = body.get("requestPayload")
    context = body["requestContext"]
    identities = [_event_identity(payload)] if isinstance(payload, dict) and _is_event(payload) else []
    if not function:
        return _Plan(ASYNC_FAILURE, identities=identities, skip="the record names no function")
    if not _is_configpipe_event(payload):
        return _Plan(
            ASYNC_FAILURE,
            function,
            identities=identities,
            skip="the original payload is not a configpipe event (source configpipe.team.*, "
            "configpipe.pipeline, or the release timer)",
        )
    condition = context.get("condition")
    identities[0]["failure"] = f"{condition} after {context.get('approximateInvokeCount', '?')} attempt(s)"
    return _Plan(ASYNC_FAILURE, function, payloads=[payload], identities=identities)


def _plan_rule_target(body: dict[str, Any], attributes: dict[str, str], function: str | None) -> _Plan:
    identity = _event_identity(body)
    if attributes.get("ERROR_CODE"):
        identity["failure"] = attributes["ERROR_CODE"]
    target = function or _function_name(attributes.get("TARGET_ARN"))
    if not _is_configpipe_event(body):
        return _Plan(
            RULE_TARGET,
            target,
            identities=[identity],
            skip=f"not a configpipe event (source {body.get('source')!r})",
        )
    if not target:
        return _Plan(
            RULE_TARGET,
            identities=[identity],
            skip="no TARGET_ARN attribute says which function the event was for",
            hint="Pass --function NAME (the rule's target) to redrive it.",
        )
    target_arn = attributes.get("TARGET_ARN", "")
    if function is None and target_arn and ":lambda:" not in target_arn:
        return _Plan(
            RULE_TARGET,
            identities=[identity],
            skip=f"the rule's target is not a Lambda function ({target_arn})",
            hint="Pass --function NAME to redrive it to a function.",
        )
    return _Plan(RULE_TARGET, target, payloads=[body], identities=[identity])


def _is_event(value: Any) -> bool:
    return isinstance(value, dict) and all(k in value for k in ("detail-type", "source", "detail"))


def _is_configpipe_event(value: Any) -> bool:
    if not _is_event(value):
        return False
    source = str(value.get("source", ""))
    return (
        source == PIPELINE_SOURCE
        or source.startswith(TEAM_SOURCE_PREFIX)
        or (source, value.get("detail-type")) == SCHEDULED_EVENT
    )


def _function_of(context: dict[str, Any]) -> str | None:
    return _function_name(context.get("functionArn"))


def _function_name(arn: Any) -> str | None:
    """A function ARN as Invoke takes it; ``:$LATEST`` (what Lambda records for an unqualified
    invocation) is dropped, so the invocation is the one originally made. A target that is not a
    Lambda function (``arn:aws:sqs:…``) is returned unchanged and refused by the caller."""
    if not arn or not isinstance(arn, str):
        return None
    return arn.removesuffix(":$LATEST")


def _event_identity(event: dict[str, Any]) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "detailType": event.get("detail-type"),
        "source": event.get("source"),
        "eventId": event.get("id"),
    }
    detail = event.get("detail")
    if isinstance(detail, dict):
        for name in IDENTITY_FIELDS:
            value = detail.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                identity[name] = value
    return identity


def _stream_identity(record: dict[str, Any]) -> dict[str, Any]:
    image = record.get("dynamodb", {}).get("NewImage", {})
    identity: dict[str, Any] = {"sequenceNumber": record.get("dynamodb", {}).get("SequenceNumber")}
    for name in STREAM_IDENTITY_FIELDS:
        attribute = image.get(name)
        if isinstance(attribute, dict) and "S" in attribute:
            identity[name] = attribute["S"]
        elif isinstance(attribute, dict) and "N" in attribute:
            identity[name] = int(attribute["N"])
    return identity


# --- the redrive function's one operation ---------------------------------------------------


class RedriveService:
    """What the redrive function does with a request: find the queue among the stack's
    dead-letter queues (any other is refused) and redrive it to that queue's own functions."""

    def __init__(self, queues: Mapping[str, RedriveQueue], redriver: Redriver) -> None:
        self._queues = dict(queues)
        self._redriver = redriver

    def handle(self, request: RedriveRequest) -> dict[str, Any]:
        queue = self._queues.get(queue_name(request.queue))
        if queue is None:
            return refusal(
                QUEUE_NOT_REDRIVABLE,
                "not one of this stack's dead-letter queues; redrivable: " + ", ".join(sorted(self._queues)),
            )
        report = self._redriver.run(
            queue, function=request.function, max_messages=request.max_messages, dry_run=request.dry_run
        )
        return report.to_dict()


def refusal(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def parse_queues(document: str) -> dict[str, RedriveQueue]:
    """The stack's dead-letter queues, as the stack writes them into the function's environment:
    ``{"<queue name>": ["<function name>", …]}`` (names, not URLs or ARNs: Lambda's environment
    holds 4 KB, and the queue's URL is one GetQueueUrl away)."""
    raw = json.loads(document)
    return {str(name): RedriveQueue(str(name), frozenset(map(str, targets))) for name, targets in raw.items()}
