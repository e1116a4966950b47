"""Validator Lambda: target of ``ConfigurationChange`` on the config bus.

Thin: the envelope goes to :class:`configpipe.write_path.WritePath`; the outcome is
logged (never the value) and counted. AWS failures raise, so EventBridge's async retries
and the on-failure DLQ take over; bad input never raises.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import ValidatorSettings
from configpipe.write_path import WritePath, change_identity

_METRIC = {"accepted": "ChangesAccepted", "rejected": "ChangesRejected", "duplicate": "ChangesDuplicate"}


@cache
def write_path() -> WritePath:
    settings = ValidatorSettings.from_environ()
    return WritePath(
        change_log=ChangeLog(settings.change_log_table),
        registry=RegistrySource(settings.registry_parameter),
        secrets=SecretsKey(settings.secrets_key_id, settings.hash_key_id),
    )


@logger.inject_lambda_context(correlation_id_path="detail.changeId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, dict) else None
    logger.append_keys(**change_identity(detail))
    outcome = write_path().handle(event)
    metrics.add_metric(name=_METRIC[outcome.status], unit=MetricUnit.Count, value=1)
    logger.info(
        "change %s",
        outcome.status,
        extra={"changeId": outcome.change_id, "version": outcome.version, "reasonCodes": outcome.codes},
    )
    return outcome.to_dict()
