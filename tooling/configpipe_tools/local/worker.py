"""Inside one local execution environment: the function's code, as the Lambda Python runtime runs it.

Started by :mod:`configpipe_tools.local.sandbox` with exactly the function's environment (its template
variables plus the runtime's reserved ones), as a script by path. The handler module is imported
from the handler string as soon as the worker starts (Lambda's Init phase); the first line on the
runtime pipe says how that went and how long it took, and the runner times it against the init
limit, not the function's timeout. The module is then reused, as Lambda reuses a warm
environment. Requests arrive as JSON lines on stdin; each answer is one JSON line on the
runtime pipe; stdout and stderr are the function's log stream. Only the standard library is
imported here: nothing of the runner's is in the function's interpreter.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

RUNTIME_FD_VARIABLE = "CONFIGPIPE_LOCAL_RUNTIME_FD"


class LocalLambdaContext:
    """The ``context`` object of the Python runtime (the attributes Powertools reads)."""

    def __init__(self, request_id: str, invoked_arn: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_exception(error)[1:],
    }


def _load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise _InitError(_error(error, "Runtime.ImportModuleError")) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _InitError(
            {
                "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
                "errorType": "Runtime.HandlerNotFound",
                "stackTrace": [],
            }
        )
    return function


class _InitError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["errorMessage"])
        self.payload = payload


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group; the runner, not the handler,
    # decides when an environment ends (by closing stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runtime = os.fdopen(int(os.environ.pop(RUNTIME_FD_VARIABLE)), "w", encoding="utf-8")
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path.pop(0)  # run by path: the runner's modules are not the function's
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    # Init phase: the handler module's static code, timed by the runner against the init limit.
    began = time.monotonic()
    handler: Callable[[Any, Any], Any] | None = None
    init_error: dict[str, Any] | None = None
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as error:
        init_error = error.payload
        print(json.dumps(init_error), flush=True)
    except Exception as error:  # the runtime's own failure, reported the same way
        init_error = _error(error, "Runtime.Unknown")
        print(json.dumps(init_error), flush=True)
    init_ms = (time.monotonic() - began) * 1000
    sys.stderr.flush()
    runtime.write(json.dumps({"ok": init_error is None, "error": init_error, "durationMs": init_ms}) + "\n")
    runtime.flush()
    report_init: float | None = init_ms
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["requestId"]
        started = time.monotonic()
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        answer: dict[str, Any]
        try:
            if handler is None:  # the runner sends no request to a failed init; answer as Lambda would
                raise _InitError(
                    init_error or {"errorMessage": "init failed", "errorType": "Runtime.Unknown"}
                )
            context = LocalLambdaContext(request_id, request["invokedArn"], request["deadlineMs"])
            result = handler(json.loads(request["payload"]), context)
            answer = {"ok": True, "payload": json.dumps(result)}
        except _InitError as error:
            answer = {"ok": False, "error": error.payload}
        except Exception as error:
            answer = {"ok": False, "error": _error(error)}
        if not answer["ok"]:
            # The runtime logs an unhandled error as one JSON line, as Lambda does.
            print(json.dumps({**answer["error"], "requestId": request_id}), flush=True)
        elapsed = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        init_report = f"\tInit Duration: {report_init:.2f} ms" if report_init is not None else ""
        report_init = None
        print(f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms{init_report}", flush=True)
        sys.stderr.flush()
        runtime.write(json.dumps(answer) + "\n")
        runtime.flush()


if __name__ == "__main__":
    main()
