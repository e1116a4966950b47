"""Local execution environments for the stack's Lambda functions.

Each function gets a pool of environments; an environment is one Python worker process
(:mod:`configpipe_tools.local.worker`) started with exactly that function's environment variables,
importing the function's handler from its handler string. That is what Lambda gives each
function: its own process, its own module state, its own cold start. (The three demo update
handlers share one handler string and keep per-function state at module level, so running
them in one interpreter would not be faithful.)

An invocation takes an idle environment or starts a new one (up to ``max_concurrency``), runs
with the function's timeout, and is discarded on a timeout or a crash, as Lambda does.

A new environment first runs Lambda's Init phase (the handler module's import) under its own
limit, :data:`INIT_TIMEOUT_S`, outside the invocation's timeout. An init that fails or outlasts
that limit is discarded and retried once more in a fresh environment at the invocation, where
it counts against the function's timeout (Lambda's "suppressed init"). One environment of a
function initialises at a time; other invocations needing a new one wait for it (and take an
environment that became idle meanwhile), so concurrent cold starts on a small machine do not
slow each other into timeouts.
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

from configpipe_tools.local import worker
from configpipe_tools.local.worker import RUNTIME_FD_VARIABLE

#: Lambda's limit on an on-demand environment's Init phase (extensions, runtime, the handler
#: module's static code); it is not part of the function's timeout.
INIT_TIMEOUT_S = 10.0
#: The worker runs as a script, by path: the runner's own copy of it, whatever package an
#: environment's ``PYTHONPATH`` or an editable install would resolve ``configpipe_tools`` to.
_WORKER_SCRIPT = str(Path(worker.__file__).resolve())


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
    #: ReservedConcurrentExecutions: at most this many invocations at once, as in Lambda
    reserved_concurrency: int | None = None


@dataclass
class InvocationResult:
    request_id: str
    ok: bool
    payload: bytes = b"null"
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    #: the Init phase this invocation waited for (a cold start), as Lambda's REPORT line has it
    init_duration_ms: float | None = None

    def error_payload(self) -> bytes:
        return json.dumps(self.error or {}).encode()


@dataclass
class _Environment:
    process: subprocess.Popen[bytes]
    runtime: int  # read end of the runtime pipe
    buffer: bytes = b""
    stopped: bool = False

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
    init_timeout: float = INIT_TIMEOUT_S
    _idle: list[_Environment] = field(default_factory=list)
    _busy: int = 0
    _closed: bool = False
    #: an environment of this function is in its Init phase (one at a time)
    _initialising: bool = False
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
        request_id = str(uuid.uuid4())
        arn = invoked_arn or self.spec.arn
        environment = self._acquire()
        try:
            if environment is None:
                environment, result = self._cold_start(request_id, payload, arn)
            else:
                started = time.monotonic()
                result = self._run(
                    environment, request_id, payload, arn, started, started + self.spec.timeout
                )
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

    def _acquire(self) -> _Environment | None:
        """A warm environment, or ``None``: the caller holds a new environment's slot and the
        function's init turn, and must start it (:meth:`_cold_start`)."""
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name}: the local pipeline is shutting down")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        self._busy += 1
                        return environment
                    _stop(environment)
                if self._busy < self.max_concurrency and not self._initialising:
                    self._busy += 1
                    self._initialising = True
                    return None
                self._condition.wait(timeout=1)

    def _init_done(self) -> None:
        with self._condition:
            self._initialising = False
            self._condition.notify_all()

    def _release(self, environment: _Environment | None) -> None:
        with self._condition:
            self._busy -= 1
            if environment is not None and environment.alive and not self._closed:
                self._idle.append(environment)
                environment = None
            self._condition.notify_all()
        if environment is not None:
            _stop(environment)

    def _cold_start(
        self, request_id: str, payload: bytes, arn: str
    ) -> tuple[_Environment | None, InvocationResult]:
        """Init a new environment, then run the invocation in it. Holds the function's init
        turn until the environment's init has ended, however it ends."""
        environment: _Environment | None = None
        suppressed = False
        try:
            environment = self._start()
            began = time.monotonic()
            init = _read_line(environment, began + self.init_timeout)
            if init is None or not json.loads(init)["ok"]:
                # Lambda discards an environment whose init failed or outlasted its limit and
                # inits a fresh one at the invocation, inside the function's timeout.
                status = "timeout" if init is None else "error"
                elapsed = (time.monotonic() - began) * 1000
                self._log(f"INIT_REPORT Init Duration: {elapsed:.2f} ms\tPhase: init\tStatus: {status}")
                _stop(environment, kill=True)
                suppressed = True
                started = time.monotonic()
                environment = self._start()
                init = _read_line(environment, started + self.spec.timeout)
        except BaseException:
            if environment is not None:
                _stop(environment, kill=True)
            raise
        finally:
            self._init_done()
        if not suppressed:
            started = time.monotonic()
        deadline = started + self.spec.timeout
        if init is None:
            return environment, self._outcome_of_silence(environment, request_id, started)
        answer = json.loads(init)
        if not answer["ok"]:
            self._log(
                f"INIT_REPORT Init Duration: {answer['durationMs']:.2f} ms\tPhase: invoke\tStatus: error"
            )
            _stop(environment, kill=True)
            return environment, InvocationResult(
                request_id, False, error=answer["error"], duration_ms=(time.monotonic() - started) * 1000
            )
        result = self._run(environment, request_id, payload, arn, started, deadline)
        result.init_duration_ms = answer["durationMs"]
        return environment, result

    def _start(self) -> _Environment:
        read_end, write_end = os.pipe()
        env = {**self.environment_variables(), RUNTIME_FD_VARIABLE: str(write_end)}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - this interpreter and our own worker script
                [sys.executable, _WORKER_SCRIPT],
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

    def _run(
        self,
        environment: _Environment,
        request_id: str,
        payload: bytes,
        arn: str,
        started: float,
        deadline: float,
    ) -> InvocationResult:
        request = {
            "requestId": request_id,
            "payload": payload.decode(),
            "invokedArn": arn,
            "deadlineMs": int((time.time() + deadline - time.monotonic()) * 1000),
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
            return self._outcome_of_silence(environment, request_id, started)
        answer = json.loads(line)
        duration = (time.monotonic() - started) * 1000
        if answer["ok"]:
            return InvocationResult(request_id, True, answer["payload"].encode(), duration_ms=duration)
        return InvocationResult(request_id, False, error=answer["error"], duration_ms=duration)

    def _outcome_of_silence(
        self, environment: _Environment, request_id: str, started: float
    ) -> InvocationResult:
        """No answer by the deadline: a timeout, or the environment died."""
        if environment.alive:
            message = f"Task timed out after {self.spec.timeout:.2f} seconds"
            return self._failed(environment, request_id, started, "Sandbox.Timedout", message)
        code = environment.process.returncode
        return self._failed(environment, request_id, started, "Runtime.ExitError", f"exit status {code}")

    def _log(self, line: str) -> None:
        with open(self.log_file, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def _failed(
        self, environment: _Environment, request_id: str, started: float, error_type: str, message: str
    ) -> InvocationResult:
        _stop(environment, kill=True)  # Lambda discards an environment after a timeout or crash
        self._log(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {request_id} {message}")
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
    # Once only: closing the runtime pipe's descriptor twice could close another
    # environment's, which the OS may have given the same number meanwhile.
    if environment.stopped:
        return
    environment.stopped = True
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
