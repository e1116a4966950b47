"""Progressive configuration rollouts in the CLI (docs/rollouts.md).

* ``put … --rollout STRATEGY`` / ``rollback … --rollout``: :func:`rollout_request` turns the
  options into the change's ``rollout`` and checks it here with the validator's own
  ``check_rollout``, so a bad strategy is exit 2 (``INVALID_ROLLOUT``) and nothing is sent.
* ``configpipe rollout status``: reads the key's ``ROLLOUT`` item (the change log is the
  truth) and derives the timeline (next step, completion) from the strategy, the same pure
  functions the rollout function uses. ``--follow`` polls until the rollout ends: 0 when it
  completed, 3 when it was rolled back or aborted, 4 when still running at ``--timeout``
  (``release --follow``'s codes).
* ``configpipe rollout promote|pause|resume|abort``: publishes a ``ConfigurationRolloutControl``
  with the team's source. Local checks (contract, publishers, an active rollout) are exit 2;
  ``--wait`` polls the change log for the control's record ``CHANGE#{controlId}``, which the
  rollout function writes in the same transaction as the control's effect (accepted) or on
  its own (rejected: exit 3). No record within ``--timeout`` is exit 4.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from botocore.exceptions import ClientError
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from configpipe.changelog import ChangeLog, RolloutRecord, VersionRecord
from configpipe.contracts import (
    PIPELINE_SOURCE,
    ConfigurationChange,
    ConfigurationRolloutControl,
    DetailType,
    Operation,
    Reason,
    ReasonCode,
    RolloutAction,
    RolloutRequest,
    RolloutStatus,
)
from configpipe.naming import TENANT_PATTERN
from configpipe.registry import Registry
from configpipe.release.health import AlarmHealth
from configpipe.rollout.engine import elapsed_seconds, strategy_of
from configpipe.rollout.service import rollback_change_id
from configpipe.validation import check_rollout, parse_model
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guarded
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import Output, reason_text
from configpipe_tools.cli.publishing import require_source, tenant_label

app = typer.Typer(
    name="rollout",
    help="Follow and steer progressive configuration rollouts (put … --rollout STRATEGY).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

T = TypeVar("T")

_FOLLOW_TIMEOUT = 3600.0
_WAIT_TIMEOUT = 30.0
_PLACEHOLDER = "pending"
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}


def _now() -> datetime:
    """The time views are computed at (a seam for tests that drive a rollout's clock)."""
    return datetime.now(UTC)


def _pause(seconds: float) -> None:
    """Sleep between polls (a seam for tests, which run the rollout function here instead)."""
    time.sleep(seconds)


# --- options of put / rollback ----------------------------------------------------------------

RolloutOpt = Annotated[
    str | None,
    typer.Option(
        "--rollout",
        metavar="STRATEGY",
        help="Go out progressively with this strategy: AppConfig.Linear20PercentEvery6Minutes, "
        "AppConfig.Canary10Percent20Minutes, Canary10Percent5Minutes, Linear10PercentEvery1Minute, … "
        'or a JSON object, e.g. \'{"type": "appConfig", "growthType": "linear", "growthFactor": 25, '
        '"durationMinutes": 8}\'.',
        show_default=False,
    ),
]
AlarmOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--alarm",
        metavar="NAME",
        help="With --rollout: a CloudWatch alarm that rolls the rollout back (repeat, at most 10).",
        show_default=False,
    ),
]
BakeOpt = Annotated[
    int | None,
    typer.Option(
        "--bake",
        metavar="MIN",
        min=0,
        max=24 * 60,
        help="With --rollout: minutes at 100 % (still watched) before it completes; replaces the "
        "strategy's final bake.",
        show_default=False,
    ),
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        metavar="SUBJECT",
        help="With --rollout: a subject (tenant, user, request key) that gets the new value first "
        "(repeat, at most 100).",
        show_default=False,
    ),
]


