"""The ``configpipe`` command: put / get / delete / list / history / diff / rollback / watch,
and the ``release``, ``rollout``, ``flag`` and ``local`` sub-commands.

Commands are thin: parse options, call the module that owns the work (``publishing`` for
writes, the change log for reads, ``watching`` for watch), render. Every command runs
inside :func:`~configpipe_tools.cli.common.guarded`, which turns known failures into an exit code
and a message.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.changelog import VersionRecord
from configpipe.contracts import Operation, ReasonCode
from configpipe.naming import secret_name
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guarded
from configpipe_tools.cli.context import (
    DEFAULT_BUS,
    DEFAULT_REGISTRY_PARAMETER,
    DEFAULT_SECRETS_KEY,
    DEFAULT_TABLE,
    CliContext,
    OutputFormat,
)
from configpipe_tools.cli.drift import drift_command
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.flags import app as flag_app
from configpipe_tools.cli.local import app as local_app
from configpipe_tools.cli.ops import app as ops_app
from configpipe_tools.cli.output import (
    Output,
    operation_text,
    pretty_json,
    reason_text,
    value_of,
    value_text,
    version_view,
)
from configpipe_tools.cli.promote import promote
from configpipe_tools.cli.publishing import WriteRequest, WriteResult, submit, tenant_label
from configpipe_tools.cli.release import app as release_app
from configpipe_tools.cli.rollout import AlarmOpt, BakeOpt, RolloutOpt, TargetOpt
from configpipe_tools.cli.rollout import app as rollout_app
from configpipe_tools.cli.snapshot import app as snapshot_app
from configpipe_tools.cli.status import HistoryFormat, LedgerTableOpt
from configpipe_tools.cli.versions import app as versions_app
from configpipe_tools.cli.watching import WatchFilter, run_watch

app = typer.Typer(
    name="configpipe",
    help="Change, read, audit and follow runtime configuration published through configpipe.",
    no_args_is_help=True,
    # Locals can hold secret values: never print them, even for a bug's traceback.
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

# --- option types of the configuration commands (--output, --source: cli.common) -----------

ServiceArg = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Service name, or 'global'.", show_default=False)
]
EnvArg = Annotated[
    str, typer.Argument(metavar="ENV", help="Environment, e.g. production.", show_default=False)
]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Configuration key.", show_default=False)]
ReasonOpt = Annotated[
    str, typer.Option("--reason", "-r", help="Why (required; kept in the change log).", show_default=False)
]
ExpectedOpt = Annotated[
    int | None,
    typer.Option(
        "--expected-version",
        min=0,
        help="Compare-and-set: apply only if the key is at this version (0 = must not exist).",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Validate and show the diff against the current value; publish nothing."),
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the pipeline's verdict.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait for the verdict.")]
TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        help="One tenant's own value of the key (overrides the service's for that tenant only).",
        show_default=False,
    ),
]
ChangeIdOpt = Annotated[
    str | None,
    typer.Option(
        "--change-id",
        help="Idempotency key (default: a new UUID). Re-run with the same id to retry safely.",
        show_default=False,
    ),
]


@app.callback()
def main(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(help="AWS profile.", show_default=False)] = None,
    region: Annotated[str | None, typer.Option(help="AWS region.", show_default=False)] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="AWS endpoint (e.g. the local emulator, http://localhost:5000).")
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_BUS", help=f"Config bus [default: {DEFAULT_BUS}].", show_default=False
        ),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_TABLE",
            help=f"Change log table [default: {DEFAULT_TABLE}].",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(envvar="CONFIGPIPE_SOURCE", help="Your team's event source, configpipe.team.<team>."),
    ] = None,
    secrets_key: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_SECRETS_KEY",
            help=f"KMS key id/ARN/alias for sensitive values [default: {DEFAULT_SECRETS_KEY}].",
            show_default=False,
        ),
    ] = None,
    registry_parameter: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_REGISTRY_PARAMETER",
            help=f"SSM parameter holding the registry [default: {DEFAULT_REGISTRY_PARAMETER}].",
            show_default=False,
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_STACK",
            help="Take the bus, table, secrets key and registry names from this CloudFormation stack's "
            "outputs (explicit options and environment variables still win).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", envvar="CONFIGPIPE_OUTPUT")
    ] = OutputFormat.TABLE,
    author: Annotated[
        str | None,
        typer.Option(
            envvar="CONFIGPIPE_AUTHOR", help="Who makes the change (default: your AWS identity ARN)."
        ),
    ] = None,
) -> None:
    """Change, read, audit and follow runtime configuration published through configpipe."""
    ctx.obj = CliContext(
        profile=profile,
        region=region,
        endpoint_url=endpoint_url,
        bus_option=bus,
        table_option=table,
        secrets_key_option=secrets_key,
        registry_parameter_option=registry_parameter,
        stack=stack,
        source=source,
        output=output,
        author_override=author,
    )


# --- writes --------------------------------------------------------------------------------


@app.command()
@guarded
def put(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    reason: ReasonOpt,
    value: Annotated[
        str | None,
        typer.Argument(
            metavar="VALUE",
            help="The value: JSON if it parses (42, true, {...}), else text.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="Read the value from a JSON or YAML file ('-' for stdin).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="VALUE must be valid JSON.")] = False,
    sensitive: Annotated[
        bool, typer.Option("--sensitive", help="A secret: encrypted with KMS before it is sent.")
    ] = False,
    expected_version: ExpectedOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 30.0,
    change_id: ChangeIdOpt = None,
    rollout: RolloutOpt = None,
    alarm: AlarmOpt = None,
    bake: BakeOpt = None,
    target: TargetOpt = None,
    tenant: TenantOpt = None,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Set KEY of SERVICE in ENV to VALUE (or the content of --file); --rollout: progressively;
    --tenant: one tenant's own value."""
    from configpipe_tools.cli.inputs import resolve_put_value
    from configpipe_tools.cli.rollout import rollout_request

    request = WriteRequest(
        service,
        environment,
        key,
        Operation.PUT,
        reason,
        value=resolve_put_value(value, file, as_json),
        sensitive_flag=sensitive,
        expected_version=expected_version,
        change_id=change_id,
        rollout=rollout_request(Operation.PUT, rollout, alarm, bake, target),
        tenant=tenant,
    )
    return _write(ctx, request, dry_run, wait, timeout)


