"""The building block of every ``<service>-config-update-handler``.

:func:`config_update_handler` returns a Lambda handler for the two kinds of announcement
the propagator fans out, told apart by the EventBridge ``detail-type``:

* ``ConfigurationUpdated`` — parsed with the contracts model (in the contracts' EventBridge
  envelope; fields added by a newer pipeline are ignored, as for every announcement), dropped if
  its version is not newer than the one already applied for the key (for a tenant's value:
  for that tenant's value of the key), the value read when
  not inline (exactly that version, from SSM or Secrets Manager; a secret never travels on
  the bus), the service's ``on_update(update, value)`` called (``update.tenant`` says which
  tenant's value changed; None: the service's own), then the
  :class:`~configpipe.client.config.ConfigClient` cache refreshed, if one is given.
* ``ConfigurationRollout*`` (docs/rollouts.md) — parsed as ``ConfigurationRolloutEvent``,
  dropped unless its (candidate version, sequence) is newer than the one applied for the
  key; with an ``on_rollout`` callback the candidate value (inline, the ``<key>/candidate``
  parameter checked against its hash, or the candidate's secret version) and the stable
  value are read and ``on_rollout(event, stable, candidate)`` is called — the weight is
  ``event.weight``; then the client, if given, applies the event
  (:class:`~configpipe.client.rollout_events.AppliedRollouts`, shared with the queue
  ``Subscription``).

What was applied is remembered only after the callback returns, so a failing callback makes
the invocation fail and Lambda's async retries deliver the event again. A callback that refuses
the value with its own check raises :class:`~configpipe.client.acks.ConfigurationRefusedError`
instead: the last good value stays (nothing is remembered, the client is not refreshed) and the
invocation succeeds, since a retry would refuse it again.

With ``acknowledgements`` (issue 14), every applied version and every refusal is reported as a
``ConfigurationAcknowledged`` event (no value), after the callback. A redelivery of the version
already applied is acknowledged again, so an ack lost to a crash (or a failed publish, which fails
the invocation) is made good by the retry; the delivery ledger ignores the repeat. The in-memory guard
covers duplicates within one execution environment; a callback that must survive cold
starts keeps its own durable guard (the sample service uses a conditional write).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from configpipe.client.acks import Acknowledgements, ConfigurationRefusedError
from configpipe.client.config import ConfigClient, SupersededValueError, fetch_value
from configpipe.client.rollout_events import AppliedRollouts, RolloutCallback
from configpipe.stores import ParameterStore, SecretStore

if TYPE_CHECKING:
    from configpipe.contracts import ConfigurationUpdated

log = logging.getLogger("configpipe.client")

UpdateCallback = Callable[["ConfigurationUpdated", Any], None]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def config_update_handler(
    service: str,
    on_update: UpdateCallback,
    client: ConfigClient | None = None,
    parameters: ParameterStore | None = None,
    secrets: SecretStore | None = None,
    on_rollout: RolloutCallback | None = None,
    acknowledgements: Acknowledgements | None = None,
) -> LambdaHandler:
    """A Lambda handler for ``service``'s config updates and rollout announcements.
    ``parameters`` / ``secrets`` default to the client's stores (or fresh ones) and are
    injectable for tests. Without ``on_rollout`` a rollout event is only applied to the client.
    With ``acknowledgements`` each update's outcome is reported there."""
    # Imported here, not at module import: the contracts pull in pydantic, which only the
    # update handler (not every reader of the client) needs.
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from configpipe.contracts import (
        ROLLOUT_EVENT_TYPES,
        AckOutcome,
        ConfigurationAcknowledged,
        ConfigurationRolloutEvent,
        ConfigurationUpdated,
        EventBridgeEnvelope,
    )
    from configpipe.untrusted import validation_summary

    rollout_types = {str(t) for t in ROLLOUT_EVENT_TYPES}
    parameter_store = parameters or (client.parameters if client else ParameterStore())
    secret_store = secrets or (client.secrets if client else SecretStore())
    # Per key, and per tenant's value of a key: a tenant's versions are its own sequence.
    applied: dict[tuple[str, str, str, str | None], int] = {}
    rollouts = AppliedRollouts(service, parameter_store, secret_store, on_rollout, client)

    def acknowledge(update: ConfigurationUpdated, outcome: AckOutcome, reason: str | None = None) -> None:
        # A tenant's value is acknowledged with its tenant: the ledger keeps a tenant's versions
        # (a sequence of their own) apart from the service's.
        if acknowledgements is None:
            return
        acknowledgements.report(
            ConfigurationAcknowledged(
                change_id=update.change_id,
                target_service=service,
                service=update.service,
                environment=update.environment,
                key=update.key,
                version=update.version,
                outcome=outcome,
                reason=reason,
                reported_at=datetime.now(UTC),
                tenant=update.tenant,
            )
        )

    def handle_update(update: ConfigurationUpdated) -> dict[str, Any]:
        scope = (update.service, update.environment, update.key, update.tenant)
        identity = {
            "targetService": service,
            "changeId": update.change_id,
            "configService": update.service,
            "environment": update.environment,
            "key": update.key,
            "tenant": update.tenant,
            "version": update.version,
        }
        held = applied.get(scope, 0)
        if update.version == held:
            # A redelivery of what this environment applied: its ack may be what was lost.
            log.info("duplicate update: acknowledged again", extra=identity)
            acknowledge(update, AckOutcome.APPLIED)
            return {"applied": False, "reason": "duplicate", "version": update.version, "heldVersion": held}
        if update.version < held:
            log.info("stale or duplicate update ignored", extra={**identity, "heldVersion": held})
            return {"applied": False, "reason": "stale", "version": update.version, "heldVersion": held}
        try:
            value = fetch_value(update, parameter_store, secret_store)
        except SupersededValueError:
            # A newer version replaced this one in the store; its own update is on its way.
            log.info("update superseded before it could be read", extra=identity)
            return {"applied": False, "reason": "superseded", "version": update.version}
        try:
            on_update(update, value)
        except ConfigurationRefusedError as refusal:
            # The service's own check: it keeps the last good value; a retry would refuse again.
            log.warning("update refused by the service's check", extra=identity)
            acknowledge(update, AckOutcome.REFUSED, refusal.reason)
            return {"applied": False, "reason": "refused", "version": update.version}
        applied[scope] = update.version
        if client is not None:
            client.apply_update(update, value)
        log.info("update applied", extra=identity)
        acknowledge(update, AckOutcome.APPLIED)
        return {"applied": True, "version": update.version}

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        detail_type = event.get("detail-type") if isinstance(event, dict) else None
        detail_type = detail_type if isinstance(detail_type, str) else None
        model = ConfigurationRolloutEvent if detail_type in rollout_types else ConfigurationUpdated
        try:
            announcement = model.model_validate(EventBridgeEnvelope.model_validate(event).detail)
        except ValidationError as error:
            # Not an announcement the pipeline could have made: acting on it, or failing so
            # Lambda retries it into the DLQ, would both be wrong. Refused, bounded, logged.
            refusal = {"applied": False, "reason": "invalid", "errors": validation_summary(error)}
            log.warning("announcement refused", extra={"targetService": service, **refusal})
            return refusal
        if isinstance(announcement, ConfigurationRolloutEvent):
            return rollouts.apply(announcement)
        return handle_update(cast(ConfigurationUpdated, announcement))

    return handler
