"""Write the README's "Measured" table from ``bench-results.json`` (the last ``make bench``).

The table sits between two markers in README.md; every number in it is a figure of the
results file, named in the first column, so the README never says what no run measured.

    .venv/bin/python scripts/bench_readme.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench-results.json"
BEGIN, END = "<!-- bench-results:begin -->", "<!-- bench-results:end -->"

#: figure -> (what it is, the target on a quiet 2-core machine)
SHOWN: dict[str, tuple[str, str]] = {
    "e2e.latency_p50_ms": ("local publish → every affected handler applied, p50", "≤ 500 ms"),
    "e2e.latency_p95_ms": ("… p95", "≤ 1,000 ms"),
    "e2e.hop.validator_ms": ("… hop: publish → change log (median)", ""),
    "e2e.hop.materialiser_ms": ("… hop: → ConfigurationUpdated on the bus", ""),
    "e2e.hop.propagator_ms": ("… hop: → deliveries recorded", ""),
    "e2e.hop.handlers_ms": ("… hop: → last handler applied", ""),
    "e2e.burst_changes_per_s": ("local burst, 200 changes over 20 keys, all converged", "≥ 5 /s"),
    "e2e.first_change_after_up_s": ("first change after `up` (functions on its path cold)", ""),
    "fanout.wall_50_over_wall_1": ("fan-out wall(50) / wall(1), 50 ms per call", "≤ 1.5"),
    "fanout.wall_200_over_wall_1": ("fan-out wall(200) / wall(1)", "≤ 2.5"),
    "cold_start.validator.ratio": ("cold start as deployed / boto3 + its clients: validator", "≤ 1.3"),
    "cold_start.materialiser.ratio": ("… materialiser", "≤ 1.3"),
    "cold_start.propagator.ratio": ("… propagator", "≤ 1.3"),
    "cold_start.rollout.ratio": ("… rollout", "≤ 1.3"),
    "cold_start.release.ratio": ("… release", "≤ 1.3"),
    "cold_start.sample_update_handler.ratio": ("… sample update handler", "≤ 1.3"),
    "client.cached_read.get_us": ("`ConfigClient.get`, cached", "≤ 1 µs"),
    "client.cached_read.get_int_us": ("`ConfigClient.get_int`, cached", "≤ 1 µs"),
    "client.cached_read.dict_us": ("a plain dict lookup, same run", ""),
    "client.cached_read.powertools_us": ("Powertools `SSMProvider.get`, cached, same run", ""),
    "client.calls_to_cache_20_keys.configpipe": ("AWS calls to cache 20 keys: configpipe", ""),
    "client.calls_to_cache_20_keys.powertools": ("… Powertools, one parameter per call", ""),
    "anchor.source_poll_interval_s": ("the source material's poll interval (stated)", ""),
    "memory.update_handler_peak_mib": ("update handler peak RSS as deployed, after 3 updates", "≤ 45 MiB"),
    "memory.boto3_and_clients_peak_mib": ("… boto3 + its DynamoDB and SSM clients, one call each", ""),
    "memory.boto3_import_peak_mib": ("… `import boto3` alone", ""),
}


def number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def table(results: dict[str, dict[str, object]]) -> str:
    lines = [
        "| figure | measured | target | load (1 min) | name in bench-results.json |",
        "|---|---|---|---|---|",
    ]
    for name, (label, target) in SHOWN.items():
        figure = results.get(name)
        if figure is None:
            continue
        value = number(float(figure["value"]))  # type: ignore[arg-type]
        lines.append(f"| {label} | {value} {figure['unit']} | {target} | {figure['load1m']} | `{name}` |")
    return "\n".join(lines)


def rendered(readme: str, results: dict[str, dict[str, object]]) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table(results)}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is not up to date")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text())["figures"]
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"README.md has no {BEGIN} … {END} section")
    updated = rendered(readme, results)
    if args.check:
        sys.exit(0 if updated == readme else "README.md's figures differ from bench-results.json")
    README.write_text(updated)
    print("README.md figures written from bench-results.json")


if __name__ == "__main__":
    main()
