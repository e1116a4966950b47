"""Applying rollout decisions to the change log: the rollout function's logic.

Every state change is ONE conditional write on the rollout's ``sequence`` (a transaction
with the key's pointer, and for a rollback the restoring version, when the rollout ends).
Nothing here touches SSM, Secrets Manager or the bus: the change log's stream drives the
materialiser, which makes each new state readable and announces it (the outbox, as for
changes). So a crash anywhere leaves either the old state (the next tick decides again) or
the new one (the stream announces it).

A person's control (``ConfigurationRolloutControl``) is checked like a change (structure,
the service's publishers) and recorded under its source and ``controlId`` in the same write as its
effect, so a redelivered control has one effect; a refused control is a rejection record,
announced as ``ConfigurationRejected`` by the materialiser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from configpipe.changelog import ChangeLog, RolloutRecord, RolloutScope, VersionRecord, utc_now
from configpipe.contracts import (
    CHANGE_ID_PATTERN,
    PIPELINE_SOURCE,
    ConfigurationChange,
    ConfigurationRolloutControl,
    DetailType,
    Reason,
    ReasonCode,
    RolloutAction,
    RolloutStatus,
)
from configpipe.errors import DuplicateChangeError, RolloutConflictError
from configpipe.registry import Registry
from configpipe.release.strategies import Strategy
from configpipe.rollout.engine import (
    Action,
    Complete,
    InsufficientDataPolicy,
    RollBack,
    RolloutOutcomeCode,
    Step,
    Wait,
    decide,
    decide_with_release,
    elapsed_seconds,
    strategy_of,
)
from configpipe.untrusted import IDENTITY_LIMIT, bounded
from configpipe.validation import parse_model
from configpipe.values import value_hash

#: Decide → write → re-read rounds per key per invocation; a key whose rollout keeps moving
#: under us is left to the next tick.
MAX_ROUNDS = 6
SYSTEM_AUTHOR = "configpipe"


class AlarmStates(Protocol):
    def states(self, names: Sequence[str]) -> dict[str, str]: ...


class ReleaseStatuses(Protocol):
    def status(self, release_id: str) -> str | None:
        """The release's status (a ``ReleaseStatus`` value), None if it does not exist."""
        ...


def new_rollout(
    change: ConfigurationChange,
    candidate: VersionRecord,
    stable_version: int | None,
    strategy: Strategy | None,
    now: str,
) -> RolloutRecord:
    """The rollout a change starts: its first step (the strategy's weight at 0 s) is taken at
    once. A rollout bound to a release has no strategy and weight 0: only the release's target
    version reads the candidate."""
    assert change.rollout is not None
    release = change.rollout.release
    return RolloutRecord(
        rollout_id=change.change_id,
        service=change.service,
        environment=change.environment,
        key=change.key,
        stable_version=stable_version,
        candidate_version=candidate.version,
        strategy_spec=change.rollout.strategy if change.rollout.strategy is not None else "Release",
        strategy_name=strategy.name
        if strategy is not None
        else f"Release:{release.release_id if release else ''}",
        alarms=list(change.rollout.alarms),
        targets=list(change.rollout.targets),
        bake_minutes=change.rollout.bake_minutes,
        candidate_value_hash=candidate.value_hash,
        candidate_sensitive=candidate.sensitive,
        candidate_deleted=candidate.deleted,
        started_at=now,
        weight=strategy.percent_at(0) if strategy is not None else 0.0,
        event=DetailType.CONFIGURATION_ROLLOUT_STARTED.value,
        updated_at=now,
        author=change.author,
        reason=change.reason,
        release=release.to_detail() if release is not None else None,
        tenant=change.tenant,
    )


@dataclass(frozen=True)
class ReconcileResult:
    key: str
    actions: list[str] = field(default_factory=list)
    status: str | None = None
    weight: float | None = None


@dataclass(frozen=True)
class ControlResult:
    outcome: str  # "accepted" | "rejected" | "duplicate"
    control_id: str
    reasons: list[Reason] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "controlId": self.control_id,
            "reasons": [r.to_detail() for r in self.reasons],
        }


class _ControlEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    source: str
    detail: Any


class _Refused(Exception):
    def __init__(self, *reasons: Reason) -> None:
        self.reasons = list(reasons)


