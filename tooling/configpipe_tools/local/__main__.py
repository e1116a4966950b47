"""``python -m configpipe_tools.local up``: keep the local pipeline running until Ctrl-C.

Exit codes: 0 after a clean stop, 2 for bad usage, 3 when the port is taken, 4 when the stack
cannot be synthesised or read, 5 when the state saved by ``--keep-state`` cannot be read.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError

from configpipe_tools.local.fixtures import provision_release_targets
from configpipe_tools.local.runner import DEFAULT_PORT, LocalPipeline, Options
from configpipe_tools.local.server import PortInUseError
from configpipe_tools.local.state import STATE_FILE, StateFileError
from configpipe_tools.local.template import TemplateError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="configpipe local", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="Start the emulator and the pipeline; Ctrl-C stops both.")
    up.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}; 0 = any free)."
    )
    up.add_argument("--template", type=Path, help="Use this template or cdk.out instead of synthesising.")
    up.add_argument(
        "--resynth", action="store_true", help="Synthesise even if the cached template is current."
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        help="Where logs, outputs.json, env and the kept state go (default .local/).",
    )
    up.add_argument(
        "--keep-state",
        action="store_true",
        help="Keep the emulator's data (change log, parameters, secrets, keys) across restarts: restore "
        f"STATE_DIR/{STATE_FILE} at start, save it when `up` stops. Without it every change is lost.",
    )
    up.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        help="Seconds before the first async retry (Lambda: 60); doubled per retry.",
    )
    up.add_argument(
        "--schedule-speedup",
        type=positive_float,
        default=1.0,
        metavar="N",
        help="Fire rate() schedules N times as often (the release reconcile tick: rate(1 minute) "
        "every 60/N s). Release strategies still count real minutes.",
    )
    up.add_argument(
        "--no-demo-fixtures",
        dest="demo_fixtures",
        action="store_false",
        help="Do not create the demo stand-ins for the registry's release functions "
        "(checkout-api, ...: live -> 1, versions 1 and 2). They are not part of the stack.",
    )
    return root


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def up(args: argparse.Namespace) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for in-flight invocations
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pipeline = LocalPipeline(
        Options(
            host=args.host,
            port=args.port,
            template=args.template,
            resynth=args.resynth,
            state_dir=args.state_dir,
            retry_delay=args.retry_delay,
            schedule_speedup=args.schedule_speedup,
            keep_state=args.keep_state,
        )
    )
    print(f"{pipeline.template_source()}, then starting the emulator ...", flush=True)
    try:
        pipeline.start()
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except TemplateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 4
    except StateFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 5
    try:
        banner = pipeline.describe()
        if args.demo_fixtures:
            body, _, tail = banner.rpartition("\nCtrl-C")
            banner = f"{body}{release_fixtures(pipeline)}\nCtrl-C{tail}"
        print(banner, flush=True)
        while not stopping.wait(0.5):
            pass
        print(
            "stopping ..." + (f" (saving the state to {pipeline.state_file})" if args.keep_state else ""),
            flush=True,
        )
    finally:
        pipeline.stop()
    print("stopped.", flush=True)
    return 0


def release_fixtures(pipeline: LocalPipeline) -> str:
    """Create the demo stand-ins (see :mod:`configpipe_tools.local.fixtures`); what ``up`` prints."""
    assert pipeline.stack is not None
    try:
        targets = provision_release_targets(pipeline.client, pipeline.stack)
    except (BotoCoreError, ClientError, RuntimeError) as error:
        return f"\nDemo fixtures: could not create the release stand-ins ({error}); releases need your own.\n"
    if not targets:
        return ""
    lines = "\n".join(f"    {t.describe()}" for t in targets)
    tick = 60 / pipeline.options.schedule_speedup
    hint = "; 30 makes it every 2s" if pipeline.options.schedule_speedup == 1 else ""
    example = targets[0]
    return f"""
Demo fixtures (NOT part of the stack: stand-ins for the teams' own functions, so a release
has an alias to shift; --no-demo-fixtures skips them):
{lines}
  release reconcile tick: every {tick:g}s (--schedule-speedup {pipeline.options.schedule_speedup:g}{hint})
  e.g. publish a ReleaseRequested from {example.service}'s source (docs/releases.md):
  {{"releaseId": "try-1", "function": "{example.function}", "alias": "live", "targetVersion": "2",
   "strategy": "Canary10Percent5Minutes", "author": "you", "reason": "try a canary"}}
"""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
