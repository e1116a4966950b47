"""CLI tests: Typer's runner against moto, with the real validator logic standing in for the
validator Lambda (which in-process moto cannot run).

``validator`` drains what reached the bus and hands every ``ConfigurationChange`` to
:class:`configpipe.write_path.WritePath`, exactly what the Lambda does with the event
EventBridge delivers. It runs in a thread so that ``--wait`` sees the verdict arrive while
it polls, as it would against AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import boto3
import pytest
from typer.testing import CliRunner, Result

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.write_path import Outcome, WritePath
from configpipe_tools.cli.main import app
from configpipe_tools.harness.aws import REGION, Pipeline

CHECKOUT = "configpipe.team.checkout"


@dataclass
class Validator:
    pipeline: Pipeline
    events: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._write_path = WritePath(
            change_log=change_log(self.pipeline),
            registry=lambda: self.pipeline.registry,
            secrets=SecretsKey(
                self.pipeline.secrets_key_id,
                self.pipeline.hash_key_id,
                client=boto3.client("kms", region_name=REGION),
            ),
        )

    def pump(self) -> None:
        """Process everything on the bus so far (safe to call from the test thread)."""
        with self._lock:
            for event in self.pipeline.bus_events():
                self.events.append(event)
                if event["detail-type"] == "ConfigurationChange":
                    self.outcomes.append(self._write_path.handle(event))

    def handle(self, detail: dict[str, Any], source: str = CHECKOUT) -> Outcome:
        """Feed one change straight to the write path (to seed history)."""
        envelope = {"id": f"seed-{detail['changeId']}", "source": source, "detail": detail}
        return self._write_path.handle(envelope)

    def changes(self) -> list[dict[str, Any]]:
        self.pump()
        return [e for e in self.events if e["detail-type"] == "ConfigurationChange"]

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.pump()
                except BaseException as error:  # surfaced in the fixture's teardown
                    self.errors.append(error)
                    return
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=run, name="validator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        stop_thread(self._stop, self._thread)


def stop_thread(stop: threading.Event, thread: threading.Thread | None) -> None:
    """Stop a worker's thread and make sure it ended: a thread left running would keep
    calling moto after the test's mock is gone, in the next test."""
    stop.set()
    if thread is not None:
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError(f"background thread {thread.name!r} did not stop")


def change_log(pipeline: Pipeline) -> ChangeLog:
    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.table_name)
    return ChangeLog(pipeline.table_name, table=table)


class Worker(Protocol):
    """A function's logic run in a thread on what reaches the bus (see :class:`Validator`)."""

    errors: list[BaseException]

    def start(self) -> None: ...

    def stop(self) -> None: ...


W = TypeVar("W", bound=Worker)


def run_in_background(worker: W) -> Iterator[W]:
    """For a fixture: run ``worker`` while the test runs, then re-raise what it failed with.

    moto is serialised by the suite's one lock (``one_moto_lock`` in tests/conftest.py), so
    the worker and the CLI polling on the test thread see the services' atomicity. The worker
    reads the environment (every boto client does), so nothing may rewrite os.environ while it
    runs: such a write fails the test here instead of racing the worker's reads."""
    with frozen_environment():
        worker.start()
        try:
            yield worker
        finally:
            worker.stop()
    if worker.errors:
        raise worker.errors[0]


class EnvironmentRaceError(AssertionError):
    """os.environ written while a background worker runs, or iterated by the worker."""


#: Libraries' own bookkeeping, one key each, set and removed on the test's thread: pytest
#: between a test's phases, Typer around building its parameter adapters on every invoke.
LIBRARY_KEYS = frozenset({"PYTEST_CURRENT_TEST", "PYDANTIC_DISABLE_PLUGINS"})


