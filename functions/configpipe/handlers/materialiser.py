"""Materialiser Lambda: change-log stream batch → :mod:`configpipe.materialise`, one record
at a time. A failing record is reported as a batch item failure, so the event-source
mapping retries (and bisects, then parks in the stream DLQ) only from that record on,
while the records before it are checkpointed.

Wired like every function: :func:`build` makes the port from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.materialise import Materialiser, RecordRefusedError
from configpipe.metrics import (
    CHANGES_REJECTED,
    CONFIGURATIONS_MATERIALISED,
    MATERIALISATION_FAILURES,
    ROLLOUT_EVENTS_ANNOUNCED,
    STREAM_RECORDS_REFUSED,
    UPDATES_ANNOUNCED,
)
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import MaterialiserSettings
from configpipe.stores import ParameterStore, SecretStore
from configpipe.untrusted import bounded_text


def build(settings: MaterialiserSettings) -> Materialiser:
    return Materialiser(
        change_log=ChangeLog(settings.change_log_table),
        parameters=ParameterStore(),
        secrets=SecretStore(kms_key_id=settings.secrets_key_id),
        secrets_key=SecretsKey(settings.secrets_key_id),
        bus=ConfigBus(settings.event_bus_name),
        inline_value_max_bytes=settings.inline_value_max_bytes,
        registry=RegistrySource(settings.registry_parameter),
    )


@cache
def default() -> Materialiser:
    """Built from the environment once per execution environment, on first use."""
    return build(MaterialiserSettings.from_environ())


processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord, materialiser: Materialiser | None = None) -> None:
    try:
        image = _new_image(record)
        if image is None:
            return
        outcome = (materialiser or default()).handle(image)
    except RecordRefusedError as refusal:
        _refuse(record.raw_event, refusal.code, str(refusal))
        return
    except Exception:
        # Identity only: the image may hold a value or a ciphertext.
        logger.exception(
            "stream record failed; the event-source mapping will retry it", extra=_identity(record.raw_event)
        )
        metrics.add_metric(name=MATERIALISATION_FAILURES, unit=MetricUnit.Count, value=1)
        raise
    if outcome.kind == "rollout":
        metrics.add_metric(name=ROLLOUT_EVENTS_ANNOUNCED, unit=MetricUnit.Count, value=1)
    if outcome.kind == "updated":
        metrics.add_metric(name=CONFIGURATIONS_MATERIALISED, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=UPDATES_ANNOUNCED, unit=MetricUnit.Count, value=1)
    elif outcome.kind == "rejected":
        metrics.add_metric(name=CHANGES_REJECTED, unit=MetricUnit.Count, value=1)


def _new_image(record: DynamoDBRecord) -> dict[str, Any] | None:
    """The record's NEW_IMAGE, or None for a record with nothing to materialise (a removal).
    Reading it deserialises DynamoDB JSON, which a forged record can break in many ways."""
    try:
        if record.dynamodb is None or record.event_name not in (
            DynamoDBRecordEventName.INSERT,
            DynamoDBRecordEventName.MODIFY,  # a rollout's state changes are updates of one item
        ):
            return None
        image = record.dynamodb.new_image
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError) as error:
        raise RecordRefusedError(f"{type(error).__name__} while deserialising the image") from None
    if not isinstance(image, dict):
        raise RecordRefusedError("the record has no image")
    return image


def _refuse(raw: Any, code: str, message: str) -> None:
    """A record no retry can materialise: logged (identity only, bounded) and counted, not
    retried. The stream moves on; the metric's alarm tells an operator."""
    logger.error("stream record refused", extra={"code": code, "reason": message, **_identity(raw)})
    metrics.add_metric(name=STREAM_RECORDS_REFUSED, unit=MetricUnit.Count, value=1)


def _identity(raw: Any) -> dict[str, str]:
    """Who the record is about, from the raw DynamoDB JSON, bounded: never an attribute that
    could hold a value or ciphertext, and nothing a forged record could make large."""
    stream = raw.get("dynamodb") if isinstance(raw, dict) else None
    stream = stream if isinstance(stream, dict) else {}
    new_image = stream.get("NewImage")
    image: dict[str, Any] = new_image if isinstance(new_image, dict) else {}
    identity = {"sequenceNumber": bounded_text(stream.get("SequenceNumber"), 64)}
    for name in ("pk", "sk", "changeId", "version"):
        if name in image:
            identity[name] = bounded_text(image[name], 128)
    return identity


def _stream_records(event: Any) -> list[dict[str, Any]]:
    """The records of a DynamoDB stream batch that are shaped like one; others are refused
    here, because Powertools fails the whole batch on a single misshapen record."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        _refuse(None, "MALFORMED_EVENT", "not a DynamoDB stream batch")
        return []
    kept = []
    for raw in records:
        stream = raw.get("dynamodb") if isinstance(raw, dict) else None
        if (
            isinstance(stream, dict)
            and raw.get("eventSource") == "aws:dynamodb"
            and isinstance(raw.get("eventName"), str)
            and isinstance(stream.get("SequenceNumber"), str)
        ):
            kept.append(raw)
        else:
            _refuse(raw, "MALFORMED_RECORD", "not a DynamoDB stream record")
    return kept


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, materialiser: Materialiser | None = None) -> Any:
    """``materialiser`` is an optional port for tests; Lambda never passes it."""
    records = _stream_records(event)
    if not records:
        return {"batchItemFailures": []}
    return process_partial_response(
        event={"Records": records},
        record_handler=lambda record: record_handler(record, materialiser),
        processor=processor,
        context=context,
    )
