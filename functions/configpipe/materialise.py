"""Materialisation and announcement: what happens to one change-log stream record.

A *version* record makes the key's **current** version (read from the change log, not
the version in the record) the value in SSM / Secrets Manager, re-reading the pointer
after the write and writing again if it moved; only then is ``ConfigurationUpdated``
announced for the record's own version. A *rejected change* record is announced as
``ConfigurationRejected``. Every step is idempotent, so the stream's retries, bisection
and redrives of any record converge on the same state and can never put an older value
over a newer one.

Why announcing a superseded version is safe: the announcement for version N is made after
the store holds a version >= N, and every consumer keeps the highest version it applied
per key and drops anything not newer. A late announcement of N therefore either arrives
before N+1's (and is applied, then replaced when N+1's arrives, which always follows
because N+1's own record is announced after it is materialised) or after it (and is
dropped). Consumers that fetch a non-inline value for N ask for exactly N (secret
version id derived from N; SSM value checked against N's hash, else searched in the
parameter's history), so they never label another version's value as N.

Nothing here logs a value, a ciphertext or a secret: only changeId, service,
environment, key and version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog, CurrentPointer, RolloutRecord, VersionRecord, change_id_of
from configpipe.contracts import (
    CHANGE_ID_PATTERN,
    ROLLOUT_EVENT_TYPES,
    ConfigurationRejected,
    ConfigurationRolloutEvent,
    ConfigurationUpdated,
    DetailType,
    Operation,
    Reason,
    RolloutCandidate,
    RolloutOutcome,
    RolloutStatus,
    RolloutView,
    check_environment,
    check_key,
    check_service,
    check_tenant,
)
from configpipe.errors import ConfigpipeError
from configpipe.naming import (
    candidate_parameter_name,
    parameter_name,
    rollout_parameter_name,
    scope_id,
    secret_name,
)
from configpipe.observability import logger
from configpipe.registry import Registry
from configpipe.stores import CANDIDATE_STAGE, ParameterStore, SecretStore, secret_version_token
from configpipe.tenant_bundle import TenantBundles
from configpipe.untrusted import bounded_text

#: Rounds of "write current, re-read pointer" before giving up on a key whose pointer keeps
#: moving; the record then fails and the stream retries it (by then the writers have settled).
MAX_ROUNDS = 5
P = TypeVar("P")


class Decrypter(Protocol):
    def decrypt(self, scope: str, ciphertext: bytes) -> str: ...


class RecordRefusedError(ConfigpipeError):
    """The stream record cannot be materialised, now or on any retry: it is malformed, of a
    kind with no rule, or names an item the change log does not hold. The handler logs and
    counts it and moves on; retrying would only park it in the DLQ a day later."""

    code = "MALFORMED_RECORD"


class PointerMissingError(RecordRefusedError):
    """A version item exists but its key has no CURRENT pointer: the change log is inconsistent."""

    code = "DANGLING_RECORD"


class PointerKeepsMovingError(ConfigpipeError):
    """The key's pointer moved on every round; the record is retried by the stream."""


class RolloutMissingError(RecordRefusedError):
    """A rollout stream record names a rollout (or candidate version) the change log lacks."""

    code = "DANGLING_RECORD"


class UnknownItemError(RecordRefusedError):
    """The stream delivered an item the materialiser has no rule for."""

    code = "UNKNOWN_KIND"


#: What parsing a forged or corrupted image raises: a missing attribute, a wrong type, a number
#: that is not one, JSON that is not, or nesting deeper than the interpreter's stack.
_MALFORMED = (LookupError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError)


@dataclass(frozen=True)
class Materialised:
    """What the main store holds after materialising a key: the version readers keep (the
    current one, or the stable one while a rollout is active; 0 when that is "no value")
    and, for a sensitive one, the secret's ARN."""

    version: int
    secret_arn: str | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str  # "updated" | "candidate" | "rollout" | "rejected" | "skipped"
    announced: ConfigurationUpdated | ConfigurationRejected | ConfigurationRolloutEvent | None = None
    materialised: Materialised | None = None