@contextlib.contextmanager
def frozen_environment(iterating_thread: str | None = None) -> Iterator[None]:
    """While a worker runs, the test may not write os.environ (``CliRunner.invoke(env=...)``,
    ``monkeypatch.setenv``, ...), and only one thread may iterate it (creating a boto client or
    reading a settings model does): the test's own thread, or the thread named
    ``iterating_thread`` when the CLI itself is what runs in the background. Iterating a dict
    while another thread removes a key is what failed before (``KeyError:
    'PYDANTIC_DISABLE_PLUGINS'``, twice: once with the validator in the background, once with
    ``watch`` in the background while the test thread made a boto client).

    pytest and Typer still set and remove their own key (Typer around each invoke); that is
    safe because only the thread that runs Typer iterates the environment while it runs, and
    single-key reads are atomic."""
    owner = threading.get_ident()

    def may_iterate() -> bool:
        if iterating_thread is not None:
            return threading.current_thread().name == iterating_thread
        return threading.get_ident() == owner

    environ_type = type(os.environ)
    originals = {name: getattr(environ_type, name) for name in ("__setitem__", "__delitem__", "__iter__")}

    def write(name: str) -> Any:
        def refuse(self: Any, key: str, *args: Any) -> Any:
            if key not in LIBRARY_KEYS:
                raise EnvironmentRaceError(f"os.environ[{key!r}] written while a background worker runs")
            return originals[name](self, key, *args)

        return refuse

    def iterate(self: Any) -> Any:
        if not may_iterate():
            raise EnvironmentRaceError(
                f"thread {threading.current_thread().name!r} iterated os.environ while another thread"
                " may write it (make its clients first)"
            )
        return originals["__iter__"](self)

    replacements = {name: write(name) for name in ("__setitem__", "__delitem__")}
    replacements["__iter__"] = iterate
    for name, replacement in replacements.items():
        setattr(environ_type, name, replacement)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(environ_type, name, original)


@pytest.fixture
def validator(pipeline: Pipeline) -> Iterator[Validator]:
    """The validator logic, running on what reaches the bus."""
    yield from run_in_background(Validator(pipeline))


@pytest.fixture
def idle_validator(pipeline: Pipeline) -> Validator:
    """The validator logic, run only when the test calls ``pump`` (or ``changes``)."""
    return Validator(pipeline)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, pipeline: Pipeline):  # type: ignore[no-untyped-def]
    """Run ``configpipe`` as team checkout against the moto pipeline."""

    def invoke(*args: str, source: str | None = CHECKOUT, input: str | None = None) -> Result:
        base = ["--secrets-key", pipeline.secrets_key_id]
        if source is not None:
            base += ["--source", source]
        # no env=: CliRunner would rewrite os.environ while the validator thread reads it
        return runner.invoke(app, [*base, *args], input=input)

    return invoke


def seed(
    validator: Validator,
    key: str,
    *values: Any,
    service: str = "checkout",
    env: str = "production",
    author: str = "alice",
    sensitive: bool = False,
    tenant: str | None = None,
) -> None:
    """Append one version per value through the real write path (``tenant``: of that tenant's
    own value of the key)."""
    for i, value in enumerate(values):
        detail: dict[str, Any] = {
            "changeId": f"seed-{uuid.uuid4().hex}",
            "service": service,
            "environment": env,
            "key": key,
            "operation": "put",
            "value": value,
            "author": author,
            "reason": f"seed {i + 1}",
        }
        if sensitive:
            detail["sensitive"] = True
        if tenant is not None:
            detail["tenant"] = tenant
        source = "configpipe.team.platform" if service == "global" else f"configpipe.team.{service}"
        outcome = validator.handle(detail, source=source)
        assert outcome.status == "accepted", outcome


def parse_json(result: Result | ProcessResult) -> Any:
    """stdout of --output json must be exactly one JSON document."""
    return json.loads(result.stdout)


def assert_clean_exit(result: Result | ProcessResult, code: int) -> None:
    """The expected exit code, and no traceback however it failed."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code != 0:
        assert isinstance(result.exception, SystemExit), repr(result.exception)


# --- the CLI as its own process, for what it reads from the environment ----------------------


@dataclass(frozen=True)
class ProcessResult:
    """What ``configpipe`` printed and returned as a process; the attributes the assertions above
    read from a CliRunner result."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def exception(self) -> BaseException | None:
        return SystemExit(self.exit_code) if self.exit_code else None


@pytest.fixture
def cli_process(tmp_path: Any):  # type: ignore[no-untyped-def]
    """Run ``configpipe`` in a child process with exactly the environment a test gives it (on top
    of a bare one: no credentials, no AWS config files, no instance metadata). What the CLI reads
    from its environment is tested this way because no test may change this process's
    os.environ (background threads read it)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    bare = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(str(repo / p) for p in ("functions", "tooling", ".")),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
        "COLUMNS": "220",
    }

    def run(*args: str, env: dict[str, str] | None = None) -> ProcessResult:
        done = subprocess.run(
            [sys.executable, "-c", "from configpipe_tools.cli.main import app; app()", *args],
            env={**bare, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return ProcessResult(done.returncode, done.stdout, done.stderr)

    return run
