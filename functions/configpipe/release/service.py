"""Release orchestration: accept requests, apply controls, reconcile active releases, announce.

The service owns no decision: :func:`configpipe.release.engine.decide` says what to do next;
this module reads the inputs (stored state, alias, alarms, clock), applies the one action
(alias write, hook, state save), and asks again. Every state change is one conditional
transaction with its history entries (:class:`ReleaseStore`); history entries are published
right after the commit and re-published by :meth:`ReleaseService.announce_pending` if that
publish was lost.

Alias writes follow write-ahead intent: the state records ``intent`` → ``UpdateAlias`` (guarded
by the RevisionId just read) → the state records ``applied``. A crash at any point leaves the
alias at either ``applied`` or ``intent``, and the next reconcile recognises both as its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from configpipe.bus import ConfigBus
from configpipe.contracts import DetailType
from configpipe.errors import EventPublishError
from configpipe.metrics import (
    RELEASE_ABORTED,
    RELEASE_COMPLETED,
    RELEASE_CONCURRENT_CHANGE,
    RELEASE_REJECTED,
    RELEASE_ROLLED_BACK,
    RELEASE_STARTED,
    RELEASE_STEPPED,
)
from configpipe.observability import logger, metrics
from configpipe.registry import Registry
from configpipe.release import engine
from configpipe.release.alias import LambdaAliases
from configpipe.release.analysis import judge, summary, unreadable
from configpipe.release.bounds import MAX_MESSAGE_CHARS, MAX_REASONS, bounded, echoed_text
from configpipe.release.contracts import (
    ANNOUNCEMENT_CONTRACTS,
    AnalysisVerdict,
    ControlAction,
    HookPhase,
    ReleaseAborted,
    ReleaseAnalysisHeld,
    ReleaseCompleted,
    ReleaseControl,
    ReleaseDetailType,
    ReleaseHookCompleted,
    ReleaseOutcomeCode,
    ReleasePaused,
    ReleaseReason,
    ReleaseReasonCode,
    ReleaseRejected,
    ReleaseRequested,
    ReleaseResumed,
    ReleaseRolledBack,
    ReleaseStarted,
    ReleaseStatus,
    ReleaseStatusReported,
    ReleaseStepped,
    Verdict,
    _ReleaseEvent,
)
from configpipe.release.errors import (
    AliasBusyError,
    AliasNotFoundError,
    AliasRevisionConflictError,
    AliasUpdateRefusedError,
    DuplicateControlError,
    ReleaseExistsError,
    StaleReleaseStateError,
)
from configpipe.release.health import AlarmHealth
from configpipe.release.hooks import HookRequest, HookRunner, HookVerdict
from configpipe.release.model import AliasState, AliasTarget, HistoryEntry, HookSpec, Outcome, ReleaseState
from configpipe.release.store import ReleaseStore
from configpipe.release.validation import ReleaseRejectedError, validate_request
from configpipe.release.version_metrics import VersionMetrics
from configpipe.values import canonical_json

Clock = Callable[[], datetime]
#: Called with a checkpoint name between the steps of an action; tests inject a fault here to
#: simulate a crash ("intent_recorded", "alias_updated", "hook_ran", "committed").
Checkpoint = Callable[[str], None]

#: Upper bound of actions per release per reconcile: a full release never needs more than a
#: handful in one go (hook, shift, record, complete); the bound keeps a flapping alias from
#: spinning a Lambda until its timeout.
MAX_ACTIONS_PER_RECONCILE = 12
MAX_CONTROL_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_checkpoint(_: str) -> None:
    return None


@dataclass
class RequestResult:
    outcome: Literal["accepted", "duplicate", "rejected"]
    release_id: str
    reasons: list[ReleaseReason] = field(default_factory=list)
    state: ReleaseState | None = None


@dataclass
class ControlResult:
    outcome: Literal["applied", "duplicate", "rejected", "reported"]
    reasons: list[ReleaseReason] = field(default_factory=list)
    state: ReleaseState | None = None


@dataclass
class ReconcileSummary:
    releases: int = 0
    failed: list[str] = field(default_factory=list)
    announced: int = 0


def request_hash(request: ReleaseRequested) -> str:
    """What identifies a request's content: a retried ``releaseId`` must carry the same hash."""
    return "sha256:" + hashlib.sha256(canonical_json(request.to_detail()).encode("utf-8")).hexdigest()


def caller_release_id(detail: Any, event_id: str = "") -> str:
    """The release id a (possibly malformed) detail names, bounded, for its rejection and logs."""
    named = echoed_text(detail.get("releaseId") if isinstance(detail, dict) else None)
    return named or bounded(event_id) or "unknown"


