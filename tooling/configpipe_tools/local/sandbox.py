"""Local execution environments for the stack's Lambda functions.

Each function gets a pool of environments; an environment is one Python worker process
(:mod:`configpipe_tools.local.worker`) started with exactly that function's environment variables,
importing the function's handler from its handler string. That is what Lambda gives each
function: its own process, its own module state, its own cold start. (The three demo update
handlers share one handler string and keep per-function state at module level, so running
them in one interpreter would not be faithful.)

An invocation takes an idle environment or starts a new one (up to ``max_concurrency``), runs
with the function's timeout, and is discarded on a timeout or a crash, as Lambda does.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from configpipe_tools.local.worker import RUNTIME_FD_VARIABLE


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Lambda::Function`` of the template, resolved to local names."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout: int = 3
    memory: int = 128
    log_group: str = ""
    #: from the function's EventInvokeConfig (Lambda's defaults otherwise)
    async_retry_attempts: int = 2
    async_max_event_age: int = 21600
    on_failure: str | None = None
    on_success: str | None = None


@dataclass
class InvocationResult:
    request_id: str
    ok: bool
    payload: bytes = b"null"
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0

    def error_payload(self) -> bytes:
        return json.dumps(self.error or {}).encode()


@dataclass
class _Environment:
    process: subprocess.Popen[bytes]
    runtime: int  # read end of the runtime pipe
    buffer: bytes = b""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class FunctionRuntime:
    """The environments of one function."""

    spec: FunctionSpec
    base_environment: dict[str, str]
    task_root: Path
    log_file: Path
    max_concurrency: int = 4
    _idle: list[_Environment] = field(default_factory=list)
    _busy: int = 0
    _closed: bool = False
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def environment_variables(self) -> dict[str, str]:
        """The function's environment: runtime variables, then the template's (which win)."""
        spec = self.spec
        return {
            **self.base_environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group or f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(self.task_root),
            "_HANDLER": spec.handler,
            **spec.environment,
        }

    def invoke(self, payload: bytes, *, invoked_arn: str | None = None) -> InvocationResult:
        environment = self._acquire()
        request_id = str(uuid.uuid4())
        try:
            result = self._run(environment, request_id, payload, invoked_arn or self.spec.arn)
        finally:
            self._release(environment)
        return result

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for environment in idle:
            _stop(environment)

    # --- pool -------------------------------------------------------------------------

    def _acquire(self) -> _Environment:
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name}: the local pipeline is shutting down")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        self._busy += 1
                        return environment
                if self._busy < self.max_concurrency:
                    self._busy += 1
                    break
                self._condition.wait(timeout=1)
        try:
            return self._start()
        except BaseException:
            with self._condition:
                self._busy -= 1
                self._condition.notify()
            raise

    def _release(self, environment: _Environment) -> None:
        with self._condition:
            self._busy -= 1
            if environment.alive and not self._closed:
                self._idle.append(environment)
                environment = None  # type: ignore[assignment]
            self._condition.notify()
        if environment is not None:
            _stop(environment)

    def _start(self) -> _Environment:
        read_end, write_end = os.pipe()
        env = {**self.environment_variables(), RUNTIME_FD_VARIABLE: str(write_end)}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "configpipe_tools.local.worker"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.task_root,
                pass_fds=(write_end,),
            )
        os.close(write_end)
        return _Environment(process=process, runtime=read_end)

    # --- one invocation -----------------------------------------------------------------

    def _run(self, environment: _Environment, request_id: str, payload: bytes, arn: str) -> InvocationResult:
        started = time.monotonic()
        deadline = started + self.spec.timeout
        request = {
            "requestId": request_id,
            "payload": payload.decode(),
            "invokedArn": arn,
            "deadlineMs": int((time.time() + self.spec.timeout) * 1000),
        }
        stdin = environment.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            return self._failed(environment, request_id, started, "Runtime.ExitError", "environment exited")
        line = _read_line(environment, deadline)
        if line is None:
            if environment.alive:
                message = f"Task timed out after {self.spec.timeout:.2f} seconds"
                return self._failed(environment, request_id, started, "Sandbox.Timedout", message)
            code = environment.process.returncode
            return self._failed(environment, request_id, started, "Runtime.ExitError", f"exit status {code}")
        answer = json.loads(line)
        duration = (time.monotonic() - started) * 1000
        if answer["ok"]:
            return InvocationResult(request_id, True, answer["payload"].encode(), duration_ms=duration)
        return InvocationResult(request_id, False, error=answer["error"], duration_ms=duration)

    def _failed(
        self, environment: _Environment, request_id: str, started: float, error_type: str, message: str
    ) -> InvocationResult:
        _stop(environment, kill=True)  # Lambda discards an environment after a timeout or crash
        with open(self.log_file, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {request_id} {message}\n")
        return InvocationResult(
            request_id,
            False,
            error={"errorType": error_type, "errorMessage": message},
            duration_ms=(time.monotonic() - started) * 1000,
        )


def _read_line(environment: _Environment, deadline: float) -> bytes | None:
    with selectors.DefaultSelector() as selector:
        selector.register(environment.runtime, selectors.EVENT_READ)
        while b"\n" not in environment.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(timeout=remaining):
                return None
            chunk = os.read(environment.runtime, 1 << 16)
            if not chunk:
                return None
            environment.buffer += chunk
    line, _, environment.buffer = environment.buffer.partition(b"\n")
    return line


def _stop(environment: _Environment, *, kill: bool = False) -> None:
    process = environment.process
    stdin: IO[bytes] | None = process.stdin
    if kill:
        process.kill()
    elif stdin is not None:
        with contextlib.suppress(OSError):
            stdin.close()  # the worker's loop ends on EOF
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if stdin is not None and not stdin.closed:
        with contextlib.suppress(OSError):
            stdin.close()
    with contextlib.suppress(OSError):
        os.close(environment.runtime)
