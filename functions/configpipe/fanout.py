"""Fan-out: a ``ConfigurationUpdated`` or ``ConfigurationRollout*`` announcement reaches
every affected service's update handler.

The affected services come from the registry (``global`` keys reach every service whose
environments and key prefixes match). Each handler is invoked asynchronously
(``InvocationType=Event``) and in parallel; then one ``ConfigurationDelivered`` or
``ConfigurationDeliveryFailed`` per service is published. If any delivery failed,
:class:`DeliveryFailedError` is raised *after* publishing, so the propagator's async
retries / DLQ take over. Redelivering to services that already got the update is
harmless: update handlers apply by version and drop anything not newer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from configpipe.bus import ConfigBus
from configpipe.contracts import (
    ROLLOUT_EVENT_TYPES,
    ConfigurationDelivered,
    ConfigurationDeliveryFailed,
    ConfigurationRolloutEvent,
    ConfigurationUpdated,
    DetailType,
    EventBridgeEnvelope,
)
from configpipe.errors import ConfigpipeError
from configpipe.observability import logger
from configpipe.registry import Registry
from configpipe.untrusted import bounded_text

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

#: Default upper bound of concurrent Invoke calls (and of concurrent PutEvents batches) from
#: one propagator invocation; the propagator's is configured (``PropagatorSettings``). Async
#: Invoke returns once Lambda queued the event, so a fan-out to N services takes about
#: ceil(N / bound) round trips, then one more for the delivery records.
MAX_PARALLEL_INVOKES = 100

#: What the propagator fans out: an update, or a step of a rollout (delivered the same way;
#: its delivery records name the candidate version).
Announcement = ConfigurationUpdated | ConfigurationRolloutEvent
FANNED_OUT_TYPES = (DetailType.CONFIGURATION_UPDATED, *ROLLOUT_EVENT_TYPES)


def parse_announcement(event: dict[str, Any]) -> Announcement:
    """The EventBridge event's detail as the contract its ``detail-type`` names (raises
    pydantic's ``ValidationError`` for a malformed one, :class:`UnknownAnnouncementError` for
    another detail-type)."""
    envelope = EventBridgeEnvelope.model_validate(event)
    if envelope.detail_type == DetailType.CONFIGURATION_UPDATED.value:
        return ConfigurationUpdated.model_validate(envelope.detail)
    if envelope.detail_type in {t.value for t in ROLLOUT_EVENT_TYPES}:
        return ConfigurationRolloutEvent.model_validate(envelope.detail)
    raise UnknownAnnouncementError(
        f"detail-type {bounded_text(envelope.detail_type, 64)!r} is not fanned out"
    )


class UnknownAnnouncementError(ConfigpipeError, ValueError):
    """The event is not of a detail-type the propagator fans out."""


def announced_version(announcement: Announcement) -> int:
    if isinstance(announcement, ConfigurationRolloutEvent):
        return announcement.candidate_version
    return announcement.version


def correlation_id(announcement: Announcement) -> str:
    """The change id of an update; a rollout's id is the change id that started it."""
    if isinstance(announcement, ConfigurationRolloutEvent):
        return announcement.rollout_id
    return announcement.change_id


class InvocationError(ConfigpipeError):
    """The handler could not be invoked (missing function, throttled, no permission, ...)."""

    def __init__(self, function_name: str, code: str, message: str) -> None:
        super().__init__(f"invoking {function_name} failed: {code}: {message}")
        self.function_name = function_name
        self.code = code
        self.message = message


class DeliveryFailedError(ConfigpipeError):
    """At least one affected service did not get the update; raised so the update is retried."""

    def __init__(self, failures: list[Delivery]) -> None:
        names = ", ".join(f"{d.target_service} ({d.error_code})" for d in failures)
        super().__init__(f"{len(failures)} delivery(ies) failed: {names}")
        self.failures = failures


class Invoker(Protocol):
    """Port: deliver ``payload`` to ``function_name`` asynchronously; raise on failure."""

    def __call__(self, function_name: str, payload: bytes) -> None: ...


