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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog, VersionRecord
from configpipe.contracts import ConfigurationRejected, ConfigurationUpdated, DetailType, Operation, Reason
from configpipe.errors import ConfigpipeError
from configpipe.naming import parameter_name, scope_id, secret_name
from configpipe.observability import logger
from configpipe.stores import ParameterStore, SecretStore, secret_version_token

#: Rounds of "write current, re-read pointer" before giving up on a key whose pointer keeps
#: moving; the record then fails and the stream retries it (by then the writers have settled).
MAX_ROUNDS = 5
CHANGE_PK_PREFIX = "CHANGE#"


class Decrypter(Protocol):
    def decrypt(self, scope: str, ciphertext: bytes) -> str: ...


class PointerMissingError(ConfigpipeError):
    """A version item exists but its key has no CURRENT pointer: the change log is inconsistent."""


class PointerKeepsMovingError(ConfigpipeError):
    """The key's pointer moved on every round; the record is retried by the stream."""


class UnknownItemError(ConfigpipeError):
    """The stream delivered an item the materialiser has no rule for."""


@dataclass(frozen=True)
class Materialised:
    """What the stores hold after materialising a key: its current version and, for a
    sensitive current version, the secret's ARN."""

    version: int
    secret_arn: str | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str  # "updated" | "rejected" | "skipped"
    announced: ConfigurationUpdated | ConfigurationRejected | None = None
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
    ) -> None:
        self._log = change_log
        self._parameters = parameters
        self._secrets = secrets
        self._key = secrets_key
        self._bus = bus
        self._inline_max = inline_value_max_bytes
        self._max_rounds = max_rounds

    # --- entry point: one stream image ----------------------------------------------------

    def handle(self, image: dict[str, Any]) -> Outcome:
        kind = image.get("kind")
        if kind == "version":
            return self.on_version(version_record_from_image(image))
        if kind == "change" and image.get("status") == "rejected":
            return Outcome("rejected", announced=self.on_rejection(image))
        if kind in {"change", "current"}:
            # Not in the ESM filter; tolerated so a widened filter cannot wedge the stream.
            return Outcome("skipped")
        raise UnknownItemError(f"stream item of kind {kind!r} has no materialisation rule")

    # --- version records ------------------------------------------------------------------

    def on_version(self, record: VersionRecord) -> Outcome:
        context = _log_context(record)
        materialised = self.materialise_current(
            record.service, record.environment, record.key, sensitivity_flipped=_flipped(record), known=record
        )
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
    ) -> Materialised:
        """Write the key's current version to its store; repeat while the pointer moves.

        ``sensitivity_flipped``: the version being processed changed the key between SSM
        and Secrets Manager, so the store the current version does not use is emptied (the
        current version may be later than that one and not a flip itself).
        ``known``: the stream's copy of a version item, used instead of reading the item
        again when it is the current version and complete (not a secret: the stream
        image's ciphertext is not used)."""
        pointer = self._log.current(service, environment, key)
        for _ in range(self._max_rounds):
            if pointer is None:
                raise PointerMissingError(f"no current version for {scope_id(service, environment, key)}")
            current = (
                known
                if known is not None
                and known.version == pointer.version
                and (known.deleted or not known.sensitive)
                else self._log.version(service, environment, key, pointer.version)
            )
            if current is None:
                raise PointerMissingError(
                    f"version {pointer.version} of {scope_id(service, environment, key)} is missing"
                )
            materialised = self._write(current, clean_other_store=sensitivity_flipped or _flipped(current))
            pointer = self._log.current(service, environment, key)
            if pointer is not None and pointer.version == current.version:
                return materialised
            logger.info(
                "pointer moved while materialising; writing again",
                extra={**_log_context(current), "movedTo": pointer.version if pointer else None},
            )
        raise PointerKeepsMovingError(
            f"current version of {scope_id(service, environment, key)} moved {self._max_rounds} times"
        )

    def _write(self, record: VersionRecord, clean_other_store: bool) -> Materialised:
        name = parameter_name(record.service, record.environment, record.key)
        secret = secret_name(record.service, record.environment, record.key)
        context = _log_context(record)
        if record.deleted:
            # A tombstone removes the key from both stores (it may have changed sensitivity).
            self._parameters.delete(name)
            self._secrets.schedule_deletion(secret)
            logger.info("configuration deleted from stores", extra=context)
            return Materialised(record.version)
        if record.sensitive:
            if record.secret_ciphertext is None:
                raise ConfigpipeError(
                    f"sensitive version {record.version} of {context['scope']} has no ciphertext"
                )
            scope = scope_id(record.service, record.environment, record.key)
            plaintext = self._key.decrypt(scope, record.secret_ciphertext)
            arn = self._secrets.put_version(
                secret,
                plaintext,
                token=secret_version_token(scope, record.version),
                tags={"configpipe:service": record.service, "configpipe:environment": record.environment},
            )
            if clean_other_store:
                # The key was not sensitive before: no clear copy may remain in SSM.
                self._parameters.delete(name)
            logger.info("secret materialised", extra=context)
            return Materialised(record.version, secret_arn=arn)
        if record.value_json is None:
            raise ConfigpipeError(f"version {record.version} of {context['scope']} has no value")
        self._parameters.put(name, record.value_json)
        if clean_other_store:
            # The key was sensitive before: its old secret must not outlive it.
            self._secrets.schedule_deletion(secret)
        logger.info("parameter materialised", extra=context)
        return Materialised(record.version)

    def announcement(self, record: VersionRecord, materialised: Materialised) -> ConfigurationUpdated:
        """``ConfigurationUpdated`` for the record's own version."""
        fields: dict[str, Any] = {}
        if record.sensitive and not record.deleted:
            arn = materialised.secret_arn if materialised.version == record.version else None
            fields["secret_arn"] = arn or self._secrets.arn(
                secret_name(record.service, record.environment, record.key)
            )
        elif not record.deleted:
            fields["parameter_name"] = parameter_name(record.service, record.environment, record.key)
            if record.value_json is not None and len(record.value_json.encode("utf-8")) <= self._inline_max:
                fields["value"] = json.loads(record.value_json)
                fields["value_inline"] = True
        return ConfigurationUpdated(
            change_id=record.change_id,
            service=record.service,
            environment=record.environment,
            key=record.key,
            operation=Operation(record.operation),
            version=record.version,
            previous_version=record.previous_version,
            value_hash=record.value_hash,
            deleted=record.deleted,
            sensitive=record.sensitive,
            rolled_back_to=record.rolled_back_to,
            author=record.author,
            reason=record.reason,
            applied_at=datetime.fromisoformat(record.applied_at),
            **fields,
        )

    # --- rejection records ----------------------------------------------------------------

    def on_rejection(self, image: dict[str, Any]) -> ConfigurationRejected:
        change_id = str(image["pk"])[len(CHANGE_PK_PREFIX) :]
        rejected = ConfigurationRejected(
            change_id=change_id,
            service=_opt_str(image.get("service")),
            environment=_opt_str(image.get("environment")),
            key=_opt_str(image.get("key")),
            operation=_opt_str(image.get("operation")),
            source=str(image.get("source", "")),
            reasons=[
                Reason(code=r["code"], message=r["message"], field=_opt_str(r.get("field")))
                for r in image.get("reasons", [])
            ],
            rejected_at=image["receivedAt"],
        )
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


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _log_context(record: VersionRecord) -> dict[str, Any]:
    return {
        "changeId": record.change_id,
        "configService": record.service,
        "environment": record.environment,
        "key": record.key,
        "version": record.version,
        "scope": scope_id(record.service, record.environment, record.key),
    }


def _resources(update: ConfigurationUpdated) -> list[str]:
    return [update.secret_arn] if update.secret_arn else []
