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
from configpipe.materialise import Materialiser
from configpipe.metrics import (
    CHANGES_REJECTED,
    CONFIGURATIONS_MATERIALISED,
    MATERIALISATION_FAILURES,
    ROLLOUT_EVENTS_ANNOUNCED,
    UPDATES_ANNOUNCED,
)
from configpipe.observability import logger, metrics, tracer
from configpipe.settings import MaterialiserSettings
from configpipe.stores import ParameterStore, SecretStore


def build(settings: MaterialiserSettings) -> Materialiser:
    return Materialiser(
        change_log=ChangeLog(settings.change_log_table),
        parameters=ParameterStore(),
        secrets=SecretStore(kms_key_id=settings.secrets_key_id),
        secrets_key=SecretsKey(settings.secrets_key_id),
        bus=ConfigBus(settings.event_bus_name),
        inline_value_max_bytes=settings.inline_value_max_bytes,
    )


@cache
def default() -> Materialiser:
    """Built from the environment once per execution environment, on first use."""
    return build(MaterialiserSettings.from_environ())


processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord, materialiser: Materialiser | None = None) -> None:
    if record.dynamodb is None or record.event_name not in (
        DynamoDBRecordEventName.INSERT,
        DynamoDBRecordEventName.MODIFY,  # a rollout's state changes are updates of one item
    ):
        return
    image = record.dynamodb.new_image
    try:
        outcome = (materialiser or default()).handle(image)
    except Exception:
        # Identity only: the image may hold a value or a ciphertext.
        logger.exception(
            "stream record failed; the event-source mapping will retry it",
            extra={
                "sequenceNumber": record.dynamodb.sequence_number,
                **{k: str(image[k]) for k in ("pk", "sk", "changeId", "version") if k in image},
            },
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


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, materialiser: Materialiser | None = None) -> Any:
    """``materialiser`` is an optional port for tests; Lambda never passes it."""
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, materialiser),
        processor=processor,
        context=context,
    )
