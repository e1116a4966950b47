"""Accepting or rejecting one ``ConfigurationChange``: the validator's logic.

The outcome is exactly one write to the change log: the new version (with its pointer and
change record, in one transaction) or a rejection record. Everything after that is driven
by the change log's stream (see docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from configpipe.changelog import ChangeLog, CurrentPointer, RolloutRecord, VersionRecord, utc_now
from configpipe.contracts import (
    CHANGE_ID_PATTERN,
    ChangeOutcome,
    ConfigurationChange,
    Operation,
    Reason,
    ReasonCode,
)
from configpipe.crypto import SecretsKey, UndecryptableValueError
from configpipe.errors import DuplicateChangeError, VersionConflictError
from configpipe.naming import scope_id
from configpipe.registry import Registry
from configpipe.untrusted import CORRELATION_ID_LIMIT, IDENTITY_LIMIT, bounded, stable_digest
from configpipe.validation import check_rules, check_value, parse_change
from configpipe.values import canonical_json, value_hash

#: Writers without ``expectedVersion`` that lose a race re-read and try again, backing off
#: with full jitter, for up to this long (well inside the validator's 30 s timeout). A count
#: was not enough: 50 truly parallel writers to one key exhausted 8 attempts for 23 of them.
#: Past the budget the invocation fails and Lambda's own retry takes over.
APPEND_BUDGET_SECONDS = 25.0
_BACKOFF_BASE_SECONDS = 0.01
_BACKOFF_CAP_SECONDS = 1.0
_IDENTITY_FIELDS = ("service", "environment", "key", "operation", "tenant")


class _ChangeEvent(BaseModel):
    """The EventBridge envelope as far as the validator needs it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    source: str
    detail: Any


@dataclass(frozen=True)
class Outcome:
    status: ChangeOutcome
    change_id: str
    version: int | None = None
    reasons: list[Reason] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [r.code.value for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "changeId": self.change_id,
            "version": self.version,
            "reasons": [r.to_detail() for r in self.reasons],
        }


@dataclass(frozen=True)
class _Resolved:
    """What a valid change will write: the value (or a copy of an older version's)."""

    value_hash: str
    sensitive: bool
    deleted: bool = False
    value_json: str | None = None
    secret_ciphertext: bytes | None = None
    rolled_back_to: int | None = None


class _Rejection(Exception):
    def __init__(self, *reasons: Reason) -> None:
        self.reasons = list(reasons)