class Materialiser:
    def __init__(
        self,
        change_log: ChangeLog,
        parameters: ParameterStore,
        secrets: SecretStore,
        secrets_key: Decrypter,
        bus: ConfigBus,
        inline_value_max_bytes: int = 1024,
        max_rounds: int = MAX_ROUNDS,
        registry: Callable[[], Registry] | None = None,
    ) -> None:
        self._registry = registry
        self._log = change_log
        self._parameters = parameters
        self._secrets = secrets
        self._key = secrets_key
        self._bus = bus
        self._inline_max = inline_value_max_bytes
        self._max_rounds = max_rounds
        self._bundles = TenantBundles(parameters, self._tags)

    def _tags(self, service: str, environment: str, tenant: str | None = None) -> dict[str, str]:
        """Tags of every parameter and secret written for the scope: Service, Environment,
        Owner, CostCenter (from the registry) and ManagedBy, plus the ``configpipe:`` pair
        secrets have always carried (and ``Tenant`` on a tenant's value)."""
        registry = self._registry() if self._registry is not None else Registry()
        return {
            **registry.tags_for(service, environment),
            "configpipe:service": service,
            "configpipe:environment": environment,
            **({"Tenant": tenant} if tenant is not None else {}),
        }

    # --- entry point: one stream image ----------------------------------------------------

    def handle(self, image: dict[str, Any]) -> Outcome:
        """Raises :class:`RecordRefusedError` for an image no retry can materialise."""
        kind = image.get("kind") if isinstance(image, dict) else None
        kind = kind if isinstance(kind, str) else None
        if kind == "version":
            return self.on_version(_parsed(version_record_from_image, image))
        if kind == "rollout":
            return self.on_rollout(image)
        if kind == "change" and image.get("status") == "rejected":
            return Outcome("rejected", announced=self.on_rejection(image))
        if kind in {"change", "current", "snapshot", "tenant"}:
            # Not in the ESM filter; tolerated so a widened filter cannot wedge the stream.
            return Outcome("skipped")
        raise UnknownItemError(f"stream item of kind {bounded_text(kind, 64)} has no materialisation rule")

    # --- version records ------------------------------------------------------------------

    def on_version(self, record: VersionRecord) -> Outcome:
        context = _log_context(record)
        materialised = self.materialise_current(
            record.service,
            record.environment,
            record.key,
            sensitivity_flipped=_flipped(record),
            known=record,
            tenant=record.tenant,
        )
        if record.tenant is not None:
            # Before the announcement: a handler that reads the tenant on hearing of it
            # reads the bundle this write is in.
            self._publish_bundle(record.service, record.environment, record.tenant)
        if record.rollout is not None:
            # A rollout's candidate: its rollout item's own record announces it (Started) and,
            # when it completes, announces this version as ConfigurationUpdated.
            logger.info(
                "rollout candidate recorded", extra={**context, "readersVersion": materialised.version}
            )
            return Outcome("candidate", materialised=materialised)
        update = self.announcement(record, materialised)
        self._bus.publish([self._bus.entry(DetailType.CONFIGURATION_UPDATED, update, _resources(update))])
        logger.info("configuration announced", extra={**context, "currentVersion": materialised.version})
        return Outcome("updated", announced=update, materialised=materialised)

    def materialise_current(
        self,
        service: str,
        environment: str,
        key: str,
        sensitivity_flipped: bool = False,
        known: VersionRecord | None = None,
        tenant: str | None = None,
    ) -> Materialised:
        """Write the version readers keep to the key's main store; repeat while it moves.

        That is the current version, or, while the pointer names a rollout, the stable one
        (None: the key had no value before the rollout, so the main store is emptied).

        ``sensitivity_flipped``: the version being processed changed the key between SSM
        and Secrets Manager, so the store the written version does not use is emptied (the
        written version may be later than that one and not a flip itself). While a rollout
        has a sensitive candidate, its secret is never emptied: it holds the candidate.
        ``known``: the stream's copy of a version item, used instead of reading the item
        again when it is the version to write and complete (not a secret: the stream
        image's ciphertext is not used). ``tenant``: one tenant's value of the key."""
        scope = scope_id(service, environment, key, tenant)
        pointer = self._log.current(service, environment, key, tenant)
        for _ in range(self._max_rounds):
            if pointer is None:
                raise PointerMissingError(f"no current version for {scope}")
            target = pointer.version_for_readers()
            keep_secret = candidate_in_secret(pointer)
            if target is None:
                materialised = self._clear(service, environment, key, keep_secret, tenant)
            else:
                current = (
                    known
                    if known is not None
                    and known.version == target
                    and (known.deleted or not known.sensitive)
                    else self._log.version(service, environment, key, target, tenant)
                )
                if current is None:
                    raise PointerMissingError(f"version {target} of {scope} is missing")
                materialised = self._write(
                    current,
                    clean_other_store=sensitivity_flipped or _flipped(current),
                    keep_secret=keep_secret,
                )
            pointer = self._log.current(service, environment, key, tenant)
            if pointer is not None and pointer.version_for_readers() == target:
                return materialised
            logger.info(
                "pointer moved while materialising; writing again",
                extra={
                    "configService": service,
                    "environment": environment,
                    "key": key,
                    "tenant": tenant,
                    "version": target,
                    "movedTo": pointer.version_for_readers() if pointer else None,
                },
            )
        raise PointerKeepsMovingError(f"current version of {scope} moved {self._max_rounds} times")

    def _clear(
        self, service: str, environment: str, key: str, keep_secret: bool, tenant: str | None = None
    ) -> Materialised:
        """The key has no value for readers (a rollout of a key that had none before)."""
        self._parameters.delete(parameter_name(service, environment, key, tenant=tenant))
        if not keep_secret:
            self._secrets.schedule_deletion(secret_name(service, environment, key, tenant=tenant))
        logger.info(
            "no stable value: main store emptied",
            extra={"configService": service, "environment": environment, "key": key},
        )
        return Materialised(0)

    def _write(
        self, record: VersionRecord, clean_other_store: bool, keep_secret: bool = False
    ) -> Materialised:
        name = parameter_name(record.service, record.environment, record.key, tenant=record.tenant)
        secret = secret_name(record.service, record.environment, record.key, tenant=record.tenant)
        context = _log_context(record)
        if record.deleted:
            # A tombstone removes the key from both stores (it may have changed sensitivity).
            self._parameters.delete(name)
            if not keep_secret:
                self._secrets.schedule_deletion(secret)
            logger.info("configuration deleted from stores", extra=context)
            return Materialised(record.version)
        if record.sensitive:
            if record.secret_ciphertext is None:
                raise ConfigpipeError(
                    f"sensitive version {record.version} of {context['scope']} has no ciphertext"
                )
            scope = scope_id(record.service, record.environment, record.key, record.tenant)
            plaintext = self._key.decrypt(scope, record.secret_ciphertext)
            arn = self._secrets.put_version(
                secret,
                plaintext,
                token=secret_version_token(scope, record.version),
                tags=self._tags(record.service, record.environment, record.tenant),
            )
            if clean_other_store:
                # The key was not sensitive before: no clear copy may remain in SSM.
                self._parameters.delete(name)
            logger.info("secret materialised", extra=context)
            return Materialised(record.version, secret_arn=arn)
        if record.value_json is None:
            raise ConfigpipeError(f"version {record.version} of {context['scope']} has no value")
        self._parameters.put(
            name, record.value_json, self._tags(record.service, record.environment, record.tenant)
        )
        if clean_other_store and not keep_secret:
            # The key was sensitive before: its old secret must not outlive it.
            self._secrets.schedule_deletion(secret)
        logger.info("parameter materialised", extra=context)
        return Materialised(record.version)

    def announcement(self, record: VersionRecord, materialised: Materialised) -> ConfigurationUpdated:
        """``ConfigurationUpdated`` for the record's own version (its secret's ARN, if any)."""
        arn = None
        if record.sensitive and not record.deleted:
            arn = materialised.secret_arn if materialised.version == record.version else None
            arn = arn or self._secrets.arn(
                secret_name(record.service, record.environment, record.key, tenant=record.tenant)
            )
        return record.announcement(inline_max_bytes=self._inline_max, secret_arn=arn)

    def _publish_bundle(self, service: str, environment: str, tenant: str) -> None:
        published = self._bundles.publish(service, environment, tenant)
        if not published["converged"]:
            logger.warning("tenant bundle still moving; left to the concurrent writer", extra=published)

    # --- rollout records ------------------------------------------------------------------

    def on_rollout(self, image: dict[str, Any]) -> Outcome:
        """One state change of a key's rollout: make the key's *current* rollout state
        readable (read fresh from the change log, so a replayed old image never brings back
        an ended rollout), then announce the image's own event (as it was then: consumers
        drop sequences older than one they hold)."""
        as_of = _parsed(RolloutRecord.from_item, image)
        service, environment, key, tenant = as_of.service, as_of.environment, as_of.key, as_of.tenant
        context = {
            "rolloutId": as_of.rollout_id,
            "configService": service,
            "environment": environment,
            "key": key,
            "tenant": tenant,
            "sequence": as_of.sequence,
            "rolloutEvent": as_of.event,
        }
        latest = self._log.rollout(service, environment, key, tenant)
        if latest is None:
            raise RolloutMissingError(f"no rollout item for {scope_id(service, environment, key, tenant)}")
        candidates: dict[int, VersionRecord] = {}
        # Read before any write: an image naming a candidate the log lacks is refused untouched.
        candidate = self._candidate_record(as_of, candidates)
        if latest.active:
            candidate = self._candidate_record(latest, candidates)
            placement = self._write_candidate(latest, candidate)
            view = self._view(latest, placement)
            self._parameters.put(
                rollout_parameter_name(service, environment, key, tenant=tenant),
                json.dumps(view.to_detail(), sort_keys=True, separators=(",", ":")),
                self._tags(service, environment, tenant),
            )
            self.materialise_current(service, environment, key, tenant=tenant)
            logger.info("rollout materialised", extra={**context, "weight": latest.weight})
        else:
            materialised = self.materialise_current(service, environment, key, tenant=tenant)
            self._parameters.delete(candidate_parameter_name(service, environment, key, tenant=tenant))
            self._parameters.delete(rollout_parameter_name(service, environment, key, tenant=tenant))
            if latest.candidate_sensitive:
                self._secrets.remove_stage(
                    secret_name(service, environment, key, tenant=tenant), CANDIDATE_STAGE
                )
            logger.info("rollout ended", extra={**context, "readersVersion": materialised.version})
        if tenant is not None:
            self._publish_bundle(service, environment, tenant)

        event = self._rollout_event(as_of, candidate)
        entries = [self._bus.entry(DetailType(as_of.event), event, _event_resources(event))]
        if as_of.event == DetailType.CONFIGURATION_ROLLOUT_COMPLETED.value:
            # Readers that know nothing of rollouts converge on the candidate.
            update = self.announcement(candidate, Materialised(candidate.version, event.candidate.secret_arn))
            entries.append(self._bus.entry(DetailType.CONFIGURATION_UPDATED, update, _resources(update)))
        self._bus.publish(entries)
        logger.info("rollout announced", extra=context)
        return Outcome("rollout", announced=event)

    def _candidate_record(self, rollout: RolloutRecord, cache: dict[int, VersionRecord]) -> VersionRecord:
        if rollout.candidate_version not in cache:
            record = self._log.version(
                rollout.service, rollout.environment, rollout.key, rollout.candidate_version, rollout.tenant
            )
            if record is None:
                scope = scope_id(rollout.service, rollout.environment, rollout.key, rollout.tenant)
                raise RolloutMissingError(f"candidate version {rollout.candidate_version} of {scope} missing")
            cache[rollout.candidate_version] = record
        return cache[rollout.candidate_version]

    def _write_candidate(self, rollout: RolloutRecord, candidate: VersionRecord) -> RolloutCandidate:
        """Make an active rollout's candidate readable beside the stable value."""
        service, environment, key, tenant = rollout.service, rollout.environment, rollout.key, rollout.tenant
        if candidate.deleted:
            # The candidate is "no value": nothing to read beside the stable one.
            self._parameters.delete(candidate_parameter_name(service, environment, key, tenant=tenant))
            return self._candidate(candidate, active=True)
        if candidate.sensitive:
            scope = scope_id(service, environment, key, tenant)
            if candidate.secret_ciphertext is None:
                raise ConfigpipeError(f"sensitive version {candidate.version} of {scope} has no ciphertext")
            arn = self._secrets.put_staged_version(
                secret_name(service, environment, key, tenant=tenant),
                self._key.decrypt(scope, candidate.secret_ciphertext),
                token=secret_version_token(scope, candidate.version),
                stages=[CANDIDATE_STAGE],
                tags=self._tags(service, environment, tenant),
            )
            # A non-sensitive candidate of an earlier rollout must not linger beside this one.
            self._parameters.delete(candidate_parameter_name(service, environment, key, tenant=tenant))
            return self._candidate(candidate, active=True, secret_arn=arn)
        if candidate.value_json is None:
            raise ConfigpipeError(
                f"version {candidate.version} of {scope_id(service, environment, key, tenant)} has no value"
            )
        self._parameters.put(
            candidate_parameter_name(service, environment, key, tenant=tenant),
            candidate.value_json,
            self._tags(service, environment, tenant),
        )
        return self._candidate(candidate, active=True)

    def _candidate(
        self, candidate: VersionRecord, active: bool, secret_arn: str | None = None
    ) -> RolloutCandidate:
        """Where ``candidate`` can be read: beside the stable value while the rollout is active,
        in the key's main store once it completed (and nowhere once it was rolled back)."""
        service, environment, key, tenant = (
            candidate.service,
            candidate.environment,
            candidate.key,
            candidate.tenant,
        )
        fields: dict[str, Any] = {}
        if candidate.deleted:
            pass
        elif candidate.sensitive:
            fields["secret_arn"] = secret_arn or self._secrets.arn(
                secret_name(service, environment, key, tenant=tenant)
            )
            fields["secret_version_id"] = secret_version_token(
                scope_id(service, environment, key, tenant), candidate.version
            )
        else:
            fields["parameter_name"] = (
                candidate_parameter_name(service, environment, key, tenant=tenant)
                if active
                else parameter_name(service, environment, key, tenant=tenant)
            )
            if (
                candidate.value_json is not None
                and len(candidate.value_json.encode("utf-8")) <= self._inline_max
            ):
                fields["value"] = json.loads(candidate.value_json)
                fields["value_inline"] = True
        return RolloutCandidate(
            value_hash=candidate.value_hash,
            sensitive=candidate.sensitive,
            deleted=candidate.deleted,
            **fields,
        )

    def _view(self, rollout: RolloutRecord, candidate: RolloutCandidate) -> RolloutView:
        return RolloutView(**_view_fields(rollout), candidate=candidate)

    def _rollout_event(self, rollout: RolloutRecord, candidate: VersionRecord) -> ConfigurationRolloutEvent:
        status = RolloutStatus(rollout.status)
        located = self._candidate(candidate, active=status is RolloutStatus.ROLLING_OUT)
        if status in (RolloutStatus.ROLLED_BACK, RolloutStatus.ABORTED) and not candidate.sensitive:
            # Rolled back: the candidate is no longer readable anywhere; keep its hash (and
            # a small value inline, for the record) but point nowhere.
            located = located.model_copy(update={"parameter_name": None})
        return ConfigurationRolloutEvent(
            **_view_fields(rollout),
            candidate=located,
            event_at=datetime.fromisoformat(rollout.updated_at or rollout.started_at),
            author=rollout.author or "configpipe",
            reason=rollout.reason or rollout.event,
            outcome=RolloutOutcome.model_validate(rollout.outcome) if rollout.outcome else None,
        )

    # --- rejection records ----------------------------------------------------------------

    def on_rejection(self, image: dict[str, Any]) -> ConfigurationRejected:
        rejected = _parsed(_rejection_from_image, image)
        change_id = rejected.change_id
        self._bus.publish([self._bus.entry(DetailType.CONFIGURATION_REJECTED, rejected)])
        logger.info(
            "rejection announced",
            extra={
                "changeId": change_id,
                "configService": rejected.service,
                "environment": rejected.environment,
                "key": rejected.key,
                "reasonCodes": [r.code.value for r in rejected.reasons],
            },
        )
        return rejected


