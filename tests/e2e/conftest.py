"""One local pipeline per test session, started as a person starts it: ``python -m
configpipe_tools.local up`` in its own process, on a free port. Tests talk to it only over HTTP
(boto3 with ``endpoint_url``, the AWS CLI), never through in-process mocks.

Every wait is a poll with a deadline (:func:`eventually`); every test uses its own change ids
and keys, so tests share the session's pipeline without seeing each other's data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE = 180.0  # a first synth on a cold machine takes a while
#: ``up --schedule-speedup``: the release reconcile tick, rate(1 minute), fires every 2 s, so an
#: alarm rolls a release back within seconds (strategies still count real minutes).
SCHEDULE_SPEEDUP = 30


def eventually(
    probe: Callable[[], Any], *, timeout: float = 120.0, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline.

    The deadline is for something stuck, not slow: a change normally lands in about a second,
    but under ``make test-stress`` (stress-ng on every core) a first delivery took over 20 s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or probe}; last: {last!r}")


def as_json(result: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    """The one JSON document a ``--output json`` command printed, after its exit code."""
    assert result.returncode == code, result.stderr + result.stdout
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Bus:
    """Everything published on the config bus, as a subscriber sees it (catch-all rule → SQS)."""

    sqs: Any
    queue_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def events(self, detail_type: str | None = None, **detail: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.drain()
            if (detail_type is None or e["detail-type"] == detail_type)
            and all(e["detail"].get(k) == v for k, v in detail.items())
        ]


@dataclass
class LocalStack:
    url: str
    state_dir: Path
    outputs: dict[str, str]
    bus: Bus
    process: subprocess.Popen[str]
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"mode": "standard"}),
            )
        return self._clients[service]

    @property
    def bus_name(self) -> str:
        return self.outputs["EventBusName"]

    def put_change(self, source: str, **detail: Any) -> str:
        """Publish a ConfigurationChange as a team would; returns its changeId."""
        detail.setdefault("changeId", f"e2e-{uuid.uuid4()}")
        detail.setdefault("environment", "development")
        detail.setdefault("operation", "put")
        detail.setdefault("author", "e2e")
        detail.setdefault("reason", "end-to-end test")
        response = self.client("events").put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": source,
                    "DetailType": "ConfigurationChange",
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert response["FailedEntryCount"] == 0, response
        return str(detail["changeId"])

    def parameter(self, service: str, environment: str, key: str) -> Any:
        return self.parameter_named(f"/config/{service}/{environment}/{key}")

    def parameter_named(self, name: str) -> Any:
        """A parameter's JSON value (None if it does not exist)."""
        try:
            value = self.client("ssm").get_parameter(Name=name)
        except self.client("ssm").exceptions.ParameterNotFound:
            return None
        return json.loads(value["Parameter"]["Value"])

    def tenant_answer(self, tenant: str, key: str, environment: str = "development") -> dict[str, Any]:
        """What the sample service's Lambda answers for ``tenant`` (its per-tenant read)."""
        response = self.client("lambda").invoke(
            FunctionName="checkout-config-update-handler",
            Payload=json.dumps({"tenant": tenant, "key": key, "environment": environment}).encode(),
        )
        answer: dict[str, Any] = json.loads(response["Payload"].read())
        return answer

    def applied(self, target_service: str, environment: str, key: str) -> dict[str, Any] | None:
        """What ``target_service``'s update handler recorded in the DemoApplied table."""
        items = self.client("dynamodb").scan(TableName=self.outputs["AppliedTableName"], ConsistentRead=True)[
            "Items"
        ]
        for item in items:
            owner = item.get("pk", item.get("service", {})).get("S")
            if owner == target_service and item["sk"]["S"] == f"{environment}#{key}":
                return {k: next(iter(v.values())) for k, v in item.items()}
        return None

    def change_log_items(self, pk_prefix: str) -> list[dict[str, Any]]:
        items = self.client("dynamodb").scan(
            TableName=self.outputs["ChangeLogTableName"], ConsistentRead=True
        )
        return [i for i in items["Items"] if i["pk"]["S"].startswith(pk_prefix)]

    def configpipe(self, *args: str, source: str) -> subprocess.CompletedProcess[str]:
        """The ``configpipe`` CLI as a team runs it against this pipeline: its own process, told
        the stack's resources by option (the delivery ledger's table as ``local up`` exports it),
        with an environment of its own (the test process's is never changed)."""
        outputs = self.outputs
        command = [
            sys.executable,
            "-c",
            "from configpipe_tools.cli.main import app; app()",
            "--endpoint-url",
            self.url,
            "--region",
            "us-east-1",
            "--table",
            outputs["ChangeLogTableName"],
            "--bus",
            outputs["EventBusName"],
            "--secrets-key",
            outputs["SecretsKeyArn"],
            "--registry-parameter",
            outputs["RegistryParameterName"],
            "--source",
            source,
            "--author",
            "e2e",
            *args,
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        if "DeliveryLedgerTableName" in outputs:
            env["CONFIGPIPE_LEDGER_TABLE"] = outputs["DeliveryLedgerTableName"]
        return subprocess.run(
            command, env=env, cwd=REPO, capture_output=True, text=True, check=False, timeout=180
        )

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted((self.state_dir / "logs").glob("*.log"))
        )