def rollout_request(
    operation: Operation,
    strategy: str | None,
    alarms: list[str] | None,
    bake: int | None,
    targets: list[str] | None,
) -> dict[str, Any] | None:
    """The change's ``rollout`` (camelCase detail), or None without ``--rollout``. Checked here
    with the validator's own rules; raises exit 2 with the validator's code and message."""
    if strategy is None:
        given = [name for name, v in (("--alarm", alarms), ("--bake", bake), ("--target", targets)) if v]
        if given:
            raise invalid(
                f"{', '.join(given)} only make{'s' if len(given) == 1 else ''} sense with --rollout",
                code="USAGE",
                hint="Add --rollout STRATEGY (e.g. AppConfig.Linear20PercentEvery6Minutes), or drop "
                f"{', '.join(given)}.",
            )
        return None
    detail: dict[str, Any] = {
        "strategy": _strategy_value(strategy),
        "alarms": alarms or [],
        "targets": targets or [],
    }
    if bake is not None:
        detail["bakeMinutes"] = bake
    request, reasons = parse_model(RolloutRequest, detail)
    if request is None:
        _refuse(
            [
                Reason(code=ReasonCode.INVALID_ROLLOUT, message=r.message, field=f"rollout.{r.field}")
                for r in reasons
            ]
        )
        raise AssertionError("unreachable")
    # The validator's own check, on a change that carries only what it reads (the operation
    # and the rollout; the rest are placeholders, never validated nor sent).
    pending = _PLACEHOLDER
    change = ConfigurationChange.model_construct(
        change_id=pending,
        service=pending,
        environment=pending,
        key=pending,
        author=pending,
        reason=pending,
        operation=operation,
        rollout=request,
    )
    # A strategy rollout needs nothing from the registry (only a release binding does).
    _refuse(check_rollout(change, Registry()))
    return request.to_detail()


def _strategy_value(strategy: str) -> str | dict[str, Any]:
    if not strategy.lstrip().startswith("{"):
        return strategy.strip()
    try:
        value = json.loads(strategy)
    except ValueError:
        _refuse(
            [
                Reason(
                    code=ReasonCode.INVALID_ROLLOUT,
                    message="--rollout looks like a JSON object but does not parse",
                    field="rollout.strategy",
                )
            ]
        )
    if not isinstance(value, dict):
        _refuse(
            [
                Reason(
                    code=ReasonCode.INVALID_ROLLOUT,
                    message="a custom strategy is a JSON object",
                    field="rollout.strategy",
                )
            ]
        )
    return value


def _refuse(reasons: list[Reason]) -> None:
    if reasons:
        first = reasons[0]
        raise CliError(
            f"invalid rollout: {first.message}; nothing was sent",
            ExitCode.INVALID,
            first.code.value,
            hint="Strategies: AppConfig.AllAtOnce, AppConfig.Linear50PercentEvery30Seconds, "
            "AppConfig.Linear20PercentEvery6Minutes, AppConfig.Canary10Percent20Minutes, "
            "AppConfig.<Linear|Exponential><G>PercentOver<D>Minutes, Canary<P>Percent<N>Minutes, "
            "Linear<P>PercentEvery<N>Minutes, AllAtOnce, BlueGreen (docs/rollouts.md).",
            details={"reasons": [r.to_detail() for r in reasons]},
        )


def started_summary(
    change_log: ChangeLog, service: str, environment: str, key: str, change_id: str, tenant: str | None = None
) -> Any:
    """After an accepted change with a rollout: the rollout it started (None if it is not ours)."""
    record = change_log.rollout(service, environment, key, tenant)
    if record is None or record.rollout_id != change_id:
        return None
    return rollout_view(record, _now())


def render_started(console: Console, rollout: dict[str, Any]) -> None:
    stable = f"v{rollout['stableVersion']}" if rollout["stableVersion"] is not None else "no value"
    console.print(
        Text("  rollout started: ", style="cyan")
        + Text(
            f"{rollout['strategy']}, {rollout['weight']:g}% of subjects on v{rollout['candidateVersion']}, "
            f"the rest on {stable}"
        )
    )
    console.print(
        Text(
            f"  follow it: configpipe rollout status {rollout['service']} {rollout['environment']} "
            f"{rollout['key']}{_tenant_flag(rollout.get('tenant'))} --follow"
        )
    )


def _tenant_flag(tenant: str | None) -> str:
    return "" if tenant is None else f" --tenant {tenant}"


