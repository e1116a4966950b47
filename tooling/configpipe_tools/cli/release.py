"""``configpipe release …``: start, inspect, follow and steer alias traffic shifts.

No side door, as for configuration: ``start`` publishes a ``ReleaseRequested`` and
``promote`` / ``pause`` / ``resume`` / ``abort`` publish a ``ReleaseControl`` on the config bus
with the team's source, built from :mod:`configpipe.release.contracts` — the models the release
function parses. The CLI only *reads* the release table (:class:`ReleaseStore`).

Exit codes mirror the configuration writes:

* Checks that need no state (the contract, the strategy and its ranges, ``$LATEST``, and the
  registry rules when ``/configpipe/registry`` is readable) run here with the release
  function's own code; a failure is exit 2 and nothing is sent.
* Checks that need Lambda, CloudWatch or the release's state are the release function's: its
  ``ReleaseRejected`` is exit 3. Rejections are only announced on the bus (nothing is written
  for a rejected request), so ``--wait`` listens for them through a temporary queue + rule,
  the mechanism ``watch`` uses, opened *before* publishing.
* No outcome within ``--timeout`` is exit 4; AWS problems are exit 5.

``--follow`` polls the release table (``--interval``) until the release ends, bounded by
``--timeout``: 0 when it completed, 3 when it was rolled back or aborted, 4 when still running.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from configpipe.contracts import PIPELINE_SOURCE, DetailType
from configpipe.errors import EventPublishError
from configpipe.release import engine
from configpipe.release.contracts import (
    ControlAction,
    CustomStrategy,
    ReleaseControl,
    ReleaseDetailType,
    ReleaseReason,
    ReleaseReasonCode,
    ReleaseRequested,
    ReleaseStatus,
)
from configpipe.release.health import AlarmHealth
from configpipe.release.model import HistoryEntry, ReleaseState
from configpipe.release.service import reasons_from_validation_error, request_hash
from configpipe.release.store import ReleaseStore
from configpipe.release.validation import owner_of, static_reasons
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guard, poll_until
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid, publish_failed
from configpipe_tools.cli.output import Output, reason_text
from configpipe_tools.cli.publishing import require_source
from configpipe_tools.cli.watching import Subscription

app = typer.Typer(
    name="release",
    help="Shift a Lambda alias to a new version (canary, linear, all-at-once, blue/green) and steer it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

#: Stands in for the author while the request is checked, so bad input is reported before
#: any AWS call (STS) is made.
_PLACEHOLDER = "pending"
_FOLLOW_TIMEOUT = 3600.0
_WAIT_TIMEOUT = 30.0
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}


def _store(cli: CliContext) -> ReleaseStore:
    name = cli.release_table_name
    if not name:
        raise invalid(
            "which release table? it is named by the stack",
            code="MISSING_RELEASE_TABLE",
            hint="Pass --stack <stack name> (or set CONFIGPIPE_STACK) to read ReleaseTableName from its "
            "outputs, or `configpipe release --release-table <name> …` (CONFIGPIPE_RELEASE_TABLE).",
        )
    return ReleaseStore(name, client=cli.client("dynamodb"))


def _release_error(error: BaseException, cli: CliContext) -> CliError | None:
    """The failures whose generic translation would point at the wrong option."""
    if isinstance(error, EventPublishError):
        return publish_failed(
            error,
            "Retry with the same --release-id / --control-id (safe: the release function ignores "
            "duplicates).",
        )
    if (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
        and error.operation_name in {"GetItem", "Query"}
    ):
        name = cli.resource_names()["release_table"]
        return CliError(
            f"release table {name!r} not found (--release-table / CONFIGPIPE_RELEASE_TABLE, or --stack)",
            ExitCode.AWS,
            "RESOURCE_NOT_FOUND",
            "Check the name and --region/--profile: is the pipeline deployed in this account and region?",
        )
    return None


guarded = guard(_release_error)


# --- option types (--output and --source: configpipe_tools.cli.common) ----------------------------

FunctionArg = Annotated[
    str, typer.Argument(metavar="FUNCTION", help="The released function's name.", show_default=False)
]
AliasOpt = Annotated[str, typer.Option("--alias", "-a", help="The alias whose traffic shifts.")]
ReleaseIdOpt = Annotated[
    str | None,
    typer.Option(
        "--release-id",
        help="The release (default: the active one of FUNCTION/--alias).",
        show_default=False,
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the release function's outcome.")]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        help=f"Seconds to wait for the outcome [default: {_WAIT_TIMEOUT:g}; with --follow "
        f"{_FOLLOW_TIMEOUT:g}].",
        show_default=False,
    ),
]
IntervalOpt = Annotated[
    float, typer.Option("--interval", min=0, help="Seconds between reads of the release table (--follow).")
]
FollowOpt = Annotated[
    bool,
    typer.Option(
        "--follow", "-f", help="Show weight and health live until the release completes or rolls back."
    ),
]


@app.callback()
def release(
    ctx: typer.Context,
    release_table: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_RELEASE_TABLE",
            help="Release table [default: the stack's ReleaseTableName output].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Shift a Lambda alias to a new version (canary, linear, all-at-once, blue/green) and steer it."""
    cli: CliContext = ctx.obj  # the parent's context, shared
    cli.release_table_option = release_table


