"""Retry policy, defined once for the whole stack: how long and how often each delivery path
retries before it parks the event in its dead-letter queue (alarmed at one message)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs

from stacks.constructs import nag
from stacks.constructs.dead_letters import DeadLetterQueue

#: Lambda's async retries before the event goes to the on-failure destination.
ASYNC_RETRY_ATTEMPTS = 2
#: EventBridge's maximums: a rule target keeps trying for a day before parking the event.
TARGET_MAX_EVENT_AGE = Duration.hours(24)
TARGET_RETRY_ATTEMPTS = 185
#: A scheduled tick (releases, rollouts) that is late is worthless, the next one comes a minute
#: later: retry it briefly, then park it (alarmed) rather than pile up.
TICK_RETRY_ATTEMPTS = 2
TICK_MAX_EVENT_AGE = Duration.minutes(5)
#: A stream record lives 24 h; retry it for all of that (bisecting poison batches).
STREAM_MAX_RECORD_AGE = Duration.hours(24)
STREAM_RETRY_ATTEMPTS = 10


def rule_target(
    function: lambda_.IFunction,
    dead_letter_queue: sqs.IQueue,
    *,
    retry_attempts: int = TARGET_RETRY_ATTEMPTS,
    max_event_age: Duration = TARGET_MAX_EVENT_AGE,
    event: events.RuleTargetInput | None = None,
) -> targets.LambdaFunction:
    """A rule target that retries (by default EventBridge's maximum) and then parks the event."""
    _register(dead_letter_queue, function)
    return targets.LambdaFunction(
        function,
        dead_letter_queue=dead_letter_queue,
        retry_attempts=retry_attempts,
        max_event_age=max_event_age,
        event=event,
    )


def park_async_failures(function: lambda_.Function, queue: sqs.IQueue) -> None:
    """Async invocations that still fail after Lambda's retries go to ``queue``."""
    _register(queue, function)
    function.configure_async_invoke(
        retry_attempts=ASYNC_RETRY_ATTEMPTS, on_failure=destinations.SqsDestination(queue)
    )
    nag.acknowledge(
        function,
        "NIST.800.53.R5-LambdaDLQ",
        "Async invocations that still fail after Lambda's retries go to an on-failure destination "
        "(an alarmed SQS dead-letter queue the redrive function drains), which keeps the request "
        "and the error that a DeadLetterConfig would drop; a DeadLetterConfig too would split the "
        "failures between two queues.",
    )


def _register(queue: sqs.IQueue, function: lambda_.IFunction) -> None:
    """Tell a configpipe DLQ which function its messages are for (the redrive function's
    allow-list)."""
    if isinstance(queue, DeadLetterQueue):
        queue.holds_failures_of(function)