@app.command()
@guarded
def delete(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    reason: ReasonOpt,
    expected_version: ExpectedOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 30.0,
    change_id: ChangeIdOpt = None,
    tenant: TenantOpt = None,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Delete KEY (a new version that marks it deleted; history keeps every value); --tenant: the
    tenant's own value, so the tenant reads the service's again."""
    request = WriteRequest(
        service,
        environment,
        key,
        Operation.DELETE,
        reason,
        expected_version=expected_version,
        change_id=change_id,
        tenant=tenant,
    )
    return _write(ctx, request, dry_run, wait, timeout)


@app.command()
@guarded
def rollback(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    to: Annotated[int, typer.Option("--to", help="The version to restore (a new version copies it).")],
    reason: ReasonOpt,
    expected_version: ExpectedOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 30.0,
    change_id: ChangeIdOpt = None,
    rollout: RolloutOpt = None,
    alarm: AlarmOpt = None,
    bake: BakeOpt = None,
    target: TargetOpt = None,
    tenant: TenantOpt = None,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Restore KEY to the value it had at version --to; --rollout: progressively; --tenant: one of
    the tenant's own versions."""
    from configpipe_tools.cli.rollout import rollout_request

    request = WriteRequest(
        service,
        environment,
        key,
        Operation.ROLLBACK,
        reason,
        to_version=to,
        expected_version=expected_version,
        change_id=change_id,
        rollout=rollout_request(Operation.ROLLBACK, rollout, alarm, bake, target),
        tenant=tenant,
    )
    return _write(ctx, request, dry_run, wait, timeout)


def _write(ctx: typer.Context, request: WriteRequest, dry_run: bool, wait: bool, timeout: float) -> ExitCode:
    cli: CliContext = ctx.obj  # a --source given after the command was applied by `guarded`
    result = submit(cli, request, dry_run=dry_run, wait=wait, timeout=timeout)
    payload = result.to_dict()
    if result.status == "accepted" and request.rollout is not None:
        from configpipe_tools.cli.rollout import started_summary

        result.rollout = started_summary(
            cli.change_log(),
            request.service,
            request.environment,
            request.key,
            result.change_id,
            request.tenant,
        )
        payload = result.to_dict()
    if any(r.get("code") == ReasonCode.ROLLOUT_IN_PROGRESS for r in result.reasons):
        from configpipe_tools.cli.rollout import way_out

        payload["hint"] = way_out(request.service, request.environment, request.key, request.tenant)
    if request.tenant is not None:
        payload["tenant"] = request.tenant
    out = Output(cli.json)
    if result.receivers == [] and result.status in {"accepted", "published", "would-accept"}:
        # issue 14: stored and materialised, but no update handler will ever be told
        out.warn(
            f"no service receives {request.service}/{request.environment}/{request.key}: no registered "
            "service subscribes to it (the registry's keyPrefixes and environments); it is stored, never "
            "delivered"
        )
    out.result(payload, lambda console: _render_write(console, result, payload.get("hint")))
    return result.exit_code


def _render_write(console: Console, result: WriteResult, hint: str | None = None) -> None:
    label = tenant_label(
        result.change["service"],
        result.change["environment"],
        result.change["key"],
        result.change.get("tenant"),
    )
    if result.status == "published":
        console.print(Text(f"published change {result.change_id} for {label} (not waiting for the verdict)"))
    elif result.status == "accepted":
        console.print(
            Text("✓ accepted: ", style="green")
            + Text(f"{label} is now version {result.version} (change {result.change_id})")
        )
        if result.rollout is not None:
            from configpipe_tools.cli.rollout import render_started

            render_started(console, result.rollout)
    elif result.status == "rejected":
        console.print(Text("✗ rejected: ", style="bold red") + Text(f"change {result.change_id} for {label}"))
        for reason in result.reasons:
            console.print(Text("  - ") + reason_text(reason))
        if hint:
            console.print(Text("hint: ", style="cyan") + Text(hint))
    else:
        dry = result.dry_run or {}
        if result.status == "would-accept":
            console.print(
                Text("dry run: ", style="cyan")
                + Text(f"{label} would become version {dry.get('nextVersion')}; nothing was published")
            )
        else:
            console.print(
                Text("dry run: ", style="cyan") + Text(f"the pipeline would reject this change to {label}")
            )
            for reason in result.reasons:
                console.print(Text("  - ") + reason_text(reason))
            if hint:
                console.print(Text("hint: ", style="cyan") + Text(hint))
        if not dry.get("registryChecked"):
            console.print(
                Text("note: the registry was not readable; only the contract was checked", style="yellow")
            )
        if dry.get("secret"):
            console.print(Text("(a secret is involved: no diff is shown)", style="magenta"))
        elif dry.get("diff"):
            _print_diff(console, str(dry["diff"]))
        else:
            console.print(Text("(no change to the value)", style="dim"))


# --- reads ---------------------------------------------------------------------------------


@app.command()
@guarded
def get(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A past version instead of the current one.")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            "-t",
            help="What this tenant reads: its own value, else the service's (--version: its own versions).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Show the current value of KEY (secrets masked, never printed); without --tenant, also how
    many tenants override it."""
    cli: CliContext = ctx.obj
    log = cli.change_log()
    record = (
        log.version(service, environment, key, version, tenant)
        if version is not None
        else log.current_record(service, environment, key, tenant)
    )
    resolved_from = "tenant" if tenant is not None else None
    if tenant is not None and version is None and (record is None or record.deleted):
        # The tenant has no value of its own: it reads the service's (tenant → service).
        record, resolved_from = log.current_record(service, environment, key), "service"
    label = f"{service}/{environment}/{key}"
    if record is None:
        if version is not None:
            raise invalid(
                f"{label} has no version {version}",
                code="UNKNOWN_VERSION",
                hint=f"`configpipe history {service} {environment} {key}` lists its versions.",
            )
        raise invalid(
            f"{label} does not exist",
            code="KEY_NOT_FOUND",
            hint=f"`configpipe list {service} {environment}` lists the keys that exist.",
        )
    if record.deleted and version is None:
        raise CliError(
            f"{label} was deleted in version {record.version}",
            ExitCode.INVALID,
            "KEY_NOT_FOUND",
            hint=f"`configpipe rollback {service} {environment} {key} --to <version>` restores a value.",
            details={"version": record.version},
        )
    view = version_view(record)
    if record.sensitive:
        view["secretName"] = secret_name(service, environment, key, tenant=record.tenant)
    if tenant is not None:
        view.update(tenant=tenant, resolvedFrom=resolved_from)
    elif version is None:
        view["tenantOverrides"] = len(log.tenant_overrides(service, environment, key))
    Output(cli.json).result(view, lambda console: _render_record(console, record, view))


def _render_record(console: Console, record: VersionRecord, view: dict[str, Any] | None = None) -> None:
    view = view or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("key", Text(tenant_label(record.service, record.environment, record.key, record.tenant)))
    if view.get("resolvedFrom") == "service":
        grid.add_row("tenant", Text(f"{view['tenant']} has no value of its own: it reads the service's"))
    grid.add_row("version", Text(str(record.version)))
    grid.add_row("value", value_text(record))
    if record.sensitive:
        grid.add_row(
            "stored in",
            Text(
                "Secrets Manager: "
                + secret_name(record.service, record.environment, record.key, tenant=record.tenant)
            ),
        )
    grid.add_row("hash", Text(record.value_hash))
    grid.add_row("operation", Text(operation_text(record)))
    grid.add_row("author", Text(record.author))
    grid.add_row("when", Text(record.applied_at))
    grid.add_row("why", Text(record.reason))
    grid.add_row("change", Text(record.change_id))
    if "tenantOverrides" in view:
        count = view["tenantOverrides"]
        grid.add_row("tenants", Text(f"{count} tenant{'' if count == 1 else 's'} override this value"))
    console.print(grid)


@app.command("list")
@guarded
def list_keys(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    tenant: TenantOpt = None,
    output: OutputOpt = None,
) -> None:
    """List the keys of SERVICE in ENV with their current versions (--tenant: the keys the tenant
    has its own value of, with the tenant's versions)."""
    cli: CliContext = ctx.obj
    keys = sorted(cli.change_log().keys(service, environment, tenant=tenant))
    payload: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "keys": [{"key": k, "version": v} for k, v in keys],
    }
    title = f"{service}/{environment}" + ("" if tenant is None else f" (tenant {tenant})")
    if tenant is not None:
        payload["tenant"] = tenant

    def render(console: Console) -> None:
        if not keys:
            console.print(Text(f"no keys for {title}"))
            return
        table = Table(title=title, title_justify="left")
        table.add_column("key", overflow="fold")
        table.add_column("version", justify="right")
        for k, v in keys:
            table.add_row(Text(k), Text(str(v)))
        console.print(table)

    Output(cli.json).result(payload, render)


@app.command()
@guarded
def history(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Argument(metavar="[SERVICE]", help="Service name, or 'global'.", show_default=False)
    ] = None,
    environment: Annotated[
        str | None, typer.Argument(metavar="[ENV]", help="Environment.", show_default=False)
    ] = None,
    key: Annotated[
        str | None,
        typer.Argument(
            metavar="[KEY]", help="One key; without it, every key (the audit export).", show_default=False
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the newest N versions.")] = None,
    service_option: Annotated[
        str | None, typer.Option("--service", help="The service (instead of SERVICE).", show_default=False)
    ] = None,
    environment_option: Annotated[
        str | None, typer.Option("--env", help="The environment (instead of ENV).", show_default=False)
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Across keys: only versions from this time (ISO 8601, or 30m / 24h / 7d back from now).",
            show_default=False,
        ),
    ] = None,
    tenant: TenantOpt = None,
    output: Annotated[
        HistoryFormat | None,
        typer.Option(
            "--output", "-o", help="table, json, or csv (the audit export across keys).", show_default=False
        ),
    ] = None,
) -> None:
    """Every version of KEY (--tenant: of the tenant's own value), newest first: who, when, why,
    hash (secrets masked). Without KEY
    (or with --service/--env/--since): every version of every key, oldest first — the audit export."""
    from configpipe_tools.cli.rollout import history_rollouts, history_text

    cli: CliContext = ctx.obj
    fmt = output or HistoryFormat(str(cli.output))
    # `guarded` applied --output as given; only json is the CLI's own JSON mode (csv is this command's)
    cli.output = OutputFormat.JSON if fmt is HistoryFormat.JSON else OutputFormat.TABLE
    if (service and service_option) or (environment and environment_option):
        raise invalid(
            "give the service and environment either as arguments or as options, not both", code="USAGE"
        )
    service, environment = service or service_option, environment or environment_option
    if not service or not environment:
        raise invalid(
            "history needs a service and an environment",
            code="USAGE",
            hint="e.g. configpipe history --service checkout --env production --since 7d --output csv",
        )
    if key is None or since is not None or fmt is HistoryFormat.CSV:
        if tenant is not None:
            raise invalid(
                "--tenant is for one key's history; the audit export (no KEY, --since or csv) covers "
                "the service's own values",
                code="USAGE",
            )
        _audit_export(cli, service, environment, key, since, fmt)
        return
    log = cli.change_log()
    records = list(log.history(service, environment, key, newest_first=True, limit=limit, tenant=tenant))
    label = tenant_label(service, environment, key, tenant)
    if not records:
        raise invalid(
            f"{label} has no history",
            code="KEY_NOT_FOUND",
            hint=f"`configpipe list {service} {environment}` lists the keys that exist.",
        )
    rollouts = history_rollouts(records, log.rollout(service, environment, key, tenant))
    payload: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "key": key,
        **({"tenant": tenant} if tenant is not None else {}),
        "versions": [
            {**version_view(r), **({"rollout": rollouts[r.version]} if r.version in rollouts else {})}
            for r in records
        ],
    }

    def render(console: Console) -> None:
        table = Table(title=label, title_justify="left")
        for column in ("version", "operation", "who", "when", "why", "hash"):
            table.add_column(column, overflow="fold")
        if rollouts:  # only for keys that ever rolled out
            table.add_column("rollout", overflow="fold")
        for r in records:
            hash_text = Text(r.value_hash[:20] + "…" if len(r.value_hash) > 21 else r.value_hash)
            if r.sensitive:
                hash_text = Text("secret ", style="magenta") + hash_text
            table.add_row(
                Text(str(r.version)),
                Text(operation_text(r) + (" (deleted)" if r.deleted and r.operation != "delete" else "")),
                Text(r.author),
                Text(r.applied_at),
                Text(r.reason),
                hash_text,
                *(
                    [Text(history_text(rollouts[r.version]) if r.version in rollouts else "")]
                    if rollouts
                    else []
                ),
            )
        console.print(table)

    Output(cli.json).result(payload, render)


def _audit_export(
    cli: CliContext, service: str, environment: str, key: str | None, since: str | None, fmt: HistoryFormat
) -> None:
    from configpipe_tools.cli.status import audit_csv, audit_rows, parse_since, render_audit

    start = parse_since(since) if since else None
    rows = audit_rows(cli.change_log(), service, environment, start)
    if key is not None:
        rows = [r for r in rows if r["key"] == key]
    if fmt is HistoryFormat.CSV:
        typer.echo(audit_csv(rows), nl=False)
        return
    payload = {
        "service": service,
        "environment": environment,
        "since": start.isoformat() if start else None,
        "versions": rows,
    }
    Output(cli.json).result(payload, lambda console: render_audit(console, payload))


@app.command()
@guarded
def status(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: Annotated[
        str | None, typer.Argument(metavar="[KEY]", help="Only this key.", show_default=False)
    ] = None,
    require_converged: Annotated[
        bool,
        typer.Option(
            "--require-converged",
            help="Exit 6 unless every subscribed service applied every key (CI/CD gate).",
        ),
    ] = False,
    ledger_table: LedgerTableOpt = None,
    tenant: TenantOpt = None,
    output: OutputOpt = None,
) -> ExitCode | int:
    """Per key: the current version (and rollout), each subscribed service's applied version,
    lag and refusals, from the delivery ledger. --tenant: of that tenant's own values."""
    from configpipe_tools.cli.status import NOT_CONVERGED_EXIT, delivery_ledger, render_status, status_payload

    cli: CliContext = ctx.obj
    payload = status_payload(
        cli.change_log(),
        delivery_ledger(cli, ledger_table),
        cli.registry(),
        service,
        environment,
        key,
        tenant=tenant,
    )
    Output(cli.json).result(payload, lambda console: render_status(console, payload))
    return NOT_CONVERGED_EXIT if require_converged and not payload["converged"] else ExitCode.OK


@app.command()
@guarded
def diff(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyArg,
    a: Annotated[
        int | None, typer.Argument(metavar="[A]", help="From version.", min=1, show_default=False)
    ] = None,
    b: Annotated[
        int | None, typer.Argument(metavar="[B]", help="To version.", min=1, show_default=False)
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            "-t",
            help="Without A B: the tenant's current value against the service's; with A B: the tenant's "
            "own versions.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Unified diff of the JSON of versions A and B of KEY (refused for secrets); --tenant without
    A B: the tenant's value against the service's."""
    cli: CliContext = ctx.obj
    log = cli.change_log()
    if a is None or b is None:
        if tenant is None or a is not None:
            raise invalid(
                "diff needs two versions A B (or --tenant alone: the tenant against the service)",
                code="MISSING_VERSIONS",
            )
        sides = [
            (f"{service}/{environment}/{key} (service)", log.current_record(service, environment, key)),
            (
                tenant_label(service, environment, key, tenant),
                log.current_record(service, environment, key, tenant),
            ),
        ]
    else:
        sides = [
            (
                f"{tenant_label(service, environment, key, tenant)} v{v}",
                log.version(service, environment, key, v, tenant),
            )
            for v in (a, b)
        ]
    label = tenant_label(service, environment, key, tenant)
    texts = []
    for (_, record), version in zip(sides, (a, b), strict=True):
        if record is None and version is not None:
            raise invalid(
                f"{label} has no version {version}",
                code="UNKNOWN_VERSION",
                hint=f"`configpipe history {service} {environment} {key}"
                + (f" --tenant {tenant}" if tenant else "")
                + "` lists its versions.",
            )
        if record is not None and record.sensitive and not record.deleted:
            raise invalid(
                f"{label} is a secret: diff would reveal it, so it is refused",
                code="SECRET_NOT_SHOWN",
                hint="Compare the hashes in `configpipe history` to see whether two versions differ.",
            )
        texts.append("" if record is None or record.deleted else pretty_json(value_of(record)) + "\n")
    text = "".join(
        difflib.unified_diff(
            texts[0].splitlines(keepends=True),
            texts[1].splitlines(keepends=True),
            fromfile=sides[0][0],
            tofile=sides[1][0],
        )
    )
    payload: dict[str, Any] = {
        "service": service,
        "environment": environment,
        "key": key,
        **({"tenant": tenant} if tenant is not None else {}),
        "from": a if a is not None else "service",
        "to": b if b is not None else "tenant",
        "identical": not text,
        "diff": text,
    }

    def render(console: Console) -> None:
        if text:
            _print_diff(console, text)
        else:
            console.print(Text(f"{sides[0][0]} and {sides[1][0]} are identical"))

    Output(cli.json).result(payload, render)


def _print_diff(console: Console, text: str) -> None:
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in text.splitlines():
        style = "bold" if line.startswith(("+++", "---")) else styles.get(line[:1], "")
        console.print(Text(line, style=style), soft_wrap=True)


# --- watch ---------------------------------------------------------------------------------


@app.command()
@guarded
def watch(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this service (and the global keys it gets).")
    ] = None,
    environment: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Only this key.")] = None,
    since_version: Annotated[
        int | None,
        typer.Option(
            "--since-version",
            min=0,
            help="First replay, from the change log, every version newer than N of each key in scope "
            "(needs --service).",
        ),
    ] = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Stop after N live events.")
    ] = None,
    ledger_table: LedgerTableOpt = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Stop after this many seconds of following.")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", "-t", help="Only this tenant's own values (default: only service values)."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Follow updates and deliveries; show per service which version it has applied (with
    --since-version, first rebuilt from the delivery ledger)."""
    from configpipe_tools.cli.status import delivery_ledger

    cli: CliContext = ctx.obj
    run_watch(
        cli,
        Output(cli.json),
        WatchFilter(service=service, environment=environment, key=key, tenant=tenant),
        since_version=since_version,
        max_events=max_events,
        timeout=timeout,
        ledger=delivery_ledger(cli, ledger_table) if since_version is not None else None,
    )


app.add_typer(release_app, name="release")
app.add_typer(rollout_app, name="rollout")
app.add_typer(flag_app, name="flag")
app.add_typer(local_app, name="local")
app.add_typer(ops_app, name="ops")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(versions_app, name="versions")
# issue 14: know what every service runs
app.command("drift")(drift_command)
app.command("promote")(promote)


if __name__ == "__main__":
    app()