def way_out(service: str, environment: str, key: str, tenant: str | None = None) -> str:
    """What to do about ROLLOUT_IN_PROGRESS (``tenant``: of that tenant's own value)."""
    scope = f"{service} {environment} {key}{_tenant_flag(tenant)}"
    return (
        f"The key is rolling out. Finish it now: `configpipe rollout promote {scope} --reason …`; or go back "
        f"to the stable value: `configpipe rollout abort {scope} --reason …`. "
        f"`configpipe rollout status {scope}` shows where it is."
    )


# --- views ----------------------------------------------------------------------------------------


def _at(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat()


def rollout_view(
    record: RolloutRecord, now: datetime, alarms: dict[str, str] | None = None
) -> dict[str, Any]:
    """A rollout as the CLI shows it, with its timeline derived from the strategy."""
    strategy = strategy_of(record.strategy_spec, record.bake_minutes)
    elapsed = elapsed_seconds(record, now)
    moving = record.active and not record.paused
    next_step = None
    completes_at = None
    if moving:
        upcoming = strategy.next_shift_after(elapsed)
        if upcoming is not None:
            next_step = {"at": _at(now, upcoming - elapsed), "weight": strategy.percent_at(upcoming)}
        completes_at = _at(now, max(0.0, strategy.duration_seconds - elapsed))
    return {
        "rolloutId": record.rollout_id,
        "service": record.service,
        "environment": record.environment,
        "key": record.key,
        **({"tenant": record.tenant} if record.tenant is not None else {}),
        "status": record.status,
        "active": record.active,
        "strategy": record.strategy_name,
        "strategySpec": record.strategy_spec,
        "bakeMinutes": record.bake_minutes,
        "stableVersion": record.stable_version,
        "candidateVersion": record.candidate_version,
        "weight": record.weight,
        "weightDue": strategy.percent_at(elapsed) if moving else record.weight,
        "targets": list(record.targets),
        "alarms": [{"name": name, "state": (alarms or {}).get(name, "UNKNOWN")} for name in record.alarms],
        "paused": record.paused,
        "pausedAt": record.paused_at,
        "pausedSeconds": record.paused_seconds,
        "promoted": record.promoted,
        "startedAt": record.started_at,
        "updatedAt": record.updated_at,
        "elapsedSeconds": round(elapsed, 3),
        "nextStep": next_step,
        "completesAt": completes_at,
        "sequence": record.sequence,
        "lastEvent": record.event,
        "author": record.author,
        "reason": record.reason,
        "outcome": record.outcome,
        "steps": [{"atSeconds": at, "weight": weight} for at, weight in strategy.steps()],
        "finalBakeSeconds": strategy.duration_seconds - strategy.last_shift_seconds,
    }


def _alarm_states(cli: CliContext, record: RolloutRecord) -> dict[str, str]:
    """Best effort: ``{alarm: state}``, empty when this identity may not read them."""
    if not record.alarms:
        return {}
    try:
        return AlarmHealth(cli.client("cloudwatch")).states(record.alarms)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _ACCESS_CODES:
            raise
        return {}


_STATUS_STYLE = {
    "COMPLETED": "green",
    "ROLLED_BACK": "bold red",
    "ABORTED": "bold red",
    "ROLLING_OUT": "cyan",
}
_ALARM_STYLE = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}


def _weight_bar(view: dict[str, Any], width: int = 30) -> Text:
    weight = float(view["weight"])
    filled = round(width * weight / 100)
    stable = f"v{view['stableVersion']}" if view["stableVersion"] is not None else "no value"
    return (
        Text("█" * filled, style="green")
        + Text("░" * (width - filled), style="dim")
        + Text(f" {weight:g}% on v{view['candidateVersion']}, {100 - weight:g}% on {stable}")
    )


def _seconds(value: float) -> str:
    value = float(value)
    if value < 120:
        return f"{value:g}s"
    return f"{value / 60:g}min"


