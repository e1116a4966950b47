"""Propagator Lambda: ``ConfigurationUpdated`` / ``ConfigurationRollout*`` (EventBridge) →
:mod:`configpipe.fanout`.

The handler re-raises a failed delivery so the async retries and the on-failure DLQ of
this function take over.

Wired like every function: :func:`build` makes the port from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.bus import ConfigBus
from configpipe.fanout import (
    DeliveryFailedError,
    FanOut,
    LambdaInvoker,
    UnknownAnnouncementError,
    correlation_id,
    parse_announcement,
)
from configpipe.metrics import ANNOUNCEMENTS_REFUSED, DELIVERIES_FAILED, DELIVERIES_SUCCEEDED
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import PropagatorSettings
from configpipe.untrusted import bounded_text, validation_summary


def build(settings: PropagatorSettings) -> FanOut:
    import boto3
    from botocore.config import Config

    parallel = settings.max_parallel_invokes
    return FanOut(
        registry=RegistrySource(settings.registry_parameter),
        invoker=LambdaInvoker(max_parallel=parallel),
        # PutEvents batches go out concurrently too: one pooled connection per thread.
        bus=ConfigBus(
            settings.event_bus_name, boto3.client("events", config=Config(max_pool_connections=parallel))
        ),
        max_parallel=parallel,
    )


@cache
def default() -> FanOut:
    """Built from the environment once per execution environment, on first use."""
    return build(PropagatorSettings.from_environ())


# The correlation id is set once the announcement is parsed: read from the raw event by a
# path, a forged one would put any object of any size on every log line.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, fanout: FanOut | None = None) -> dict[str, Any]:
    """``fanout`` is an optional port for tests; Lambda never passes it."""
    # Either contract, chosen by detail-type (an update, or a step of a rollout).
    try:
        update = parse_announcement(event)
    except ValidationError as error:
        return _refuse(event, validation_summary(error))
    except UnknownAnnouncementError as error:
        return _refuse(event, [str(error)])
    logger.set_correlation_id(correlation_id(update))
    try:
        deliveries = (fanout or default()).deliver(update, event)
    except DeliveryFailedError as error:
        metrics.add_metric(name=DELIVERIES_FAILED, unit=MetricUnit.Count, value=len(error.failures))
        raise
    metrics.add_metric(name=DELIVERIES_SUCCEEDED, unit=MetricUnit.Count, value=len(deliveries))
    return {"delivered": [d.target_service for d in deliveries]}


def _refuse(event: Any, problems: list[str]) -> dict[str, Any]:
    """Not an announcement the pipeline could have made: fanning it out would hand it to every
    service, failing would retry it into the DLQ. Refused, with where it was wrong, bounded."""
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    refusal = {"outcome": "rejected", "code": "MALFORMED_ANNOUNCEMENT", "problems": problems}
    logger.warning("announcement refused", extra={**refusal, "detailType": bounded_text(detail_type, 64)})
    metrics.add_metric(name=ANNOUNCEMENTS_REFUSED, unit=MetricUnit.Count, value=1)
    return refusal
