"""What the command modules share: the error guard, the option types spelled the same in every
command, and the backing-off poll the waits use.

``main`` (configuration) and ``release`` both build on these, so an option means the same and
a failure ends the same way whichever command it comes from.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from configpipe_tools.cli.context import CliContext, OutputFormat
from configpipe_tools.cli.errors import CliError, translate
from configpipe_tools.cli.output import Output

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: A command module's own reading of a failure, tried before the generic :func:`translate`
#: (for failures whose generic message would point at the wrong option).
Explain = Callable[[BaseException, CliContext], CliError | None]


def guard(explain: Explain | None = None) -> Callable[[F], F]:
    """A decorator for commands: apply the per-command ``--output`` / ``--source``, then run the
    command and map known failures to their exit code and a message, never a traceback.

    The command's return value, when truthy, is its exit code. ``ctx.obj`` is the
    :class:`CliContext` (sub-apps share their parent's).
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            cli: CliContext = kwargs["ctx"].obj
            if kwargs.get("output") is not None:
                cli.output = kwargs["output"]
            if kwargs.get("source") is not None:
                cli.source = kwargs["source"]
            try:
                code = command(*args, **kwargs)
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            except Exception as error:
                known = (explain(error, cli) if explain is not None else None) or translate(
                    error, resources=cli.resource_names()
                )
                if known is None:
                    raise
                Output(cli.json).error(known)
                raise typer.Exit(int(known.exit_code)) from None
            if code:
                raise typer.Exit(int(code))

        return wrapper  # type: ignore[return-value]

    return decorate


#: The guard with the generic translation only.
guarded = guard()


def poll_until(deadline: float, probe: Callable[[], T]) -> T | None:
    """``probe()`` until it returns something other than None, or None once ``deadline``
    (``time.monotonic()``) has passed; backing off from 0.2 s to 2 s between calls."""
    pause = 0.2
    while True:
        result = probe()
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(pause, remaining))
        pause = min(pause * 1.5, 2.0)


# --- option types every command module spells the same way -----------------------------------

OutputOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output", "-o", help="table (default) or json; overrides the global --output.", show_default=False
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Your team's event source (overrides the global --source / CONFIGPIPE_SOURCE).",
        show_default=False,
    ),
]
