"""``configpipe ops …``: what an operator runs when an alarm fires (docs/operations.md).

``ops redrive QUEUE`` asks the stack's redrive function (``configpipe.handlers.redrive``) to
re-deliver what a configpipe dead-letter queue holds to the function it was for: the operator
invokes that one function and nothing else (docs/security.md, H1). Exit codes: 0 every message
was redriven (or, with ``--dry-run``, would be), 3 some could not be (left in the queue), 2 the
queue holds nothing with a configpipe DLQ shape or is not one of the stack's, 5 an AWS error.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.redrive import (
    FAILED,
    MAX_MESSAGES_PER_RUN,
    QUEUE_NOT_REDRIVABLE,
    REDRIVEN,
    SKIPPED,
    WOULD_REDRIVE,
    MessageOutcome,
    RedriveReport,
    RedriveRequest,
)
from configpipe_tools.cli.common import OutputOpt, guard
from configpipe_tools.cli.context import CliContext, FunctionFailedError
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import Output

app = typer.Typer(
    name="ops",
    help="Operate the pipeline: recover what landed in a dead-letter queue.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

_MISSING_FUNCTION = {"ResourceNotFoundException"}


def _ops_error(error: BaseException, cli: CliContext) -> CliError | None:
    if isinstance(error, FunctionFailedError):
        return CliError(
            str(error),
            ExitCode.AWS,
            "REDRIVE_FAILED",
            "Check the redrive function's logs; messages it had not redriven stay in the queue.",
        )
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _MISSING_FUNCTION:
        return CliError(
            f"redrive function not found: {error.response.get('Error', {}).get('Message', '')}",
            ExitCode.AWS,
            "REDRIVE_FUNCTION_NOT_FOUND",
            "Pass --stack NAME (its RedriveFunctionName output names the function), and check "
            "--region/--profile.",
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
        typer.Option(
            "--max",
            min=1,
            max=MAX_MESSAGES_PER_RUN,
            help=f"Redrive at most N messages (one run handles at most {MAX_MESSAGES_PER_RUN}).",
            show_default=False,
        ),
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
    request: dict[str, Any] = {"queue": queue, "dryRun": dry_run}
    if function is not None:
        request["function"] = function
    if max_messages is not None:
        request["maxMessages"] = max_messages
    RedriveRequest.model_validate(request)  # the function's own contract: refuse before sending
    report = RedriveReport.from_dict(_answer(cli.invoke(cli.redrive_function_name, request), cli))
    out.result(report.to_dict(), lambda console: _render(console, report))
    if report.all_unrecognised:
        out.err.print(
            Text("error: ", style="bold red")
            + Text("no message in this queue has a configpipe dead-letter shape; nothing was redriven"),
            soft_wrap=True,
        )
        return ExitCode.INVALID
    return ExitCode.OK if report.complete else ExitCode.REJECTED


def _answer(answer: dict[str, Any], cli: CliContext) -> dict[str, Any]:
    """The redrive function's report, or the CliError its refusal means."""
    error = answer.get("error")
    if isinstance(error, dict):
        code = str(error.get("code", "REDRIVE_REFUSED"))
        hint = (
            "Pass one of the stack's dead-letter queues (URL, ARN or name) as the alarm names it."
            if code == QUEUE_NOT_REDRIVABLE
            else None
        )
        raise invalid(str(error.get("message", "")), code=code, hint=hint)
    if "queueUrl" not in answer:
        raise CliError(
            f"the redrive function {cli.redrive_function_name} answered something that is not a report: "
            + json.dumps(answer)[:300],
            ExitCode.AWS,
            "REDRIVE_FAILED",
            "Check the function's logs (it is configpipe.handlers.redrive) and run the redrive again.",
        )
    return answer


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
