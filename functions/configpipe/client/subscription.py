"""``Subscription``: configuration updates for a long-running process (a container service, a
batch job, a worker) — the equivalent of etcd's watch with resume from a revision.

It combines the two things configpipe keeps:

* the **change log** (DynamoDB, the source of truth), read by version: on start, and again
  after any disconnect, every version newer than the one the process holds is delivered
  (:meth:`Subscription.catch_up`);
* the service's **durable queue subscription** (SQS, declared in the registry, created by the
  stack; see docs/consuming.md): the announcements that arrive while connected.

Per key, the callback sees versions in order, each exactly once, with no gap: a queued update
not newer than the version held is a duplicate and is dropped; one more than held is
delivered; one further ahead means announcements were missed or reordered, so the key is
caught up from the change log first. Messages of one receive are sorted by version, so a
reordered burst costs no extra read. What was applied is remembered only after the callback
returns: a failing callback leaves the message on the queue, SQS delivers it again after the
visibility timeout and, after the queue's ``maxReceiveCount``, moves it to the DLQ (alarmed).

The one exception to "no gap": a *sensitive* version whose secret version is already gone
because a newer version replaced it is skipped (logged), as the Lambda update handler skips a
superseded value; the newer version is delivered right after it.

The callback is ``on_update(update, value)`` — the same shape as the Lambda update handler's
(:func:`~configpipe.client.update_handler.config_update_handler`). Held versions live in
memory; a process that must resume across restarts passes ``held`` (what it applied) back in.

Progressive rollouts (docs/rollouts.md) reach it as they reach the Lambda update handler, by
the same code (:class:`~configpipe.client.rollout_events.AppliedRollouts`): a queued
``ConfigurationRollout*`` event is applied only if its (candidate version, sequence) is newer
than the key's last one, then ``on_rollout(event, stable, candidate)`` is called and the
client, if given, applies it. A candidate is not a version everyone reads: catch-up never
delivers a candidate to ``on_update`` while its rollout is active (the key waits at its
stable version until the completion's ``ConfigurationUpdated``), and skips a candidate whose
rollout was rolled back or aborted (the restoring version follows it). Delivery
announcements are acknowledged and not acted on.

Tenants' own values (``update.tenant``) are followed like keys: each (key, tenant) has its own
version sequence, held under ``(service, environment, key, tenant)`` (a service value under
``(service, environment, key)``), delivered in order with no gap, caught up from the change log
(the tenant markers list them) and rolled out per tenant.

Reconnects back off exponentially with full jitter (AWS Architecture Blog, "Exponential
Backoff and Jitter"), reset by the first successful receive.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from configpipe.client.config import GLOBAL_SERVICE, ConfigClient, SupersededValueError, fetch_value
from configpipe.client.rollout_events import AppliedRollouts, RolloutCallback
from configpipe.stores import ParameterStore, SecretStore

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from configpipe.changelog import ChangeLog, VersionRecord
    from configpipe.contracts import ConfigurationRolloutEvent, ConfigurationUpdated

log = logging.getLogger("configpipe.client")

#: What a held version belongs to: (service, environment, key) for the service's value,
#: (service, environment, key, tenant) for one tenant's own value of the key.
Scope = tuple[str, ...]
UpdateCallback = Callable[["ConfigurationUpdated", Any], None]

#: The announcement that carries a new version (same as ``DetailType.CONFIGURATION_UPDATED``).
CONFIGURATION_UPDATED = "ConfigurationUpdated"
#: Same as the materialiser's default ``inline_value_max_bytes``: a caught-up update carries its
#: value inline exactly when the announcement would have.
INLINE_MAX_BYTES = 1024
DEFAULT_ENVIRONMENTS = ("development", "staging", "production")


@dataclass
class Backoff:
    """Exponential backoff with full jitter: the n-th consecutive failure waits a uniformly
    random time in ``[0, min(cap, base * 2**n))``, so many consumers reconnecting after the
    same outage do not retry in lockstep."""

    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * (2**self.failures))
        self.failures += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class SubscriptionScope:
    """Which keys a subscriber follows: its service's and the global ones, in its environments,
    narrowed by key prefix — the registry's rule for which updates affect a service."""

    service: str
    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    key_prefixes: tuple[str, ...] = ()

    @property
    def services(self) -> tuple[str, ...]:
        return (self.service,) if self.service == GLOBAL_SERVICE else (self.service, GLOBAL_SERVICE)

    def wants(self, service: str, environment: str, key: str) -> bool:
        if service not in self.services or environment not in self.environments:
            return False
        return not self.key_prefixes or any(key.startswith(p) for p in self.key_prefixes)


