"""``configpipe versions prune FUNCTION --keep N [--dry-run]``: delete published versions nobody
needs any more (issue 16).

What is needed is decided by :mod:`configpipe.release.versions` from the function's aliases
(primary version and routing weights) and its releases in the release table (active releases'
target and rollback state, each alias's last rollback target). The references are read again
right before the deletions, and a version that became referenced in between is kept.
Exit codes: 0 done (or dry run), 2 bad input, 5 AWS problems.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.release.versions import LambdaVersions, PruneDecision, needed_versions
from configpipe.release.versions import prune as prune_versions
from configpipe_tools.cli.common import OutputOpt, guarded
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.release_progress import release_store

app = typer.Typer(
    name="versions",
    help="Housekeeping of a function's published versions.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


@app.callback()
def versions(
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
    """Housekeeping of a function's published versions."""
    cli: CliContext = ctx.obj
    cli.release_table_option = release_table


def _needed(cli: CliContext, lam: LambdaVersions, function: str) -> dict[str, list[str]]:
    return needed_versions(lam, release_store(cli), function)


def _render(console: Console, function: str, decisions: list[PruneDecision], dry_run: bool) -> None:
    table = Table(title=f"{function}: versions{' (dry run)' if dry_run else ''}")
    for column in ("version", "action", "why"):
        table.add_column(column)
    for d in decisions:
        action = ("would delete" if dry_run else "deleted") if d.action == "delete" else "keep"
        table.add_row(
            Text(d.version), Text(action, style="red" if d.action == "delete" else "green"), Text(d.reason)
        )
    console.print(table)


@app.command()
@guarded
def prune(
    ctx: typer.Context,
    function: Annotated[
        str, typer.Argument(metavar="FUNCTION", help="The function whose versions to prune.")
    ],
    keep: Annotated[int, typer.Option("--keep", min=0, help="Always keep the newest N published versions.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go and why the rest stays.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Delete FUNCTION's published versions that no alias routes to and no release needs, beyond
    the newest --keep."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    lam = LambdaVersions(cli.client("lambda"))
    decisions = prune_versions(lam, lambda: _needed(cli, lam, function), function, keep, dry_run=dry_run)
    payload: dict[str, Any] = {
        "function": function,
        "keep": keep,
        "dryRun": dry_run,
        "deleted" if not dry_run else "wouldDelete": [d.version for d in decisions if d.action == "delete"],
        "versions": [{"version": d.version, "action": d.action, "reason": d.reason} for d in decisions],
    }
    out.result(payload, lambda c: _render(c, function, decisions, dry_run))
