"""The building block of every ``<service>-config-update-handler``.

:func:`config_update_handler` returns a Lambda handler that parses the
``ConfigurationUpdated`` EventBridge event (Powertools parser, the contracts model; fields
added by a newer pipeline are ignored, as for every announcement), drops it if its version
is not newer than the one already applied for the key, reads the value when it is not
inline (exactly that version, from SSM or Secrets Manager; a secret never travels on the
bus), calls the service's callback with ``(update, value)``, and then refreshes the
:class:`~configpipe.client.config.ConfigClient` cache, if one is given.

The version is remembered only after the callback returns, so a failing callback makes
the invocation fail and Lambda's async retries deliver the update again. The in-memory
guard covers duplicates within one execution environment; a callback that must survive
cold starts keeps its own durable guard (the sample service uses a conditional write).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from configpipe.client.config import ConfigClient, SupersededValueError, fetch_value
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
) -> LambdaHandler:
    """A Lambda handler for ``service``'s config updates. ``parameters`` / ``secrets`` default
    to the client's stores (or fresh ones) and are injectable for tests."""
    # Imported here, not at module import: the parser and the contracts pull in pydantic,
    # which only the update handler (not every reader of the client) needs.
    from aws_lambda_powertools.utilities.parser import envelopes, parse

    from configpipe.contracts import ConfigurationUpdated

    parameter_store = parameters or (client.parameters if client else ParameterStore())
    secret_store = secrets or (client.secrets if client else SecretStore())
    applied: dict[tuple[str, str, str], int] = {}

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        update = cast(
            ConfigurationUpdated,
            parse(event=event, model=ConfigurationUpdated, envelope=envelopes.EventBridgeEnvelope),
        )
        scope = (update.service, update.environment, update.key)
        identity = {
            "targetService": service,
            "changeId": update.change_id,
            "configService": update.service,
            "environment": update.environment,
            "key": update.key,
            "version": update.version,
        }
        held = applied.get(scope, 0)
        if update.version <= held:
            log.info("stale or duplicate update ignored", extra={**identity, "heldVersion": held})
            return {"applied": False, "reason": "stale", "version": update.version, "heldVersion": held}
        try:
            value = fetch_value(update, parameter_store, secret_store)
        except SupersededValueError:
            # A newer version replaced this one in the store; its own update is on its way.
            log.info("update superseded before it could be read", extra=identity)
            return {"applied": False, "reason": "superseded", "version": update.version}
        on_update(update, value)
        applied[scope] = update.version
        if client is not None:
            client.apply_update(update, value)
        log.info("update applied", extra=identity)
        return {"applied": True, "version": update.version}

    return handler
