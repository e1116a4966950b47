"""``configpipe release …``: start, inspect, follow and steer alias traffic shifts.

No side door, as for configuration: ``start`` publishes a ``ReleaseRequested`` and
``promote`` / ``pause`` / ``resume`` / ``abort`` publish a ``ReleaseControl`` on the config bus
with the team's source, built from :mod:`configpipe.release.contracts` — the models the release
function parses. The CLI only *reads* the release table.

The commands are thin, like the configuration commands in ``main``: parse options, check
locally (:mod:`~configpipe_tools.cli.release_checks`), publish, wait or follow
(:mod:`~configpipe_tools.cli.release_progress`), render
(:mod:`~configpipe_tools.cli.release_output`). Exit codes mirror the configuration writes:

* a local check fails: exit 2, nothing is sent;
* the release function's ``ReleaseRejected`` (checks that need Lambda, CloudWatch or the
  release's state): exit 3; ``--follow`` also ends with 3 when the release is rolled back or
  aborted, and with 0 when it completes;
* no outcome within ``--timeout``: exit 4; AWS problems: exit 5.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.text import Text

from configpipe.bus import ConfigBus
from configpipe.contracts import DetailType
from configpipe.errors import EventPublishError
from configpipe.release.contracts import ControlAction, ReleaseControl, ReleaseDetailType, ReleaseRequested
from configpipe.release.model import ReleaseState
from configpipe.release.service import request_hash
from configpipe.release.store import ReleaseStore
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guard
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid, publish_failed
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.publishing import require_source
from configpipe_tools.cli.release_checks import (
    PLACEHOLDER,
    analysis_value,
    check_control,
    check_request,
    parse_control,
    parse_request,
    strategy_value,
)
from configpipe_tools.cli.release_compare import compare_command
from configpipe_tools.cli.release_config import (
    ConfigOutcome,
    config_views,
    no_config_verdict,
    prepare_configs,
    rejected_configs_text,
    render_configs,
    report_settled,
    send_configs,
)
from configpipe_tools.cli.release_output import (
    rejected_text,
    render_applied,
    render_published,
    render_started,
    render_status,
)
from configpipe_tools.cli.release_progress import (
    current_view,
    find_release,
    follow_release,
    poll,
    reflects,
    rejections,
    release_store,
    started,
)

app = typer.Typer(
    name="release",
    help="Shift a Lambda alias to a new version (canary, linear, all-at-once, blue/green) and steer it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

_FOLLOW_TIMEOUT = 3600.0
_WAIT_TIMEOUT = 30.0


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


def _detail_type(detail_type: ReleaseDetailType) -> DetailType:
    # ConfigBus types its parameter with the config enum; a release detail type is the same
    # kind of string enum (the release service does the same).
    return detail_type  # type: ignore[return-value]


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
    ignore_poll_alarm_failure: Annotated[
        bool,
        typer.Option(
            "--ignore-poll-alarm-failure",
            help="Keep going when a watched alarm cannot be read (deleted, or CloudWatch failing); "
            "by default the release then rolls back, as CodeDeploy does.",
        ),
    ] = False,
    release_id: Annotated[
        str | None,
        typer.Option(
            "--release-id",
            help="Idempotency key (default: a new one). Re-run with the same id to retry safely.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            metavar="SERVICE/ENV/KEY[@TENANT]=VALUE",
            help="Configuration that goes out with the release (repeat): published first, read only by "
            "FUNCTION at --to-version while the release runs, completed or rolled back with it. VALUE "
            "is JSON if it parses, else text; a sensitive key is encrypted. KEY@TENANT: that "
            "tenant's own value of KEY.",
            show_default=False,
        ),
    ] = None,
    analysis: Annotated[
        str | None,
        typer.Option(
            "--analysis",
            metavar="JSON",
            help='Judge each step by per-version metrics, e.g. \'{"gates": [{"metric": "errorRate", '
            '"maxIncreasePercent": 50}], "minInvocations": 100}\' (docs/releases.md#analysis).',
            show_default=False,
        ),
    ] = None,
    beta_alias: Annotated[
        str | None,
        typer.Option(
            "--beta-alias",
            metavar="NAME",
            help="Alias pointing at --to-version during the release [default: <alias>-candidate].",
            show_default=False,
        ),
    ] = None,
    no_beta_alias: Annotated[
        bool, typer.Option("--no-beta-alias", help="No beta alias for this release.")
    ] = False,
    wait: WaitOpt = True,
    follow: FollowOpt = False,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = 2.0,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Shift FUNCTION's --alias to --to-version with --strategy (with --config: and its configuration)."""
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
        "strategy": strategy_value(strategy),
        "alarms": alarm or [],
        "preTrafficHook": pre_hook,
        "postTrafficHook": post_hook,
        "hookTimeoutSeconds": hook_timeout,
        # absent unless asked: a request without it keeps the idempotency hash it always had
        "ignorePollAlarmFailure": True if ignore_poll_alarm_failure else None,
        # issue 16; absent unless given, like ignorePollAlarmFailure
        "analysis": analysis_value(analysis),
        "betaAlias": False if no_beta_alias else beta_alias,
        "author": cli.author_override or PLACEHOLDER,
        "reason": reason,
    }
    check_request(cli, team, detail)
    configs = prepare_configs(
        cli, config or [], function=function, target_version=to_version, release_id=rid, reason=reason
    )
    request = parse_request({**detail, "author": cli.author()})
    summary: dict[str, Any] = {
        "releaseId": rid,
        "function": function,
        "alias": alias,
        "targetVersion": request.target_version,
        "strategy": strategy,
    }
    store = release_store(cli) if wait or follow else None  # resolve the table before anything is sent
    timeout = timeout if timeout is not None else (_FOLLOW_TIMEOUT if follow else _WAIT_TIMEOUT)
    deadline = time.monotonic() + timeout
    bus = cli.bus(team)
    entry = bus.entry(_detail_type(ReleaseDetailType.RELEASE_REQUESTED), request)

    # Configuration first: no invocation of the new version may run before its values exist.
    configured = send_configs(cli, configs, wait=store is not None, deadline=deadline, reason=reason)
    if configs:
        summary["config"] = config_views(configured)
    if not configured.ok:
        return _config_rejected(out, summary, configured, follow, timeout)

    def with_configs(render: Callable[[Console], None]) -> Callable[[Console], None]:
        def both(console: Console) -> None:
            render(console)
            render_configs(console, configured)

        return both

    if store is None:
        bus.publish([entry])
        out.result({**summary, "status": "published"}, with_configs(lambda c: render_published(c, summary)))
        return ExitCode.OK
    outcome = _publish_request(cli, out, bus, entry, store, request, deadline)
    if outcome is None:
        raise _no_start(rid, function, alias, timeout)
    if isinstance(outcome, list):
        return _start_rejected(out, summary, outcome, follow)
    if follow:
        out.event({"type": "started", **summary, "status": "started"}, Text(f"started release {rid}"))
        code = follow_release(cli, out, outcome.release_id, deadline, interval)
        if configs:
            report_settled(cli, out, configs, deadline)
        return code
    view = current_view(cli, store, outcome)
    out.result(
        {**summary, "status": "started", "release": view}, with_configs(lambda c: render_started(c, view))
    )
    return ExitCode.OK