class LambdaInvoker:
    """The default invoker: Lambda ``Invoke`` with ``InvocationType=Event``. boto3 clients are
    thread-safe, so one client serves every worker thread."""

    def __init__(self, client: LambdaClient | None = None, max_parallel: int = MAX_PARALLEL_INVOKES) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            # One pooled connection per worker thread, or urllib3 discards connections.
            client = boto3.client("lambda", config=Config(max_pool_connections=max_parallel))
        self._client = client

    def __call__(self, function_name: str, payload: bytes) -> None:
        try:
            response = self._client.invoke(
                FunctionName=function_name, InvocationType="Event", Payload=payload
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            raise InvocationError(
                function_name, str(details.get("Code", "ClientError")), str(details.get("Message", ""))
            ) from error
        except BotoCoreError as error:
            raise InvocationError(function_name, type(error).__name__, str(error)) from error
        if response.get("StatusCode") != 202:
            raise InvocationError(function_name, "UnexpectedStatus", f"status {response.get('StatusCode')}")


@dataclass(frozen=True)
class Delivery:
    target_service: str
    function_name: str
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


class FanOut:
    def __init__(
        self,
        registry: Callable[[], Registry],
        invoker: Invoker,
        bus: ConfigBus,
        max_parallel: int = MAX_PARALLEL_INVOKES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._invoke = invoker
        self._bus = bus
        self._max_parallel = max_parallel
        self._clock = clock

    def deliver(self, update: Announcement, event: dict[str, Any]) -> list[Delivery]:
        """Invoke every affected handler with ``event`` (the EventBridge event as received),
        publish one delivery event per service, raise if any failed."""
        registry = self._registry()
        targets = [
            (service, registry.handler_of(service))
            for service in registry.affected_services(update.service, update.environment, update.key)
        ]
        context = {
            "changeId": correlation_id(update),
            "configService": update.service,
            "environment": update.environment,
            "key": update.key,
            "tenant": getattr(update, "tenant", None),
            "version": announced_version(update),
            "detailType": event.get("detail-type"),
        }
        if not targets:
            logger.info("no service is affected by this update", extra=context)
            return []
        payload = json.dumps(event, separators=(",", ":"), default=str).encode("utf-8")
        with ThreadPoolExecutor(max_workers=min(self._max_parallel, len(targets))) as pool:
            deliveries = list(
                pool.map(lambda target: self._deliver_one(target[0], target[1], payload), targets)
            )
        self._bus.publish(
            (self._delivery_event(update, d) for d in deliveries), max_parallel=self._max_parallel
        )
        failures = [d for d in deliveries if not d.ok]
        logger.info(
            "update fanned out",
            extra={**context, "delivered": len(deliveries) - len(failures), "failed": len(failures)},
        )
        if failures:
            raise DeliveryFailedError(failures)
        return deliveries

    def _deliver_one(self, service: str, function_name: str, payload: bytes) -> Delivery:
        try:
            self._invoke(function_name, payload)
        except InvocationError as error:
            return Delivery(service, function_name, error.code, error.message)
        except Exception as error:  # a custom invoker's failure is still a failed delivery
            return Delivery(service, function_name, type(error).__name__, str(error))
        return Delivery(service, function_name)

    def _delivery_event(self, update: Announcement, delivery: Delivery) -> dict[str, Any]:
        common = {
            "change_id": correlation_id(update),
            "target_service": delivery.target_service,
            "service": update.service,
            "environment": update.environment,
            "key": update.key,
            "version": announced_version(update),
            "function_name": delivery.function_name,
            "tenant": getattr(update, "tenant", None),
        }
        if delivery.ok:
            return self._bus.entry(
                DetailType.CONFIGURATION_DELIVERED,
                ConfigurationDelivered(**common, delivered_at=self._clock()),
            )
        return self._bus.entry(
            DetailType.CONFIGURATION_DELIVERY_FAILED,
            ConfigurationDeliveryFailed(
                **common,
                error_code=delivery.error_code or "Unknown",
                error_message=(delivery.error_message or "")[:1024],
                failed_at=self._clock(),
            ),
        )
