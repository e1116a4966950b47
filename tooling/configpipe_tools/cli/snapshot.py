"""``configpipe snapshot``: record the version of every key of a service, list / show / diff
snapshots, and restore a service to a snapshot or a past moment.

The work is in :mod:`configpipe_tools.snapshots`; a restore's changes are published with
:mod:`configpipe_tools.cli.publishing` exactly like ``configpipe rollback`` / ``delete``, as the
caller's team, so the validator judges every one of them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.contracts import Operation
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guarded
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import ExitCode, invalid
from configpipe_tools.cli.output import Output, pretty_json, print_change_line, reason_text
from configpipe_tools.cli.publishing import WriteRequest, prepare, send_all
from configpipe_tools.cli.rollout import AlarmOpt, BakeOpt, RolloutOpt, TargetOpt, rollout_request
from configpipe_tools.snapshots import (
    EXPORT_FORMAT,
    UNCHANGED,
    RestoreStep,
    Snapshot,
    SnapshotExistsError,
    SnapshotStore,
    capture,
    diff,
    diff_tenants,
    diff_view,
    export_document,
    export_key,
    parse_s3_uri,
    restore_plan,
    state_at,
    state_now,
    step_change_id,
    tenant_state_at,
    tenant_state_now,
)

app = typer.Typer(
    help="Whole-service snapshots (versions of every key) and point-in-time restore.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Labels are sort keys and appear in reasons: short, and no characters that need quoting.
_LABEL = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
#: Each change id is ``<restoreId>.<16 hex>`` and change ids are at most 128 characters.
_RESTORE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")

ServiceArg = Annotated[str, typer.Argument(metavar="SERVICE", show_default=False)]
EnvArg = Annotated[str, typer.Argument(metavar="ENV", show_default=False)]
LabelOpt = Annotated[
    str | None, typer.Option("--label", "-l", help="The snapshot's label.", show_default=False)
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIMESTAMP",
        help="A past moment, ISO 8601 (2026-12-01T10:00:00Z; no zone means UTC).",
        show_default=False,
    ),
]


def _store(cli: CliContext) -> SnapshotStore:
    return SnapshotStore(cli.change_log().table)


def _label(label: str) -> str:
    if not _LABEL.fullmatch(label):
        raise invalid("--label must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="INVALID_LABEL")
    return label


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise invalid(
            f"--at {text!r} is not an ISO 8601 timestamp",
            code="INVALID_TIMESTAMP",
            hint="e.g. 2026-12-01T10:00:00Z",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _snapshot(cli: CliContext, service: str, environment: str, label: str) -> Snapshot:
    found = _store(cli).get(service, environment, _label(label))
    if found is None:
        raise invalid(
            f"{service}/{environment} has no snapshot {label!r}",
            code="SNAPSHOT_NOT_FOUND",
            hint=f"`configpipe snapshot list {service} {environment}` lists its snapshots.",
        )
    return found


@app.command()
@guarded
def create(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    label: Annotated[str, typer.Option("--label", "-l", help="A label no other snapshot of this scope has.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why.")] = "snapshot",
    at: AtOpt = None,
    output: OutputOpt = None,
) -> None:
    """Record the version of every key of SERVICE in ENV now (or --at a past moment)."""
    cli: CliContext = ctx.obj
    _label(label)
    moment = _moment(at) if at is not None else None
    snapshot = capture(cli.change_log(), service, environment, label, cli.author(), reason, at=moment)
    try:
        _store(cli).create(snapshot)
    except SnapshotExistsError:
        raise invalid(
            f"{service}/{environment} already has a snapshot {label!r}",
            code="SNAPSHOT_EXISTS",
            hint="Labels are never reused, so a restore to one always means the same state.",
        ) from None
    payload = _contents(snapshot)
    tenants = f", {snapshot.tenant_count()} tenant values" if snapshot.tenants else ""
    Output(cli.json).result(
        payload,
        lambda console: console.print(
            Text(
                f"✓ snapshot {label!r} of {service}/{environment}: {len(snapshot.keys)} keys{tenants}",
                style="green",
            )
        ),
    )


def _contents(snapshot: Snapshot) -> dict[str, Any]:
    payload = {**snapshot.summary(), "keys": {k: s.to_json() for k, s in sorted(snapshot.keys.items())}}
    if snapshot.tenants:
        payload["tenants"] = snapshot.tenants_json()
    return payload


@app.command("list")
@guarded
def list_snapshots(
    ctx: typer.Context, service: ServiceArg, environment: EnvArg, output: OutputOpt = None
) -> None:
    """The snapshots of SERVICE in ENV, oldest first."""
    cli: CliContext = ctx.obj
    snapshots = _store(cli).list(service, environment)
    payload = {"service": service, "environment": environment, "snapshots": [s.summary() for s in snapshots]}

    def render(console: Console) -> None:
        if not snapshots:
            console.print(Text(f"no snapshots for {service}/{environment}"))
            return
        table = Table(title=f"{service}/{environment}", title_justify="left")
        for column in ("label", "keys", "created", "as of", "who", "why"):
            table.add_column(column, overflow="fold")
        for s in snapshots:
            table.add_row(
                Text(s.label),
                Text(str(len(s.keys))),
                Text(s.created_at),
                Text(s.as_of or ""),
                Text(s.author),
                Text(s.reason),
            )
        console.print(table)

    Output(cli.json).result(payload, render)


@app.command()
@guarded
def show(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    label: Annotated[str, typer.Argument(metavar="LABEL")],
    output: OutputOpt = None,
) -> None:
    """Every key of one snapshot with its version (secrets marked, never shown)."""
    cli: CliContext = ctx.obj
    snapshot = _snapshot(cli, service, environment, label)
    payload = _contents(snapshot)

    def render(console: Console) -> None:
        table = Table(title=f"{service}/{environment} @ {label}", title_justify="left")
        for column in ("key", "tenant", "version", "hash"):
            table.add_column(column, overflow="fold")
        rows = [(k, None, state) for k, state in sorted(snapshot.keys.items())] + [
            (k, t, state) for t, keys in sorted(snapshot.tenants.items()) for k, state in sorted(keys.items())
        ]
        for key, tenant, state in rows:
            hash_text = Text(state.value_hash[:20] + "…")
            if state.sensitive:
                hash_text = Text("secret ", style="magenta") + hash_text
            table.add_row(Text(key), Text(tenant or "-"), Text(str(state.version)), hash_text)
        console.print(table)

    Output(cli.json).result(payload, render)


@app.command("diff")
@guarded
def diff_command(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    label: Annotated[str, typer.Argument(metavar="LABEL", help="The snapshot to compare from.")],
    to: Annotated[
        str | None, typer.Option("--to", metavar="LABEL", help="Compare to this snapshot instead of now.")
    ] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="List unchanged keys too.")] = False,
    output: OutputOpt = None,
) -> ExitCode:
    """What changed since snapshot LABEL (or between LABEL and --to). Exit 0 either way."""
    cli: CliContext = ctx.obj
    log = cli.change_log()
    before = _snapshot(cli, service, environment, label)
    if to is not None:
        later = _snapshot(cli, service, environment, to)
        after, after_tenants = later.keys, later.tenants
    else:
        after, after_tenants = (
            state_now(log, service, environment)[0],
            tenant_state_now(log, service, environment)[0],
        )
    entries = diff(before.keys, after) + diff_tenants(before.tenants, after_tenants)
    rows = diff_view(log, service, environment, [e for e in entries if all_keys or e.status != UNCHANGED])
    payload = {
        "service": service,
        "environment": environment,
        "from": label,
        "to": to or "now",
        "identical": all(e.status == UNCHANGED for e in entries),
        "keys": rows,
    }
    Output(cli.json).result(payload, lambda console: _render_diff(console, f"{label} → {to or 'now'}", rows))
    return ExitCode.OK


def _render_diff(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    changed = [r for r in rows if r["status"] != UNCHANGED]
    if not changed:
        console.print(Text(f"{title}: no differences"))
    else:
        console.print(Text(title, style="bold"))
    styles = {"added": "green", "removed": "red", "changed": "yellow", "unchanged": "dim"}
    for row in rows:
        versions = f"v{row['fromVersion'] or '-'} → v{row['toVersion'] or '-'}"
        name = row["key"] if "tenant" not in row else f"{row['key']} [tenant {row['tenant']}]"
        line = Text(f"  {row['status']:<9} ", style=styles[row["status"]]) + Text(f"{name}  {versions}")
        if row.get("secret"):
            line += Text("  (secret)", style="magenta")
        console.print(line, soft_wrap=True)
        for side, sign in (("from", "-"), ("to", "+")):
            if f"{side}Value" in row:
                console.print(
                    Text(f"      {sign} {pretty_json(row[f'{side}Value'])}", style=styles[row["status"]]),
                    soft_wrap=True,
                )


@app.command()
@guarded
def restore(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (kept with every change).", show_default=False)
    ],
    label: LabelOpt = None,
    at: AtOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff and the changes; publish nothing.")
    ] = False,
    restore_id: Annotated[
        str | None,
        typer.Option(
            "--restore-id",
            help="Idempotency key of the whole restore (default: a new one). Re-run with the same id after "
            "a timeout: changes already sent are duplicates and change nothing.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for every change's verdict.")] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait for all verdicts.")
    ] = 60.0,
    rollout: RolloutOpt = None,
    alarm: AlarmOpt = None,
    bake: BakeOpt = None,
    target: TargetOpt = None,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Bring SERVICE in ENV back to snapshot --label or to the moment --at: one rollback per
    changed or deleted key, one delete per key created since, each compare-and-set on the
    version now, all carrying one restore id. --rollout: the rollbacks go out progressively."""
    cli: CliContext = ctx.obj
    if (label is None) == (at is None):
        raise invalid("give exactly one of --label and --at", code="INVALID_TARGET")
    restore_id = restore_id or f"restore-{uuid.uuid4().hex[:12]}"
    if not _RESTORE_ID.fullmatch(restore_id):
        raise invalid(
            "--restore-id must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="INVALID_RESTORE_ID"
        )
    rollout_detail = rollout_request(Operation.ROLLBACK, rollout, alarm, bake, target)
    if not reason.strip():
        raise invalid("--reason must say why (it is kept in the change log forever)", code="MISSING_REASON")

    log = cli.change_log()
    target_name = f"snapshot {label}" if label is not None else f"{at}"
    if label is not None:
        wanted = _snapshot(cli, service, environment, label)
        before, before_tenants = wanted.keys, wanted.tenants
    else:
        moment = _moment(at or "")
        before = state_at(log, service, environment, moment)
        before_tenants = tenant_state_at(log, service, environment, moment)
    now, pointers = state_now(log, service, environment)
    now_tenants, tenant_pointers = tenant_state_now(log, service, environment)
    entries = diff(before, now) + diff_tenants(before_tenants, now_tenants)
    steps = restore_plan(entries, pointers, restore_id, tenant_pointers)
    changing = [e for e in entries if e.status != UNCHANGED]
    payload: dict[str, Any] = {
        "restoreId": restore_id,
        "service": service,
        "environment": environment,
        "target": {"label": label} if label is not None else {"at": _moment(at or "").isoformat()},
        "dryRun": dry_run,
        "diff": diff_view(log, service, environment, changing),
        "changes": [_step_view(s) for s in steps],
    }
    requests = [
        WriteRequest(
            service,
            environment,
            step.key,
            step.operation,
            f"restore {restore_id} to {target_name}: {reason}",
            to_version=step.to_version,
            expected_version=step.expected_version,
            change_id=step.change_id,
            rollout=rollout_detail if step.operation is Operation.ROLLBACK else None,
            restore_id=restore_id,
            tenant=step.tenant,
        )
        for step in steps
    ]
    # Every local check first: a restore is sent whole or not at all (exit 2, nothing sent).
    prepared = [prepare(cli, request) for request in requests]
    if dry_run or not steps:
        Output(cli.json).result(payload, lambda console: _render_restore(console, payload))
        return ExitCode.OK

    exit_code = send_all(cli, prepared, payload["changes"], wait=wait, timeout=timeout)
    Output(cli.json).result(payload, lambda console: _render_restore(console, payload))
    return exit_code


