"""``configpipe ops …``: what an operator runs when an alarm fires (docs/operations.md).

``ops redrive QUEUE`` re-delivers what a configpipe dead-letter queue holds to the function it
was for; the work is :mod:`configpipe_tools.cli.redrive`. Exit codes: 0 every message was redriven
(or, with ``--dry-run``, would be), 3 some could not be (left in the queue), 2 the queue holds
nothing with a configpipe DLQ shape, 5 an AWS error.
"""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe_tools.cli.common import OutputOpt, guard
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.redrive import (
    FAILED,
    REDRIVEN,
    SKIPPED,
    WOULD_REDRIVE,
    MessageOutcome,
    Redriver,
    RedriveReport,
)

app = typer.Typer(
    name="ops",
    help="Operate the pipeline: recover what landed in a dead-letter queue.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _ops_error(error: BaseException, cli: CliContext) -> CliError | None:
    if isinstance(error, ValueError) and str(error).startswith("not an SQS queue ARN"):
        return invalid(str(error), code="INVALID_QUEUE")
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _MISSING_QUEUE:
        return CliError(
            f"queue not found: {error.response.get('Error', {}).get('Message', '')}",
            ExitCode.AWS,
            "QUEUE_NOT_FOUND",
            "Pass the queue's URL, ARN or name as the alarm names it (its QueueName dimension), "
            "and check --region/--profile.",
        )
    return None


guarded = guard(_ops_error)


@app.callback()
def ops() -> None:
    """Operate the pipeline: recover what landed in a dead-letter queue."""


@app.command()
@guarded
def redrive(
    ctx: typer.Context,
    queue: Annotated[
        str,
        typer.Argument(metavar="QUEUE", help="The dead-letter queue: URL, ARN or name.", show_default=False),
    ],
    function: Annotated[
        str | None,
        typer.Option(
            "--function",
            help="Re-deliver to this function (default: the one each message names; needed for an "
            "EventBridge DLQ message without a TARGET_ARN attribute).",
            show_default=False,
        ),
    ] = None,
    max_messages: Annotated[
        int | None,
        typer.Option("--max", min=1, help="Redrive at most N messages.", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would be redriven; invoke nothing, delete nothing."),
    ] = False,
    output: OutputOpt = None,
) -> ExitCode:
    """Re-deliver the messages of a configpipe dead-letter queue to their function."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    redriver = Redriver(
        sqs=cli.client("sqs"),
        streams=cli.client("dynamodbstreams"),
        lambda_client=cli.client("lambda"),
    )
    url = redriver.queue_url(queue)
    report = redriver.run(url, function=function, max_messages=max_messages, dry_run=dry_run)
    out.result(report.to_dict(), lambda console: _render(console, report))
    if report.all_unrecognised:
        out.err.print(
            Text("error: ", style="bold red")
            + Text("no message in this queue has a configpipe dead-letter shape; nothing was redriven"),
            soft_wrap=True,
        )
        return ExitCode.INVALID
    return ExitCode.OK if report.complete else ExitCode.REJECTED


def _render(console: Console, report: RedriveReport) -> None:
    if not report.outcomes:
        console.print(Text(f"{report.queue_url}: no messages"))
        return
    table = Table(title=f"{'dry run: ' if report.dry_run else ''}{report.queue_url}", title_justify="left")
    table.add_column("message", overflow="fold")
    table.add_column("shape")
    table.add_column("function", overflow="fold")
    table.add_column("what", overflow="fold")
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    for outcome in report.outcomes:
        table.add_row(
            Text(outcome.message_id),
            Text(outcome.shape),
            Text(_short(outcome.function)),
            Text("\n".join(_identity_text(i) for i in outcome.identities) or "—"),
            _status_text(outcome),
            Text(outcome.reason or ""),
        )
    console.print(table)
    summary = report.summary()
    done = f"would redrive {summary['wouldRedrive']}" if report.dry_run else f"redriven {summary['redriven']}"
    console.print(Text(f"{done}, skipped {summary['skipped']}, failed {summary['failed']}"))
    for hint in dict.fromkeys(o.hint for o in report.outcomes if o.hint):
        console.print(Text("hint: ", style="cyan") + Text(str(hint)), soft_wrap=True)
    if report.dry_run:
        console.print(Text("dry run: nothing was invoked or deleted", style="cyan"))


def _status_text(outcome: MessageOutcome) -> Text:
    style = {REDRIVEN: "green", WOULD_REDRIVE: "cyan", SKIPPED: "yellow", FAILED: "bold red"}
    return Text(outcome.status, style=style.get(outcome.status, ""))


def _short(function: str | None) -> str:
    """The function's name (and qualifier) from an ARN, for the table."""
    if not function:
        return "—"
    if function.startswith("arn:") and ":function:" in function:
        return function.split(":function:", 1)[1]
    return function


def _identity_text(identity: dict[str, object]) -> str:
    """detail-type / kind, changeId, service/environment/key, version: never a value."""
    parts = [str(identity.get("detailType") or identity.get("kind") or "")]
    if identity.get("changeId"):
        parts.append(f"change {identity['changeId']}")
    if identity.get("service"):
        parts.append("/".join(str(identity.get(k, "?")) for k in ("service", "environment", "key")))
    if identity.get("version") is not None:
        parts.append(f"v{identity['version']}")
    if identity.get("releaseId"):
        parts.append(f"release {identity['releaseId']}")
    if identity.get("status"):
        parts.append(str(identity["status"]))
    if identity.get("failure"):
        parts.append(f"({identity['failure']})")
    return " ".join(p for p in parts if p)