def _summary_grid(view: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    status = Text(view["status"], style=_STATUS_STYLE.get(view["status"], ""))
    if view["paused"]:
        status += Text(" (paused)", style="yellow")
    grid.add_row("rollout", Text(view["rolloutId"]))
    stable = f"v{view['stableVersion']}" if view["stableVersion"] is not None else "(no value)"
    label = tenant_label(view["service"], view["environment"], view["key"], view.get("tenant"))
    grid.add_row("key", Text(f"{label}  {stable} → v{view['candidateVersion']}"))
    grid.add_row("strategy", Text(view["strategy"]))
    grid.add_row("status", status)
    grid.add_row("weight", _weight_bar(view))
    if view["active"] and view["weightDue"] != view["weight"]:
        grid.add_row("due", Text(f"{view['weightDue']:g}% (applied at the next tick, within a minute)"))
    if view["targets"]:
        grid.add_row("targets", Text(", ".join(view["targets"])))
    if view["alarms"]:
        alarms = Text()
        for i, alarm in enumerate(view["alarms"]):
            alarms += Text(", " if i else "") + Text(alarm["name"]) + Text(" ")
            alarms += Text(alarm["state"], style=_ALARM_STYLE.get(alarm["state"], "dim"))
        grid.add_row("alarms", alarms)
    grid.add_row("started", Text(f"{view['startedAt']}  ({_seconds(view['elapsedSeconds'])} moving)"))
    if view["nextStep"]:
        grid.add_row("next step", Text(f"{view['nextStep']['weight']:g}% at {view['nextStep']['at']}"))
    if view["completesAt"]:
        grid.add_row("completes", Text(view["completesAt"]))
    if view["outcome"]:
        outcome = view["outcome"]
        grid.add_row("outcome", Text(f"{outcome.get('code')}: {outcome.get('message')}", style="red"))
    grid.add_row("last", Text(f"{view['lastEvent']} by {view['author']}: {view['reason']}"))
    return grid


def _steps_table(view: dict[str, Any]) -> Table:
    table = Table(title="steps", title_justify="left")
    table.add_column("at", justify="right")
    table.add_column("weight", justify="right")
    table.add_column("")
    elapsed = float(view["elapsedSeconds"])
    for step in view["steps"]:
        done = step["atSeconds"] <= elapsed
        table.add_row(
            Text(f"+{_seconds(step['atSeconds'])}"),
            Text(f"{step['weight']:g}%"),
            Text("✓" if done else "", style="green"),
        )
    if view["finalBakeSeconds"]:
        table.add_row(Text(f"+{_seconds(view['finalBakeSeconds'])}"), Text("bake"), Text("then complete"))
    return table


def _render_status(console: Console, view: dict[str, Any]) -> None:
    console.print(Group(_summary_grid(view), Text(""), _steps_table(view)))


def _event_line(view: dict[str, Any]) -> Text:
    return (
        Text(f"#{view['sequence']} ", style="dim")
        + Text(f"{view['updatedAt']}  ")
        + Text(view["lastEvent"], style="bold")
        + Text(f"  {view['weight']:g}%  {view['status']}{' (paused)' if view['paused'] else ''}  ")
        + Text(f"{view['author']}: {view['reason']}")
    )


# --- status ----------------------------------------------------------------------------------------

ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Service name, or 'global'.", show_default=False)
]
EnvArg = Annotated[str, typer.Argument(metavar="ENV", help="Environment.", show_default=False)]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Configuration key.", show_default=False)]
IntervalOpt = Annotated[
    float, typer.Option("--interval", min=0, help="Seconds between reads of the change log (--follow).")
]
TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        help="The rollout of this tenant's own value of the key (put --tenant … --rollout).",
        show_default=False,
    ),
]