def scope_of(service: str, environment: str, key: str, tenant: str | None = None) -> Scope:
    return (service, environment, key) if tenant is None else (service, environment, key, tenant)


def _parts(scope: Scope) -> tuple[str, str, str, str | None]:
    service, environment, key, *rest = scope
    return service, environment, key, (rest[0] if rest else None)


def versions_after(
    log_: ChangeLog, service: str, environment: str, key: str, held: int, tenant: str | None = None
) -> list[VersionRecord]:
    """The key's (or one tenant's value's) versions newer than ``held``, oldest first (read
    newest-first, stopping at ``held``, so a long history costs one page)."""
    newer = []
    for record in log_.history(service, environment, key, newest_first=True, tenant=tenant):
        if record.version <= held:
            break
        newer.append(record)
    newer.reverse()
    return newer


def missed_keys(
    log_: ChangeLog, services: Iterable[str], environments: Iterable[str]
) -> Iterator[tuple[Scope, int]]:
    """(scope, current version) of every key and every tenant's own value, deleted ones
    included, in the given services and environments, in a stable order."""
    for service in services:
        for environment in environments:
            for key, current in sorted(log_.keys(service, environment, include_deleted=True)):
                yield (service, environment, key), current
            if service == GLOBAL_SERVICE:
                continue  # global keys have no tenants
            for tenant, key, current in log_.tenant_keys(service, environment, include_deleted=True):
                yield (service, environment, key, tenant), current


def update_of(record: VersionRecord) -> ConfigurationUpdated:
    """The ``ConfigurationUpdated`` the materialiser announces for ``record`` (one definition:
    :meth:`VersionRecord.announcement`), so a caught-up version reaches the callback in the same
    shape as a pushed one."""
    return record.announcement(inline_max_bytes=INLINE_MAX_BYTES)


class _NotReadableYet(Exception):
    """A version's value cannot be read yet (a secret not materialised): try again later."""