class WritePath:
    def __init__(
        self,
        change_log: ChangeLog,
        registry: Callable[[], Registry],
        secrets: SecretsKey,
        clock: Callable[[], datetime] = utc_now,
        append_budget_seconds: float = APPEND_BUDGET_SECONDS,
        sensitive_values_in_clear: bool = False,
    ) -> None:
        #: Accept a plain value for a sensitive key (a cdk.json migration setting, off by
        #: default): such a value has crossed the bus and may sit in a DLQ in clear.
        self._sensitive_in_clear = sensitive_values_in_clear
        self._log = change_log
        self._registry = registry
        self._secrets = secrets
        self._clock = clock
        self._append_budget = append_budget_seconds

    def handle(self, event: Any) -> Outcome:
        """Accept, reject, or recognise as a duplicate one EventBridge event."""
        now = self._clock().isoformat()
        try:
            envelope = _ChangeEvent.model_validate(event)
        except ValidationError:
            return self._reject_unidentified(event, now)

        # EventBridge bounds a source to 256 characters; a direct invoke does not.
        source = bounded(envelope.source, IDENTITY_LIMIT)
        change, reasons = parse_change(envelope.detail)
        if change is None:
            return self._reject(
                _fallback_change_id(envelope), source, reasons, change_identity(envelope.detail), now
            )
        resolved: _Resolved | None = None
        try:
            resolved = self._resolve_value(change, source)
            return self._append(change, source, resolved, now)
        except _Rejection as rejection:
            return self._reject(
                change.change_id,
                source,
                rejection.reasons,
                change_identity(envelope.detail),
                now,
                request_hash=self._request_hash(change, resolved),
            )

    # --- acceptance -------------------------------------------------------------------

    def _resolve_value(self, change: ConfigurationChange, source: str) -> _Resolved | None:
        """Validate everything that does not depend on the key's current state; for a put,
        return what will be stored. Raises _Rejection."""
        registry = self._registry()
        reasons = check_rules(change, source, registry)
        if reasons:
            raise _Rejection(*reasons)
        if change.operation is not Operation.PUT:
            return None

        scope = scope_id(change.service, change.environment, change.key, tenant=change.tenant)
        if (
            change.encrypted_value is None
            and registry.is_sensitive(change.key, change.sensitive)
            and not self._sensitive_in_clear
        ):
            raise _Rejection(
                Reason(
                    code=ReasonCode.SENSITIVE_VALUE_IN_CLEAR,
                    message="a sensitive key's value must arrive as encryptedValue (KMS ciphertext under the "
                    "pipeline's secrets key, encryption context configpipe:scope=" + scope + "); "
                    "`configpipe put` encrypts it for you",
                    field="value",
                )
            )
        ciphertext: bytes | None = None
        if change.encrypted_value is not None:
            try:
                ciphertext, plaintext = self._secrets.decrypt_b64(scope, change.encrypted_value)
                value = json.loads(plaintext)
            except (UndecryptableValueError, ValueError, RecursionError):
                # RecursionError: 4 KB of KMS plaintext can nest JSON 2,000 deep.
                raise _Rejection(
                    Reason(
                        code=ReasonCode.INVALID_ENCRYPTED_VALUE,
                        message="encryptedValue must be base64 KMS ciphertext of JSON under the pipeline's "
                        "secrets key with encryption context configpipe:scope=" + scope,
                        field="encryptedValue",
                    )
                ) from None
        else:
            value = change.value

        problems = check_value(
            value,
            registry.schema_for(change.service, change.key),
            feature_flags=registry.is_feature_flags(change.service, change.key),
        )
        if problems:
            raise _Rejection(*problems)

        if change.encrypted_value is not None or registry.is_sensitive(change.key, change.sensitive):
            return _Resolved(
                value_hash=self._secrets.hmac(scope, value),
                sensitive=True,
                secret_ciphertext=ciphertext or self._secrets.encrypt(scope, value),
            )
        return _Resolved(value_hash=value_hash(value), sensitive=False, value_json=canonical_json(value))

    def _append(
        self, change: ConfigurationChange, source: str, resolved: _Resolved | None, now: str
    ) -> Outcome:
        deadline = time.monotonic() + self._append_budget
        request_hash = self._request_hash(change, resolved)
        attempt = 0
        while True:
            pointer = self._log.current(change.service, change.environment, change.key, tenant=change.tenant)
            current = pointer.version if pointer else 0
            if pointer is not None and pointer.rollout_id is not None:
                raise _Rejection(_rolling_out(pointer.rollout_id, pointer.version))
            if change.expected_version is not None and change.expected_version != current:
                raise _Rejection(_conflict(change.expected_version, current))
            content = resolved or self._state_for(change, pointer)
            record = VersionRecord(
                service=change.service,
                environment=change.environment,
                key=change.key,
                version=current + 1,
                previous_version=pointer.version if pointer else None,
                operation=change.operation.value,
                change_id=change.change_id,
                author=change.author,
                reason=change.reason,
                source=source,
                applied_at=now,
                value_hash=content.value_hash,
                sensitive=content.sensitive,
                deleted=content.deleted,
                value_json=content.value_json,
                secret_ciphertext=content.secret_ciphertext,
                rolled_back_to=content.rolled_back_to,
                previous_sensitive=pointer.sensitive if pointer else None,
                rollout=change.rollout.to_detail() if change.rollout else None,
                restore_id=change.restore_id,
                tenant=change.tenant,
            )
            rollout = _new_rollout(change, record, pointer, now) if change.rollout else None
            try:
                self._log.append(
                    record,
                    payload_hash=_payload_hash(change, content.value_hash),
                    received_at=now,
                    rollout=rollout,
                    request_hash=request_hash,
                )
            except DuplicateChangeError:
                return self._seen_before(change.change_id, source, request_hash, _identity_of(change), now)
            except VersionConflictError as conflict:
                if change.expected_version is not None:
                    raise _Rejection(_conflict(change.expected_version, conflict.actual)) from None
                # Another writer got this version first: back off, then take the next one.
                attempt += 1
                pause = random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt))
                if time.monotonic() + pause > deadline:
                    raise RuntimeError(
                        f"could not allocate a version for {change.change_id} in {self._append_budget:.0f} s "
                        f"({attempt} attempts)"
                    ) from None
                time.sleep(pause)
                continue
            return Outcome(status="accepted", change_id=change.change_id, version=record.version)

    def _state_for(self, change: ConfigurationChange, pointer: CurrentPointer | None) -> _Resolved:
        """Delete: a tombstone. Rollback: a copy of the target version's content."""
        if change.operation is Operation.DELETE:
            if pointer is None or pointer.deleted:
                raise _Rejection(Reason(code=ReasonCode.KEY_NOT_FOUND, message="key has no value to delete"))
            return _Resolved(value_hash=value_hash(None), sensitive=False, deleted=True)
        assert change.to_version is not None  # checked by validation
        target = (
            self._log.version(
                change.service, change.environment, change.key, change.to_version, tenant=change.tenant
            )
            if pointer and change.to_version <= pointer.version
            else None
        )
        if target is None:
            raise _Rejection(
                Reason(
                    code=ReasonCode.UNKNOWN_VERSION,
                    message=f"version {change.to_version} does not exist for this key",
                    field="toVersion",
                )
            )
        return _Resolved(
            value_hash=target.value_hash,
            sensitive=target.sensitive,
            deleted=target.deleted,
            value_json=target.value_json,
            secret_ciphertext=target.secret_ciphertext,
            rolled_back_to=target.version,
        )

    # --- rejection --------------------------------------------------------------------

    def _reject(
        self,
        change_id: str,
        source: str,
        reasons: list[Reason],
        identity: dict[str, str],
        now: str,
        request_hash: str | None = None,
    ) -> Outcome:
        try:
            self._log.record_rejection(
                change_id=change_id,
                payload_hash=_rejection_hash(reasons, identity, source),
                source=source,
                reasons=[r.to_detail() for r in reasons],
                identity=identity,
                received_at=now,
                request_hash=request_hash,
            )
        except DuplicateChangeError:
            return self._seen_before(change_id, source, request_hash, identity, now)
        return Outcome(status="rejected", change_id=change_id, reasons=reasons)

    # --- idempotency ------------------------------------------------------------------

    def _seen_before(
        self, change_id: str, source: str, request_hash: str | None, identity: dict[str, str], now: str
    ) -> Outcome:
        """The source's changeId has a record already. The same request again (a redelivery, a
        re-run with the same id) is a duplicate whatever its outcome would be now; a different
        request under that id is refused with CHANGE_ID_REUSED and changes no state (the first
        record stands, so a publisher reading it is not told about a change that never was).
        The refusal is recorded beside that record, once per request, so the materialiser
        announces it as ``ConfigurationRejected`` like every other refusal."""
        first = self._log.change(change_id, source)
        if first is None or first.request_hash is None or request_hash is None:
            # A record from before requests were hashed, or a change that did not parse.
            return Outcome(status="duplicate", change_id=change_id)
        if first.request_hash == request_hash:
            return Outcome(status="duplicate", change_id=change_id)
        reasons = [
            Reason(
                code=ReasonCode.CHANGE_ID_REUSED,
                message="this changeId was already used by this source for a different change; "
                "use a new changeId (the first change's outcome stands)",
                field="changeId",
            )
        ]
        # A redelivery of this very reuse finds its refusal recorded (and announced) already.
        with contextlib.suppress(DuplicateChangeError):
            self._log.record_rejection(
                change_id=change_id,
                payload_hash=_rejection_hash(reasons, identity, source),
                source=source,
                reasons=[r.to_detail() for r in reasons],
                identity=identity,
                received_at=now,
                request_hash=request_hash,
                reused=True,
            )
        return Outcome(status="rejected", change_id=change_id, reasons=reasons)

    def _request_hash(self, change: ConfigurationChange, resolved: _Resolved | None) -> str:
        """What the change asked for, independent of its outcome: its fields and, for a put,
        its value's hash (the keyed HMAC for a secret, so the log holds no oracle; the same for
        a plain value and for any encryption of it, so a re-run that re-encrypts matches)."""
        # stable_digest, not value_hash: a change rejected before its value was resolved may be
        # hostile (lone surrogates, nesting deeper than json.dumps recurses), and the refusal
        # must still be recorded (tests/unit/test_hostile_changes.py).
        fields = change.model_dump(mode="json", by_alias=True, exclude={"value", "encrypted_value"})
        return stable_digest({**fields, "valueHash": self._content_hash(change, resolved)})

    def _content_hash(self, change: ConfigurationChange, resolved: _Resolved | None) -> str:
        if change.operation is not Operation.PUT:
            return value_hash(None)  # toVersion / expectedVersion are among the fields
        if resolved is not None:
            return resolved.value_hash
        # Rejected before the value was resolved (it may be hostile: no KMS call for it, and
        # no unkeyed hash of a secret). A redelivery is byte-identical, so this still tells it
        # from a reuse, except a reuse with another secret sent in clear: then the first
        # rejection stands and the second is a duplicate, which applies nothing either.
        if change.encrypted_value is not None:
            return stable_digest({"encryptedValue": change.encrypted_value})
        if self._registry().is_sensitive(change.key, change.sensitive):
            return value_hash({"sensitiveValue": "withheld"})
        return stable_digest(change.value)

    def _reject_unidentified(self, event: Any, now: str) -> Outcome:
        """Not even an EventBridge envelope (a direct invoke with junk): record it under a
        content-derived id so a redelivery of the same junk is still a duplicate."""
        source = event.get("source") if isinstance(event, dict) else None
        reason = Reason(
            code=ReasonCode.MALFORMED_EVENT, message="not an EventBridge event with id, source and detail"
        )
        digest = stable_digest(event)[:32]
        shown_source = bounded(source, IDENTITY_LIMIT) if isinstance(source, str) and source else "unknown"
        return self._reject(f"malformed:{digest}", shown_source, [reason], {}, now)


