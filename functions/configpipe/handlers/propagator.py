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

from configpipe.bus import ConfigBus
from configpipe.fanout import DeliveryFailedError, FanOut, LambdaInvoker, parse_announcement
from configpipe.metrics import DELIVERIES_FAILED, DELIVERIES_SUCCEEDED
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import PropagatorSettings
from configpipe.untrusted import correlation_id


def build(settings: PropagatorSettings) -> FanOut:
    return FanOut(
        registry=RegistrySource(settings.registry_parameter),
        invoker=LambdaInvoker(),
        bus=ConfigBus(settings.event_bus_name),
    )


@cache
def default() -> FanOut:
    """Built from the environment once per execution environment, on first use."""
    return build(PropagatorSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, fanout: FanOut | None = None) -> dict[str, Any]:
    """``fanout`` is an optional port for tests; Lambda never passes it."""
    logger.set_correlation_id(correlation_id(event, "changeId", "rolloutId"))  # bounded: caller-controlled
    # Either contract, chosen by detail-type (an update, or a step of a rollout).
    update = parse_announcement(event)
    try:
        deliveries = (fanout or default()).deliver(update, event)
    except DeliveryFailedError as error:
        metrics.add_metric(name=DELIVERIES_FAILED, unit=MetricUnit.Count, value=len(error.failures))
        raise
    metrics.add_metric(name=DELIVERIES_SUCCEEDED, unit=MetricUnit.Count, value=len(deliveries))
    return {"delivered": [d.target_service for d in deliveries]}
