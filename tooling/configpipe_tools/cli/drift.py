"""``configpipe drift SERVICE ENV [--repair]``: compare every key's parameter / secret with the
change log, now (issue 14; docs/operations.md "Drift").

The check runs in the stack's drift function (``configpipe.handlers.drift``), the one the hourly
schedule runs: it alone may announce ``ConfigurationDriftDetected`` with the pipeline's source
and re-materialise a key, so the operator needs ``lambda:InvokeFunction`` on it and nothing on
the stores. Without ``--repair`` it only reports (and announces); with it, each drifted key is
re-materialised from the change log and checked again.

Exit codes: 0 no drift, or every drifted key repaired; 3 drift left (reported only, or a repair
that did not hold); 2 a bad request; 5 an AWS error (the function missing, or failing).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from configpipe.drift import DriftRequest
from configpipe_tools.cli.common import OutputOpt, guard
from configpipe_tools.cli.context import CliContext, FunctionFailedError
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import Output


def _drift_error(error: BaseException, cli: CliContext) -> CliError | None:
    if isinstance(error, FunctionFailedError):
        return CliError(
            str(error),
            ExitCode.AWS,
            "DRIFT_CHECK_FAILED",
            "Check the drift function's logs; nothing after the failing key was checked.",
        )
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == (
        "ResourceNotFoundException"
    ):
        return CliError(
            f"drift function not found: {error.response.get('Error', {}).get('Message', '')}",
            ExitCode.AWS,
            "DRIFT_FUNCTION_NOT_FOUND",
            "Pass --stack NAME (its DriftFunctionName output names the function); check --region/--profile.",
        )
    return None


def drift(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="Service name, or 'global'.")],
    environment: Annotated[str, typer.Argument(metavar="ENV", help="Environment, e.g. production.")],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Re-materialise each drifted key from the change log (default: report)."
        ),
    ] = False,
    output: OutputOpt = None,
) -> ExitCode:
    """Compare every key of SERVICE in ENV with its parameter / secret; report (or --repair) drift."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    try:
        request = DriftRequest(service=service, environment=environment, repair=repair)
    except ValidationError:
        raise invalid(
            f"{service}/{environment} is not a service and environment", code="INVALID_SCOPE"
        ) from None
    answer = cli.invoke(cli.drift_function_name, request.model_dump(exclude_none=True))
    error = answer.get("error")
    if isinstance(error, dict):
        raise invalid(str(error.get("message", "")), code=str(error.get("code", "DRIFT_REFUSED")))
    if "drifted" not in answer:
        raise CliError(
            f"the drift function {cli.drift_function_name} answered something that is not a report: "
            + json.dumps(answer)[:300],
            ExitCode.AWS,
            "DRIFT_CHECK_FAILED",
        )
    out.result(answer, lambda console: _render(console, f"{service}/{environment}", answer))
    left = [d for d in answer["drifted"] if not d.get("repaired")]
    return ExitCode.REJECTED if left else ExitCode.OK


drift_command = guard(_drift_error)(drift)


def _render(console: Console, scope: str, answer: dict[str, Any]) -> None:
    drifted = answer["drifted"]
    if not drifted:
        console.print(Text(f"✓ {scope}: {answer['checked']} key(s) match the change log", style="green"))
    for entry in drifted:
        version = f"v{entry['version']}" if entry.get("version") is not None else "no value"
        state = (
            Text(" repaired", style="green") if entry["repaired"] else Text(" not repaired", style="bold red")
        )
        console.print(
            Text(f"drift {entry['key']} (should be {version}):", style="yellow") + state, soft_wrap=True
        )
        for finding in entry["findings"]:
            console.print(
                Text(f"    {finding['store']} {finding['name']}: {finding['problem']}"), soft_wrap=True
            )
    if answer.get("inFlight"):
        console.print(Text(f"left to the materialiser (changing now): {', '.join(answer['inFlight'])}"))
    if drifted and answer["mode"] == "report":
        console.print(
            Text("report only: re-run with --repair to re-materialise from the change log"), style="cyan"
        )
