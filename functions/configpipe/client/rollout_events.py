"""Applying pushed ``ConfigurationRollout*`` announcements (docs/rollouts.md) for one consumer:
the code the Lambda update handler (:func:`~configpipe.client.update_handler.config_update_handler`)
and the queue :class:`~configpipe.client.subscription.Subscription` share, so both see
progressive rollouts the same way.

Per key, an event is applied only if its (candidate version, sequence) is newer than the one
already applied: the bus, Lambda async invocations and SQS deliver duplicates and reorder, and
every rollout event carries the rollout's whole state, so the newest one is all a consumer
needs. With an ``on_rollout(event, stable, candidate)`` callback the candidate value (inline,
the ``<key>/candidate`` parameter checked against its hash, or the candidate's secret version)
and the stable value are read first; then the :class:`~configpipe.client.config.ConfigClient`,
if given, applies the event. The order is remembered only after the callback returns, so a
failing callback (its exception propagates) lets the event be delivered again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from configpipe.client.config import ConfigClient, SupersededValueError, fetch_candidate, fetch_stable

if TYPE_CHECKING:
    from configpipe.contracts import ConfigurationRolloutEvent
    from configpipe.stores import ParameterStore, SecretStore

log = logging.getLogger("configpipe.client")

#: ``on_rollout(event, stable_value, candidate_value)``
RolloutCallback = Callable[["ConfigurationRolloutEvent", Any, Any], None]
#: service, environment, key, tenant (None: the service's value; a tenant's value rolls out on
#: its own, with candidate versions of its own)
Scope = tuple[str, str, str, str | None]


class AppliedRollouts:
    """The rollout events one consumer has applied, per key, and the way to apply the next."""

    def __init__(
        self,
        target_service: str,
        parameters: ParameterStore,
        secrets: SecretStore,
        on_rollout: RolloutCallback | None = None,
        client: ConfigClient | None = None,
    ) -> None:
        self._target_service = target_service
        self._parameters = parameters
        self._secrets = secrets
        self._on_rollout = on_rollout
        self._client = client
        #: (candidate version, sequence) of the newest event applied, per key
        self.held: dict[Scope, tuple[int, int]] = {}

    def apply(self, rollout: ConfigurationRolloutEvent) -> dict[str, Any]:
        """Apply one event, or say why not (``reason``: ``stale`` for a duplicate or an older
        event, ``superseded`` for a step whose candidate is already gone — the rollout ended
        and that event is on its way). Store errors and the callback's own errors propagate."""
        from configpipe.contracts import RolloutStatus

        scope = (rollout.service, rollout.environment, rollout.key, rollout.tenant)
        order = (rollout.candidate_version, rollout.sequence)
        summary = {
            "rolloutId": rollout.rollout_id,
            "status": str(rollout.status),
            "candidateVersion": rollout.candidate_version,
            "sequence": rollout.sequence,
            "weight": rollout.weight,
        }
        identity = {
            "targetService": self._target_service,
            "configService": rollout.service,
            "key": rollout.key,
            "tenant": rollout.tenant,
            **summary,
        }
        held = self.held.get(scope)
        if held is not None and order <= held:
            log.info("stale or duplicate rollout event ignored", extra={**identity, "held": list(held)})
            return {"applied": False, "reason": "stale", **summary, "held": list(held)}
        candidate: Any = None
        candidate_known = False
        if self._on_rollout is not None or self._client is not None:
            try:
                candidate = fetch_candidate(rollout, self._parameters, self._secrets)
                candidate_known = True
            except SupersededValueError:
                if rollout.status is RolloutStatus.ROLLING_OUT:
                    # The rollout ended and the candidate went with it; that event is on its way.
                    log.info("rollout candidate superseded before it could be read", extra=identity)
                    return {"applied": False, "reason": "superseded", **summary}
                # A rolled-back candidate may be gone already; the callback learns it as None.
        if self._on_rollout is not None:
            self._on_rollout(rollout, fetch_stable(rollout, self._parameters, self._secrets), candidate)
        self.held[scope] = order
        if self._client is not None:
            if candidate_known:
                self._client.apply_rollout(rollout, candidate)
            else:
                self._client.apply_rollout(rollout)
        log.info("rollout event applied", extra=identity)
        return {"applied": True, **summary}