def _step_view(step: RestoreStep) -> dict[str, Any]:
    view: dict[str, Any] = {
        "key": step.key,
        "operation": step.operation.value,
        "expectedVersion": step.expected_version,
        "changeId": step.change_id,
    }
    if step.to_version is not None:
        view["toVersion"] = step.to_version
    if step.tenant is not None:
        view["tenant"] = step.tenant
    return view


def _render_restore(console: Console, payload: dict[str, Any]) -> None:
    scope = f"{payload['service']}/{payload['environment']}"
    if not payload["changes"]:
        console.print(Text(f"{scope} already matches the target: nothing to restore"))
        return
    _render_diff(console, f"{scope}: target → now", payload["diff"])
    verb = "would send" if payload["dryRun"] else "sent"
    console.print(Text(f"restore {payload['restoreId']} {verb} {len(payload['changes'])} change(s):"))
    for change in payload["changes"]:
        name = change["key"] if "tenant" not in change else f"{change['key']} [tenant {change['tenant']}]"
        what = (
            f"rollback {name} to v{change['toVersion']}"
            if change["operation"] == "rollback"
            else f"delete {name}"
        )
        print_change_line(console, f"  {what} (expected v{change['expectedVersion']})", change)


# --- disaster-recovery export / import ---------------------------------------------------------


