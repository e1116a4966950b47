"""Peak memory of the sample ``<service>-config-update-handler`` as deployed, after it applied
updates, next to what boto3 alone costs in the same kind of process.

Each sample is a fresh interpreter with the function's own environment (as deployed:
``LAMBDA_TASK_ROOT`` set, tracing not disabled, its settings model's variables) that imports the
handler and handles three ``ConfigurationUpdated`` events against an emulator (the local
runner's moto server, in this process, so none of the emulator's memory is counted): an inline
value, a value read from SSM (over the inline limit), and a stale duplicate. The figure is the
process's peak resident set (the kernel's ``VmHWM``, what Lambda's "Max Memory Used" reports:
Linux only), not tracemalloc's Python-heap count. Baselines, interleaved with the samples in
alternating order: a bare interpreter, ``import boto3``, and ``import boto3`` + the DynamoDB
resource and SSM client the handler builds, each making one call. Medians of ``--runs``.

    .venv/bin/python scripts/bench_memory.py [--runs 5] [--compare path/to/other/functions]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_results import load_average, record

from configpipe.contracts import ConfigurationUpdated
from configpipe.values import value_hash
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.local.provision import aws_client
from configpipe_tools.local.server import EmulatorServer
from sample_service.settings import SampleServiceSettings

ROOT = Path(__file__).resolve().parents[1]
TASK_ROOT = ROOT / "functions"
TABLE = "DemoApplied"
SERVICE = "checkout"
LARGE = {"endpoints": [f"https://shard-{i}.example.com" for i in range(60)]}

# Every probe prints its peak RSS in MiB as its last line: the kernel's high-water mark of this
# process image (``VmHWM``, kB). Not ``getrusage().ru_maxrss``: Linux carries that over from the
# parent across fork and exec, so every child would report this (emulator-holding) process's.
PEAK = """
import json
print(json.dumps(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024))
"""

HANDLER = (
    """
import json, sys
events = json.loads(sys.stdin.read())
from sample_service import app
for event in events:
    app.handler(event, None)
"""
    + PEAK
)

BASELINES = {
    "interpreter": PEAK,
    "import boto3": "import boto3\n" + PEAK,
    "boto3 + its clients, one call each": f"""
import boto3
boto3.resource("dynamodb").Table({TABLE!r}).get_item(Key={{"pk": "x", "sk": "y"}})
boto3.client("ssm").describe_parameters(MaxResults=1)
"""
    + PEAK,
}


def updated(version: int, value: Any, key: str, *, inline: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "change_id": f"bench-{key}-{version}",
        "service": SERVICE,
        "environment": "production",
        "key": key,
        "operation": "put",
        "version": version,
        "value_hash": value_hash(value),
        "author": "bench",
        "reason": "memory benchmark",
        "applied_at": datetime.now(UTC),
    }
    if inline:
        fields.update(value=value, value_inline=True)
    else:
        fields["parameter_name"] = f"/config/{SERVICE}/production/{key}"
    detail = ConfigurationUpdated(**fields).to_detail()
    return eventbridge_event(detail, detail_type="ConfigurationUpdated", source="configpipe.pipeline")


def environment(url: str, task_root: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    settings = {
        SampleServiceSettings.env_name("service_name"): SERVICE,
        SampleServiceSettings.env_name("applied_table"): TABLE,
    }
    return {
        **keep,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_ENDPOINT_URL": url,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "POWERTOOLS_SERVICE_NAME": f"{SERVICE}-config-update-handler",
        "POWERTOOLS_METRICS_NAMESPACE": "configpipe",
        "PYTHONPATH": str(task_root),
        **settings,
    }


def peak_mib(code: str, env: dict[str, str], stdin: str = "") -> float:
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--compare", type=Path, help="another copy of functions/, measured in the same rounds"
    )
    args = parser.parse_args()
    server = EmulatorServer("127.0.0.1", 0).start()
    try:
        dynamodb, ssm = aws_client("dynamodb", server.url), aws_client("ssm", server.url)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ssm.put_parameter(
            Name=f"/config/{SERVICE}/production/endpoints", Value=json.dumps(LARGE), Type="String"
        )
        events = json.dumps(
            [
                updated(1, 25, "max_items", inline=True),
                updated(1, LARGE, "endpoints", inline=False),
                updated(1, 25, "max_items", inline=True),  # a duplicate: dropped
            ]
        )
        env = environment(server.url, TASK_ROOT)
        handler: list[float] = []
        other: list[float] = []
        baselines: dict[str, list[float]] = {name: [] for name in BASELINES}
        print(
            f"update handler peak RSS as deployed, {args.runs} interleaved rounds, "
            f"Python {sys.version.split()[0]}"
        )
        print(f"machine: {load_average()} (at start)")
        for round_ in range(args.runs):
            first_handler = round_ % 2 == 0
            if not first_handler:
                for name, code in BASELINES.items():
                    baselines[name].append(peak_mib(code, env))
            for item in ("max_items", "endpoints"):  # every round applies, not drops, the updates
                dynamodb.delete_item(
                    TableName=TABLE, Key={"pk": {"S": SERVICE}, "sk": {"S": f"production#{item}"}}
                )
            handler.append(peak_mib(HANDLER, env, events))
            if args.compare:
                for item in ("max_items", "endpoints"):
                    dynamodb.delete_item(
                        TableName=TABLE, Key={"pk": {"S": SERVICE}, "sk": {"S": f"production#{item}"}}
                    )
                other.append(peak_mib(HANDLER, environment(server.url, args.compare), events))
            if first_handler:
                for name, code in BASELINES.items():
                    baselines[name].append(peak_mib(code, env))
        applied = dynamodb.scan(TableName=TABLE)["Items"]
        assert len(applied) == 2, f"the handler did not apply both updates: {applied}"
    finally:
        server.stop()
    print(f"machine: {load_average()} (at end)")
    figures: dict[str, tuple[float, str]] = {}
    for name, samples in baselines.items():
        print(f"  {name:44} {statistics.median(samples):6.1f} MiB")
    peak = statistics.median(handler)
    print(f"  {'update handler, after 3 events':44} {peak:6.1f} MiB   (target <= 45 MiB)")
    if args.compare:
        print(f"  {'… ' + str(args.compare):44} {statistics.median(other):6.1f} MiB")
    figures["memory.update_handler_peak_mib"] = (peak, "MiB")
    figures["memory.boto3_import_peak_mib"] = (statistics.median(baselines["import boto3"]), "MiB")
    figures["memory.boto3_and_clients_peak_mib"] = (
        statistics.median(baselines["boto3 + its clients, one call each"]),
        "MiB",
    )
    figures["memory.interpreter_peak_mib"] = (statistics.median(baselines["interpreter"]), "MiB")
    record("bench_memory.py", figures)


if __name__ == "__main__":
    main()