def reasons_from_validation_error(error: ValidationError) -> list[ReleaseReason]:
    """One reason per problem pydantic found, bounded: an unknown field's *name* is the
    caller's, and a detail can carry thousands of them."""
    reasons = []
    for item in error.errors(include_input=False, include_url=False):
        where = bounded(".".join(str(p) for p in item["loc"])) or None
        code = (
            ReleaseReasonCode.MALFORMED_EVENT
            if item["type"] in ("extra_forbidden", "missing")
            else (ReleaseReasonCode.INVALID_FIELD)
        )
        reasons.append(
            ReleaseReason(code=code, message=bounded(str(item["msg"]), MAX_MESSAGE_CHARS), field=where)
        )
    return reasons or [ReleaseReason(code=ReleaseReasonCode.MALFORMED_EVENT, message="malformed event")]


def capped(reasons: list[ReleaseReason]) -> list[ReleaseReason]:
    """At most :data:`MAX_REASONS`, each bounded; what is left out is counted, not dropped silently."""
    kept = [
        ReleaseReason(
            code=r.code,
            message=bounded(r.message, MAX_MESSAGE_CHARS),
            field=None if r.field is None else bounded(r.field),
        )
        for r in reasons[:MAX_REASONS]
    ]
    if len(reasons) > MAX_REASONS:
        kept.append(
            ReleaseReason(
                code=reasons[MAX_REASONS].code,
                message=f"…and {len(reasons) - MAX_REASONS} more problem(s) not listed",
            )
        )
    return kept


