"""Cold-start cost of each Lambda handler module, as a ratio to `import boto3` + its clients.

Each measurement runs in a fresh interpreter (so nothing is cached in sys.modules) and
times, inside it, (a) importing the handler module and (b) building the handler's AWS
dependencies the way its first invocation does. The baseline is `import boto3` plus
creating the same boto3 clients. Prints the median of N runs; run from the repo root:

    .venv/bin/python scripts/bench_cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from configpipe.release.settings import ReleaseSettings
from configpipe.settings import MaterialiserSettings, ValidatorSettings, environment_for
from sample_service.settings import SampleServiceSettings

FAKE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    # Every function's environment, named by its settings model (the only place the names live).
    **environment_for(
        ValidatorSettings,
        change_log_table="ChangeLog",
        registry_parameter="/configpipe/registry",
        secrets_key_id="alias/bench",
        hash_key_id="alias/bench-hmac",
    ),
    **environment_for(
        MaterialiserSettings,
        change_log_table="ChangeLog",
        event_bus_name="configpipe-config-bus",
        secrets_key_id="alias/bench",
        registry_parameter="/configpipe/registry",
        inline_value_max_bytes=1024,
    ),
    **environment_for(SampleServiceSettings, service_name="checkout", applied_table="DemoApplied"),
    **environment_for(
        ReleaseSettings,
        release_table="Releases",
        event_bus_name="configpipe-config-bus",
        release_registry='{"services": {}}',
    ),
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# handler module -> boto3 clients its dependencies use. Every handler module builds its
# dependencies on first invocation the same way: ``default()``.
HANDLERS: dict[str, list[str]] = {
    "configpipe.handlers.validator": ["dynamodb:resource", "kms", "ssm"],
    "configpipe.handlers.materialiser": ["dynamodb:resource", "kms", "ssm", "secretsmanager", "events"],
    "configpipe.handlers.propagator": ["lambda", "ssm", "events"],
    "sample_service.app": ["ssm", "secretsmanager", "dynamodb:resource"],
    "configpipe.handlers.release": ["dynamodb:resource", "lambda", "cloudwatch", "events"],
}

PROBE = """
import importlib, json, time
t0 = time.perf_counter()
module = importlib.import_module({module!r})
t1 = time.perf_counter()
{init}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "init": t2 - t1}}))
"""

BASELINE = """
import json, time
t0 = time.perf_counter()
import boto3
for spec in {clients!r}:
    name, _, kind = spec.partition(":")
    (boto3.resource if kind == "resource" else boto3.client)(name)
print(json.dumps({{"total": time.perf_counter() - t0}}))
"""


def run(code: str) -> dict[str, float]:
    env = {**os.environ, **FAKE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"median of {args.runs} fresh interpreters, Python {sys.version.split()[0]}")
    print(f"{'handler module':36} {'import ms':>10} {'+init ms':>10} {'boto3+clients ms':>17} {'ratio':>6}")
    for module, clients in HANDLERS.items():
        try:
            samples = [run(PROBE.format(module=module, init="module.default()")) for _ in range(args.runs)]
        except subprocess.CalledProcessError as error:
            print(f"{module:36} failed: {error.stderr.strip().splitlines()[-1] if error.stderr else error}")
            continue
        baseline = statistics.median(run(BASELINE.format(clients=clients))["total"] for _ in range(args.runs))
        imp = statistics.median(s["import"] for s in samples)
        total = statistics.median(s["import"] + s["init"] for s in samples)
        figures = f"{imp * 1000:10.1f} {total * 1000:10.1f} {baseline * 1000:17.1f} {total / baseline:6.2f}"
        print(f"{module:36} {figures}")


if __name__ == "__main__":
    main()
