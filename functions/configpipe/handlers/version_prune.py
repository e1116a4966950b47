"""Version prune Lambda: a prune schedule's ``{"function": NAME}`` → :class:`ScheduledPrune`
(issue 16, docs/releases.md "Version housekeeping").

Off unless a function is listed under ``versionPrune`` in cdk.json; then one EventBridge
schedule per listed function invokes this with that function's name. It deletes with the same
procedure as ``configpipe versions prune`` (configpipe.release.versions.prune). Every run is
logged with what was deleted and why the rest stays, and counted (``VersionsPruned``); a run that
fails counts ``VersionPrunesFailed`` and re-raises, so Lambda retries it, then parks it in the
alarmed DLQ, and the function's Errors alarm fires."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.metrics import VERSION_PRUNES_FAILED, VERSIONS_PRUNED
from configpipe.observability import logger, metrics, tracer
from configpipe.release.settings import VersionPruneSettings
from configpipe.release.store import ReleaseStore
from configpipe.release.versions import (
    INVALID_PRUNE_REQUEST,
    LambdaVersions,
    ScheduledPrune,
    VersionPruneRequest,
    prune_refusal,
)
from configpipe.untrusted import validation_summary


def build(settings: VersionPruneSettings) -> ScheduledPrune:
    return ScheduledPrune(
        settings.keep_per_function(),
        LambdaVersions(boto3.client("lambda")),
        ReleaseStore(settings.release_table, boto3.client("dynamodb")),
    )


@cache
def default() -> ScheduledPrune:
    """Built from the environment once per execution environment, on first use."""
    return build(VersionPruneSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: LambdaContext, service: ScheduledPrune | None = None) -> dict[str, Any]:
    """``service`` is an optional port for tests; Lambda never passes it."""
    try:
        request = VersionPruneRequest.model_validate(event)
    except ValidationError as error:
        answer = prune_refusal(INVALID_PRUNE_REQUEST, "; ".join(validation_summary(error)))
    else:
        try:
            answer = (service or default()).handle(request)
        except Exception:
            metrics.add_metric(name=VERSION_PRUNES_FAILED, unit=MetricUnit.Count, value=1)
            logger.exception("version prune failed", extra={"function": request.function})
            raise
    if "error" in answer:
        metrics.add_metric(name=VERSION_PRUNES_FAILED, unit=MetricUnit.Count, value=1)
        logger.warning(
            "version prune refused",
            extra={"code": answer["error"]["code"], "why": answer["error"]["message"]},
        )
        return answer
    metrics.add_metric(name=VERSIONS_PRUNED, unit=MetricUnit.Count, value=len(answer["deleted"]))
    logger.info("version prune", extra=answer)
    return answer