def start_up(state_dir: Path, port: int, *options: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m configpipe_tools.local up`` as a person starts it; returns the process and what
    it printed once it is up (through the banner's last line); fails the test if it does not start."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "configpipe_tools.local",
            "up",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--schedule-speedup",
            str(SCHEDULE_SPEEDUP),
            *options,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_DEADLINE
    banner: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("Ctrl-C stops everything"):
            break
    else:
        process.kill()
    if process.poll() is not None or not any("is up on" in line for line in banner):
        process.kill()
        pytest.fail("the local pipeline did not start:\n" + "".join(banner) + (process.stdout.read() or ""))
    return process, "".join(banner)


def stop_up(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a person stops it; asserts a clean stop and returns what it printed since."""
    process.send_signal(signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
    assert process.returncode == 0, f"`up` did not stop cleanly ({process.returncode}):\n{rest}"
    return rest


# Package scope: a worker tears its pipeline down once it has run its last end-to-end file
# (tests/conftest.py hands the e2e files out first), instead of keeping ~12 idle pollers and
# four function workers alive, and using CPU, for the rest of the run.
@pytest.fixture(scope="package")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local")
    port = free_port()
    process, _ = start_up(state_dir, port)
    url = f"http://127.0.0.1:{port}"
    outputs = json.loads((state_dir / "outputs.json").read_text())
    stack = LocalStack(url, state_dir, outputs, bus=None, process=process)  # type: ignore[arg-type]
    stack.bus = _capture_bus(stack)
    try:
        yield stack
    finally:
        workers = _children(process.pid)
        stop_up(process)
        assert workers, "no function worker found: is the check looking at the right process?"
        stray = [pid for pid in workers if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
        assert not stray, f"Ctrl-C left worker processes behind: {stray}"


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _capture_bus(stack: LocalStack) -> Bus:
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName="e2e-bus-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="e2e-capture-all",
        EventBusName=stack.bus_name,
        EventPattern=json.dumps({"source": [{"prefix": "configpipe."}]}),
    )
    events.put_targets(
        Rule="e2e-capture-all", EventBusName=stack.bus_name, Targets=[{"Id": "capture", "Arn": queue_arn}]
    )
    return Bus(sqs, queue_url)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


#: What a failed e2e test shows of the local pipeline's function logs: CI keeps only pytest's
#: output, and "timed out waiting for X" says nothing about which function refused or failed.
FAILURE_LOG_LINES = 12
NOTABLE = re.compile(r'"level":"(WARNING|ERROR|CRITICAL)"|"message":"[^"]*(rejected|refused)')


def pipeline_warnings(state_dir: Path, per_file: int = FAILURE_LOG_LINES) -> str:
    """Each function log's last warnings, errors, rejections and refusals, and traceback lines."""
    sections: list[str] = []
    for path in sorted((state_dir / "logs").glob("*.log")):
        notable = [
            line[:2000]
            for line in path.read_text(errors="replace").splitlines()
            if NOTABLE.search(line) or line.startswith(("Traceback", "  File"))
        ]
        if notable:
            sections.append(f"--- {path.name} (last {min(per_file, len(notable))} of {len(notable)}) ---")
            sections.extend(notable[-per_file:])
    return "\n".join(sections) or "(no warnings or errors logged)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    stack = getattr(item, "funcargs", {}).get("local")
    if report.when == "call" and report.failed and isinstance(stack, LocalStack):
        report.sections.append(("local pipeline warnings and errors", pipeline_warnings(stack.state_dir)))
    return report
