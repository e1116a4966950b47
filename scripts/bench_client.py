"""Measure the client helpers against moto (in-process): the cost of a cached read and the
number of AWS calls per 1,000 reads within one TTL.

    .venv/bin/python scripts/bench_client.py [--reads 100000]

Every figure printed is measured in this run; nothing is estimated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3
from moto import mock_aws

from configpipe.client import ConfigClient
from configpipe.values import canonical_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()

    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        for i in range(args.keys):
            ssm.put_parameter(
                Name=f"/config/checkout/production/key{i}",
                Value=canonical_json(i),
                Type="String",
                Overwrite=True,
            )
        ssm.put_parameter(
            Name="/config/global/production/feature.flag",
            Value=canonical_json(True),
            Type="String",
            Overwrite=True,
        )
        calls: list[str] = []
        ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        config = ConfigClient("checkout", "production", ttl_seconds=3600, ssm_client=ssm)

        # The first read loads the cache (a miss); time it separately.
        started = time.perf_counter_ns()
        config.get_int("key0")
        miss_us = (time.perf_counter_ns() - started) / 1000
        load_calls = len(calls)

        # Cached reads: each one timed individually.
        keys = [f"key{i % args.keys}" for i in range(args.reads)]
        samples = []
        clock = time.perf_counter_ns
        for key in keys:
            t0 = clock()
            config.get_int(key)
            samples.append(clock() - t0)
        calls_during_hits = len(calls) - load_calls

        # Overhead of the timer itself, to report the read cost net of it as well.
        empty = []
        for _ in range(args.reads):
            t0 = clock()
            empty.append(clock() - t0)

        # AWS calls per 1,000 reads within one TTL, starting from a cold client.
        cold_calls_before = len(calls)
        cold = ConfigClient("checkout", "production", ttl_seconds=3600, ssm_client=ssm)
        for i in range(1000):
            cold.get_bool("feature.flag") if i % 2 else cold.get_int(f"key{i % args.keys}")
        calls_per_1000 = len(calls) - cold_calls_before

    samples.sort()
    p50 = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99) - 1] / 1000
    timer = statistics.median(empty) / 1000
    print(f"cached read (get_int), {args.reads:,} reads over {args.keys} keys:")
    print(f"  median {p50:.3f} µs, p99 {p99:.3f} µs (timer overhead median {timer:.3f} µs, included)")
    print(f"  AWS calls made during the cached reads: {calls_during_hits}")
    print(f"first read (cache miss, service + global paths from moto): {miss_us:,.0f} µs, {load_calls} calls")
    print(f"AWS calls per 1,000 reads within one TTL (cold client): {calls_per_1000}")


if __name__ == "__main__":
    main()