def _parsed(parse: Callable[[dict[str, Any]], P], image: dict[str, Any]) -> P:
    """``parse(image)``, with a malformed image (or one naming a scope no change could have
    been accepted for) turned into a refusal."""
    try:
        parsed = parse(image)
        if isinstance(parsed, VersionRecord):
            _check_version(parsed)
        if isinstance(parsed, RolloutRecord):
            _check_rollout(parsed)
    except _MALFORMED as error:
        raise RecordRefusedError(f"{type(error).__name__} while reading the image") from None
    scope = [getattr(parsed, name, None) for name in ("service", "environment", "key")]
    if isinstance(parsed, VersionRecord | RolloutRecord) and not _valid_scope(*scope):
        raise RecordRefusedError("service, environment or key is not one a change could name")
    if isinstance(parsed, VersionRecord | RolloutRecord) and not _valid_tenant(parsed.tenant):
        raise RecordRefusedError("tenant is not one a change could name")
    return parsed


def _check_version(record: VersionRecord) -> None:
    """Everything the announcement and the stores take from a version image, checked before
    any write (raises one of :data:`_MALFORMED`): the fields a change could have given it."""
    texts = (record.change_id, record.operation, record.author, record.reason, record.applied_at)
    if not all(isinstance(t, str) for t in (*texts, record.value_hash, record.source)):
        raise TypeError("a text attribute is not a string")
    for text in (*texts, record.value_hash, record.source):
        text.encode("utf-8")  # a lone surrogate cannot go on the bus
    if (
        not CHANGE_ID_PATTERN.fullmatch(record.change_id)
        or len(record.author) > 256
        or len(record.reason) > 1024
    ):
        raise ValueError("changeId, author or reason is not one a change could carry")
    Operation(record.operation)
    datetime.fromisoformat(record.applied_at)
    if record.version < 1 or any(
        v is not None and v < 1 for v in (record.previous_version, record.rolled_back_to)
    ):
        raise ValueError("versions start at 1")
    if record.value_json is not None:
        json.loads(record.value_json.encode("utf-8"))  # a str of valid UTF-8 JSON
    elif not record.deleted and not record.sensitive:
        raise ValueError("a put of a plain value without the value")


