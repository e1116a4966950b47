"""Cold start of each Lambda handler as deployed, as a ratio to ``import boto3`` + the boto3
clients that handler really builds.

As deployed means: ``LAMBDA_TASK_ROOT`` is set (the X-Ray SDK takes its in-Lambda path, and
Powertools' Tracer is on: it patches libraries at import), tracing is not disabled, and the
function's own environment (from its settings model) is present. Each sample is a fresh
interpreter that times (a) importing the handler module and (b) ``default()``, what its first
invocation builds. The baseline builds exactly the clients and resources that ``default()``
was seen to build (found once per handler by recording boto3's ``client``/``resource`` calls
in a separate interpreter). Handler and baseline samples are interleaved, in alternating
order, so a drifting machine load hits both alike; the ratio is the median of the paired
ratios. Run from the repo root:

    .venv/bin/python scripts/bench_cold_start.py [--runs 15]

The benchmark never touches this process's environment: each subprocess gets its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench_results import load_average, record

from configpipe.release.settings import ReleaseSettings
from configpipe.settings import (
    MaterialiserSettings,
    PropagatorSettings,
    RolloutSettings,
    ValidatorSettings,
    environment_for,
)
from sample_service.settings import SampleServiceSettings

ROOT = Path(__file__).resolve().parents[1]
TASK_ROOT = ROOT / "functions"

BASE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    # What Lambda sets: the X-Ray SDK and Powertools decide "in Lambda" from it.
    "LAMBDA_TASK_ROOT": str(TASK_ROOT),
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "configpipe",
    "PYTHONPATH": str(TASK_ROOT),
}

# handler module -> that function's own environment (named by its settings model)
HANDLERS: dict[str, dict[str, str]] = {
    "configpipe.handlers.validator": environment_for(
        ValidatorSettings,
        change_log_table="ChangeLog",
        registry_parameter="/configpipe/registry",
        secrets_key_id="alias/bench",
        hash_key_id="alias/bench-hmac",
    ),
    "configpipe.handlers.materialiser": environment_for(
        MaterialiserSettings,
        change_log_table="ChangeLog",
        event_bus_name="configpipe-config-bus",
        secrets_key_id="alias/bench",
        registry_parameter="/configpipe/registry",
        inline_value_max_bytes=1024,
    ),
    "configpipe.handlers.propagator": environment_for(
        PropagatorSettings, event_bus_name="configpipe-config-bus", registry_parameter="/configpipe/registry"
    ),
    "configpipe.handlers.rollout": environment_for(
        RolloutSettings,
        change_log_table="ChangeLog",
        registry_parameter="/configpipe/registry",
        release_table="Releases",
    ),
    "configpipe.handlers.release": environment_for(
        ReleaseSettings,
        release_table="Releases",
        event_bus_name="configpipe-config-bus",
        release_registry='{"services": {}}',
    ),
    "sample_service.app": environment_for(
        SampleServiceSettings, service_name="checkout", applied_table="DemoApplied"
    ),
}

PROBE = """
import importlib, json, time
t0 = time.perf_counter()
module = importlib.import_module({module!r})
t1 = time.perf_counter()
module.default()
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "init": t2 - t1}}))
"""

# Which clients/resources default() builds: boto3.Session.client/resource, outermost calls only
# (a resource builds its client through Session.client).
DISCOVER = """
import importlib, json
import boto3.session
built, depth = [], [0]
def recording(kind, original):
    def wrapper(self, service_name, *args, **kwargs):
        if depth[0] == 0:
            built.append(f"{{service_name}}:{{kind}}")
        depth[0] += 1
        try:
            return original(self, service_name, *args, **kwargs)
        finally:
            depth[0] -= 1
    return wrapper
boto3.session.Session.client = recording("client", boto3.session.Session.client)
boto3.session.Session.resource = recording("resource", boto3.session.Session.resource)
importlib.import_module({module!r}).default()
print(json.dumps(built))
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


def run(code: str, env: dict[str, str]) -> object:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def environment(module: str, task_root: Path = TASK_ROOT) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    roots = {"LAMBDA_TASK_ROOT": str(task_root), "PYTHONPATH": str(task_root)}
    return {**keep, **BASE_ENV, **HANDLERS[module], **roots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--compare",
        type=Path,
        help="another copy of functions/ (e.g. `git worktree` of main) measured in the same rounds",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="MODULE",
        help="measure only these handler modules (e.g. sample_service.app)",
    )
    args = parser.parse_args()
    if args.only:
        unknown = set(args.only) - set(HANDLERS)
        if unknown:
            parser.error(f"not a handler module: {', '.join(sorted(unknown))}")
        for module in set(HANDLERS) - set(args.only):
            del HANDLERS[module]
    other: dict[str, list[float]] = {module: [] for module in HANDLERS}
    clients = {module: run(DISCOVER.format(module=module), environment(module)) for module in HANDLERS}
    samples: dict[str, list[dict[str, float]]] = {module: [] for module in HANDLERS}
    baselines: dict[str, list[float]] = {module: [] for module in HANDLERS}
    print(f"cold start as deployed, {args.runs} interleaved rounds, Python {sys.version.split()[0]}")
    print(f"machine: {load_average()} (at start)")
    for round_ in range(args.runs):
        for module in HANDLERS:
            env = environment(module)
            probe, baseline = PROBE.format(module=module), BASELINE.format(clients=clients[module])
            # Alternate which goes first, so a load that rises within a round hits both alike.
            first_handler = round_ % 2 == 0
            if not first_handler:
                baselines[module].append(run(baseline, env)["total"])
            samples[module].append(run(probe, env))
            if args.compare:
                compared = run(probe, environment(module, args.compare))
                other[module].append(compared["import"] + compared["init"])
            if first_handler:
                baselines[module].append(run(baseline, env)["total"])
    print(f"machine: {load_average()} (at end)")
    print(
        f"{'handler module':32} {'import ms':>9} {'+init ms':>9} {'baseline ms':>11} {'ratio':>6}"
        "  baseline = boto3 +"
    )
    figures: dict[str, tuple[float, str]] = {}
    for module in HANDLERS:
        totals = [s["import"] + s["init"] for s in samples[module]]
        ratio = statistics.median(t / b for t, b in zip(totals, baselines[module], strict=True))
        imp = statistics.median(s["import"] for s in samples[module])
        total, base = statistics.median(totals), statistics.median(baselines[module])
        print(
            f"{module:32} {imp * 1000:9.1f} {total * 1000:9.1f} {base * 1000:11.1f} {ratio:6.2f}"
            f"  {', '.join(clients[module]) or '-'}"
        )
        name = module.rsplit(".", 1)[-1] if module.startswith("configpipe.") else "sample_update_handler"
        if args.compare:
            before = statistics.median(o / b for o, b in zip(other[module], baselines[module], strict=True))
            print(f"{'':32} {args.compare}: ratio {before:.2f}")
        figures[f"cold_start.{name}.ratio"] = (ratio, "x")
        figures[f"cold_start.{name}.total_ms"] = (total * 1000, "ms")
        figures[f"cold_start.{name}.baseline_ms"] = (base * 1000, "ms")
    record("bench_cold_start.py", figures)


if __name__ == "__main__":
    main()