@app.command()
@guarded
def status(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Refresh until the rollout completes, rolls back or aborts."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0, help=f"With --follow: stop after S seconds [default: {_FOLLOW_TIMEOUT:g}]."
        ),
    ] = None,
    interval: IntervalOpt = 2.0,
    tenant: TenantOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """The key's current (or last) rollout: weight, versions, alarms, next step, the steps
    (--tenant: of the tenant's own value)."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    log = cli.change_log()
    record = _rollout_of(log, service, environment, key, tenant)
    if follow:
        deadline = time.monotonic() + (timeout if timeout is not None else _FOLLOW_TIMEOUT)
        return _follow(cli, out, log, record, deadline, interval)
    view = rollout_view(record, _now(), _alarm_states(cli, record))
    out.result(view, lambda c: _render_status(c, view))
    return ExitCode.OK


def _rollout_of(
    log: ChangeLog, service: str, environment: str, key: str, tenant: str | None = None
) -> RolloutRecord:
    _check_tenant_option(tenant)
    record = log.rollout(service, environment, key, tenant)
    if record is None:
        raise invalid(
            f"{tenant_label(service, environment, key, tenant)} has never rolled out",
            code="ROLLOUT_NOT_FOUND",
            hint=f"Start one with `configpipe put {service} {environment} {key} VALUE{_tenant_flag(tenant)} "
            "--rollout STRATEGY --reason …`.",
        )
    return record


def _check_tenant_option(tenant: str | None) -> None:
    """A --tenant the contract would refuse is exit 2 before any AWS call (it names a key)."""
    if tenant is not None and not TENANT_PATTERN.fullmatch(tenant):
        raise invalid("--tenant must match ^[a-z0-9][a-z0-9-]{0,62}$", code=ReasonCode.INVALID_TENANT.value)


def _follow(
    cli: CliContext, out: Output, log: ChangeLog, record: RolloutRecord, deadline: float, interval: float
) -> ExitCode:
    """Print each state change (a JSON line each with ``-o json``) until the rollout ends."""
    shown = -1
    while True:
        view = rollout_view(record, _now(), _alarm_states(cli, record))
        if record.sequence != shown:
            out.event({"type": "rollout", **view}, _event_line(view))
            shown = record.sequence
        if not record.active:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CliError(
                f"rollout {record.rollout_id} is still {record.status} at {record.weight:g}%; "
                "stopped following (the rollout goes on)",
                ExitCode.TIMEOUT,
                "TIMEOUT",
                hint=f"`configpipe rollout status {record.service} {record.environment} {record.key}"
                f"{_tenant_flag(record.tenant)} --follow` follows it again; raise --timeout for long "
                "strategies.",
                details={"rolloutId": record.rollout_id, "status": record.status},
            )
        _pause(min(interval, remaining))
        latest = log.rollout(record.service, record.environment, record.key, record.tenant)
        if latest is None or latest.rollout_id != record.rollout_id:
            raise invalid(f"rollout {record.rollout_id} was replaced", code="ROLLOUT_NOT_FOUND")
        record = latest
    if out.as_json:
        out.event({"type": "summary", **view}, Text(""))
    else:
        out.out.print(_summary_grid(view))
    return ExitCode.OK if record.status == RolloutStatus.COMPLETED.value else ExitCode.REJECTED


# --- controls ---------------------------------------------------------------------------------------


def _control(
    ctx: typer.Context,
    action: RolloutAction,
    service: str,
    environment: str,
    key: str,
    reason: str,
    rollout_id: str | None,
    control_id: str | None,
    wait: bool,
    timeout: float,
    tenant: str | None = None,
) -> ExitCode:
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    team = require_source(cli)
    if not reason.strip():
        raise invalid("--reason must say why (it is kept in the rollout's record)", code="MISSING_REASON")
    cid = control_id or str(uuid.uuid4())
    fields: dict[str, Any] = {
        "controlId": cid,
        "service": service,
        "environment": environment,
        "key": key,
        "action": action.value,
        "author": cli.author_override or _PLACEHOLDER,
        "reason": reason,
    }
    if rollout_id is not None:
        fields["rolloutId"] = rollout_id
    if tenant is not None:
        fields["tenant"] = tenant
    _parse_control(fields)  # the contract first: no AWS call yet
    registry = cli.registry()
    if registry is not None and team not in registry.publishers_of(service):
        _refuse_control(
            Reason(
                code=ReasonCode.SOURCE_NOT_AUTHORIZED,
                message=f"source {team!r} may not control rollouts of service {service!r}",
                field="source",
            ),
            hint="Publish as the service's team (--source or CONFIGPIPE_SOURCE).",
        )
    if registry is not None and tenant is not None and not registry.may_publish_tenant(service, tenant, team):
        _refuse_control(
            Reason(
                code=ReasonCode.TENANT_NOT_AUTHORIZED,
                message=f"source {team!r} may not control rollouts of tenant {tenant!r} "
                f"of service {service!r}",
                field="source",
            ),
            hint="The registry restricts this tenant's values to some publishers "
            f"(services.{service}.tenants.{tenant}.publishers).",
        )
    log = cli.change_log()
    record = log.rollout(service, environment, key, tenant)
    label = tenant_label(service, environment, key, tenant)
    scope = f"{service} {environment} {key}{_tenant_flag(tenant)}"
    if record is None or not record.active or rollout_id not in (None, record.rollout_id):
        message = "the key has no active rollout" + (f" with id {rollout_id}" if rollout_id else "")
        hint = (
            f"Its last rollout {record.rollout_id} is {record.status}"
            + (" (it is the active one)" if record.active else "")
            + f"; `configpipe rollout status {scope}` shows it."
            if record is not None
            else f"Start one with `configpipe put {service} {environment} {key} VALUE{_tenant_flag(tenant)} "
            "--rollout STRATEGY …`."
        )
        raise CliError(
            f"{message}: {label}",
            ExitCode.INVALID,
            ReasonCode.NO_ACTIVE_ROLLOUT.value,
            hint=hint,
            details={"controlId": cid},
        )
    control = _parse_control({**fields, "rolloutId": record.rollout_id, "author": cli.author()})
    summary = {
        "controlId": cid,
        "rolloutId": record.rollout_id,
        "action": action.value,
        "service": service,
        "environment": environment,
        "key": key,
        **({"tenant": tenant} if tenant is not None else {}),
    }
    bus = cli.bus(team)
    bus.publish([bus.entry(DetailType.CONFIGURATION_ROLLOUT_CONTROL, control)])
    if not wait:
        out.result(
            {**summary, "status": "published"},
            lambda c: c.print(
                Text(f"published {action.value} for rollout {record.rollout_id} of {label} (not waiting)")
            ),
        )
        return ExitCode.OK

    def verdict() -> Any:
        found = log.change(cid, team)
        return found

    outcome = _poll(time.monotonic() + timeout, verdict)
    if outcome is None:
        raise CliError(
            f"published {action.value} for rollout {record.rollout_id}, but it did not take effect within "
            f"{timeout:g}s",
            ExitCode.TIMEOUT,
            "TIMEOUT",
            hint=f"`configpipe rollout status {scope}` shows where it is. Re-running "
            f"with --control-id {cid} is safe (a repeated control is ignored).",
            details=summary,
        )
    if outcome.status == "rejected":
        reasons = [dict(r) for r in outcome.reasons]

        def render_rejected(c: Console) -> None:
            c.print(
                Text("✗ rejected: ", style="bold red")
                + Text(f"{action.value} of rollout {record.rollout_id}")
            )
            for r in reasons:
                c.print(Text("  - ") + reason_text(r))

        out.result({**summary, "status": "rejected", "reasons": reasons}, render_rejected)
        return ExitCode.REJECTED
    latest = log.rollout(service, environment, key, tenant) or record
    view = rollout_view(latest, _now(), _alarm_states(cli, latest))

    def render_applied(c: Console) -> None:
        c.print(
            Text(f"✓ {action.value} applied: ", style="green")
            + Text(f"rollout {record.rollout_id} of {label}")
        )
        c.print(_summary_grid(view))

    out.result({**summary, "status": "applied", "rollout": view}, render_applied)
    return ExitCode.OK


def abort_control(
    cli: CliContext,
    service: str,
    environment: str,
    key: str,
    rollout_id: str,
    reason: str,
    tenant: str | None = None,
) -> ConfigurationRolloutControl:
    """The ``abort`` that ``configpipe rollout abort`` sends, for ``rollout_id`` only (the rollout
    function ignores it if that rollout is no longer the key's active one)."""
    return _parse_control(
        {
            "controlId": str(uuid.uuid4()),
            "rolloutId": rollout_id,
            "service": service,
            "environment": environment,
            "key": key,
            **({"tenant": tenant} if tenant is not None else {}),
            "action": RolloutAction.ABORT.value,
            "author": cli.author(),
            "reason": reason,
        }
    )


def _poll(deadline: float, probe: Callable[[], T | None]) -> T | None:
    """``probe()`` until not None or the deadline (``time.monotonic()``); backing off to 2 s."""
    pause = 0.2
    while True:
        result = probe()
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        _pause(min(pause, remaining))
        pause = min(pause * 1.5, 2.0)


def _parse_control(fields: dict[str, Any]) -> ConfigurationRolloutControl:
    control, reasons = parse_model(ConfigurationRolloutControl, fields)
    if control is None:
        _refuse_control(*reasons)
        raise AssertionError("unreachable")
    return control


def _refuse_control(*reasons: Reason, hint: str | None = None) -> None:
    raise CliError(
        "the rollout control is invalid; nothing was sent",
        ExitCode.INVALID,
        "INVALID_CONTROL",
        hint=hint,
        details={"reasons": [r.to_detail() for r in reasons]},
    )


ControlReasonOpt = Annotated[
    str, typer.Option("--reason", "-r", help="Why (required; kept in the rollout's record).")
]
RolloutIdOpt = Annotated[
    str | None,
    typer.Option(
        "--rollout-id", help="Act only if this is still the key's active rollout.", show_default=False
    ),
]
ControlIdOpt = Annotated[
    str | None,
    typer.Option(
        "--control-id",
        help="Idempotency key (default: a new UUID). Re-run with the same id to retry safely.",
        show_default=False,
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the control took effect.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait (--wait).")]


def _control_command(action: RolloutAction, summary: str) -> Callable[..., ExitCode]:
    """Register the command of one control action (they differ only in the action they send)."""

    def command(
        ctx: typer.Context,
        service: ServiceArg,
        environment: EnvArg,
        key: KeyArg,
        reason: ControlReasonOpt,
        rollout_id: RolloutIdOpt = None,
        control_id: ControlIdOpt = None,
        wait: WaitOpt = True,
        timeout: TimeoutOpt = _WAIT_TIMEOUT,
        tenant: TenantOpt = None,
        source: SourceOpt = None,
        output: OutputOpt = None,
    ) -> ExitCode:
        return _control(
            ctx, action, service, environment, key, reason, rollout_id, control_id, wait, timeout, tenant
        )

    command.__name__ = command.__qualname__ = action.value
    command.__doc__ = summary
    return app.command(action.value)(guarded(command))


promote = _control_command(
    RolloutAction.PROMOTE, "Finish now: the candidate becomes every reader's value (resumes if paused)."
)
pause = _control_command(RolloutAction.PAUSE, "Freeze the rollout's timeline (alarms still roll it back).")
resume = _control_command(
    RolloutAction.RESUME, "Continue a paused rollout (paused time does not count towards the strategy)."
)
abort = _control_command(
    RolloutAction.ABORT, "Back to the stable value now (a new version copies it; history keeps both)."
)


# --- history --------------------------------------------------------------------------------------


def history_rollouts(records: list[VersionRecord], last: RolloutRecord | None) -> dict[int, dict[str, Any]]:
    """Per version: what ``history`` says about rollouts. A version that went out with a rollout
    gets the request and how it ended; a version written to end one (its stable value restored)
    names the rollout and the candidate it replaced."""
    rolled_back = {r.change_id for r in records if _ended_rollout(r)}
    notes: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.rollout is not None:
            if last is not None and last.rollout_id == r.change_id:
                outcome = last.status
            elif rollback_change_id(r.change_id) in rolled_back:
                outcome = "ROLLED_BACK"
            else:
                outcome = RolloutStatus.COMPLETED.value
            notes[r.version] = {"request": r.rollout, "rolloutId": r.change_id, "status": outcome}
        elif _ended_rollout(r):
            notes[r.version] = {
                "endsRollout": r.change_id.removesuffix(":rolled-back"),
                "candidateVersion": r.previous_version,
            }
    return notes


def _ended_rollout(record: VersionRecord) -> bool:
    return (
        record.operation == Operation.ROLLBACK.value
        and record.source == PIPELINE_SOURCE
        and record.change_id.endswith(":rolled-back")
    )


def history_text(note: dict[str, Any]) -> str:
    if "request" in note:
        strategy = note["request"].get("strategy")
        name = strategy if isinstance(strategy, str) else "custom strategy"
        return f"{note['status'].lower().replace('_', ' ')} ({name})"
    return f"ends rollout of v{note['candidateVersion']}"
