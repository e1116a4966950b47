"""Tenant reads in ``ConfigClient`` against moto (in-process): AWS calls and memory for 10,000
tenants, and what a cached read with a tenant costs (issue 17).

    .venv/bin/python scripts/bench_tenants.py [--tenants 10000] [--full-tenants 200] [--keys 20]

Seeds the service's ``--keys`` keys, one global key, and ``--full-tenants`` tenants, spread
evenly over the ``--tenants``, that each override every key (the rest have no values of their
own; each full tenant's bundle is built by the materialiser's code, whose GetParametersByPath
moto answers by scanning every parameter, so thousands of full tenants make the seeding slow). Then one client
with the default bound (``DEFAULT_MAX_TENANTS``) reads one key for every tenant, and the same
sweep runs on a client without a bound for comparison. Memory is what ``tracemalloc`` sees the
client hold after the sweep (the client's own allocations; boto3's are made before). Cached
reads: the median over ``--rounds`` interleaved blocks of ``--reads`` reads. Every figure
printed is measured in this run. ``--record`` merges them into bench-results.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any
from unittest import mock

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SERVICE, ENV = "checkout", "production"


def tenant(i: int) -> str:
    return f"t{i:05d}"


def full(tenants: int, full_tenants: int) -> list[int]:
    """Which tenants override every key: spread evenly, so any 1,000 consecutive tenants of the
    sweep (what a bounded client ends up holding) have their share of them."""
    step = max(1, tenants // max(1, full_tenants))
    return list(range(0, tenants, step))[:full_tenants]


def seed(ssm: Any, keys: int, tenants: int, full_tenants: int) -> None:
    """Parameters as the materialiser leaves them: each full tenant's values and its bundle
    (configpipe/tenant_bundle.py, built by the materialiser's own code)."""
    from configpipe.naming import parameter_name
    from configpipe.stores import ParameterStore
    from configpipe.tenant_bundle import TenantBundles

    bundles = TenantBundles(ParameterStore(ssm), lambda *_: {})
    for k in range(keys):
        ssm.put_parameter(Name=parameter_name(SERVICE, ENV, f"key{k}"), Value=str(k), Type="String")
    ssm.put_parameter(Name=parameter_name("global", ENV, "flag"), Value="true", Type="String")
    for t in full(tenants, full_tenants):
        for k in range(keys):
            name = parameter_name(SERVICE, ENV, f"key{k}", tenant=tenant(t))
            ssm.put_parameter(Name=name, Value=str(1000 * t + k), Type="String")
        bundles.publish(SERVICE, ENV, tenant(t))


def sweep(config: Any, tenants: int, calls: list[str]) -> tuple[int, int]:
    """(AWS calls, bytes the client holds afterwards) for one read of ``key0`` per tenant."""
    gc.collect()
    tracemalloc.start()
    before_calls = len(calls)
    base = tracemalloc.get_traced_memory()[0]
    for t in range(tenants):
        config.get_for_tenant(tenant(t), "key0")
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return len(calls) - before_calls, held


def per_read(reads: Callable[[], None], n: int) -> float:
    started = time.perf_counter_ns()
    reads()
    return (time.perf_counter_ns() - started) / n / 1000  # µs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--full-tenants", type=int, default=200)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--record", action="store_true", help="merge the figures into bench-results.json")
    args = parser.parse_args()
    print(f"machine: load average {os.getloadavg()[0]:.2f}")
    with mock.patch.dict(os.environ, ENVIRONMENT):
        import boto3
        from moto import mock_aws

        from configpipe.client import ConfigClient
        from configpipe.client.config import DEFAULT_MAX_TENANTS

        with mock_aws():
            ssm = boto3.client("ssm")
            started = time.perf_counter()
            seed(ssm, args.keys, args.tenants, args.full_tenants)
            print(
                f"seeded {args.keys} service keys, {args.full_tenants} tenants x {args.keys} values "
                f"in {time.perf_counter() - started:.0f} s"
            )
            calls: list[str] = []
            ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))

            bounded = ConfigClient(SERVICE, ENV, ttl_seconds=3600, ssm_client=ssm)
            bounded.get("key0")  # the service's own read, outside the sweep
            service_calls = len(calls)
            sweep_calls, bounded_bytes = sweep(bounded, args.tenants, calls)
            cold_full = sweep_calls_for(bounded, calls, [tenant(0)], fresh=True)
            # Tenants without values still held: reading them again costs nothing.
            spread = set(full(args.tenants, args.full_tenants))
            held_empty = [tenant(t) for t in range(args.tenants - 100, args.tenants) if t not in spread]
            before = len(calls)
            for name in held_empty:
                bounded.get_for_tenant(name, "key0")
            rerun_calls = len(calls) - before

            unbounded = ConfigClient(SERVICE, ENV, ttl_seconds=3600, ssm_client=ssm, max_tenants=10**9)
            unbounded.get("key0")
            _, unbounded_bytes = sweep(unbounded, args.tenants, calls)

            # Cached reads with a tenant (an override, and a fall-back to the service's value).
            with_override = tenant(full(args.tenants, args.full_tenants)[-1])
            without = tenant(max(t for t in range(args.tenants) if t not in spread))
            bounded.get_for_tenant(with_override, "key0")
            bounded.get_for_tenant(without, "key0")
            names = [f"key{i % args.keys}" for i in range(args.reads)]
            plain = {f"key{k}": k for k in range(args.keys)}
            gft, get, dget = bounded.get_for_tenant, bounded.get, plain.get
            variants: dict[str, Callable[[], None]] = {
                "dict.get": lambda: [dget(n) for n in names] and None,
                "ConfigClient.get (no tenant)": lambda: [get(n) for n in names] and None,
                "get_for_tenant (tenant's own value)": lambda: (
                    [gft(with_override, n) for n in names] and None
                ),
                "get_for_tenant (falls back to service)": lambda: [gft(without, n) for n in names] and None,
            }
            before = len(calls)
            timings: dict[str, list[float]] = {name: [] for name in variants}
            order = list(variants)
            for round_ in range(args.rounds):
                for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
                    timings[name].append(per_read(variants[name], args.reads))
            cached_calls = len(calls) - before

    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    print(
        f"one read per tenant, {args.tenants:,} tenants ({args.full_tenants:,} with {args.keys} values each):"
    )
    print(
        f"  service's own read: {service_calls} calls (GetParametersByPath of the service and global paths)"
    )
    print(
        f"  AWS calls for the sweep: {sweep_calls:,} "
        f"({sweep_calls / args.tenants:.2f} per tenant: one GetParameter of its bundle, found or not)"
    )
    print(f"  cold read of one tenant with {args.keys} values: {cold_full} calls (its bundle)")
    print(f"  re-reading {len(held_empty)} held tenants without values: {rerun_calls} calls")
    print(
        f"  client memory after the sweep, bounded to {DEFAULT_MAX_TENANTS:,} tenants: "
        f"{bounded_bytes / 1024 / 1024:.1f} MiB ({bounded.tenants_held:,} tenants held)"
    )
    print(
        f"  client memory after the sweep, unbounded: {unbounded_bytes / 1024 / 1024:.1f} MiB "
        f"({unbounded.tenants_held:,} tenants held)"
    )
    print(f"cached reads, {args.rounds} interleaved rounds of {args.reads:,} reads:")
    for name, value in medians.items():
        print(f"  {name:42} {value:7.3f} µs/read  ({value / medians['dict.get']:5.1f}x a dict lookup)")
    print(f"  AWS calls during the cached reads: {cached_calls}")
    if args.record:
        from bench_results import record

        record(
            "bench_tenants.py",
            {
                "tenants.sweep_calls_per_tenant": (sweep_calls / args.tenants, "calls"),
                "tenants.cold_full_tenant_calls": (cold_full, "calls"),
                "tenants.rerun_held_calls": (rerun_calls, "calls"),
                "tenants.bounded_client_mib": (bounded_bytes / 1024 / 1024, "MiB"),
                "tenants.unbounded_client_mib": (unbounded_bytes / 1024 / 1024, "MiB"),
                "tenants.cached_read_override_us": (medians["get_for_tenant (tenant's own value)"], "µs"),
                "tenants.cached_read_fallback_us": (medians["get_for_tenant (falls back to service)"], "µs"),
            },
        )


def sweep_calls_for(config: Any, calls: list[str], tenants: list[str], fresh: bool) -> int:
    """AWS calls to read ``tenants`` cold (``fresh``: in a new client with nothing held)."""
    from configpipe.client import ConfigClient

    client = (
        ConfigClient(SERVICE, ENV, ttl_seconds=3600, ssm_client=config.parameters.client) if fresh else config
    )
    client.get("key0")
    before = len(calls)
    for name in tenants:
        client.get_for_tenant(name, "key0")
    return len(calls) - before


if __name__ == "__main__":
    main()