class RolloutService:
    def __init__(
        self,
        change_log: ChangeLog,
        alarms: AlarmStates,
        registry: Callable[[], Registry],
        policy: InsufficientDataPolicy = InsufficientDataPolicy.ROLLBACK,
        clock: Callable[[], datetime] = utc_now,
        releases: ReleaseStatuses | None = None,
    ) -> None:
        self._log = change_log
        self._releases = releases
        self._alarms = alarms
        self._registry = registry
        self._policy = policy
        self._clock = clock

    # --- the tick ------------------------------------------------------------------------

    def active_scopes(self) -> list[RolloutScope]:
        """Every rollout in progress: (service, environment, key, tenant); tenant None is the
        service's value, a tenant's value rolls out on its own."""
        return self._log.active_rollouts()

    def reconcile_all(self) -> list[ReconcileResult]:
        return [self.reconcile(*scope) for scope in self.active_scopes()]

    def reconcile(
        self,
        service: str,
        environment: str,
        key: str,
        tenant: str | None = None,
        decide: Callable[[RolloutRecord, datetime], Action] | None = None,
    ) -> ReconcileResult:
        """Move one key's rollout (``tenant``: of that tenant's value) as far as it is due now
        (one or more writes), or not at all. ``decide``: another judgement than the schedule's
        (re-applied to every fresh read)."""
        actions: list[str] = []
        record = None
        for _ in range(MAX_ROUNDS):
            record = self._log.rollout(service, environment, key, tenant)
            if record is None or not record.active:
                break
            now = self._clock()
            action = (decide or self._decide)(record, now)
            if isinstance(action, Wait):
                break
            try:
                self._apply(record, action, now)
            except RolloutConflictError:
                continue  # somebody else moved it: read again and decide again
            actions.append(type(action).__name__)
        final = self._log.rollout(service, environment, key, tenant) if actions else record
        return ReconcileResult(
            key=RolloutScope(service, environment, key, tenant).label(),
            actions=actions,
            status=final.status if final else None,
            weight=final.weight if final else None,
        )

    def release_rejected(self, release_id: str, codes: Sequence[str]) -> list[ReconcileResult]:
        """A ``ReleaseRejected`` for a request: the rollouts riding on that release roll back now
        (``RELEASE_REJECTED``) instead of at the end of the start grace period — the service's
        next change to the key would otherwise be refused as ROLLOUT_IN_PROGRESS for 15 minutes.
        Nothing happens if the release exists: a request rejected for reusing a running
        release's id (RELEASE_ID_CONFLICT) does not stop that release or its config."""
        if self._releases is None or self._releases.status(release_id) is not None:
            return []
        why = ", ".join(bounded(c, 64) for c in codes[:5]) or "no reason given"
        message = bounded(f"release {release_id} was rejected: {why}", 512)

        def rejected(record: RolloutRecord, now: datetime) -> Action:
            if (record.release or {}).get("releaseId") != release_id:
                return Wait("rides on another release")
            return RollBack(RolloutOutcomeCode.RELEASE_REJECTED, message)

        results = []
        for scope in self.active_scopes():
            result = self.reconcile(*scope, decide=rejected)
            if result.actions:
                results.append(result)
        return results

    def _decide(self, record: RolloutRecord, now: datetime) -> Action:
        if record.release is not None:
            if self._releases is None:
                return Wait("no release table to follow")
            return decide_with_release(record, self._releases.status(record.release["releaseId"]), now)
        states: Mapping[str, str] = self._alarms.states(record.alarms) if record.alarms else {}
        strategy = strategy_of(record.strategy_spec, record.bake_minutes)
        return decide(record, strategy, states, now, self._policy)

    def _apply(self, record: RolloutRecord, action: Step | Complete | RollBack, now: datetime) -> None:
        stamp = now.isoformat()
        if isinstance(action, Step):
            self._log.save_rollout(
                record.next(
                    weight=action.weight,
                    event=DetailType.CONFIGURATION_ROLLOUT_STEPPED.value,
                    updated_at=stamp,
                    author=SYSTEM_AUTHOR,
                    reason=f"schedule: {action.weight:g}% due",
                ),
                record.sequence,
            )
        elif isinstance(action, Complete):
            self._complete(record, stamp, SYSTEM_AUTHOR, f"{action.cause}: rollout complete")
        else:
            self._roll_back(
                record,
                stamp,
                code=action.code,
                message=action.message,
                alarms=action.alarms,
                author=SYSTEM_AUTHOR,
                reason=action.message,
            )

    def _complete(
        self, record: RolloutRecord, now: str, author: str, reason: str, control: dict[str, Any] | None = None
    ) -> None:
        self._log.finish_rollout(
            record.next(
                status=RolloutStatus.COMPLETED.value,
                weight=100.0,
                event=DetailType.CONFIGURATION_ROLLOUT_COMPLETED.value,
                updated_at=now,
                author=author,
                reason=reason,
            ),
            record.sequence,
            control=control,
        )

    def _roll_back(
        self,
        record: RolloutRecord,
        now: str,
        *,
        code: RolloutOutcomeCode,
        message: str,
        alarms: list[str],
        author: str,
        reason: str,
        control: dict[str, Any] | None = None,
    ) -> None:
        aborted = code is RolloutOutcomeCode.ABORTED
        ended = record.next(
            status=(RolloutStatus.ABORTED if aborted else RolloutStatus.ROLLED_BACK).value,
            weight=0.0,
            event=(
                DetailType.CONFIGURATION_ROLLOUT_ABORTED
                if aborted
                else DetailType.CONFIGURATION_ROLLOUT_ROLLED_BACK
            ).value,
            updated_at=now,
            author=author,
            reason=reason,
            outcome={"code": code.value, "message": message, "alarms": alarms},
        )
        restore = self._restoring_version(record, now, author, reason)
        self._log.finish_rollout(
            ended, record.sequence, restore=restore, payload_hash=value_hash(ended.outcome), control=control
        )

    def _restoring_version(self, record: RolloutRecord, now: str, author: str, reason: str) -> VersionRecord:
        """The version that puts the stable value back: a copy of it (or a tombstone when the
        key had no value before the rollout), recorded as a rollback in the key's history."""
        stable = (
            self._log.version(
                record.service, record.environment, record.key, record.stable_version, record.tenant
            )
            if record.stable_version is not None
            else None
        )
        common: dict[str, Any] = {
            "service": record.service,
            "environment": record.environment,
            "key": record.key,
            "version": record.candidate_version + 1,
            "previous_version": record.candidate_version,
            "operation": "rollback",
            "change_id": rollback_change_id(record.rollout_id),
            "author": author,
            "reason": f"rollout {record.rollout_id} of version {record.candidate_version} ended: {reason}"[
                :1024
            ],
            "source": PIPELINE_SOURCE,
            "applied_at": now,
            "previous_sensitive": record.candidate_sensitive,
            "tenant": record.tenant,
        }
        if stable is None:
            return VersionRecord(**common, value_hash=value_hash(None), deleted=True)
        return VersionRecord(
            **common,
            value_hash=stable.value_hash,
            sensitive=stable.sensitive,
            deleted=stable.deleted,
            value_json=stable.value_json,
            secret_ciphertext=stable.secret_ciphertext,
            rolled_back_to=stable.version,
        )

    # --- a person's control ---------------------------------------------------------------

    def control(self, event: Any) -> ControlResult:
        """Apply one ``ConfigurationRolloutControl`` EventBridge event, or record why not."""
        now = self._clock()
        try:
            envelope = _ControlEvent.model_validate(event)
        except ValidationError:
            digest = hashlib.sha256(repr(event).encode("utf-8", "replace")).hexdigest()[:32]
            reason = Reason(code=ReasonCode.MALFORMED_EVENT, message="not an EventBridge event")
            return self._refuse(f"malformed:{digest}", "unknown", [reason], {}, now)
        # The control's record is keyed by source and id, as a change's is: a team's control ids
        # are its own, so another team can neither take one first nor replay it (security.md, L).
        source = bounded(envelope.source, IDENTITY_LIMIT)
        control, reasons = parse_model(ConfigurationRolloutControl, envelope.detail)
        if control is None:
            return self._refuse(_control_id_of(envelope), source, reasons, {}, now)
        identity = {"service": control.service, "environment": control.environment, "key": control.key}
        if control.tenant is not None:
            identity["tenant"] = control.tenant
        try:
            self._authorise(control, source)
            return self._apply_control(control, source, now)
        except _Refused as refused:
            return self._refuse(control.control_id, source, refused.reasons, identity, now)

    def _authorise(self, control: ConfigurationRolloutControl, source: str) -> None:
        registry = self._registry()
        if source not in registry.publishers_of(control.service):
            raise _Refused(
                Reason(
                    code=ReasonCode.SOURCE_NOT_AUTHORIZED,
                    message=f"source {source!r} may not control rollouts of service {control.service!r}",
                    field="source",
                )
            )
        # Whoever may not write a tenant's value may not steer its rollout either.
        if control.tenant is not None and not registry.may_publish_tenant(
            control.service, control.tenant, source
        ):
            raise _Refused(
                Reason(
                    code=ReasonCode.TENANT_NOT_AUTHORIZED,
                    message=f"source {source!r} may not control rollouts of tenant {control.tenant!r} "
                    f"of service {control.service!r}",
                    field="source",
                )
            )

    def _apply_control(
        self, control: ConfigurationRolloutControl, source: str, now: datetime
    ) -> ControlResult:
        for _ in range(MAX_ROUNDS):
            record = self._log.rollout(control.service, control.environment, control.key, control.tenant)
            if record is None or not record.active or (control.rollout_id not in (None, record.rollout_id)):
                if self._log.change(control.control_id, source) is not None:
                    return ControlResult("duplicate", control.control_id)
                raise _Refused(
                    Reason(
                        code=ReasonCode.NO_ACTIVE_ROLLOUT,
                        message="the key has no active rollout"
                        + (f" with id {control.rollout_id}" if control.rollout_id else ""),
                        field="rolloutId" if control.rollout_id else "key",
                    )
                )
            marker = {"controlId": control.control_id, "source": source, "action": control.action.value}
            try:
                self._control_write(record, control, marker, now)
            except RolloutConflictError:
                continue
            except DuplicateChangeError:
                return ControlResult("duplicate", control.control_id)
            return ControlResult("accepted", control.control_id)
        raise RolloutConflictError(control.control_id)

    def _control_write(
        self,
        record: RolloutRecord,
        control: ConfigurationRolloutControl,
        marker: dict[str, Any],
        now: datetime,
    ) -> None:
        stamp = now.isoformat()
        who = {"author": control.author, "reason": control.reason}
        action = control.action
        if action is RolloutAction.PROMOTE:
            self._complete(record, stamp, control.author, f"promoted: {control.reason}", control=marker)
        elif action is RolloutAction.ABORT:
            self._roll_back(
                record,
                stamp,
                code=RolloutOutcomeCode.ABORTED,
                message=f"aborted by {control.author}",
                alarms=[],
                author=control.author,
                reason=control.reason,
                control=marker,
            )
        elif action is RolloutAction.PAUSE:
            if record.paused:
                return self._log.record_control(marker)
            paused = record.next(
                paused=True,
                paused_at=stamp,
                event=DetailType.CONFIGURATION_ROLLOUT_PAUSED.value,
                updated_at=stamp,
                **who,
            )
            self._log.save_rollout(paused, record.sequence, control=marker)
        else:  # resume
            if not record.paused:
                return self._log.record_control(marker)
            paused_for = elapsed_paused(record, now)
            resumed = record.next(
                paused=False,
                paused_at=None,
                paused_seconds=record.paused_seconds + paused_for,
                event=DetailType.CONFIGURATION_ROLLOUT_RESUMED.value,
                updated_at=stamp,
                **who,
            )
            self._log.save_rollout(resumed, record.sequence, control=marker)
        return None

    def _refuse(
        self, control_id: str, source: str, reasons: list[Reason], identity: dict[str, str], now: datetime
    ) -> ControlResult:
        try:
            self._log.record_rejection(
                change_id=control_id,
                payload_hash=value_hash(
                    {"identity": identity, "source": source, "codes": [r.code.value for r in reasons]}
                ),
                source=source,
                reasons=[r.to_detail() for r in reasons],
                identity=identity,
                received_at=now.isoformat(),
            )
        except DuplicateChangeError:
            return ControlResult("duplicate", control_id)
        return ControlResult("rejected", control_id, reasons)


def elapsed_paused(record: RolloutRecord, now: datetime) -> float:
    if not record.paused or not record.paused_at:
        return 0.0
    return max(0.0, (now - datetime.fromisoformat(record.paused_at)).total_seconds())


def rollback_change_id(rollout_id: str) -> str:
    """The change id of the version that ends a rollout by restoring the stable value."""
    return f"{rollout_id[:112]}:rolled-back"


def _control_id_of(envelope: _ControlEvent) -> str:
    detail = envelope.detail
    candidate = detail.get("controlId") if isinstance(detail, dict) else None
    if isinstance(candidate, str) and CHANGE_ID_PATTERN.fullmatch(candidate):
        return candidate
    return f"event:{envelope.id}"[:128]


__all__ = [
    "ControlResult",
    "ReconcileResult",
    "RolloutService",
    "elapsed_seconds",
    "new_rollout",
    "rollback_change_id",
    "strategy_of",
]