def _rolling_out(rollout_id: str, candidate_version: int) -> Reason:
    return Reason(
        code=ReasonCode.ROLLOUT_IN_PROGRESS,
        message=f"the key is rolling out version {candidate_version} (rollout {rollout_id}); "
        "finish it with 'configpipe rollout promote' or undo it with 'configpipe rollout abort' first",
        field="key",
    )


def _conflict(expected: int, actual: int) -> Reason:
    return Reason(
        code=ReasonCode.VERSION_CONFLICT,
        message=f"expectedVersion {expected} but the key is at version {actual}",
        field="expectedVersion",
    )


def _identity_of(change: ConfigurationChange) -> dict[str, str]:
    return {
        "service": change.service,
        "environment": change.environment,
        "key": change.key,
        "operation": change.operation.value,
    }


def _fallback_change_id(envelope: _ChangeEvent) -> str:
    detail = envelope.detail
    candidate = detail.get("changeId") if isinstance(detail, dict) else None
    if isinstance(candidate, str) and CHANGE_ID_PATTERN.fullmatch(candidate):
        return candidate
    return bounded(f"event:{envelope.id}", CORRELATION_ID_LIMIT)


def change_identity(detail: Any) -> dict[str, str]:
    """The change's identity, as far as it is readable; never the value."""
    if not isinstance(detail, dict):
        return {}
    return {f: bounded(detail[f], IDENTITY_LIMIT) for f in _IDENTITY_FIELDS if isinstance(detail.get(f), str)}