def _check_rollout(record: RolloutRecord) -> None:
    """The rollout image's event, status and times, checked before any write."""
    if DetailType(record.event) not in ROLLOUT_EVENT_TYPES:
        raise ValueError("not a rollout event")
    RolloutStatus(record.status)
    datetime.fromisoformat(record.started_at)
    if record.candidate_version < 1 or record.sequence < 0 or not 0 <= record.weight <= 100:
        raise ValueError("candidate version, sequence or weight out of range")
    # The announcement this image makes, with its candidate not yet located: every field a
    # forged image could get wrong fails here, before the stores are touched.
    ConfigurationRolloutEvent(
        **_view_fields(record),
        candidate=RolloutCandidate(
            value_hash=record.candidate_value_hash,
            sensitive=record.candidate_sensitive,
            deleted=record.candidate_deleted,
        ),
        event_at=datetime.fromisoformat(record.updated_at or record.started_at),
        author=record.author or "configpipe",
        reason=record.reason or record.event,
        outcome=RolloutOutcome.model_validate(record.outcome) if record.outcome else None,
    )
    if record.updated_at:
        datetime.fromisoformat(record.updated_at)


def _valid_scope(service: Any, environment: Any, key: Any) -> bool:
    try:
        check_service(service), check_environment(environment), check_key(key)
    except (TypeError, ValueError):
        return False
    return True