def _config_rejected(
    out: Output, summary: dict[str, Any], configured: ConfigOutcome, follow: bool, timeout: float
) -> ExitCode:
    """A --config was not accepted: the release was not published, the others were aborted."""
    rid = summary["releaseId"]
    if configured.rejected is None:
        raise no_config_verdict(rid, configured, timeout)
    payload = {
        **summary,
        "status": "rejected",
        "reasons": configured.rejected.reasons,
        "aborted": configured.aborted or [],
    }
    text = rejected_configs_text(rid, configured)
    if follow:
        out.event({"type": "rejected", **payload}, text)
    else:
        out.result(payload, lambda c: c.print(text))
    return ExitCode.REJECTED


def _publish_request(
    cli: CliContext,
    out: Output,
    bus: ConfigBus,
    entry: dict[str, Any],
    store: ReleaseStore,
    request: ReleaseRequested,
    deadline: float,
) -> ReleaseState | list[dict[str, Any]] | None:
    """Publish, then wait for the release to start (or for its rejection's reasons)."""
    rid = request.release_id
    with rejections(cli, out, {"releaseId": [rid], "action": ["request"]}) as rejected:
        bus.publish([entry])
        ours = request_hash(request)
        return poll(deadline, rejected, lambda: started(store.get(rid), ours))