def _payload_hash(change: ConfigurationChange, content_hash: str) -> str:
    """What the change asked for, minus the value itself (only its hash), so reuse of a
    changeId for different content can be told apart without storing a secret."""
    fields = change.model_dump(mode="json", by_alias=True, exclude={"value", "encrypted_value"})
    return value_hash({**fields, "valueHash": content_hash})


def _rejection_hash(reasons: list[Reason], identity: dict[str, str], source: str) -> str:
    return value_hash({"identity": identity, "source": source, "codes": [r.code.value for r in reasons]})


def _new_rollout(
    change: ConfigurationChange, record: VersionRecord, pointer: CurrentPointer | None, now: str
) -> RolloutRecord:
    """The rollout a change asks for. Imported here, not at module level: the rollout engine and
    the release strategies it builds on cost a validator cold start about 60 ms
    (``python -X importtime``), and most changes carry no rollout (issue 12)."""
    from configpipe.rollout.engine import strategy_of
    from configpipe.rollout.service import new_rollout

    assert change.rollout is not None
    return new_rollout(
        change,
        record,
        stable_version=pointer.version if pointer else None,
        strategy=(
            strategy_of(change.rollout.strategy, change.rollout.bake_minutes)
            if change.rollout.strategy is not None
            else None
        ),
        now=now,
    )
