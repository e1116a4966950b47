"""Rollout Lambda: moves progressive configuration rollouts (docs/rollouts.md).

Two inputs: the scheduled tick (every active rollout is reconciled: its next step, its
completion, or its rollback when a watched alarm fires) and ``ConfigurationRolloutControl``
from a team source (promote, pause, resume, abort). Thin: the envelope goes to
:class:`configpipe.rollout.service.RolloutService`, which writes only to the change log; the
stream makes every state change readable and announced. AWS failures raise (retries, then
the DLQ); bad input never raises (it becomes a rejection record).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from configpipe.changelog import ChangeLog
from configpipe.contracts import DetailType
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.release.health import AlarmHealth
from configpipe.release.store import ReleaseStore
from configpipe.rollout.engine import InsufficientDataPolicy
from configpipe.rollout.service import RolloutService
from configpipe.settings import RolloutSettings

SCHEDULED_DETAIL_TYPE = "Scheduled Event"


class RolloutReconcileFailedError(Exception):
    """Some rollouts could not be reconciled; raised after all were tried, for the DLQ alarm."""


@cache
def rollout_service() -> RolloutService:
    settings = RolloutSettings.from_environ()
    return RolloutService(
        change_log=ChangeLog(settings.change_log_table),
        alarms=AlarmHealth(),
        registry=RegistrySource(settings.registry_parameter),
        policy=InsufficientDataPolicy(settings.rollout_insufficient_data),
        releases=ReleaseStore(settings.release_table),
    )


@logger.inject_lambda_context(correlation_id_path="detail.controlId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = rollout_service()
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    if detail_type == SCHEDULED_DETAIL_TYPE and event.get("source") == "aws.events":
        return _tick(service)
    if detail_type == DetailType.CONFIGURATION_ROLLOUT_CONTROL:
        result = service.control(event)
        metrics.add_metric(name=f"RolloutControls{result.outcome.title()}", unit=MetricUnit.Count, value=1)
        logger.info("rollout control %s", result.outcome, extra=result.to_dict())
        return result.to_dict()
    logger.warning("ignored event", extra={"detailType": str(detail_type)[:128]})
    return {"outcome": "ignored"}


def _tick(service: RolloutService) -> dict[str, Any]:
    failed: list[str] = []
    moved = 0
    results = []
    for scope in service.active_scopes():
        try:
            result = service.reconcile(*scope)
        except Exception:  # one broken rollout must not stop the others; the tick fails after
            logger.exception("rollout reconcile failed", extra={"scope": "/".join(scope)})
            failed.append("/".join(scope))
            continue
        results.append(result)
        moved += bool(result.actions)
        if result.actions:
            logger.info(
                "rollout moved",
                extra={
                    "scope": result.key,
                    "actions": result.actions,
                    "status": result.status,
                    "weight": result.weight,
                },
            )
    metrics.add_metric(name="RolloutsReconciled", unit=MetricUnit.Count, value=len(results))
    if failed:
        raise RolloutReconcileFailedError(f"reconcile failed for {', '.join(failed)}")
    return {"reconciled": len(results), "moved": moved}