# --- start ----------------------------------------------------------------------------------


@app.command()
@guarded
def start(
    ctx: typer.Context,
    function: FunctionArg,
    to_version: Annotated[
        str, typer.Option("--to-version", help="The published version to shift to.", show_default=False)
    ],
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="Canary10Percent5Minutes, Linear10PercentEvery1Minute, AllAtOnce, BlueGreen, … "
            "Canary<P>Percent<N>Minutes, Linear<P>PercentEvery<N>Minutes, BlueGreen<N>Minutes, or a JSON "
            'object {"type": "linear", "percentage": 20, "intervalMinutes": 2}.',
            show_default=False,
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (required; kept in the release's history).")
    ],
    alias: AliasOpt = "live",
    alarm: Annotated[
        list[str] | None,
        typer.Option(
            "--alarm",
            metavar="NAME",
            help="A CloudWatch alarm to watch (repeat, at most 10).",
            show_default=False,
        ),
    ] = None,
    pre_hook: Annotated[
        str | None,
        typer.Option(
            "--pre-hook",
            metavar="FN",
            help="Function that must pass before any traffic moves.",
            show_default=False,
        ),
    ] = None,
    post_hook: Annotated[
        str | None,
        typer.Option(
            "--post-hook",
            metavar="FN",
            help="Function that must pass once all traffic moved.",
            show_default=False,
        ),
    ] = None,
    hook_timeout: Annotated[
        int, typer.Option("--hook-timeout", help="Seconds a hook may take (1-300).")
    ] = 60,
    release_id: Annotated[
        str | None,
        typer.Option(
            "--release-id",
            help="Idempotency key (default: a new one). Re-run with the same id to retry safely.",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = True,
    follow: FollowOpt = False,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = 2.0,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Shift FUNCTION's --alias to --to-version with --strategy."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    team = require_source(cli)
    if not reason.strip():
        raise invalid("--reason must say why (it is kept in the release's history)", code="MISSING_REASON")
    rid = release_id or f"{function}-{uuid.uuid4().hex[:12]}"
    detail: dict[str, Any] = {
        "releaseId": rid,
        "function": function,
        "alias": alias,
        "targetVersion": to_version,
        "strategy": _strategy_value(strategy),
        "alarms": alarm or [],
        "preTrafficHook": pre_hook,
        "postTrafficHook": post_hook,
        "hookTimeoutSeconds": hook_timeout,
        "author": cli.author_override or _PLACEHOLDER,
        "reason": reason,
    }

    # 1. The contract and the registry-free rules, with the release function's code: no AWS yet.
    request = _parse_request(detail)
    _refuse(static_reasons(request, team, None)[0])
    # 2. The registry rules, when this identity can read the registry.
    registry = cli.registry()
    if registry is not None:
        _refuse(static_reasons(request, team, registry)[0])

    request = _parse_request({**detail, "author": cli.author()})
    summary = {
        "releaseId": rid,
        "function": function,
        "alias": alias,
        "targetVersion": request.target_version,
        "strategy": strategy,
    }
    waiting = wait or follow
    store = _store(cli) if waiting else None  # resolve the table before anything is sent
    timeout = timeout if timeout is not None else (_FOLLOW_TIMEOUT if follow else _WAIT_TIMEOUT)
    deadline = time.monotonic() + timeout
    bus = cli.bus(team)
    entry = bus.entry(_detail_type(ReleaseDetailType.RELEASE_REQUESTED), request)

    if store is None:
        bus.publish([entry])
        out.result({**summary, "status": "published"}, lambda c: _render_published(c, summary))
        return ExitCode.OK

    with _rejections(cli, out, {"releaseId": [rid], "action": ["request"]}) as rejections:
        bus.publish([entry])
        ours = request_hash(request)
        outcome = _poll(deadline, rejections, lambda: _started(store.get(rid), ours))
    if outcome is None:
        raise CliError(
            f"published release {rid}, but the release function gave no outcome within {timeout:g}s",
            ExitCode.TIMEOUT,
            "TIMEOUT",
            hint=f"It may still start: `configpipe release status {function} --alias {alias}` shows it. "
            f"Re-running with --release-id {rid} is safe (duplicates are ignored). If it never starts, "
            "check the release function's DLQ and logs (stack output ReleaseFunctionName) and your --source.",
            details={"releaseId": rid},
        )
    if isinstance(outcome, list):
        payload = {**summary, "status": "rejected", "reasons": outcome}
        what = f"release {rid} of {function}:{alias}"
        if follow:  # --follow writes JSON lines
            out.event({"type": "rejected", **payload}, _rejected_text(what, outcome))
        else:
            out.result(payload, lambda c: c.print(_rejected_text(what, outcome)))
        return ExitCode.REJECTED

    state = outcome
    if follow:
        out.event({"type": "started", **summary, "status": "started"}, Text(f"started release {rid}"))
        return _follow(cli, out, state.release_id, deadline, interval)
    view = _release_view(state, _store(cli).history(rid), _alarm_states(cli, state))
    out.result({**summary, "status": "started", "release": view}, lambda c: _render_started(c, view))
    return ExitCode.OK


def _strategy_value(strategy: str) -> str | dict[str, Any]:
    """A name, or the parameter object when the option holds JSON."""
    if not strategy.lstrip().startswith("{"):
        return strategy
    try:
        value = json.loads(strategy)
    except ValueError:
        raise invalid(
            "--strategy looks like JSON but does not parse",
            code="INVALID_STRATEGY",
            hint='e.g. --strategy \'{"type": "canary", "percentage": 5, "intervalMinutes": 10}\'',
        ) from None
    try:
        return CustomStrategy.model_validate(value).to_detail()
    except ValidationError as error:
        _refuse(reasons_from_validation_error(error))
        raise  # unreachable: _refuse raised


def _parse_request(detail: dict[str, Any]) -> ReleaseRequested:
    try:
        return ReleaseRequested.model_validate({k: v for k, v in detail.items() if v is not None})
    except ValidationError as error:
        _refuse(reasons_from_validation_error(error))
        raise  # unreachable: _refuse raised


def _parse_control(**fields: Any) -> ReleaseControl:
    try:
        return ReleaseControl.model_validate(fields)
    except ValidationError as error:
        _refuse(reasons_from_validation_error(error))
        raise  # unreachable: _refuse raised


_HINTS = {
    ReleaseReasonCode.UNKNOWN_STRATEGY: "Named strategies: Canary10Percent5Minutes, …, "
    "Linear10PercentEvery1Minute, …, AllAtOnce, BlueGreen; custom ones follow the same grammar.",
    ReleaseReasonCode.INVALID_PERCENTAGE: "The percentage is above 0 and below 100, "
    "e.g. Canary5Percent10Minutes.",
    ReleaseReasonCode.INVALID_INTERVAL: "Intervals are 1-1440 minutes.",
    ReleaseReasonCode.TARGET_IS_LATEST: "Publish a version (`aws lambda publish-version`) and release that.",
    ReleaseReasonCode.INVALID_VERSION: "--to-version is a published version number, e.g. 42.",
    ReleaseReasonCode.FUNCTION_NOT_REGISTERED: "Ask the platform team to list the function in its "
    "service's `functions` (cdk.json configpipe.registry).",
    ReleaseReasonCode.SOURCE_NOT_AUTHORIZED: "Publish as the owning service's team (--source).",
    ReleaseReasonCode.HOOK_NOT_REGISTERED: "A hook must be a registered function of the same service.",
}


def _refuse(reasons: list[ReleaseReason]) -> None:
    if reasons:
        raise CliError(
            "the release request is invalid; nothing was sent",
            ExitCode.INVALID,
            "INVALID_RELEASE",
            hint=next((_HINTS[r.code] for r in reasons if r.code in _HINTS), None),
            details={"reasons": [r.to_detail() for r in reasons]},
        )


def _detail_type(detail_type: ReleaseDetailType) -> DetailType:
    # ConfigBus types its parameter with the config enum; a release detail type is the same
    # kind of string enum (the release service does the same).
    return detail_type  # type: ignore[return-value]


def _started(state: ReleaseState | None, request_hash: str) -> ReleaseState | None:
    # A state under our id from another request is a RELEASE_ID_CONFLICT: its rejection follows.
    return state if state is not None and state.request_hash == request_hash else None


# --- waiting: the table for effects, a temporary subscription for rejections ------------------


def _rejection_pattern(detail: dict[str, list[str]]) -> dict[str, Any]:
    """``ReleaseRejected`` events matching ``detail``."""
    return {
        "source": [PIPELINE_SOURCE],
        "detail-type": [ReleaseDetailType.RELEASE_REJECTED.value],
        "detail": detail,
    }


def _rejection_reasons(subscription: Subscription) -> list[dict[str, Any]] | None:
    for event in subscription.receive(0):
        reasons = event.get("detail", {}).get("reasons")
        if isinstance(reasons, list):
            return [dict(r) for r in reasons]
    return None


@contextlib.contextmanager
def _rejections(cli: CliContext, out: Output, detail: dict[str, list[str]]) -> Iterator[Subscription | None]:
    """A temporary subscription to the matching rejections (None when this identity may not
    subscribe: a rejection then shows as a timeout)."""
    subscription = Subscription(cli, _rejection_pattern(detail))
    try:
        try:
            subscription.open()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _ACCESS_CODES:
                raise
            out.warn(
                "cannot subscribe to the bus (events:PutRule / sqs:CreateQueue denied): a rejection will "
                "show as a timeout"
            )
            yield None
            return
        yield subscription
    finally:
        leftovers = subscription.close()
        if leftovers:
            out.warn("could not delete temporary resources; delete them with:\n  " + "\n  ".join(leftovers))


def _poll(
    deadline: float, rejections: Subscription | None, effect: Callable[[], ReleaseState | None]
) -> ReleaseState | list[dict[str, Any]] | None:
    """Until the deadline: the rejection's reasons, or ``effect()`` once it is not None."""

    def probe() -> ReleaseState | list[dict[str, Any]] | None:
        if rejections is not None:
            reasons = _rejection_reasons(rejections)
            if reasons is not None:
                return reasons
        return effect()

    return poll_until(deadline, probe)


# --- status ---------------------------------------------------------------------------------


@app.command()
@guarded
def status(
    ctx: typer.Context,
    function: FunctionArg,
    alias: AliasOpt = "live",
    release_id: ReleaseIdOpt = None,
    follow: FollowOpt = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0, help=f"With --follow: stop after S seconds [default: {_FOLLOW_TIMEOUT:g}]."
        ),
    ] = None,
    interval: IntervalOpt = 2.0,
    output: OutputOpt = None,
) -> ExitCode:
    """The current (or last) release of FUNCTION's --alias: weight, state, next step, history."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    store = _store(cli)
    state = _find_release(store, function, alias, release_id, active_only=False)
    if follow:
        deadline = time.monotonic() + (timeout if timeout is not None else _FOLLOW_TIMEOUT)
        return _follow(cli, out, state.release_id, deadline, interval)
    view = _release_view(state, store.history(state.release_id), _alarm_states(cli, state))
    out.result(view, lambda c: _render_status(c, view))
    return ExitCode.OK


def _find_release(
    store: ReleaseStore, function: str, alias: str, release_id: str | None, *, active_only: bool
) -> ReleaseState:
    label = f"{function}:{alias}"
    if release_id is not None:
        state = store.get(release_id)
        if state is None:
            raise invalid(
                f"no release {release_id}",
                code="RELEASE_NOT_FOUND",
                hint=f"`configpipe release status {function} --alias {alias}` shows the alias's release.",
            )
        if (state.function, state.alias) != (function, alias):
            raise invalid(
                f"release {release_id} is a release of {state.function}:{state.alias}, not of {label}",
                code="RELEASE_MISMATCH",
            )
    else:
        # The lock is read consistently; the index of past releases may lag a second.
        active = store.lock_holder(function, alias)
        state = store.get(active) if active else None
        if state is None and not active_only:
            past = store.releases_for_alias(function, alias)
            state = past[0] if past else None
        if state is None:
            raise invalid(
                f"no {'active ' if active_only else ''}release on {label}",
                code="NO_ACTIVE_RELEASE" if active_only else "RELEASE_NOT_FOUND",
                hint=f"`configpipe release status {function} --alias {alias}` shows the last one"
                if active_only
                else f"Start one with `configpipe release start {function} --alias {alias} --to-version N "
                "--strategy … --reason …`.",
            )
    if active_only and state.status.terminal:
        raise invalid(
            f"release {state.release_id} has already ended ({state.status.value})",
            code="RELEASE_NOT_ACTIVE",
            hint="Start a new release to change the alias again.",
        )
    return state


# --- controls -------------------------------------------------------------------------------


def _reflects(action: ControlAction) -> Callable[[ReleaseState], bool]:
    """When the stored state shows that the control took effect."""
    return {
        ControlAction.PAUSE: lambda s: s.paused or s.status.terminal,
        ControlAction.RESUME: lambda s: not s.paused,
        ControlAction.PROMOTE: lambda s: s.promoted or s.status.terminal,
        ControlAction.ABORT: lambda s: s.status.terminal,
    }[action]


def _control(
    ctx: typer.Context,
    action: ControlAction,
    function: str,
    alias: str,
    release_id: str | None,
    reason: str,
    control_id: str | None,
    wait: bool,
    timeout: float | None,
) -> ExitCode:
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    team = require_source(cli)
    cid = control_id or f"{action.value}-{uuid.uuid4().hex[:12]}"
    # The contract first (ids, lengths), with placeholders: no AWS yet.
    _parse_control(
        releaseId=release_id or _PLACEHOLDER,
        controlId=cid,
        action=action,
        author=cli.author_override or _PLACEHOLDER,
        reason=reason,
    )
    registry = cli.registry()
    if registry is not None:
        owner = owner_of(registry, function)
        if owner is None or team not in registry.services[owner].publishers:
            _refuse(
                [
                    ReleaseReason(
                        code=ReleaseReasonCode.FUNCTION_NOT_REGISTERED
                        if owner is None
                        else ReleaseReasonCode.SOURCE_NOT_AUTHORIZED,
                        message=f"{function} is not in any registered service's functions"
                        if owner is None
                        else f"source {team} may not control releases of service {owner}",
                        field="source" if owner else "function",
                    )
                ]
            )
    store = _store(cli)
    state = _find_release(store, function, alias, release_id, active_only=True)
    rid = state.release_id
    control = _parse_control(releaseId=rid, controlId=cid, action=action, author=cli.author(), reason=reason)
    summary = {
        "releaseId": rid,
        "controlId": cid,
        "action": action.value,
        "function": function,
        "alias": alias,
    }
    bus = cli.bus(team)
    entry = bus.entry(_detail_type(ReleaseDetailType.RELEASE_CONTROL), control)
    if not wait:
        bus.publish([entry])
        out.result(
            {**summary, "status": "published"},
            lambda c: c.print(Text(f"published {action.value} for release {rid} (not waiting)")),
        )
        return ExitCode.OK

    limit = timeout if timeout is not None else _WAIT_TIMEOUT
    reflects = _reflects(action)

    def applied() -> ReleaseState | None:
        if not store.has_control(rid, cid):
            return None
        current = store.get(rid)
        return current if current is not None and reflects(current) else None

    with _rejections(cli, out, {"releaseId": [rid], "controlId": [cid]}) as rejections:
        bus.publish([entry])
        outcome = _poll(time.monotonic() + limit, rejections, applied)
    if outcome is None:
        raise CliError(
            f"published {action.value} for release {rid}, but it did not take effect within {limit:g}s",
            ExitCode.TIMEOUT,
            "TIMEOUT",
            hint=f"`configpipe release status {function} --alias {alias}` shows where it is. Re-running with "
            f"--control-id {cid} is safe (a repeated control is ignored).",
            details={"releaseId": rid, "controlId": cid},
        )
    if isinstance(outcome, list):
        out.result(
            {**summary, "status": "rejected", "reasons": outcome},
            lambda c: c.print(_rejected_text(f"{action.value} of release {rid}", outcome)),
        )
        return ExitCode.REJECTED
    view = _release_view(outcome, store.history(rid), _alarm_states(cli, outcome))
    out.result({**summary, "status": "applied", "release": view}, lambda c: _render_applied(c, action, view))
    return ExitCode.OK


ControlReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the release's history).")]
ControlIdOpt = Annotated[
    str | None,
    typer.Option(
        "--control-id",
        help="Idempotency key (default: a new one). Re-run with the same id to retry safely.",
        show_default=False,
    ),
]


def _control_command(action: ControlAction, summary: str) -> Callable[..., ExitCode]:
    """Register the command of one control action (they differ only in the action they send)."""

    def command(
        ctx: typer.Context,
        function: FunctionArg,
        alias: AliasOpt = "live",
        release_id: ReleaseIdOpt = None,
        reason: ControlReasonOpt = "",
        control_id: ControlIdOpt = None,
        wait: WaitOpt = True,
        timeout: TimeoutOpt = None,
        source: SourceOpt = None,
        output: OutputOpt = None,
    ) -> ExitCode:
        return _control(ctx, action, function, alias, release_id, reason, control_id, wait, timeout)

    command.__name__ = command.__qualname__ = action.value
    command.__doc__ = summary
    return app.command(action.value)(guarded(command))


promote = _control_command(
    ControlAction.PROMOTE, "Shift all traffic now (resumes if paused; the post-traffic hook still runs)."
)
pause = _control_command(ControlAction.PAUSE, "Freeze the release's timeline (alarms still roll it back).")
resume = _control_command(
    ControlAction.RESUME, "Continue a paused release (paused time does not count towards the strategy)."
)
abort = _control_command(
    ControlAction.ABORT, "Roll the alias back to exactly what it was before the release."
)


# --- follow ---------------------------------------------------------------------------------


def _follow(cli: CliContext, out: Output, release_id: str, deadline: float, interval: float) -> ExitCode:
    """Poll the table until the release ends or the deadline passes; new history entries are
    printed as they appear (JSON lines with ``-o json``), the live view shows weight and health."""
    store = _store(cli)
    shown = 0
    live = None if out.as_json else Live(console=out.out, auto_refresh=False, transient=False)
    with live if live is not None else contextlib.nullcontext():
        while True:
            state = store.get(release_id)
            if state is None:
                raise invalid(f"no release {release_id}", code="RELEASE_NOT_FOUND")
            history = store.history(release_id)
            alarms = _alarm_states(cli, state)
            for entry in history[shown:]:
                if live is None:
                    out.event({"type": "history", **_history_view(entry)}, _history_line(entry))
                else:
                    live.console.print(_history_line(entry), soft_wrap=True)
            shown = len(history)
            view = _release_view(state, history, alarms)
            if live is not None:
                live.update(_panel(view), refresh=True)
            if state.status.terminal:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CliError(
                    f"release {release_id} is still {state.status.value} at {view['percent']:g}%; "
                    "stopped following (the release goes on)",
                    ExitCode.TIMEOUT,
                    "TIMEOUT",
                    hint=f"`configpipe release status {state.function} --alias {state.alias} --follow` "
                    "follows it again; raise --timeout for long strategies.",
                    details={"releaseId": release_id, "status": state.status.value},
                )
            time.sleep(min(interval, remaining))
    code = ExitCode.OK if state.status is ReleaseStatus.COMPLETED else ExitCode.REJECTED
    if out.as_json:
        out.event({"type": "summary", **view}, Text(""))
    return code


# --- views ----------------------------------------------------------------------------------


def _alarm_states(cli: CliContext, state: ReleaseState) -> dict[str, str]:
    """Best effort: ``{alarm: state}``, or ``UNKNOWN`` when this identity may not read them."""
    if not state.alarms:
        return {}
    try:
        found = AlarmHealth(cli.client("cloudwatch")).states(state.alarms)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _ACCESS_CODES:
            raise
        found = {}
    return {name: found.get(name, "UNKNOWN") for name in state.alarms}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {"type": entry.detail_type.value, **entry.detail}


def _release_view(state: ReleaseState, history: list[HistoryEntry], alarms: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    last_step = next(
        (e for e in reversed(history) if e.detail_type is ReleaseDetailType.RELEASE_STEPPED), None
    )
    return {
        "releaseId": state.release_id,
        "service": state.service,
        "function": state.function,
        "alias": state.alias,
        "targetVersion": state.target_version,
        "previousVersion": state.previous.function_version,
        "previousWeights": state.previous.weights,
        "strategy": state.strategy.name,
        "schedule": [list(step) for step in state.strategy.schedule()],
        "status": state.status.value,
        "paused": state.paused,
        "promoted": state.promoted,
        "percent": state.percent,
        "nextStepAt": _iso(engine.next_step_at(state, now)),
        "lastStepAt": _iso(last_step.at) if last_step else None,
        "alarms": [{"name": name, "state": value} for name, value in alarms.items()],
        "preTrafficHook": state.hooks.pre_traffic,
        "postTrafficHook": state.hooks.post_traffic,
        "author": state.author,
        "reason": state.reason,
        "source": state.source,
        "requestedAt": _iso(state.requested_at),
        "endedAt": _iso(state.ended_at),
        "outcome": {"code": state.outcome.code.value, "message": state.outcome.message}
        if state.outcome
        else None,
        "history": [_history_view(e) for e in history],
    }


_STATUS_STYLE = {
    "COMPLETED": "green",
    "ROLLED_BACK": "bold red",
    "ABORTED": "bold red",
    "ROLLING_BACK": "red",
    "SHIFTING": "cyan",
    "BAKING": "cyan",
}
_ALARM_STYLE = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}


def _weight_bar(view: dict[str, Any], width: int = 30) -> Text:
    percent = float(view["percent"])
    filled = round(width * percent / 100)
    return (
        Text("█" * filled, style="green")
        + Text("░" * (width - filled), style="dim")
        + Text(f" {percent:g}% on v{view['targetVersion']}, {100 - percent:g}% on v{view['previousVersion']}")
    )


def _summary_grid(view: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    status = Text(view["status"], style=_STATUS_STYLE.get(view["status"], ""))
    if view["paused"]:
        status += Text(" (paused)", style="yellow")
    grid.add_row("release", Text(view["releaseId"]))
    grid.add_row(
        "alias",
        Text(f"{view['function']}:{view['alias']}  v{view['previousVersion']} → v{view['targetVersion']}"),
    )
    grid.add_row("strategy", Text(view["strategy"]))
    grid.add_row("status", status)
    grid.add_row("weight", _weight_bar(view))
    if view["nextStepAt"]:
        grid.add_row("next step", Text(view["nextStepAt"]))
    if view["lastStepAt"]:
        grid.add_row("last step", Text(view["lastStepAt"]))
    if view["alarms"]:
        alarms = Text()
        for i, alarm in enumerate(view["alarms"]):
            alarms += Text(", " if i else "") + Text(alarm["name"]) + Text(" ")
            alarms += Text(alarm["state"], style=_ALARM_STYLE.get(alarm["state"], "dim"))
        grid.add_row("alarms", alarms)
    hooks = [
        f"{k}: {view[f]}" for k, f in (("pre", "preTrafficHook"), ("post", "postTrafficHook")) if view[f]
    ]
    if hooks:
        grid.add_row("hooks", Text(", ".join(hooks)))
    if view["outcome"]:
        grid.add_row("outcome", Text(f"{view['outcome']['code']}: {view['outcome']['message']}", style="red"))
    grid.add_row("by", Text(f"{view['author']} ({view['source']}): {view['reason']}"))
    return grid


def _panel(view: dict[str, Any]) -> Panel:
    return Panel(_summary_grid(view), title=Text(f"release {view['releaseId']}"), title_align="left")


def _history_note(detail: dict[str, Any]) -> str:
    for key in ("cause", "code", "phase"):
        if key in detail:
            note = str(detail[key])
            if key == "phase":
                note += f" hook {detail.get('hook')} {'passed' if detail.get('passed') else 'failed'}"
            if detail.get("message") and key != "cause":
                note += f": {detail['message']}"
            return note
    return ""


def _history_line(entry: HistoryEntry) -> Text:
    detail = entry.detail
    return (
        Text(f"#{entry.seq} ", style="dim")
        + Text(f"{entry.at.isoformat()}  ")
        + Text(entry.detail_type.value, style="bold")
        + Text(
            f"  {detail.get('percent', 0):g}%  {detail.get('status', '')}  {_history_note(detail)}".rstrip()
        )
    )


def _history_table(view: dict[str, Any]) -> Table:
    table = Table(title="history", title_justify="left")
    for column in ("#", "when", "event", "status", "weight", "note"):
        table.add_column(column, overflow="fold")
    for entry in view["history"]:
        table.add_row(
            Text(str(entry["seq"])),
            Text(str(entry["at"])),
            Text(entry["type"]),
            Text(str(entry.get("status", ""))),
            Text(f"{entry.get('percent', 0):g}%"),
            Text(_history_note(entry)),
        )
    return table


def _render_status(console: Console, view: dict[str, Any]) -> None:
    console.print(Group(_summary_grid(view), Text(""), _history_table(view)))


def _render_started(console: Console, view: dict[str, Any]) -> None:
    console.print(
        Text("✓ started: ", style="green")
        + Text(
            f"release {view['releaseId']} of {view['function']}:{view['alias']} → v{view['targetVersion']}"
        )
    )
    console.print(_summary_grid(view))


def _render_published(console: Console, summary: dict[str, Any]) -> None:
    console.print(
        Text(
            f"published release {summary['releaseId']} of {summary['function']}:{summary['alias']} → "
            f"v{summary['targetVersion']} (not waiting for the outcome)"
        )
    )


def _render_applied(console: Console, action: ControlAction, view: dict[str, Any]) -> None:
    console.print(Text(f"✓ {action.value} applied: ", style="green") + Text(f"release {view['releaseId']}"))
    console.print(_summary_grid(view))


def _rejected_text(what: str, reasons: list[dict[str, Any]]) -> Text:
    text = Text("✗ rejected: ", style="bold red") + Text(what)
    for reason in reasons:
        text += Text("\n  - ") + reason_text(reason)
    return text
