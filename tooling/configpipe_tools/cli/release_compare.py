"""``configpipe release compare FUNCTION [--alias A]``: candidate and baseline side by side
(issue 16) — invocations, error rate, p50/p99 duration, throttles, and the verdict per gate for
a release with an analysis. A Rich table, or JSON with ``--output json``; ``--follow`` refreshes
it every ``--interval`` seconds until the release ends (JSON: one document per line).

The figures come from :func:`configpipe.release.comparison.compare`, the same reads and verdict
rules the release function applies at each step's end.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.release.comparison import Comparison, compare
from configpipe.release.version_metrics import VersionMetrics
from configpipe_tools.cli.common import OutputOpt
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.release_progress import find_release, release_store

_ROWS = (
    ("invocations", "invocations", None),
    ("errors", "errors", "errors"),
    ("error rate %", "errorRate", "errorRate"),
    ("throttles", "throttles", "throttles"),
    ("duration avg ms", "durationAverage", "durationAverage"),
    ("duration p50 ms", "durationP50", "durationP50"),
    ("duration p99 ms", "durationP99", "durationP99"),
)
_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _shown(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def render(console: Console, comparison: Comparison) -> None:
    data = comparison.to_dict()
    state = comparison.state
    title = (
        f"release {state.release_id} of {state.function}:{state.alias} — {state.status.value}, "
        f"{state.percent:g} % on v{state.target_version}"
    )
    table = Table(title=title, caption=f"window {data['windowStart']} → {data['windowEnd']}")
    table.add_column("metric")
    table.add_column(f"baseline v{comparison.baseline.version}", justify="right")
    table.add_column(f"candidate v{comparison.candidate.version}", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("verdict")
    gates = {g["gate"]: g for g in (data["analysis"] or {}).get("gates", [])}
    for label, key, gate in _ROWS:
        result = gates.pop(gate, None) if gate else None
        verdict = result["verdict"] if result else ""
        table.add_row(
            Text(label),
            Text(_shown(data["baseline"][key])),
            Text(_shown(data["candidate"][key])),
            Text(_shown(result.get("limit")) if result else ""),
            Text(verdict, style=_STYLE.get(verdict, "")),
        )
    for name, result in gates.items():  # custom gates
        table.add_row(
            Text(name),
            Text(_shown(result.get("baseline"))),
            Text(_shown(result.get("candidate"))),
            Text(_shown(result.get("limit"))),
            Text(result["verdict"], style=_STYLE.get(result["verdict"], "")),
        )
    console.print(table)
    if data["analysis"]:
        overall = data["analysis"]["verdict"]
        console.print(Text("analysis now: ") + Text(overall, style=_STYLE[overall]))


def compare_command(
    ctx: typer.Context,
    function: Annotated[str, typer.Argument(metavar="FUNCTION", help="The released function's name.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="The alias whose release to compare.")] = "live",
    release_id: Annotated[
        str | None,
        typer.Option(
            "--release-id", help="The release (default: the active or last one).", show_default=False
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Refresh until the release ends (or --timeout).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0, help="Seconds between refreshes.")] = 30.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="With --follow: stop after S seconds.")
    ] = 3600.0,
    output: OutputOpt = None,
) -> None:
    """Candidate and baseline versions side by side, with the verdict per gate."""
    cli: CliContext = ctx.obj
    out = Output(cli.json)
    store = release_store(cli)
    metrics = VersionMetrics(cli.client("cloudwatch"))
    state = find_release(store, function, alias, release_id, active_only=False)
    deadline = time.monotonic() + timeout
    while True:
        comparison = compare(state, metrics, datetime.now(UTC))
        if not follow:
            out.result(comparison.to_dict(), functools.partial(render, comparison=comparison))
            return
        if cli.json:
            out.event(comparison.to_dict(), Text(""))
        else:
            render(out.out, comparison)
        if state.status.terminal or time.monotonic() + interval > deadline:
            return
        time.sleep(interval)
        state = store.get(state.release_id) or state