def _no_start(rid: str, function: str, alias: str, timeout: float) -> CliError:
    return CliError(
        f"published release {rid}, but the release function gave no outcome within {timeout:g}s",
        ExitCode.TIMEOUT,
        "TIMEOUT",
        hint=f"It may still start: `configpipe release status {function} --alias {alias}` shows it. "
        f"Re-running with --release-id {rid} is safe (duplicates are ignored). If it never starts, "
        "check the release function's DLQ and logs (stack output ReleaseFunctionName) and your --source.",
        details={"releaseId": rid},
    )


def _start_rejected(
    out: Output, summary: dict[str, Any], reasons: list[dict[str, Any]], follow: bool
) -> ExitCode:
    payload = {**summary, "status": "rejected", "reasons": reasons}
    what = f"release {summary['releaseId']} of {summary['function']}:{summary['alias']}"
    if follow:  # --follow writes JSON lines
        out.event({"type": "rejected", **payload}, rejected_text(what, reasons))
    else:
        out.result(payload, lambda c: c.print(rejected_text(what, reasons)))
    return ExitCode.REJECTED


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
    store = release_store(cli)
    state = find_release(store, function, alias, release_id, active_only=False)
    if follow:
        deadline = time.monotonic() + (timeout if timeout is not None else _FOLLOW_TIMEOUT)
        return follow_release(cli, out, state.release_id, deadline, interval)
    view = current_view(cli, store, state)
    out.result(view, lambda c: render_status(c, view))
    return ExitCode.OK


# --- controls -------------------------------------------------------------------------------


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
    check_control(cli, team, function, release_id, {"controlId": cid, "action": action, "reason": reason})
    store = release_store(cli)
    rid = find_release(store, function, alias, release_id, active_only=True).release_id
    control = parse_control(releaseId=rid, controlId=cid, action=action, author=cli.author(), reason=reason)
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
    outcome = _publish_control(cli, out, bus, entry, store, control, time.monotonic() + limit)
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
            lambda c: c.print(rejected_text(f"{action.value} of release {rid}", outcome)),
        )
        return ExitCode.REJECTED
    view = current_view(cli, store, outcome)
    out.result({**summary, "status": "applied", "release": view}, lambda c: render_applied(c, action, view))
    return ExitCode.OK


def _publish_control(
    cli: CliContext,
    out: Output,
    bus: ConfigBus,
    entry: dict[str, Any],
    store: ReleaseStore,
    control: ReleaseControl,
    deadline: float,
) -> ReleaseState | list[dict[str, Any]] | None:
    """Publish, then wait until the stored state shows the control (or for its rejection)."""
    rid, cid = control.release_id, control.control_id
    took_effect = reflects(control.action)

    def applied() -> ReleaseState | None:
        if store.control_action(rid, cid) != control.action.value:
            return None  # not applied yet, or the id was another action's (its rejection comes)
        current = store.get(rid)
        return current if current is not None and took_effect(current) else None

    with rejections(cli, out, {"releaseId": [rid], "controlId": [cid]}) as rejected:
        bus.publish([entry])
        return poll(deadline, rejected, applied)


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

# issue 16: candidate vs baseline (configpipe_tools.cli.release_compare)
compare = app.command("compare")(guarded(compare_command))
