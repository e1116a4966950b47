"""Validator Lambda: target of ``ConfigurationChange`` on the config bus.

Thin: the envelope goes to :class:`configpipe.write_path.WritePath`; the outcome is
logged (never the value) and counted. AWS failures raise, so EventBridge's async retries
and the on-failure DLQ take over; bad input never raises.

Wired like every function: :func:`build` makes the port from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.metrics import CHANGES_ACCEPTED, CHANGES_DUPLICATE, CHANGES_REJECTED
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import ValidatorSettings
from configpipe.untrusted import correlation_id
from configpipe.write_path import WritePath, change_identity

_METRIC = {"accepted": CHANGES_ACCEPTED, "rejected": CHANGES_REJECTED, "duplicate": CHANGES_DUPLICATE}


def build(settings: ValidatorSettings) -> WritePath:
    return WritePath(
        change_log=ChangeLog(settings.change_log_table),
        registry=RegistrySource(settings.registry_parameter),
        secrets=SecretsKey(settings.secrets_key_id, settings.hash_key_id),
        sensitive_values_in_clear=settings.sensitive_values_in_clear,
    )


@cache
def default() -> WritePath:
    """Built from the environment once per execution environment, on first use."""
    return build(ValidatorSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, write_path: WritePath | None = None
) -> dict[str, Any]:
    """``write_path`` is an optional port for tests; Lambda never passes it."""
    logger.set_correlation_id(correlation_id(event, "changeId"))  # bounded: caller-controlled
    detail = event.get("detail") if isinstance(event, dict) else None
    logger.append_keys(**change_identity(detail))
    outcome = (write_path or default()).handle(event)
    metrics.add_metric(name=_METRIC[outcome.status], unit=MetricUnit.Count, value=1)
    logger.info(
        "change %s",
        outcome.status,
        extra={"changeId": outcome.change_id, "version": outcome.version, "reasonCodes": outcome.codes},
    )
    return outcome.to_dict()
