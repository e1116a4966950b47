"""``python -m configpipe.local up``: keep the local pipeline running until Ctrl-C.

Exit codes: 0 after a clean stop, 2 for bad usage, 3 when the port is taken, 4 when the stack
cannot be synthesised or read.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from configpipe.local.runner import DEFAULT_PORT, LocalPipeline, Options
from configpipe.local.server import PortInUseError
from configpipe.local.template import TemplateError


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
    up.add_argument("--state-dir", type=Path, help="Where logs, outputs.json and env go (default .local/).")
    up.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        help="Seconds before the first async retry (Lambda: 60); doubled per retry.",
    )
    return root


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
        )
    )
    print("synthesising the stack and starting the emulator ...", flush=True)
    try:
        pipeline.start()
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except TemplateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 4
    try:
        print(pipeline.describe(), flush=True)
        while not stopping.wait(0.5):
            pass
        print("stopping ...", flush=True)
    finally:
        pipeline.stop()
    print("stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