@app.command("export")
@guarded
def export_command(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    label: Annotated[str, typer.Argument(metavar="LABEL")],
    to: Annotated[str, typer.Option("--to", metavar="S3_URI", help="s3://bucket/prefix", show_default=False)],
    output: OutputOpt = None,
) -> None:
    """Write snapshot LABEL with its values to S3 (<prefix>/SERVICE/ENV/LABEL.json); secrets
    only as references, never in clear."""
    cli: CliContext = ctx.obj
    try:
        bucket, prefix = parse_s3_uri(to)
    except ValueError as error:
        raise invalid(
            str(error), code="INVALID_S3_URI", hint="e.g. --to s3://my-dr-bucket/configpipe"
        ) from None
    snapshot = _snapshot(cli, service, environment, label)
    document = export_document(cli.change_log(), snapshot)
    key = export_key(prefix, service, environment, label)
    cli.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )
    uri = f"s3://{bucket}/{key}"
    secrets = sorted(k for k, v in document["keys"].items() if "secretRef" in v)
    payload = {"uri": uri, "keyCount": len(document["keys"]), "secretsAsReferences": secrets}
    Output(cli.json).result(
        payload,
        lambda console: console.print(
            Text(f"✓ exported {len(document['keys'])} keys of {service}/{environment}@{label} to {uri}")
            + Text(f" ({len(secrets)} secret(s) as references only)" if secrets else "")
        ),
    )


