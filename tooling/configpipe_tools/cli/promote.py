"""``configpipe promote SERVICE --from ENV --to ENV [--key K ...] [--dry-run]``: make the target
environment hold what the source holds, one compare-and-set ``put`` per differing key (issue 14).

The plan is :mod:`configpipe_tools.promotion`'s; the changes are published with
:mod:`configpipe_tools.cli.publishing` as the caller's team, exactly like ``snapshot restore``
(``send_all``: every change checked locally first, then all sent, then each verdict), so the
validator judges every one. A secret is re-encrypted inside KMS for the target key and sent as
``encryptedValue``: never decrypted here.

Exit codes: 0 every change accepted (or nothing to promote, or ``--dry-run``); 3 one was rejected
(``VERSION_CONFLICT``: the target changed since the diff — nothing was overwritten); 4 no verdict
in time (re-running is safe: the same plan re-sends the same change ids); 2 bad input, nothing sent.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from configpipe.changelog import ChangeLog
from configpipe.contracts import Operation, check_environment, check_key, check_service
from configpipe.errors import ConfigpipeError
from configpipe.naming import scope_id
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guarded
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import ExitCode, invalid
from configpipe_tools.cli.output import Output, pretty_json, print_change_line
from configpipe_tools.cli.publishing import WriteRequest, prepare, send_all
from configpipe_tools.promotion import ABSENT, SAME, PromotionEntry, plan, promotion_id, view

#: Stands in for a secret's re-encrypted value while the changes are checked (and in a dry run).
_PENDING = b"pending"


@guarded
def promote(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="Service name, or 'global'.")],
    source_env: Annotated[
        str, typer.Option("--from", metavar="ENV", help="Promote from this environment.", show_default=False)
    ],
    target_env: Annotated[
        str, typer.Option("--to", metavar="ENV", help="Into this environment.", show_default=False)
    ],
    keys: Annotated[
        list[str] | None,
        typer.Option(
            "--key", "-k", help="Only this key (repeatable; default: every key).", show_default=False
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why (default: 'promoted from ENV').", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff and the changes; send nothing.")
    ] = False,
    all_keys: Annotated[bool, typer.Option("--all", help="List keys that are the same too.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for every change's verdict.")] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait for all verdicts.")
    ] = 60.0,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> ExitCode:
    """Promote SERVICE's configuration --from one environment --to another: the diff, then one
    put per differing key with expectedVersion (a concurrent edit is a conflict, not overwritten)."""
    cli: CliContext = ctx.obj
    _check(service, source_env, target_env, keys or [])
    log = cli.change_log()
    entries = plan(log, service, source_env, target_env, keys)
    absent = [e.key for e in entries if e.status == ABSENT]
    if absent:
        raise invalid(
            f"no value in {source_env} or {target_env}: {', '.join(absent)}",
            code="KEY_NOT_FOUND",
            hint=f"`configpipe list {service} {source_env}` lists its keys.",
        )
    promoting = [e for e in entries if e.promotes]
    pid = promotion_id(service, source_env, target_env, entries)
    why = reason if reason is not None else f"promoted from {source_env}"
    requests = [_request(log, service, source_env, target_env, e, pid, why) for e in promoting]
    # Every local check first: a promotion is sent whole or not at all (exit 2, nothing sent).
    prepared = [prepare(cli, r) for r in requests]
    changes = [
        {
            "key": e.key,
            "operation": "put",
            "expectedVersion": e.target_pointer,
            "sourceVersion": e.source.version if e.source else None,
            "changeId": e.change_id,
            **({"secret": True} if e.secret else {}),
        }
        for e in promoting
    ]
    payload: dict[str, Any] = {
        "promotionId": pid,
        "service": service,
        "from": source_env,
        "to": target_env,
        "dryRun": dry_run,
        "diff": [
            view(e, log, service, source_env, target_env) for e in entries if all_keys or e.status != SAME
        ],
        "changes": changes,
    }
    code = ExitCode.OK
    if promoting and not dry_run:
        secrets = cli.secrets()
        sealed = []
        for write in prepared:
            request = write.request
            if request.sealed is not None:
                ciphertext = _source_ciphertext(log, service, source_env, request.key)
                request = dataclasses.replace(
                    request,
                    sealed=secrets.re_encrypt(
                        scope_id(service, source_env, request.key),
                        scope_id(service, target_env, request.key),
                        ciphertext,
                    ),
                )
            sealed.append(dataclasses.replace(write, request=request))
        code = send_all(cli, sealed, changes, wait=wait, timeout=timeout)
    Output(cli.json).result(payload, lambda console: _render(console, payload))
    return code


def _check(service: str, source_env: str, target_env: str, keys: list[str]) -> None:
    try:
        check_service(service)
        check_environment(source_env)
        check_environment(target_env)
        for key in keys:
            check_key(key)
    except ValueError as error:
        raise invalid(str(error), code="INVALID_SCOPE") from None
    if source_env == target_env:
        raise invalid("--from and --to name the same environment", code="INVALID_SCOPE")


def _request(
    log: ChangeLog, service: str, source_env: str, target_env: str, entry: PromotionEntry, pid: str, why: str
) -> WriteRequest:
    assert entry.source is not None and entry.change_id is not None
    common: dict[str, Any] = {
        "service": service,
        "environment": target_env,
        "key": entry.key,
        "operation": Operation.PUT,
        "reason": f"promote {pid} of v{entry.source.version} from {source_env}: {why}",
        "expected_version": entry.target_pointer,
        "change_id": entry.change_id,
        "restore_id": pid,
    }
    if entry.source.sensitive:
        # re-encrypted inside KMS just before sending (never in a dry run)
        return WriteRequest(**common, sensitive_flag=True, sealed=_PENDING)
    record = log.version(service, source_env, entry.key, entry.source.version)
    if record is None or record.value_json is None:
        raise ConfigpipeError(
            f"version {entry.source.version} of {scope_id(service, source_env, entry.key)} is missing"
        )
    return WriteRequest(**common, value=json.loads(record.value_json))


def _source_ciphertext(log: ChangeLog, service: str, source_env: str, key: str) -> bytes:
    pointer = log.current(service, source_env, key)
    version = pointer.version_for_readers() if pointer else None
    record = log.version(service, source_env, key, version) if version is not None else None
    if record is None or record.secret_ciphertext is None:
        raise ConfigpipeError(f"{scope_id(service, source_env, key)} has no ciphertext to promote")
    return bytes(record.secret_ciphertext)


def _render(console: Console, payload: dict[str, Any]) -> None:
    head = f"{payload['service']}: {payload['from']} → {payload['to']}"
    if not payload["changes"]:
        console.print(Text(f"{head}: nothing to promote"))
    else:
        console.print(Text(head, style="bold"))
    styles = {"same": "dim", "differs": "yellow", "source-only": "green", "target-only": "cyan"}
    for row in payload["diff"]:
        src, dst = row["sourceVersion"] or "-", row["targetVersion"] or "-"
        versions = f"{payload['from']} v{src}, {payload['to']} v{dst}"
        line = Text(f"  {row['status']:<11} ", style=styles.get(row["status"], "")) + Text(
            f"{row['key']}  {versions}"
        )
        if row.get("secret"):
            line += Text("  (secret)", style="magenta")
        if row["status"] == "target-only":
            line += Text("  kept")
        console.print(line, soft_wrap=True)
        for side, sign in (("target", "-"), ("source", "+")):
            if f"{side}Value" in row and row["status"] != "same":
                console.print(Text(f"      {sign} {pretty_json(row[f'{side}Value'])}"), soft_wrap=True)
    if not payload["changes"]:
        return
    verb = "would send" if payload["dryRun"] else "sent"
    console.print(Text(f"promotion {payload['promotionId']} {verb} {len(payload['changes'])} change(s):"))
    for change in payload["changes"]:
        print_change_line(
            console,
            f"  put {change['key']} (v{change['sourceVersion']} of {payload['from']}; "
            f"expected v{change['expectedVersion']})",
            change,
        )
