"""Rollout Lambda: moves progressive configuration rollouts (docs/rollouts.md).

Three inputs: the scheduled tick (every active rollout is reconciled: its next step, its
completion, or its rollback when a watched alarm fires or the release it rides on ends),
``ConfigurationRolloutControl`` from a team source (promote, pause, resume, abort), and the
pipeline's ``ReleaseRejected`` for a request (the rollouts riding on that release roll back). Thin: the
envelope goes to :class:`configpipe.rollout.service.RolloutService`, which writes only to the
change log; the stream makes every state change readable and announced. AWS failures raise
(retries, then the DLQ); bad input never raises (it becomes a rejection record).

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
from configpipe.contracts import PIPELINE_SOURCE, DetailType
from configpipe.metrics import (
    ROLLOUT_COMPLETED,
    ROLLOUT_CONTROLS_ACCEPTED,
    ROLLOUT_CONTROLS_DUPLICATE,
    ROLLOUT_CONTROLS_REJECTED,
    ROLLOUT_ROLLED_BACK,
    ROLLOUT_STEPPED,
    ROLLOUTS_RECONCILED,
)
from configpipe.observability import logger, metrics, tracer
from configpipe.registry_source import RegistrySource
from configpipe.release.contracts import ReleaseDetailType
from configpipe.release.health import AlarmHealth
from configpipe.release.store import ReleaseStore
from configpipe.rollout.engine import InsufficientDataPolicy
from configpipe.rollout.service import ReconcileResult, RolloutService
from configpipe.settings import RolloutSettings
from configpipe.untrusted import correlation_id

SCHEDULED_DETAIL_TYPE = "Scheduled Event"
_CONTROL_METRIC = {
    "accepted": ROLLOUT_CONTROLS_ACCEPTED,
    "rejected": ROLLOUT_CONTROLS_REJECTED,
    "duplicate": ROLLOUT_CONTROLS_DUPLICATE,
}
_ACTION_METRIC = {"Step": ROLLOUT_STEPPED, "Complete": ROLLOUT_COMPLETED, "RollBack": ROLLOUT_ROLLED_BACK}


class RolloutReconcileFailedError(Exception):
    """Some rollouts could not be reconciled; raised after all were tried, for the DLQ alarm."""


def build(settings: RolloutSettings) -> RolloutService:
    return RolloutService(
        change_log=ChangeLog(settings.change_log_table),
        alarms=AlarmHealth(),
        registry=RegistrySource(settings.registry_parameter),
        policy=InsufficientDataPolicy(settings.rollout_insufficient_data),
        releases=ReleaseStore(settings.release_table),
    )


@cache
def default() -> RolloutService:
    """Built from the environment once per execution environment, on first use."""
    return build(RolloutSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, service: RolloutService | None = None
) -> dict[str, Any]:
    """``service`` is an optional port for tests; Lambda never passes it."""
    logger.set_correlation_id(correlation_id(event, "controlId"))  # bounded: caller-controlled
    rollouts = service or default()
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    if detail_type == SCHEDULED_DETAIL_TYPE and event.get("source") == "aws.events":
        return _tick(rollouts)
    if detail_type == ReleaseDetailType.RELEASE_REJECTED and event.get("source") == PIPELINE_SOURCE:
        return _release_rejected(rollouts, event.get("detail"))
    if detail_type == DetailType.CONFIGURATION_ROLLOUT_CONTROL:
        result = rollouts.control(event)
        metrics.add_metric(name=_CONTROL_METRIC[result.outcome], unit=MetricUnit.Count, value=1)
        logger.info("rollout control %s", result.outcome, extra=result.to_dict())
        return result.to_dict()
    logger.warning("ignored event", extra={"detailType": str(detail_type)[:128]})
    return {"outcome": "ignored"}


def _release_rejected(rollouts: RolloutService, detail: Any) -> dict[str, Any]:
    """The release a rollout rides on was refused: its config rolls back now. Only the pipeline
    publishes this source (the bus denies it to everyone else), but the detail is still read
    defensively: a malformed one is ignored, never raised (a retry would not fix it)."""
    if not isinstance(detail, dict) or detail.get("action") != "request":
        return {"outcome": "ignored"}
    release_id, reasons = detail.get("releaseId"), detail.get("reasons")
    if not isinstance(release_id, str) or not isinstance(reasons, list):
        logger.warning("ignored malformed ReleaseRejected")
        return {"outcome": "ignored"}
    codes = [str(r.get("code")) for r in reasons if isinstance(r, dict)]
    results = rollouts.release_rejected(release_id, codes)
    for result in results:
        metrics.add_metric(name=ROLLOUT_ROLLED_BACK, unit=MetricUnit.Count, value=1)
        logger.info("rollout rolled back: its release was rejected", extra={"scope": result.key})
    return {"outcome": "rolled_back" if results else "no_rollout", "rolledBack": [r.key for r in results]}


def _tick(rollouts: RolloutService) -> dict[str, Any]:
    failed: list[str] = []
    results: list[ReconcileResult] = []
    for scope in rollouts.active_scopes():
        try:
            results.append(rollouts.reconcile(*scope))
        except Exception:  # one broken rollout must not stop the others; the tick fails after
            logger.exception("rollout reconcile failed", extra={"scope": scope.label()})
            failed.append(scope.label())
    for result in results:
        for action in result.actions:
            metrics.add_metric(name=_ACTION_METRIC[action], unit=MetricUnit.Count, value=1)
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
    metrics.add_metric(name=ROLLOUTS_RECONCILED, unit=MetricUnit.Count, value=len(results))
    if failed:
        raise RolloutReconcileFailedError(f"reconcile failed for {', '.join(failed)}")
    return {"reconciled": len(results), "moved": sum(bool(r.actions) for r in results)}
