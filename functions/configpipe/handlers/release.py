"""Release function entry point: ``ReleaseRequested`` / ``ReleaseControl`` from the bus and the
scheduled reconcile tick. Thin: parse the envelope → :class:`ReleaseService` → result.

Errors other than bad input propagate, so EventBridge's/Lambda's retries and the DLQs apply;
bad input — whatever its shape — becomes a bounded ``ReleaseRejected`` announcement and a normal
return (tests/integration/release/test_release_fuzz.py). What it logs of the caller's input is
bounded too (:mod:`configpipe.release.bounds`).

Wired like every function: :func:`build` makes the port from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.bus import ConfigBus
from configpipe.contracts import EventBridgeEnvelope
from configpipe.observability import logger, metrics, tracer
from configpipe.release.alias import LambdaAliases
from configpipe.release.bounds import echoed_text
from configpipe.release.contracts import ReleaseDetailType
from configpipe.release.health import AlarmHealth
from configpipe.release.hooks import LambdaHookRunner
from configpipe.release.service import ReleaseService
from configpipe.release.settings import ReleaseSettings
from configpipe.release.store import ReleaseStore
from configpipe.release.version_metrics import VersionMetrics
from configpipe.untrusted import bounded, validation_summary

SCHEDULED_DETAIL_TYPE = "Scheduled Event"


class ReconcileFailedError(Exception):
    """Some releases could not be reconciled; raised after all were tried, for the DLQ alarm."""


def build(settings: ReleaseSettings) -> ReleaseService:
    return ReleaseService(
        store=ReleaseStore(settings.release_table),
        aliases=LambdaAliases(),
        health=AlarmHealth(),
        hooks=LambdaHookRunner(),
        bus=ConfigBus(settings.event_bus_name),
        registry=settings.registry(),
        version_metrics=VersionMetrics(),
    )


@cache
def default() -> ReleaseService:
    """Built from the environment once per execution environment, on first use."""
    return build(ReleaseSettings.from_environ())


# clear_state: a warm invocation must not log the previous request's release id.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(
    event: dict[str, Any], context: LambdaContext, service: ReleaseService | None = None
) -> dict[str, Any]:
    """``service`` is an optional port for tests; Lambda never passes it."""
    service = service or default()
    try:
        # (our envelope model, not Powertools' parser: importing that loads a model of every AWS
        # event source, a tenth of a cold start; the same fields and checks)
        envelope = EventBridgeEnvelope.model_validate(event)
    except ValidationError as error:
        # Not an EventBridge event with an object detail (a direct invoke with junk): there is
        # no release to reject, so it is refused here, bounded, and never retried.
        logger.warning(
            "malformed event refused",
            extra={"code": "MALFORMED_EVENT", "problems": validation_summary(error)},
        )
        return {"outcome": "ignored", "code": "MALFORMED_EVENT"}
    detail = envelope.detail
    if envelope.detail_type == SCHEDULED_DETAIL_TYPE and envelope.source == "aws.events":
        summary = service.reconcile_all()
        logger.info("reconciled", extra={"releases": summary.releases, "announced": summary.announced})
        if summary.failed:
            raise ReconcileFailedError(f"reconcile failed for {', '.join(summary.failed)}")
        return {"reconciled": summary.releases, "announced": summary.announced}
    if envelope.detail_type == ReleaseDetailType.RELEASE_REQUESTED:
        logger.append_keys(release_id=echoed_text(detail.get("releaseId")))
        result = service.handle_request(detail, envelope.source, envelope.id)
        return {"outcome": result.outcome, "releaseId": result.release_id}
    if envelope.detail_type == ReleaseDetailType.RELEASE_CONTROL:
        logger.append_keys(release_id=echoed_text(detail.get("releaseId")))
        control = service.handle_control(detail, envelope.source, envelope.id)
        return {"outcome": control.outcome}
    logger.warning(
        "ignored event",
        extra={"detail_type": bounded(envelope.detail_type, 128), "source": bounded(envelope.source)},
    )
    return {"outcome": "ignored"}
