"""``configpipe local up``: the local pipeline (``python -m configpipe_tools.local up``) from the CLI.

The command only forwards its options to :func:`configpipe_tools.local.__main__.main`, which owns the
defaults, the validation and the exit codes (0 clean stop, 2 bad usage, 3 port taken, 4 the
stack cannot be synthesised or read); see docs/local.md. ``configpipe_tools.local`` (moto, the
runner) is imported only when ``up`` runs, so every other command starts as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="local",
    help="Run the whole pipeline on this machine, on the moto emulator (docs/local.md).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


@app.command()
def up(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to bind [default: 127.0.0.1].", show_default=False)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port [default: 5000; 0 = any free port].", show_default=False),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template", help="Use this template or cdk.out instead of synthesising.", show_default=False
        ),
    ] = None,
    resynth: Annotated[
        bool, typer.Option("--resynth", help="Synthesise even if the cached template is current.")
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where logs, outputs.json, env and the kept state go [default: .local/].",
            show_default=False,
        ),
    ] = None,
    keep_state: Annotated[
        bool,
        typer.Option(
            "--keep-state",
            help="Keep the emulator's data (change log, parameters, secrets, keys) across restarts, in "
            "STATE_DIR/emulator-state.json. Without it every change is lost when `up` stops.",
        ),
    ] = False,
    retry_delay: Annotated[
        float | None,
        typer.Option(
            "--retry-delay",
            help="Seconds before the first async retry (Lambda: 60); doubled per retry [default: 1].",
            show_default=False,
        ),
    ] = None,
    schedule_speedup: Annotated[
        float | None,
        typer.Option(
            "--schedule-speedup",
            metavar="N",
            help="Fire rate() schedules N times as often (the release reconcile tick every 60/N s) "
            "[default: 1].",
            show_default=False,
        ),
    ] = None,
    demo_fixtures: Annotated[
        bool,
        typer.Option(
            "--demo-fixtures/--no-demo-fixtures",
            help="Create the demo stand-ins for the registry's release functions (not part of the stack).",
        ),
    ] = True,
) -> None:
    """Start the emulator and the pipeline; Ctrl-C stops both."""
    argv = ["up"]
    for option, value in (
        ("--host", host),
        ("--port", port),
        ("--template", template),
        ("--state-dir", state_dir),
        ("--retry-delay", retry_delay),
        ("--schedule-speedup", schedule_speedup),
    ):
        # Only what was given: the defaults are configpipe_tools.local's.
        if value is not None:
            argv += [option, str(value)]
    if resynth:
        argv.append("--resynth")
    if keep_state:
        argv.append("--keep-state")
    if not demo_fixtures:
        argv.append("--no-demo-fixtures")

    from configpipe_tools.local.__main__ import main as local_main  # heavy (moto): only when it runs

    raise typer.Exit(local_main(argv))
