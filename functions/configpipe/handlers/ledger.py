"""Delivery-ledger Lambda: ``ConfigurationAcknowledged`` (EventBridge, from a service's update
handler) → :class:`configpipe.ledger.DeliveryLedger` (issue 14).

An acknowledgement is believed only from its own service: the envelope's ``source`` must be
``configpipe.consumer.<targetService>`` — the bus policy lets only principals tagged
``configpipe-consumer=<service>`` publish with that source (docs/security.md, A1), so a service
cannot report for another. Anything else is refused (bounded, counted), never raised: a retry
cannot make a forged or malformed event true. Only an AWS failure raises, so the rule's retries
and the function's DLQ take over.

Wired like every function: :func:`build` makes the ledger from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.contracts import (
    AckOutcome,
    ConfigurationAcknowledged,
    DetailType,
    EventBridgeEnvelope,
    consumer_source,
)
from configpipe.ledger import DeliveryLedger
from configpipe.metrics import ACKS_RECORDED, ACKS_REFUSED, ACKS_REJECTED, ACKS_STALE
from configpipe.observability import logger, metrics, tracer
from configpipe.settings import LedgerSettings
from configpipe.untrusted import bounded_text, validation_summary

#: Stable codes of a refused event (the handler's answer and its log line).
MALFORMED_ACK = "MALFORMED_ACK"
ACK_SOURCE_MISMATCH = "ACK_SOURCE_MISMATCH"


def build(settings: LedgerSettings) -> DeliveryLedger:
    return DeliveryLedger(settings.delivery_ledger_table)


@cache
def default() -> DeliveryLedger:
    """Built from the environment once per execution environment, on first use."""
    return build(LedgerSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, ledger: DeliveryLedger | None = None
) -> dict[str, Any]:
    """``ledger`` is an optional port for tests; Lambda never passes it."""
    try:
        envelope = EventBridgeEnvelope.model_validate(event)
        if envelope.detail_type != DetailType.CONFIGURATION_ACKNOWLEDGED:
            return _refuse(MALFORMED_ACK, [f"detail-type is not {DetailType.CONFIGURATION_ACKNOWLEDGED}"])
        ack = ConfigurationAcknowledged.model_validate(envelope.detail)
    except ValidationError as error:
        return _refuse(MALFORMED_ACK, validation_summary(error))
    identity = {
        "targetService": ack.target_service,
        "configService": ack.service,
        "environment": ack.environment,
        "key": ack.key,
        "version": ack.version,
        "outcome": str(ack.outcome),
        **({"tenant": ack.tenant} if ack.tenant is not None else {}),
    }
    if envelope.source != consumer_source(ack.target_service):
        # The bus binds the source to the caller; the detail is only what the caller wrote.
        return _refuse(
            ACK_SOURCE_MISMATCH,
            ["source is not the acknowledging service's own"],
            {**identity, "source": bounded_text(envelope.source, 128)},
        )
    logger.set_correlation_id(ack.change_id)
    recorded = (ledger or default()).record(ack)
    if recorded and ack.outcome is AckOutcome.REFUSED:
        # Counted once per refused version (a redelivered ack is not a second refusal); alarmed.
        metrics.add_metric(name=ACKS_REFUSED, unit=MetricUnit.Count, value=1)
        logger.warning("a service refused a version", extra={**identity, "reason": ack.reason})
    metrics.add_metric(name=ACKS_RECORDED if recorded else ACKS_STALE, unit=MetricUnit.Count, value=1)
    logger.info(
        "acknowledgement recorded" if recorded else "acknowledgement not newer: ignored", extra=identity
    )
    return {"recorded": recorded, **identity}


def _refuse(code: str, problems: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    refusal = {"recorded": False, "code": code, "problems": problems}
    logger.warning("acknowledgement refused", extra={**refusal, **(extra or {})})
    metrics.add_metric(name=ACKS_REJECTED, unit=MetricUnit.Count, value=1)
    return refusal