class ReleaseService:
    def __init__(
        self,
        *,
        store: ReleaseStore,
        aliases: LambdaAliases,
        health: AlarmHealth,
        hooks: HookRunner,
        bus: ConfigBus,
        registry: Registry,
        clock: Clock = utc_now,
        checkpoint: Checkpoint = _no_checkpoint,
        version_metrics: VersionMetrics | None = None,
    ) -> None:
        self._version_metrics = version_metrics
        self._store = store
        self._aliases = aliases
        self._health = health
        self._hooks = hooks
        self._bus = bus
        self._registry = registry
        self._clock = clock
        self._checkpoint = checkpoint

    # --- requests ---------------------------------------------------------------------------

    def handle_request(self, detail: Any, source: str, event_id: str = "") -> RequestResult:
        """Parse and process a ``ReleaseRequested`` detail; malformed input becomes a rejection."""
        try:
            request = ReleaseRequested.model_validate(detail)
        except ValidationError as e:
            return self._reject(
                caller_release_id(detail, event_id),
                "request",
                source,
                reasons_from_validation_error(e),
                detail=detail,
            )
        return self.request(request, source)

    def request(self, request: ReleaseRequested, source: str) -> RequestResult:
        existing = self._store.get(request.release_id)
        if existing is not None:
            return self._duplicate(existing, request, source)
        try:
            validated = validate_request(request, source, self._registry, self._aliases, self._health)
        except ReleaseRejectedError as e:
            return self._reject(request.release_id, "request", source, e.reasons, request=request)
        collision = self._alias_collision(request)
        if collision is not None:
            return self._reject(request.release_id, "request", source, [collision], request=request)

        now = self._clock()
        alias_state = validated.alias_state
        previous = alias_state.target()
        beta = request.beta_alias_name
        beta_found = self._aliases.find(request.function, beta) if beta else None
        hooks = HookSpec(
            pre_traffic=request.pre_traffic_hook,
            post_traffic=request.post_traffic_hook,
            timeout_seconds=request.hook_timeout_seconds,
        )
        state = ReleaseState(
            release_id=request.release_id,
            service=validated.service,
            function=request.function,
            alias=request.alias,
            target_version=request.target_version,
            strategy=validated.strategy,
            alarms=request.alarms,
            ignore_poll_alarm_failure=bool(request.ignore_poll_alarm_failure),
            analysis=request.analysis,
            beta_alias=beta,
            beta_previous=beta_found.target() if beta_found else None,
            hooks=hooks,
            author=request.author,
            reason=request.reason,
            source=source,
            request_hash=request_hash(request),
            status=ReleaseStatus.PRE_TRAFFIC if hooks.pre_traffic else ReleaseStatus.SHIFTING,
            previous=previous,
            previous_revision_id=alias_state.revision_id,
            applied=previous,
            requested_at=now,
            shift_started_at=None if hooks.pre_traffic else now,
            updated_at=now,
            seq=1,
            history_count=1,
        )
        started = self._event(
            ReleaseStarted,
            state,
            1,
            now,
            previous_weights=previous.weights,
            schedule=state.strategy.schedule(),
            alarms=state.alarms,
            pre_traffic_hook=hooks.pre_traffic,
            post_traffic_hook=hooks.post_traffic,
            ignore_poll_alarm_failure=state.ignore_poll_alarm_failure,
            analysis=request.analysis.to_detail() if request.analysis else None,
            beta_alias=beta,
            author=state.author,
            reason=state.reason,
            source=source,
        )
        entry = self._entry(state, ReleaseDetailType.RELEASE_STARTED, started)
        try:
            self._store.create(state, [entry])
        except ReleaseExistsError:
            # A concurrent delivery of the same request won the race.
            raced = self._store.get(request.release_id)
            assert raced is not None
            return self._duplicate(raced, request, source)
        except AliasBusyError as e:
            return self._reject(
                request.release_id,
                "request",
                source,
                [
                    ReleaseReason(
                        code=ReleaseReasonCode.RELEASE_IN_PROGRESS,
                        message=f"release {e.active_release_id} is already active on {e.function}:{e.alias}; "
                        "wait for it, or promote or abort it",
                        field="alias",
                    )
                ],
                request=request,
            )
        metrics.add_metric(name=RELEASE_STARTED, unit="Count", value=1)
        logger.info(
            "release accepted", extra={"release_id": state.release_id, "strategy": state.strategy.name}
        )
        self._announce([entry])
        return RequestResult("accepted", request.release_id, state=self.reconcile(request.release_id))

    def _alias_collision(self, request: ReleaseRequested) -> ReleaseReason | None:
        """Another active release of the same function shifts this request's beta alias, or
        maintains it (or this request's alias) as its own beta alias: both would repoint the
        same alias and each restore it differently. Read from the active releases in the lock
        table's queue index (it may lag a second: two requests racing within it are not caught;
        a release on the *same* alias is refused by the alias lock itself, RELEASE_IN_PROGRESS)."""
        beta = request.beta_alias_name
        for release_id in self._store.active_release_ids():
            other = self._store.get(release_id)
            if other is None or other.status.terminal or other.function != request.function:
                continue
            if other.release_id == request.release_id or other.alias == request.alias:
                continue
            if beta is not None and beta in (other.alias, other.beta_alias):
                role = "shifts" if beta == other.alias else "maintains as its beta alias"
                return ReleaseReason(
                    code=ReleaseReasonCode.BETA_ALIAS_IN_USE,
                    message=f"active release {other.release_id} {role} {request.function}:{beta}; "
                    "name another betaAlias, or false for none",
                    field="betaAlias",
                )
            if other.beta_alias == request.alias:
                return ReleaseReason(
                    code=ReleaseReasonCode.BETA_ALIAS_IN_USE,
                    message=f"{request.function}:{request.alias} is the beta alias of active release "
                    f"{other.release_id}; wait for it, or promote or abort it",
                    field="alias",
                )
        return None

    def _duplicate(self, existing: ReleaseState, request: ReleaseRequested, source: str) -> RequestResult:
        if existing.request_hash != request_hash(request):
            return self._reject(
                request.release_id,
                "request",
                source,
                [
                    ReleaseReason(
                        code=ReleaseReasonCode.RELEASE_ID_CONFLICT,
                        message=f"release {request.release_id} was another request; use a new id",
                        field="releaseId",
                    )
                ],
                request=request,
            )
        # A redelivery resumes the release (idempotent): a crash during the first delivery
        # converges here as well as on the next tick.
        return RequestResult("duplicate", request.release_id, state=self.reconcile(request.release_id))

    def _reject(
        self,
        release_id: str,
        action: str,
        source: str,
        reasons: list[ReleaseReason],
        *,
        request: ReleaseRequested | None = None,
        detail: Any = None,
        control_id: str | None = None,
    ) -> RequestResult:
        def text(key: str) -> str | None:
            return echoed_text(detail.get(key) if isinstance(detail, dict) else None)

        reasons = capped(reasons)
        rejected = ReleaseRejected(
            release_id=bounded(release_id),
            action=bounded(action, 64),
            control_id=None if control_id is None else bounded(control_id),
            function=request.function if request else text("function"),
            alias=request.alias if request else text("alias"),
            target_version=bounded(request.target_version) if request else text("targetVersion"),
            source=bounded(source),
            reasons=reasons,
            rejected_at=self._clock(),
        )
        metrics.add_metric(name=RELEASE_REJECTED, unit="Count", value=1)
        logger.info(
            "release %s rejected",
            action,
            extra={"release_id": release_id, "reasons": rejected.to_detail()["reasons"]},
        )
        self._publish(ReleaseDetailType.RELEASE_REJECTED, rejected, [])
        return RequestResult("rejected", release_id, reasons=reasons)

    # --- controls ---------------------------------------------------------------------------

    def handle_control(self, detail: Any, source: str, event_id: str = "") -> ControlResult:
        try:
            control = ReleaseControl.model_validate(detail)
        except ValidationError as e:
            action = echoed_text(detail.get("action") if isinstance(detail, dict) else None, 64)
            result = self._reject(
                caller_release_id(detail, event_id),
                action or "control",
                source,
                reasons_from_validation_error(e),
            )
            return ControlResult("rejected", reasons=result.reasons)
        return self.control(control, source)

    def control(self, control: ReleaseControl, source: str) -> ControlResult:
        for _ in range(MAX_CONTROL_ATTEMPTS):
            try:
                return self._control_once(control, source)
            except StaleReleaseStateError:
                continue  # a reconcile saved in between: re-read and re-apply
        raise StaleReleaseStateError(control.release_id, -1)

    def _control_rejected(
        self,
        control: ReleaseControl,
        source: str,
        code: ReleaseReasonCode,
        message: str,
        field: str = "releaseId",
    ) -> ControlResult:
        reasons = [ReleaseReason(code=code, message=message, field=field)]
        self._reject(control.release_id, control.action.value, source, reasons, control_id=control.control_id)
        return ControlResult("rejected", reasons=reasons)

    def _control_once(self, control: ReleaseControl, source: str) -> ControlResult:
        state = self._store.get(control.release_id)
        if state is None:
            return self._control_rejected(
                control, source, ReleaseReasonCode.RELEASE_NOT_FOUND, f"no release {control.release_id}"
            )
        entry = self._registry.services.get(state.service)
        if entry is None or source not in entry.publishers:
            return self._control_rejected(
                control,
                source,
                ReleaseReasonCode.SOURCE_NOT_AUTHORIZED,
                f"source {source} may not control releases of service {state.service}",
            )
        repeated = self._repeated_control(state, control, source)
        if repeated is not None:
            return repeated
        now = self._clock()
        if control.action is ControlAction.STATUS:
            return self._report_status(state, control, source, now)
        if state.status.terminal:
            return self._control_rejected(
                control,
                source,
                ReleaseReasonCode.RELEASE_NOT_ACTIVE,
                f"release {state.release_id} has already ended ({state.status.value})",
            )

        new = state.model_copy(update={"updated_at": now})
        events: list[tuple[ReleaseDetailType, type[_ReleaseEvent], dict[str, Any]]] = []
        if control.action is ControlAction.PAUSE and not state.paused:
            new = new.model_copy(update={"paused_at": now, **self._end_hold(state, now)})
            events.append(
                (
                    ReleaseDetailType.RELEASE_PAUSED,
                    ReleasePaused,
                    {"author": control.author, "reason": control.reason},
                )
            )
        elif control.action in (ControlAction.RESUME, ControlAction.PROMOTE) and state.paused_at is not None:
            paused_for = (now - state.paused_at).total_seconds()
            new = new.model_copy(
                update={"paused_at": None, "paused_seconds": state.paused_seconds + paused_for}
            )
            if state.analysis_paused:
                # A person looked at the inconclusive step and let it go on: it is not analysed again.
                new = new.model_copy(
                    update={"analysis_paused": False, "analysis_waived_percent": state.percent}
                )
            events.append(
                (
                    ReleaseDetailType.RELEASE_RESUMED,
                    ReleaseResumed,
                    {"author": control.author, "reason": control.reason, "paused_seconds": paused_for},
                )
            )
        if control.action is ControlAction.PROMOTE:
            new = new.model_copy(update={"promoted": True})
        if control.action is ControlAction.ABORT and state.status is not ReleaseStatus.ROLLING_BACK:
            outcome = Outcome(
                code=ReleaseOutcomeCode.MANUAL_ABORT,
                message=control.reason or f"aborted by {control.author}",
                aborted=True,
                author=control.author,
            )
            new = new.model_copy(update={"status": ReleaseStatus.ROLLING_BACK, "outcome": outcome})
        try:
            self._commit(state, new, events, control=(control.control_id, control.action.value))
        except DuplicateControlError:
            # Another delivery recorded this id between our read and our write.
            return self._repeated_control(state, control, source) or ControlResult("duplicate", state=state)
        logger.info(
            "release control applied", extra={"release_id": state.release_id, "action": control.action.value}
        )
        return ControlResult("applied", state=self.reconcile(state.release_id))

    def _repeated_control(
        self, state: ReleaseState, control: ReleaseControl, source: str
    ) -> ControlResult | None:
        """A ``controlId`` already applied: the same action again is a duplicate (no effect); another
        action under it is refused, so that action is never silently lost (pause as c-1, then abort
        as c-1). None when the id is new."""
        recorded = self._store.control_action(state.release_id, control.control_id)
        if recorded is None:
            return None
        if recorded == control.action.value:
            return ControlResult("duplicate", state=state)
        return self._control_rejected(
            control,
            source,
            ReleaseReasonCode.CONTROL_ID_CONFLICT,
            f"control {control.control_id} was a {recorded} of release {state.release_id}; "
            f"send the {control.action.value} with a new controlId",
            field="controlId",
        )

    def _report_status(
        self, state: ReleaseState, control: ReleaseControl, source: str, now: datetime
    ) -> ControlResult:
        """``ReleaseStatusReported``, recorded in the history like any announcement: it gets its
        own ``seq`` (it used to repeat the last lifecycle event's, and a consumer deduping on
        ``(releaseId, seq)`` lost one of the two), a lost publish is republished by the next
        tick, and a redelivered status control is a duplicate, not a second report."""
        report = (
            ReleaseDetailType.RELEASE_STATUS_REPORTED,
            ReleaseStatusReported,
            {
                "paused": state.paused,
                "promoted": state.promoted,
                "next_step_at": engine.next_step_at(state, now),
                "control_id": control.control_id,
            },
        )
        new = state.model_copy(update={"updated_at": now})
        try:
            saved = self._commit(state, new, [report], control=(control.control_id, control.action.value))
        except DuplicateControlError:
            return self._repeated_control(state, control, source) or ControlResult("duplicate", state=state)
        return ControlResult("reported", state=saved)

    # --- reconcile --------------------------------------------------------------------------

    def reconcile_all(self) -> ReconcileSummary:
        """The durable timer's tick: every active release, then every lost announcement.
        One failing release does not stop the others; the failures are reported (and raised
        by the handler after the loop, so the tick's retry/DLQ path sees them)."""
        summary = ReconcileSummary()
        for release_id in self._store.active_release_ids():
            summary.releases += 1
            try:
                self.reconcile(release_id)
            except Exception:
                logger.exception("reconcile failed", extra={"release_id": release_id})
                summary.failed.append(release_id)
        summary.announced = self.announce_pending()
        return summary

    def reconcile(self, release_id: str) -> ReleaseState | None:
        state = self._store.get(release_id)
        for _ in range(MAX_ACTIONS_PER_RECONCILE):
            if state is None or state.status.terminal:
                return state
            now = self._clock()
            try:
                observed: AliasState | None = self._aliases.get(state.function, state.alias)
            except AliasNotFoundError:
                observed = None
            alarms = self._health.read(state.alarms)
            if alarms.missing or alarms.error:
                logger.warning(
                    "watched alarms unreadable",
                    extra={"release_id": release_id, "missing": alarms.missing, "error": alarms.error},
                )
            action = engine.decide(state, observed, alarms.in_alarm, now, alarms.missing, alarms.error)
            if isinstance(action, engine.Wait):
                return state
            logger.debug("release action", extra={"release_id": release_id, "action": type(action).__name__})
            try:
                self._apply(state, action, observed, now)
            except StaleReleaseStateError:
                logger.info(
                    "release changed concurrently; leaving it to the winner", extra={"release_id": release_id}
                )
                return self._store.get(release_id)
            except AliasRevisionConflictError:
                logger.warning("alias revision moved during update", extra={"release_id": release_id})
            state = self._store.get(release_id)
        return state

    def _apply(
        self, state: ReleaseState, action: engine.Action, observed: AliasState | None, now: datetime
    ) -> None:
        if isinstance(action, engine.RecordApplied):
            before = state.percent
            new = state.model_copy(
                update={"applied": action.target, "intent": None, "updated_at": now, **self._new_step(now)}
            )
            self._commit(
                state,
                new,
                [
                    (
                        ReleaseDetailType.RELEASE_STEPPED,
                        ReleaseStepped,
                        {"previous_percent": before, "cause": "recovered", "analysis": state.step_verdict},
                    )
                ],
            )
        elif isinstance(action, engine.TakeOver):
            self._take_over(state, action.observed, now)
        elif isinstance(action, engine.BeginRollback):
            outcome = Outcome(
                code=action.code, message=action.message, alarms_in_alarm=action.alarms_in_alarm
            )
            self._commit(
                state,
                state.model_copy(
                    update={"status": ReleaseStatus.ROLLING_BACK, "outcome": outcome, "updated_at": now}
                ),
                [],
            )
        elif isinstance(action, engine.Restore):
            self._write_alias(state, action.target, observed, now)
        elif isinstance(action, engine.FinishRollback):
            self._finish_rollback(state, now)
        elif isinstance(action, engine.RunHook):
            self._run_hook(state, action, now)
        elif isinstance(action, engine.Shift):
            before = state.percent
            after = self._write_alias(state, action.target, observed, now)
            if after is None:
                return
            new = after.model_copy(
                update={"applied": action.target, "intent": None, "updated_at": now, **self._new_step(now)}
            )
            self._commit(
                after,
                new,
                [
                    (
                        ReleaseDetailType.RELEASE_STEPPED,
                        ReleaseStepped,
                        {"previous_percent": before, "cause": action.cause, "analysis": state.step_verdict},
                    )
                ],
            )
            metrics.add_metric(name=RELEASE_STEPPED, unit="Count", value=1)
        elif isinstance(action, engine.PointBeta):
            assert state.beta_alias is not None
            self._aliases.point(state.function, state.beta_alias, AliasTarget.of(state.target_version))
            self._commit(state, state.model_copy(update={"beta_pointed": True, "updated_at": now}), [])
        elif isinstance(action, engine.Analyse):
            self._analyse(state, action, now)
        elif isinstance(action, engine.TrafficComplete):
            status = ReleaseStatus.POST_TRAFFIC if state.hooks.post_traffic else ReleaseStatus.BAKING
            self._commit(
                state,
                state.model_copy(update={"status": status, "traffic_completed_at": now, "updated_at": now}),
                [],
            )
        elif isinstance(action, engine.Complete):
            started = state.shift_started_at or state.requested_at
            new = state.model_copy(
                update={"status": ReleaseStatus.COMPLETED, "ended_at": now, "updated_at": now}
            )
            self._commit(
                state,
                new,
                [
                    (
                        ReleaseDetailType.RELEASE_COMPLETED,
                        ReleaseCompleted,
                        {"duration_seconds": (now - started).total_seconds(), **self._beta_end(state, True)},
                    )
                ],
                release_lock=True,
            )
            metrics.add_metric(name=RELEASE_COMPLETED, unit="Count", value=1)

    # --- beta alias (issue 16) ----------------------------------------------------------------

    def _restore_beta(self, state: ReleaseState) -> None:
        """Put the beta alias back as found at acceptance (remove it if the release created it).
        Done before the terminal commit and idempotent, so a crash in between repeats it; done even
        if the pointing was never recorded, since a crash may have hidden it."""
        if state.beta_alias is None:
            return
        if state.beta_previous is None:
            self._aliases.remove(state.function, state.beta_alias)
        else:
            self._aliases.point(state.function, state.beta_alias, state.beta_previous)

    @staticmethod
    def _beta_end(state: ReleaseState, completed: bool) -> dict[str, Any]:
        if state.beta_alias is None:
            return {}
        if completed:
            version: str | None = state.target_version
        else:
            version = state.beta_previous.function_version if state.beta_previous else None
        return {"beta_alias": state.beta_alias, "beta_alias_version": version}

    # --- analysis (issue 16) ------------------------------------------------------------------

    @staticmethod
    def _new_step(now: datetime) -> dict[str, Any]:
        """A new weight is a new step: its window starts now, with no verdict and no hold."""
        return {
            "step_started_at": now,
            "step_verdict": None,
            "held_since": None,
            "analysed_at": None,
            "analysis_waived_percent": None,
        }

    @staticmethod
    def _end_hold(state: ReleaseState, now: datetime) -> dict[str, Any]:
        """Close a running hold: its time joins ``held_seconds`` (the strategy's clock excludes it)."""
        if state.held_since is None:
            return {}
        return {
            "held_since": None,
            "held_seconds": state.held_seconds + (now - state.held_since).total_seconds(),
        }

    def _judge(self, state: ReleaseState, start: datetime, now: datetime) -> AnalysisVerdict:
        assert state.analysis is not None  # engine.analysis_due
        if self._version_metrics is None:
            self._version_metrics = VersionMetrics()
        end = max(now, start + timedelta(seconds=1))
        gates = state.analysis.gates
        try:
            figures = [
                self._version_metrics.figures(state.function, state.alias, version, gates, start, end)
                for version in (state.target_version, state.previous.function_version)
            ]
        except (ClientError, BotoCoreError) as e:
            logger.warning(
                "per-version metrics unreadable", extra={"release_id": state.release_id, "error": str(e)}
            )
            return unreadable(
                state.analysis,
                bounded(str(e), MAX_MESSAGE_CHARS),
                candidate_version=state.target_version,
                baseline_version=state.previous.function_version,
                window_start=start,
                window_end=end,
                step_percent=state.percent,
            )
        return judge(
            state.analysis,
            figures[0],
            figures[1],
            window_start=start,
            window_end=end,
            step_percent=state.percent,
        )

    def _analyse(self, state: ReleaseState, action: engine.Analyse, now: datetime) -> None:
        """Pass → the step may be left (the shift announces the verdict); fail → roll back like an
        alarm; inconclusive → hold the step, and pause for a person once held past the limit."""
        assert state.analysis is not None
        verdict = self._judge(state, action.window_start, now)
        logger.info(
            "release step analysed",
            extra={
                "release_id": state.release_id,
                "verdict": verdict.verdict.value,
                "percent": state.percent,
            },
        )
        base = state.model_copy(update={"analysed_at": now, "updated_at": now})
        if verdict.verdict is Verdict.PASS:
            self._commit(
                state, base.model_copy(update={"step_verdict": verdict, **self._end_hold(state, now)}), []
            )
            return
        if verdict.verdict is Verdict.FAIL:
            outcome = Outcome(
                code=ReleaseOutcomeCode.ANALYSIS_FAILED, message=summary(verdict), analysis=verdict
            )
            update = {"status": ReleaseStatus.ROLLING_BACK, "outcome": outcome, **self._end_hold(state, now)}
            self._commit(state, base.model_copy(update=update), [])
            return
        limit = timedelta(minutes=state.analysis.inconclusive_limit_minutes)
        event: tuple[ReleaseDetailType, type[_ReleaseEvent], dict[str, Any]]
        if state.held_since is None:
            held = base.model_copy(update={"held_since": now})
            event = (
                ReleaseDetailType.RELEASE_ANALYSIS_HELD,
                ReleaseAnalysisHeld,
                {"analysis": verdict, "hold_limit_at": now + limit},
            )
            self._commit(state, held, [event])
        elif now - state.held_since >= limit:
            paused = base.model_copy(
                update={"paused_at": now, "analysis_paused": True, **self._end_hold(state, now)}
            )
            reason = (
                f"analysis inconclusive for {state.analysis.inconclusive_limit_minutes} minute(s); "
                "resume to go on without it, promote, or abort"
            )
            event = (
                ReleaseDetailType.RELEASE_PAUSED,
                ReleasePaused,
                {"author": "configpipe", "reason": reason, "analysis": verdict},
            )
            self._commit(state, paused, [event])
        else:
            self._commit(state, base, [])

    def _write_alias(
        self, state: ReleaseState, target: AliasTarget, observed: AliasState | None, now: datetime
    ) -> ReleaseState | None:
        """Write-ahead intent, then the guarded UpdateAlias. Returns the state with the intent
        recorded, or None when Lambda refused the routing (the release then rolls back)."""
        assert observed is not None  # decide() only asks for a write when the alias is ours
        recorded = self._commit(state, state.model_copy(update={"intent": target, "updated_at": now}), [])
        self._checkpoint("intent_recorded")
        try:
            self._aliases.update(state.function, state.alias, target, observed.revision_id)
        except AliasUpdateRefusedError as e:
            if state.status is ReleaseStatus.ROLLING_BACK:
                raise  # cannot restore: leave it to retries/the DLQ alarm rather than hide it
            logger.error(
                "Lambda refused the alias update", extra={"release_id": state.release_id, "error": str(e)}
            )
            outcome = Outcome(code=ReleaseOutcomeCode.ALIAS_UPDATE_REFUSED, message=str(e))
            self._commit(
                recorded,
                recorded.model_copy(
                    update={"status": ReleaseStatus.ROLLING_BACK, "outcome": outcome, "intent": None}
                ),
                [],
            )
            return None
        self._checkpoint("alias_updated")
        return recorded

    def _take_over(self, state: ReleaseState, observed: AliasState | None, now: datetime) -> None:
        outcome = Outcome(
            code=ReleaseOutcomeCode.CONCURRENT_ALIAS_CHANGE,
            message="the alias was changed outside this release; it stopped and left the alias as found",
            aborted=True,
        )
        new = state.model_copy(
            update={
                "status": ReleaseStatus.ABORTED,
                "outcome": outcome,
                "intent": None,
                "ended_at": now,
                "updated_at": now,
            }
        )
        self._restore_beta(state)
        metrics.add_metric(name=RELEASE_CONCURRENT_CHANGE, unit="Count", value=1)
        logger.warning(
            "concurrent alias change",
            extra={
                "release_id": state.release_id,
                "expected": state.applied.model_dump(),
                "observed": observed.model_dump() if observed else None,
            },
        )
        self._commit(
            state,
            new,
            [
                (
                    ReleaseDetailType.RELEASE_ABORTED,
                    ReleaseAborted,
                    {
                        "code": outcome.code,
                        "message": outcome.message,
                        "alias_restored": False,
                        "observed_version": observed.function_version if observed else None,
                        "observed_weights": observed.weights if observed else None,
                        **self._beta_end(state, False),
                    },
                )
            ],
            release_lock=True,
        )

    def _finish_rollback(self, state: ReleaseState, now: datetime) -> None:
        outcome = state.outcome or Outcome(
            code=ReleaseOutcomeCode.MANUAL_ABORT, message="rolled back", aborted=True
        )
        status = ReleaseStatus.ABORTED if outcome.aborted else ReleaseStatus.ROLLED_BACK
        new = state.model_copy(
            update={
                "status": status,
                "applied": state.previous,
                "intent": None,
                "ended_at": now,
                "updated_at": now,
            }
        )
        self._restore_beta(state)
        restored = {
            "restored_version": state.previous.function_version,
            "restored_weights": state.previous.weights,
            **self._beta_end(state, False),
        }
        if outcome.aborted:
            event: tuple[ReleaseDetailType, type[_ReleaseEvent], dict[str, Any]] = (
                ReleaseDetailType.RELEASE_ABORTED,
                ReleaseAborted,
                {
                    "code": outcome.code,
                    "message": outcome.message,
                    "alias_restored": True,
                    "author": outcome.author,
                    **restored,
                },
            )
        else:
            event = (
                ReleaseDetailType.RELEASE_ROLLED_BACK,
                ReleaseRolledBack,
                {
                    "code": outcome.code,
                    "message": outcome.message,
                    "alarms_in_alarm": outcome.alarms_in_alarm,
                    "analysis": outcome.analysis,
                    **restored,
                },
            )
        self._commit(state, new, [event], release_lock=True)
        metrics.add_metric(
            name=RELEASE_ROLLED_BACK if not outcome.aborted else RELEASE_ABORTED, unit="Count", value=1
        )

    def _run_hook(self, state: ReleaseState, action: engine.RunHook, now: datetime) -> None:
        request = HookRequest(
            release_id=state.release_id,
            phase=action.phase,
            function=state.function,
            alias=state.alias,
            target_version=state.target_version,
            previous_version=state.previous.function_version,
            percent=state.percent,
        )
        result = self._hooks.run(action.function, request, state.hooks.timeout_seconds)
        self._checkpoint("hook_ran")
        done = self._clock()
        pre = action.phase is HookPhase.PRE_TRAFFIC
        if result.passed:
            # The strategy's clock starts at the first shift: time paused before it (in PRE_TRAFFIC)
            # is not the strategy's, so it must not be subtracted from the timeline that starts now.
            update: dict[str, Any] = (
                {
                    "status": ReleaseStatus.SHIFTING,
                    "pre_hook_passed": True,
                    "shift_started_at": done,
                    "paused_seconds": 0.0,
                }
                if pre
                else {"status": ReleaseStatus.BAKING, "post_hook_passed": True}
            )
        else:
            if result.verdict is HookVerdict.TIMED_OUT:
                code = ReleaseOutcomeCode.HOOK_TIMED_OUT
            else:
                code = (
                    ReleaseOutcomeCode.PRE_TRAFFIC_HOOK_FAILED
                    if pre
                    else ReleaseOutcomeCode.POST_TRAFFIC_HOOK_FAILED
                )
            # The hook's answer is the service team's text: bounded like any caller input.
            message = f"{action.phase.value} hook {action.function}: {result.verdict.value} {result.message}"
            message = bounded(message.strip(), MAX_MESSAGE_CHARS)
            update = {"status": ReleaseStatus.ROLLING_BACK, "outcome": Outcome(code=code, message=message)}
        new = state.model_copy(update={**update, "updated_at": done})
        self._commit(
            state,
            new,
            [
                (
                    ReleaseDetailType.RELEASE_HOOK_COMPLETED,
                    ReleaseHookCompleted,
                    {
                        "phase": action.phase,
                        "hook": action.function,
                        "passed": result.passed,
                        "message": bounded(result.message, 500),
                    },
                )
            ],
        )

    # --- persistence + announcements --------------------------------------------------------

    def _commit(
        self,
        old: ReleaseState,
        new: ReleaseState,
        events: list[tuple[ReleaseDetailType, type[_ReleaseEvent], dict[str, Any]]],
        *,
        release_lock: bool = False,
        control: tuple[str, str] | None = None,
    ) -> ReleaseState:
        entries = []
        count = old.history_count
        for detail_type, contract, extra in events:
            count += 1
            entries.append(
                self._entry(new, detail_type, self._event(contract, new, count, new.updated_at, **extra))
            )
        saved = new.model_copy(update={"seq": old.seq + 1, "history_count": count})
        self._store.save(saved, old.seq, entries, release_lock=release_lock, control=control)
        self._checkpoint("committed")
        self._announce(entries)
        return saved

    @staticmethod
    def _event(
        contract: type[_ReleaseEvent], state: ReleaseState, seq: int, at: datetime, **extra: Any
    ) -> _ReleaseEvent:
        return contract(
            release_id=state.release_id,
            seq=seq,
            function=state.function,
            alias=state.alias,
            target_version=state.target_version,
            previous_version=state.previous.function_version,
            strategy=state.strategy.name,
            status=state.status,
            percent=state.applied.percent_on(state.target_version),
            at=at,
            **extra,
        )

    @staticmethod
    def _entry(state: ReleaseState, detail_type: ReleaseDetailType, event: _ReleaseEvent) -> HistoryEntry:
        return HistoryEntry(
            release_id=state.release_id,
            seq=event.seq,
            at=event.at,
            detail_type=detail_type,
            detail=event.to_detail(),
        )

    def _publish(self, detail_type: ReleaseDetailType, event: Any, resources: list[str]) -> None:
        # ConfigBus types its detail-type parameter with the config enum; release detail types
        # are the same kind of string enum (see the report: bus.py could accept any StrEnum).
        self._bus.publish([self._bus.entry(cast(DetailType, detail_type), event, resources)])

    def _announce(self, entries: list[HistoryEntry]) -> int:
        """Publish history entries, then mark them announced. A failed publish is left for
        :meth:`announce_pending` (the next tick) instead of failing the transition."""
        announced = 0
        for entry in entries:
            contract = ANNOUNCEMENT_CONTRACTS[entry.detail_type]
            try:
                self._publish(entry.detail_type, contract.model_validate(entry.detail), [entry.release_id])
            except EventPublishError:
                logger.exception(
                    "announcement not published; the next reconcile retries",
                    extra={"release_id": entry.release_id},
                )
                return announced
            self._store.mark_announced(entry.release_id, entry.seq, self._clock())
            announced += 1
        return announced

    def announce_pending(self) -> int:
        return self._announce(self._store.unannounced())

    # --- queries ----------------------------------------------------------------------------

    def status(self, release_id: str) -> tuple[ReleaseState | None, list[HistoryEntry]]:
        state = self._store.get(release_id)
        return state, (self._store.history(release_id) if state else [])