def _valid_tenant(tenant: Any) -> bool:
    try:
        check_tenant(tenant)
    except (TypeError, ValueError):
        return False
    return True


#: Bounds of a rejection record's announcement. The validator writes records within them; a
#: record beyond them was not written by it, and is announced cut (with a visible marker), so
#: the event stays far below EventBridge's 256 KB.
MAX_REASONS = 50
MAX_MESSAGE_CHARS = 1024


def _rejection_from_image(image: dict[str, Any]) -> ConfigurationRejected:
    def text(name: str) -> str | None:
        value = image.get(name)
        return None if value is None else bounded_text(value)

    reasons = image.get("reasons", [])
    if not isinstance(reasons, list):
        raise TypeError("reasons is not a list")
    return ConfigurationRejected(
        change_id=change_id_of(bounded_text(image["pk"])),
        service=text("service"),
        environment=text("environment"),
        key=text("key"),
        operation=text("operation"),
        tenant=text("tenant"),
        source=bounded_text(image.get("source", "")),
        reasons=[
            Reason(
                code=r["code"],
                message=bounded_text(r["message"], MAX_MESSAGE_CHARS),
                field=None if r.get("field") is None else bounded_text(r["field"]),
            )
            for r in reasons[:MAX_REASONS]
        ],
        rejected_at=image["receivedAt"],
    )