class Subscription:
    """Follow one service's configuration from its durable queue, with catch-up from the
    change log. ``sqs``, ``change_log``, ``parameters``, ``secrets``, ``sleep`` and the
    backoff are injectable for tests; ``client``, if given, is kept up to date like the Lambda
    update handler keeps it, rollouts included; ``on_rollout`` is the update handler's."""

    def __init__(
        self,
        scope: SubscriptionScope,
        queue_url: str,
        on_update: UpdateCallback,
        *,
        change_log: ChangeLog | None = None,
        change_log_table: str | None = None,
        sqs: SQSClient | None = None,
        parameters: ParameterStore | None = None,
        secrets: SecretStore | None = None,
        client: ConfigClient | None = None,
        held: Mapping[Scope, int] | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: int = 20,
        on_rollout: RolloutCallback | None = None,
    ) -> None:
        if change_log is None:
            if not change_log_table:
                raise ValueError("a Subscription needs the change log: change_log or change_log_table")
            from configpipe.changelog import ChangeLog

            change_log = ChangeLog(change_log_table)
        if sqs is None:
            import boto3

            sqs = boto3.client("sqs")
        self.scope = scope
        self.queue_url = queue_url
        self._on_update = on_update
        self._log = change_log
        self._sqs = sqs
        self._parameters = parameters or (client.parameters if client else ParameterStore())
        self._secrets = secrets or (client.secrets if client else SecretStore())
        self._client = client
        self.held: dict[Scope, int] = dict(held or {})
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._wait_seconds = wait_seconds
        #: The rollout events applied, per key (shared with the Lambda update handler).
        self.rollouts = AppliedRollouts(scope.service, self._parameters, self._secrets, on_rollout, client)

    # --- catch-up from the change log ---------------------------------------------------

    def catch_up(self) -> int:
        """Deliver every version newer than the one held, for every key in scope. Returns how
        many were delivered. A key whose callback fails stops there (the next catch-up or a
        queued announcement retries it); the other keys go on."""
        delivered = 0
        for scope, current in missed_keys(self._log, self.scope.services, self.scope.environments):
            if self.scope.wants(*scope[:3]) and current > self.held.get(scope, 0):
                delivered += self._catch_up_key(scope)
        return delivered

    def _catch_up_key(self, scope: Scope) -> int:
        delivered = 0
        service, environment, key, tenant = _parts(scope)
        records = versions_after(self._log, service, environment, key, self.held.get(scope, 0), tenant)
        for index, record in enumerate(records):
            if record.rollout is not None:
                following = records[index + 1] if index + 1 < len(records) else None
                state = self._candidate_state(scope, record, following)
                if state == "rolling-out":
                    break
                if state == "rolled-back":
                    log.info("rolled-back rollout candidate skipped", extra=_identity(scope, record.version))
                    self.held[scope] = record.version
                    continue
            try:
                if not self._deliver(update_of(record), record):
                    continue
            except _NotReadableYet:
                log.info(
                    "catch-up waits for a version to be materialised", extra=_identity(scope, record.version)
                )
                break
            except (BotoCoreError, ClientError):
                raise  # a connection problem, not the callback's: run() reconnects
            except Exception:  # the service's callback: logged, retried by the next catch-up
                log.exception("update callback failed", extra=_identity(scope, record.version))
                break
            delivered += 1
        return delivered

    def _candidate_state(self, scope: Scope, record: VersionRecord, following: VersionRecord | None) -> str:
        """A rollout's candidate version is ``rolling-out`` (readers outside the rollout keep the
        stable version: wait, and hand the rollout's current step to ``on_rollout``),
        ``rolled-back`` (the version after it restores the stable value: nobody outside the
        rollout ever read it) or ``completed`` (an ordinary version from then on)."""
        service, environment, key, tenant = _parts(scope)
        if following is None:
            pointer = self._log.current(service, environment, key, tenant)
            if pointer is not None and pointer.rollout_id is not None and pointer.version == record.version:
                self._catch_up_rollout(scope)
                return "rolling-out"
            if pointer is not None and pointer.version > record.version:
                # It ended after the history was read: the version after it says how.
                following = self._log.version(service, environment, key, record.version + 1, tenant)
        from configpipe.rollout.service import rollback_change_id

        if (
            following is not None
            and following.operation == "rollback"
            and following.previous_version == record.version
            and following.change_id == rollback_change_id(record.change_id)  # rollout id = change id
        ):
            return "rolled-back"
        return "completed"

    def _catch_up_rollout(self, scope: Scope) -> None:
        """Hand a key's active rollout, as readers see it now, to the rollout callback (if it is
        newer than the last event applied): a subscriber that starts or reconnects mid-rollout
        learns the current step without waiting for the next one. Only a view the materialiser
        has caught up with (same sequence as the change log's rollout) is used; otherwise its
        announcement is on the way."""
        from configpipe.contracts import ConfigurationRolloutEvent
        from configpipe.naming import rollout_parameter_name

        service, environment, key, tenant = _parts(scope)
        record = self._log.rollout(service, environment, key, tenant)
        text = self._parameters.get(rollout_parameter_name(service, environment, key, tenant=tenant))
        if record is None or not record.active or text is None:
            return
        try:
            event = ConfigurationRolloutEvent.model_validate(
                {
                    **json.loads(text),
                    "eventAt": record.updated_at or record.started_at,
                    "author": record.author or "configpipe",
                    "reason": record.reason or record.event,
                }
            )
        except ValueError:  # pydantic's ValidationError too: a view this client cannot read
            log.warning("unreadable rollout view ignored", extra=_identity(scope, record.candidate_version))
            return
        if event.rollout_id != record.rollout_id or event.sequence != record.sequence:
            return
        try:
            self.rollouts.apply(event)
        except (BotoCoreError, ClientError):
            raise
        except Exception:  # the service's callback: retried by the next catch-up or event
            log.exception("rollout callback failed", extra=_identity(scope, record.candidate_version))

    # --- one update ---------------------------------------------------------------------

    def _deliver(self, update: ConfigurationUpdated, record: VersionRecord | None = None) -> bool:
        """Read the value of exactly ``update.version``, call back, then hold the version.
        False if the version was skipped (a superseded secret)."""
        scope = scope_of(update.service, update.environment, update.key, update.tenant)
        try:
            value = fetch_value(update, self._parameters, self._secrets)
        except SupersededValueError:
            value = self._value_from_log(update, record)
            if value is _SKIP:
                self.held[scope] = update.version
                return False
        self._on_update(update, value)
        self.held[scope] = update.version
        if self._client is not None:
            self._client.apply_update(update, value)
        return True

    def _value_from_log(self, update: ConfigurationUpdated, record: VersionRecord | None) -> Any:
        """The value when the store no longer (or not yet) holds that version: the change log's
        own copy for a plain value; for a secret, skip it if a newer version replaced it, else
        wait for its materialisation."""
        service, environment, key, tenant = update.service, update.environment, update.key, update.tenant
        scope = scope_of(service, environment, key, tenant)
        record = record or self._log.version(service, environment, key, update.version, tenant)
        if record is not None and not record.sensitive and record.value_json is not None:
            return json.loads(record.value_json)
        current = self._log.current(service, environment, key, tenant)
        if update.sensitive and current is not None and current.version > update.version:
            log.warning("superseded secret version skipped", extra=_identity(scope, update.version))
            return _SKIP
        raise _NotReadableYet(f"version {update.version} of {'/'.join(scope)}")

    # --- the queue ----------------------------------------------------------------------

    def poll(self, wait_seconds: int | None = None) -> int:
        """One receive from the queue; returns how many updates and rollout events reached the
        callbacks.
        Connection errors propagate (``run`` turns them into a reconnect)."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._wait_seconds if wait_seconds is None else wait_seconds,
        ).get("Messages", [])
        from configpipe.contracts import ConfigurationRolloutEvent

        parsed = [(self._parse(m), m) for m in messages]
        # In version order per key: a burst reordered in flight needs no change-log read.
        parsed.sort(key=lambda p: _order(p[0]))
        done: list[Any] = []  # the received messages that are dealt with
        delivered = 0
        for announcement, message in parsed:
            if announcement is None:
                handled, count = True, 0
            elif isinstance(announcement, ConfigurationRolloutEvent):
                handled, count = self._handle_rollout(announcement)
            else:
                handled, count = self._handle(announcement)
            delivered += count
            if handled:
                done.append(message)
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return delivered

    def _parse(self, message: Mapping[str, Any]) -> ConfigurationUpdated | ConfigurationRolloutEvent | None:
        """The update or rollout event a message carries; None for anything else (acknowledged,
        not acted on: other announcements, or a body the pipeline could not have sent)."""
        from pydantic import ValidationError

        from configpipe.contracts import ROLLOUT_EVENT_TYPES, ConfigurationRolloutEvent, ConfigurationUpdated

        try:
            event = json.loads(message["Body"])
        except ValueError:
            log.warning("queue message is not JSON; dropped", extra={"messageId": message.get("MessageId")})
            return None
        detail_type = event.get("detail-type") if isinstance(event, dict) else None
        if detail_type == CONFIGURATION_UPDATED:
            model: type[ConfigurationUpdated | ConfigurationRolloutEvent] = ConfigurationUpdated
        elif isinstance(detail_type, str) and detail_type in {str(t) for t in ROLLOUT_EVENT_TYPES}:
            model = ConfigurationRolloutEvent
        else:
            return None
        try:
            return model.model_validate(event.get("detail"))
        except ValidationError:
            log.warning(
                "malformed announcement dropped",
                extra={"messageId": message.get("MessageId"), "detailType": detail_type},
            )
            return None

    def _handle_rollout(self, rollout: ConfigurationRolloutEvent) -> tuple[bool, int]:
        """(whether the message is done with, 1 if the rollout callback saw it). A duplicate,
        an older event or a step whose candidate is gone (the rollout's end follows) is done
        with; a failing callback leaves the message for SQS to deliver again, then the DLQ."""
        scope = scope_of(rollout.service, rollout.environment, rollout.key, rollout.tenant)
        if not self.scope.wants(rollout.service, rollout.environment, rollout.key):
            return True, 0
        try:
            outcome = self.rollouts.apply(rollout)
        except (BotoCoreError, ClientError):
            raise
        except Exception:
            log.exception(
                "rollout callback failed",
                extra={**_identity(scope, rollout.candidate_version), "sequence": rollout.sequence},
            )
            return False, 0
        return True, int(outcome["applied"])

    def _handle(self, update: ConfigurationUpdated) -> tuple[bool, int]:
        """(whether the message is done with, how many updates were delivered)."""
        scope = scope_of(update.service, update.environment, update.key, update.tenant)
        if not self.scope.wants(update.service, update.environment, update.key):
            return True, 0
        held = self.held.get(scope, 0)
        if update.version <= held:
            log.info(
                "duplicate or stale update dropped", extra={**_identity(scope, update.version), "held": held}
            )
            return True, 0
        if update.version == held + 1:
            try:
                applied = self._deliver(update)
            except _NotReadableYet:
                return False, 0
            except (BotoCoreError, ClientError):
                raise
            except Exception:  # the service's callback: the message comes back, then the DLQ
                log.exception("update callback failed", extra=_identity(scope, update.version))
                return False, 0
            return True, int(applied)
        # Versions between held and this one were missed or are still in flight: read them.
        delivered = self._catch_up_key(scope)
        return self.held.get(scope, 0) >= update.version, delivered

    # --- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Catch up, then follow the queue until ``stop`` is set. After a connection error:
        wait (backoff with jitter), catch up again, resume the queue."""
        stop = stop or threading.Event()
        connected = False
        while not stop.is_set():
            try:
                if not connected:
                    self.catch_up()
                    connected = True
                self.poll()
                self.backoff.reset()
            except (BotoCoreError, ClientError) as error:
                connected = False
                delay = self.backoff.next_delay()
                log.warning(
                    "subscription disconnected; reconnecting",
                    extra={"error": type(error).__name__, "retryInSeconds": round(delay, 3)},
                )
                self._sleep(delay)


_SKIP: Any = object()


def _order(announcement: ConfigurationUpdated | ConfigurationRolloutEvent | None) -> tuple[Any, ...]:
    """Sort key of one receive: per key, by version; a rollout's events (by sequence) before the
    ``ConfigurationUpdated`` of its candidate version."""
    from configpipe.contracts import ConfigurationUpdated

    if announcement is None:
        return ("",)
    # a tenant's value has its own sequence: ordered apart from the service's ("" sorts first)
    scope = (announcement.service, announcement.environment, announcement.key, announcement.tenant or "")
    if isinstance(announcement, ConfigurationUpdated):
        return (*scope, announcement.version, 1, 0)
    return (*scope, announcement.candidate_version, 0, announcement.sequence)


def _identity(scope: Scope, version: int) -> dict[str, Any]:
    identity = {"configService": scope[0], "environment": scope[1], "key": scope[2], "version": version}
    if len(scope) > 3:
        identity["tenant"] = scope[3]
    return identity
