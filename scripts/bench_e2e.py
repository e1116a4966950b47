"""End-to-end latency of the local pipeline: publish → every affected update handler applied,
with a per-hop breakdown; then a burst of changes; then what the first change after ``up`` pays.

Starts ``python -m configpipe_tools.local up`` in its own process (as a person does, on a free
port, with a temporary state directory) and talks to it only over HTTP. A catch-all rule on the
config bus puts every event on an SQS queue, so each hop is timed from what the pipeline
itself records, on this machine's one clock:

- **validator**: publish → the change log's ``appliedAt`` (carried in ``ConfigurationUpdated``)
- **materialiser**: → ``ConfigurationUpdated`` reaching the bus (the capture's ``SentTimestamp``;
  includes the DynamoDB stream wait)
- **propagator**: → the first ``ConfigurationDelivered`` reaching the bus (all invokes accepted)
- **handlers**: → the last affected handler's ``appliedAt`` in the DemoApplied table (the async
  queue, the handler itself; can start before the delivery records are out)

Sequential: ``--changes`` changes one at a time on a warm pipeline, alternating a checkout key
(1 handler) and a global ``feature.`` key (3 handlers). Burst: ``--burst`` changes over
``--burst-keys`` checkout keys published as fast as PutEvents takes them (10 a call);
converged when every key's handler applied its last version.

    .venv/bin/python scripts/bench_e2e.py [--changes 30] [--burst 200] [--burst-keys 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from bench_results import load_average, record
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = "development"
#: who a global ``feature.`` key reaches in the registry of cdk.json
GLOBAL_TARGETS = ("checkout", "payments", "search")
CAPTURED = [
    "ConfigurationChange",
    "ConfigurationUpdated",
    "ConfigurationRejected",
    "ConfigurationDelivered",
    "ConfigurationDeliveryFailed",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Pipeline:
    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "configpipe_tools.local", "up", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        banner = []
        for line in self.process.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        if not any("is up on" in line for line in banner):
            self.process.kill()
            raise SystemExit("the local pipeline did not start:\n" + "".join(banner))
        self.up_at = time.time()
        outputs = json.loads((state_dir / "outputs.json").read_text())
        self.bus_name = outputs["EventBusName"]
        self.applied_table = outputs["AppliedTableName"]
        self._clients: dict[str, Any] = {}
        self.captured: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self.queue_url = self._capture()

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

    def _capture(self) -> str:
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName="bench-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = json.dumps({"detail-type": CAPTURED})
        events.put_rule(Name="bench-capture", EventBusName=self.bus_name, EventPattern=pattern)
        events.put_targets(
            Rule="bench-capture", EventBusName=self.bus_name, Targets=[{"Id": "q", "Arn": arn}]
        )
        return str(url)

    def drain(self) -> None:
        """Move every captured event into :attr:`captured` by changeId, with when the bus sent it."""
        sqs = self.client("sqs")
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"]
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                event = json.loads(message["Body"])
                sent = int(message["Attributes"]["SentTimestamp"]) / 1000
                self.captured.setdefault(event["detail"].get("changeId", ""), []).append((event, sent))
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def publish(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        for start in range(0, len(changes), 10):
            entries = [
                {
                    "EventBusName": self.bus_name,
                    "Source": source,
                    "DetailType": "ConfigurationChange",
                    "Detail": json.dumps(detail),
                }
                for source, detail in changes[start : start + 10]
            ]
            response = self.client("events").put_events(Entries=entries)
            assert response["FailedEntryCount"] == 0, response

    def applied(self, service: str, key: str) -> dict[str, Any] | None:
        item = (
            self.client("dynamodb")
            .get_item(
                TableName=self.applied_table,
                Key={"pk": {"S": service}, "sk": {"S": f"{ENVIRONMENT}#{key}"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def wait_applied(self, targets: dict[tuple[str, str], int], timeout: float = 300) -> float:
        """Poll until each (service, key) applied at least its version; returns the latest appliedAt."""
        deadline = time.monotonic() + timeout
        pending = dict(targets)
        latest = 0.0
        while pending:
            if time.monotonic() > deadline:
                raise SystemExit(f"not converged after {timeout:.0f} s: {sorted(pending)[:5]}")
            for (service, key), version in list(pending.items()):
                item = self.applied(service, key)
                if item is not None and int(item["version"]) >= version:
                    latest = max(latest, epoch(item["appliedAt"]))
                    del pending[(service, key)]
            if pending:
                time.sleep(0.1)  # gently: the emulator serves the pipeline from the same process
        return latest

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def change(service: str, key: str, value: Any, run: str) -> tuple[str, dict[str, Any]]:
    source = "configpipe.team.platform" if service == "global" else f"configpipe.team.{service}"
    detail = {
        "changeId": f"bench-{run}-{uuid.uuid4().hex[:12]}",
        "service": service,
        "environment": ENVIRONMENT,
        "key": key,
        "operation": "put",
        "value": value,
        "author": "bench",
        "reason": "bench_e2e",
    }
    return source, detail


def hops(pipeline: Pipeline, change_id: str, published: float, applied: float) -> dict[str, float]:
    events = pipeline.captured.get(change_id, [])
    updated = [(e, sent) for e, sent in events if e["detail-type"] == "ConfigurationUpdated"]
    delivered = [sent for e, sent in events if e["detail-type"] == "ConfigurationDelivered"]
    if not updated or not delivered:
        return {}
    recorded = epoch(updated[0][0]["detail"]["appliedAt"])
    announced = updated[0][1]
    fanned_out = min(delivered)
    return {
        "validator": recorded - published,
        "materialiser": announced - recorded,
        "propagator": fanned_out - announced,
        "handlers": applied - fanned_out,
        "total": applied - published,
    }


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--burst-keys", type=int, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    figures: dict[str, tuple[float, str]] = {}
    print(f"machine: {load_average()} (at start)")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as state_dir:
        pipeline = Pipeline(Path(state_dir))
        try:
            # First change after `up`: the functions on its path are cold. Then a global key, so
            # every handler is warm before the measured changes (one cold start at a time: on a
            # loaded machine several at once can each outlast the handler's timeout).
            t0 = time.time()
            pipeline.publish([change("checkout", f"warm_{run}", 0, run)])
            pipeline.wait_applied({("checkout", f"warm_{run}"): 1}, timeout=600)
            first_s = time.time() - t0
            print(f"first change after `up` (the functions on its path cold): {first_s:.2f} s")
            figures["e2e.first_change_after_up_s"] = (first_s, "s")
            pipeline.publish([change("global", f"feature.warm_{run}", 0, run)])
            pipeline.wait_applied({(s, f"feature.warm_{run}"): 1 for s in GLOBAL_TARGETS}, timeout=600)

            samples: list[dict[str, float]] = []
            for i in range(args.changes):
                glob = i % 2 == 1
                key = f"feature.seq_{run}" if glob else f"seq_{run}"
                version = i // 2 + 1
                source, detail = change("global" if glob else "checkout", key, i, run)
                targets = {(s, key): version for s in (GLOBAL_TARGETS if glob else ("checkout",))}
                published = time.time()
                pipeline.publish([(source, detail)])
                applied = pipeline.wait_applied(targets)
                pipeline.drain()
                sample = hops(pipeline, detail["changeId"], published, applied)
                if sample:
                    samples.append({**sample, "global": float(glob)})
            print(f"\n{len(samples)} changes one at a time (warm; alternating 1-handler and 3-handler keys):")
            totals = [s["total"] for s in samples]
            p50, p95 = statistics.median(totals), percentile(totals, 95)
            print(
                f"  publish → all handlers applied: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"max {max(totals) * 1000:.0f} ms"
            )
            figures["e2e.latency_p50_ms"] = (p50 * 1000, "ms")
            figures["e2e.latency_p95_ms"] = (p95 * 1000, "ms")
            figures["e2e.latency_max_ms"] = (max(totals) * 1000, "ms")
            for scope, wanted in (("service key", 0.0), ("global key", 1.0)):
                subset = [s["total"] for s in samples if s["global"] == wanted]
                print(f"    {scope}: p50 {statistics.median(subset) * 1000:.0f} ms")
            print("  per hop (median):")
            for hop in ("validator", "materialiser", "propagator", "handlers"):
                median = statistics.median(s[hop] for s in samples)
                print(f"    {hop:13} {median * 1000:7.0f} ms")
                figures[f"e2e.hop.{hop}_ms"] = (median * 1000, "ms")

            record("bench_e2e.py", figures)  # kept even if the burst does not converge

            # Burst: many changes over a few keys, as fast as they can be published.
            keys = [f"burst_{run}_{i}" for i in range(args.burst_keys)]
            burst = [change("checkout", keys[i % len(keys)], i, run) for i in range(args.burst)]
            per_key = {k: sum(1 for _, d in burst if d["key"] == k) for k in keys}
            t0 = time.time()
            pipeline.publish(burst)
            published_s = time.time() - t0
            pipeline.wait_applied({("checkout", k): n for k, n in per_key.items()}, timeout=900)
            burst_s = time.time() - t0
            rate = args.burst / burst_s
            print(
                f"\nburst: {args.burst} changes over {len(keys)} keys published in {published_s:.1f} s, "
                f"all converged in {burst_s:.1f} s: {rate:.2f} changes/s"
            )
            figures["e2e.burst_changes_per_s"] = (rate, "changes/s")
            figures["e2e.burst_converged_s"] = (burst_s, "s")
        finally:
            pipeline.stop()
    print(f"machine: {load_average()} (at end)")
    record("bench_e2e.py", figures)


if __name__ == "__main__":
    main()