@app.command("import")
@guarded
def import_command(
    ctx: typer.Context,
    source_uri: Annotated[
        str, typer.Option("--from", metavar="S3_URI", help="The exported object, s3://bucket/key.json")
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept with every change).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes; publish nothing.")] = False,
    import_id: Annotated[
        str | None,
        typer.Option(
            "--import-id",
            help="Idempotency key of the whole import (default: a new one).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for every change's verdict.")] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait for all verdicts.")
    ] = 60.0,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Replay an exported snapshot into a stack where its keys do not exist yet: one put per
    plain key with expectedVersion 0 (an existing key is a conflict, never overwritten). Secrets
    were exported as references: they are listed, to be put again by their owners."""
    cli: CliContext = ctx.obj
    try:
        bucket, key = parse_s3_uri(source_uri)
    except ValueError as error:
        raise invalid(str(error), code="INVALID_S3_URI") from None
    import_id = import_id or f"import-{uuid.uuid4().hex[:12]}"
    if not _RESTORE_ID.fullmatch(import_id):
        raise invalid("--import-id must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="INVALID_IMPORT_ID")
    body = cli.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        document = json.loads(body)
        if document.get("format") != EXPORT_FORMAT:
            raise ValueError
        service, environment, keys = document["service"], document["environment"], document["keys"]
        # (tenant or None, key, entry): the service's keys, then each tenant's own values
        scoped = [(None, k, v) for k, v in sorted(keys.items())] + [
            (t, k, v)
            for t, values in sorted((document.get("tenants") or {}).items())
            for k, v in sorted(values.items())
        ]
        plain = [(t, k, v["value"]) for t, k, v in scoped if "secretRef" not in v]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise invalid(f"{source_uri} is not a configpipe snapshot export", code="INVALID_EXPORT") from None
    secrets = sorted(k if t is None else f"{k} [tenant {t}]" for t, k, v in scoped if "secretRef" in v)
    requests = [
        WriteRequest(
            service,
            environment,
            k,
            Operation.PUT,
            f"import {import_id} of {document.get('label')}: {reason}",
            value=value,
            expected_version=0,
            change_id=step_change_id(import_id, k, t),
            restore_id=import_id,
            tenant=t,
        )
        for t, k, value in plain
    ]
    prepared = [prepare(cli, request) for request in requests]
    changes: list[dict[str, Any]] = [
        {
            "key": w.request.key,
            **({"tenant": w.request.tenant} if w.request.tenant is not None else {}),
            "operation": "put",
            "expectedVersion": 0,
            "changeId": w.change_id,
        }
        for w in prepared
    ]
    payload: dict[str, Any] = {
        "importId": import_id,
        "service": service,
        "environment": environment,
        "label": document.get("label"),
        "dryRun": dry_run,
        "changes": changes,
        "secretsNotImported": secrets,
    }
    code = ExitCode.OK
    if not dry_run:
        code = send_all(cli, prepared, changes, wait=wait, timeout=timeout)

    def render(console: Console) -> None:
        verb = "would put" if dry_run else "put"
        console.print(Text(f"import {import_id} {verb} {len(changes)} key(s) into {service}/{environment}"))
        for change in changes:
            tenant = f" [tenant {change['tenant']}]" if "tenant" in change else ""
            line = Text(f"  {change['key']}{tenant}")
            if "status" in change:
                line += Text(
                    f"  {change['status']}", style="green" if change["status"] == "accepted" else "red"
                )
            console.print(line, soft_wrap=True)
            for reason_ in change.get("reasons", []):
                console.print(Text("      - ") + reason_text(reason_), soft_wrap=True)
        if secrets:
            console.print(
                Text(f"not imported (secrets, exported as references): {', '.join(secrets)}", style="magenta")
            )

    Output(cli.json).result(payload, render)
    return code
