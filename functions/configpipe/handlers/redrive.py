"""Redrive Lambda: an operator's ``RedriveRequest`` → :mod:`configpipe.redrive`.

The only way an operator re-delivers a dead letter (docs/operations.md): the operator policy
may invoke this function and no other, and this function reads only the stack's dead-letter
queues and re-invokes only the function each queue belongs to, with the payload the queue
holds. A request never carries a payload, so there is no operator path around the validator.

Wired like every function: :func:`build` makes the port from the settings, :func:`default`
builds it from the environment once per execution environment, and the handler takes an
optional port so tests inject one."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from configpipe.observability import logger, metrics, tracer
from configpipe.redrive import (
    INVALID_REQUEST,
    Redriver,
    RedriveRequest,
    RedriveService,
    parse_queues,
    refusal,
)
from configpipe.settings import RedriveSettings
from configpipe.untrusted import bounded_text, validation_summary

#: Messages stay invisible for a run; the function's own timeout is shorter (stacks/constructs/redrive.py).
VISIBILITY_TIMEOUT_SECONDS = 900


def build(settings: RedriveSettings) -> RedriveService:
    return RedriveService(
        parse_queues(settings.redrive_queues),
        Redriver(
            sqs=boto3.client("sqs"),
            streams=boto3.client("dynamodbstreams"),
            visibility_timeout=VISIBILITY_TIMEOUT_SECONDS,
        ),
    )


@cache
def default() -> RedriveService:
    """Built from the environment once per execution environment, on first use."""
    return build(RedriveSettings.from_environ())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: LambdaContext, service: RedriveService | None = None) -> dict[str, Any]:
    """``service`` is an optional port for tests; Lambda never passes it."""
    try:
        request = RedriveRequest.model_validate(event)
    except ValidationError as error:
        return refusal(INVALID_REQUEST, "; ".join(validation_summary(error)))
    answer = (service or default()).handle(request)
    summary = answer.get("summary") or answer.get("error")
    logger.info(
        "redrive",
        extra={"queue": bounded_text(request.queue, 256), "dryRun": request.dry_run, "result": summary},
    )
    return answer
