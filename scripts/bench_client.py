"""The client helpers against moto (in-process): what a cached read costs, what a cold first
read costs, and how many AWS calls keep a service's configuration cached; with Powertools'
parameters utility measured side by side in the same run as the anchor.

    .venv/bin/python scripts/bench_client.py [--reads 20000] [--rounds 25]

Read costs are interleaved: each round times a block of reads of every variant (a plain dict,
``ConfigClient.get``, ``get_int``, Powertools' cached ``SSMProvider.get``), in rotating order;
the figure is the median over rounds of (block time / reads), timer overhead included once per
block, not per read. The first read runs in a fresh interpreter (moto started there) and
includes what a cold read really pays: building the SSM client and both path reads. Every
figure printed is measured in this run, except the source material's 30 s poll (its stated
interval, printed as the anchor it is).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from bench_results import load_average, record

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
SOURCE_POLL_SECONDS = 30  # the source articles' poll interval (their text, not a measurement)

FIRST_READ = """
import json, time
from moto import mock_aws
with mock_aws():
    import boto3
    seed = boto3.client("ssm")
    for i in range({keys}):
        seed.put_parameter(Name=f"/config/checkout/production/key{{i}}", Value=str(i), Type="String")
    seed.put_parameter(Name="/config/global/production/flag", Value="true", Type="String")
    from configpipe.client import ConfigClient
    t0 = time.perf_counter()
    value = ConfigClient("checkout", "production").get_int("key0")
    print(json.dumps({{"seconds": time.perf_counter() - t0, "value": value}}))
"""


def seed(ssm: Any, keys: int) -> None:
    for i in range(keys):
        ssm.put_parameter(Name=f"/config/checkout/production/key{i}", Value=str(i), Type="String")
    ssm.put_parameter(Name="/config/global/production/flag", Value="true", Type="String")


def per_read(reads: Callable[[], None], n: int) -> float:
    started = time.perf_counter_ns()
    reads()
    return (time.perf_counter_ns() - started) / n / 1000  # µs


def first_read(keys: int, runs: int) -> float:
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT / 'tooling'}"}
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_READ.format(keys=keys)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=ROOT,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {load_average()}")
    with mock.patch.dict(os.environ, ENVIRONMENT):
        import boto3
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        from moto import mock_aws

        from configpipe.client import ConfigClient

        with mock_aws():
            ssm = boto3.client("ssm")
            seed(ssm, args.keys)
            calls: list[str] = []
            ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))

            # AWS calls to have every key cached: configpipe reads the service's and the global
            # path (any number of keys, once per TTL per environment); Powertools one call per key.
            config = ConfigClient("checkout", "production", ttl_seconds=3600, ssm_client=ssm)
            for i in range(args.keys):
                config.get_int(f"key{i}")
            configpipe_calls = len(calls)
            provider = SSMProvider(boto3_client=ssm)
            for i in range(args.keys):
                provider.get(f"/config/checkout/production/key{i}", max_age=3600, transform="json")
            powertools_calls = len(calls) - configpipe_calls

            names = [f"key{i % args.keys}" for i in range(args.reads)]
            plain = {name: i for i, name in enumerate(names[: args.keys])}
            paths = [f"/config/checkout/production/{name}" for name in names]
            get, get_int, pt_get, dict_get = config.get, config.get_int, provider.get, plain.get

            variants: dict[str, Callable[[], None]] = {
                "dict.get": lambda: [dict_get(n) for n in names] and None,
                "ConfigClient.get": lambda: [get(n) for n in names] and None,
                "ConfigClient.get_int": lambda: [get_int(n) for n in names] and None,
                "Powertools SSMProvider.get (cached)": lambda: (
                    [pt_get(p, max_age=3600, transform="json") for p in paths] and None
                ),
            }
            calls_before = len(calls)
            timings: dict[str, list[float]] = {name: [] for name in variants}
            order = list(variants)
            for round_ in range(args.rounds):
                rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
                for name in rotated:
                    timings[name].append(per_read(variants[name], args.reads))
            calls_during_reads = len(calls) - calls_before
    first_ms = first_read(args.keys, runs=5)

    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    print(f"cached reads, {args.rounds} interleaved rounds of {args.reads:,} reads over {args.keys} keys:")
    for name, value in medians.items():
        ratio = value / medians["dict.get"]
        print(f"  {name:38} {value:7.3f} µs/read  ({ratio:5.1f}x a dict lookup)")
    lead = medians["Powertools SSMProvider.get (cached)"] / medians["ConfigClient.get"]
    print(f"  Powertools' cached read / configpipe's: {lead:.1f}x")
    print(f"  AWS calls during the cached reads: {calls_during_reads}")
    print(f"AWS calls to have {args.keys} keys cached (once per TTL per environment, any number of reads):")
    print(f"  configpipe ConfigClient: {configpipe_calls} (GetParametersByPath, 10 a page, 2 paths)")
    print(f"  Powertools get_parameter per key: {powertools_calls}")
    print(f"first read of a cold ConfigClient (fresh interpreter; builds its SSM client): {first_ms:.1f} ms")
    print(
        f"anchor: the source material polls every {SOURCE_POLL_SECONDS} s (a change is seen up to "
        f"{SOURCE_POLL_SECONDS} s late); configpipe pushes (scripts/bench_e2e.py measures it)"
    )
    record(
        "bench_client.py",
        {
            "client.cached_read.dict_us": (medians["dict.get"], "µs"),
            "client.cached_read.get_us": (medians["ConfigClient.get"], "µs"),
            "client.cached_read.get_int_us": (medians["ConfigClient.get_int"], "µs"),
            "client.cached_read.powertools_us": (medians["Powertools SSMProvider.get (cached)"], "µs"),
            "client.cached_read.powertools_over_configpipe": (lead, "x"),
            "client.calls_to_cache_20_keys.configpipe": (configpipe_calls, "calls"),
            "client.calls_to_cache_20_keys.powertools": (powertools_calls, "calls"),
            "client.calls_during_cached_reads": (calls_during_reads, "calls"),
            "client.first_read_ms": (first_ms, "ms"),
            "anchor.source_poll_interval_s": (SOURCE_POLL_SECONDS, "s (stated, not measured)"),
        },
    )


if __name__ == "__main__":
    main()