def version_record_from_image(image: dict[str, Any]) -> VersionRecord:
    """The stream's NEW_IMAGE of a version item as a :class:`VersionRecord`.

    The ciphertext is dropped: the materialiser always reads the value it writes from the
    change log (the current version), and the stream encodes binary differently in Lambda
    (base64 text) and in SDK reads (bytes)."""
    return VersionRecord.from_item({k: v for k, v in image.items() if k != "secretCiphertext"})


def _flipped(record: VersionRecord) -> bool:
    """Did this version move the key between the two stores? Unknown (records written
    before sensitivity was tracked) counts as a flip: cleaning is idempotent, leaking is not."""
    if record.previous_version is None:
        return False
    return record.previous_sensitive is None or record.previous_sensitive != record.sensitive


def candidate_in_secret(pointer: CurrentPointer) -> bool:
    """Does an active rollout keep its candidate in the key's secret (so it must not be
    emptied while the main store holds the stable version)? The pointer describes the
    candidate while it names a rollout."""
    return pointer.rollout_id is not None and pointer.sensitive and not pointer.deleted


def _view_fields(rollout: RolloutRecord) -> dict[str, Any]:
    return {
        "rollout_id": rollout.rollout_id,
        "service": rollout.service,
        "environment": rollout.environment,
        "key": rollout.key,
        "status": RolloutStatus(rollout.status),
        "sequence": rollout.sequence,
        "stable_version": rollout.stable_version,
        "candidate_version": rollout.candidate_version,
        "weight": rollout.weight,
        "targets": list(rollout.targets),
        "strategy": rollout.strategy_name,
        "paused": rollout.paused,
        "alarms": list(rollout.alarms),
        "started_at": datetime.fromisoformat(rollout.started_at),
        "release": dict(rollout.release) if rollout.release else None,
        "tenant": rollout.tenant,
    }


def _event_resources(event: ConfigurationRolloutEvent) -> list[str]:
    return [event.candidate.secret_arn] if event.candidate.secret_arn else []


def _log_context(record: VersionRecord) -> dict[str, Any]:
    return {
        "changeId": record.change_id,
        "configService": record.service,
        "environment": record.environment,
        "key": record.key,
        "tenant": record.tenant,
        "version": record.version,
        "scope": scope_id(record.service, record.environment, record.key, record.tenant),
    }


def _resources(update: ConfigurationUpdated) -> list[str]:
    return [update.secret_arn] if update.secret_arn else []
