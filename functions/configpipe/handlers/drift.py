"""Drift reconcile Lambda (issue 14): ``{}`` from its schedule (every registered scope, the
configured mode) or ``{"service", "environment", "repair"}`` from ``configpipe drift`` →
:class:`configpipe.drift.Reconciler`.

Each drifted key is counted (``DriftDetected``, alarmed; ``DriftRepaired``) and announced by
the reconciler; the answer lists them (names and problems only). A run that fails counts
``DriftChecksFailed`` and re-raises: the schedule's retries and DLQ and the function's Errors
alarm take over, and the next run checks every key again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog, utc_now
from configpipe.crypto import SecretsKey
from configpipe.drift import INVALID_DRIFT_REQUEST, DriftRequest, Reconciler, drift_refusal
from configpipe.materialise import Materialiser
from configpipe.metrics import DRIFT_CHECKS_FAILED, DRIFT_DETECTED, DRIFT_REPAIRED, KEYS_RECONCILED
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.settings import DriftSettings
from configpipe.stores import ParameterStore, SecretStore
from configpipe.untrusted import validation_summary


def build(settings: DriftSettings, now: Callable[[], datetime] = utc_now) -> Reconciler:
    """``now`` is a port for tests of the scheduled sweep's settle window."""
    change_log = ChangeLog(settings.change_log_table)
    parameters = ParameterStore()
    secrets = SecretStore(kms_key_id=settings.secrets_key_id)
    bus = ConfigBus(settings.event_bus_name)
    registry = RegistrySource(settings.registry_parameter)
    return Reconciler(
        change_log=change_log,
        parameters=parameters,
        secrets=secrets,
        materialiser=Materialiser(
            change_log=change_log,
            parameters=parameters,
            secrets=secrets,
            secrets_key=SecretsKey(settings.secrets_key_id),
            bus=bus,
            registry=registry,
        ),
        bus=bus,
        registry=registry,
        mode=settings.drift_mode,
        now=now,
    )


@cache
def default() -> Reconciler:
    """Built from the environment once per execution environment, on first use."""
    return build(DriftSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: LambdaContext, reconciler: Reconciler | None = None) -> dict[str, Any]:
    """``reconciler`` is an optional port for tests; Lambda never passes it."""
    try:
        request = DriftRequest.model_validate(event)
    except ValidationError as error:
        answer = drift_refusal(INVALID_DRIFT_REQUEST, "; ".join(validation_summary(error)))
        logger.warning("drift request refused", extra={"why": answer["error"]["message"]})
        return answer
    try:
        report = (reconciler or default()).handle(request)
    except Exception:
        metrics.add_metric(name=DRIFT_CHECKS_FAILED, unit=MetricUnit.Count, value=1)
        logger.exception(
            "drift reconcile failed",
            extra={"configService": request.service, "environment": request.environment},
        )
        raise
    answer = report.to_dict()
    metrics.add_metric(name=KEYS_RECONCILED, unit=MetricUnit.Count, value=report.checked)
    metrics.add_metric(name=DRIFT_DETECTED, unit=MetricUnit.Count, value=len(report.drifted))
    metrics.add_metric(name=DRIFT_REPAIRED, unit=MetricUnit.Count, value=answer["repaired"])
    logger.info(
        "drift reconcile",
        extra={k: answer[k] for k in ("mode", "scopes", "checked", "inFlight", "repaired")},
    )
    return answer
