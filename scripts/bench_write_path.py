"""AWS API calls per accepted change on the write path, and per service on fan-out.

Runs the whole pipeline in-process on moto (tooling/configpipe_tools/harness/chain.py: the real validator,
materialiser, propagator and sample update handlers) and counts every AWS call each
stage makes, through botocore's after-call hook. The registry is read once and cached
(60 s), so a warm-up change is made first and the steady state is reported.

    .venv/bin/python scripts/bench_write_path.py
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="configpipe",
    POWERTOOLS_METRICS_DISABLED="true",
)
import logging  # noqa: E402

logging.disable(logging.INFO)  # the functions' INFO logs would drown the figures

from moto import mock_aws  # noqa: E402

from configpipe.values import is_sensitive  # noqa: E402
from configpipe_tools.harness.aws import provision  # noqa: E402
from configpipe_tools.harness.chain import Chain  # noqa: E402
from configpipe_tools.harness.events import change  # noqa: E402

CASES = [
    ("put, new key", change("rate_limit", 10), "configpipe.team.checkout"),
    ("put, existing key", change("rate_limit", 20), "configpipe.team.checkout"),
    ("put, secret (new)", change("db_password", "pw-1"), "configpipe.team.checkout"),
    ("put, secret (existing)", change("db_password", "pw-2"), "configpipe.team.checkout"),
    ("rollback", change("rate_limit", operation="rollback", toVersion=1), "configpipe.team.checkout"),
    ("delete", change("rate_limit", operation="delete"), "configpipe.team.checkout"),
    ("put, global key", change("feature.beta", True, service="global"), "configpipe.team.platform"),
    ("rejected (schema)", change("max_items", 5000), "configpipe.team.checkout"),
]


def stage_calls(chain: Chain, stage) -> Counter[tuple[str, str]]:
    before = Counter(chain.crashes.calls)
    stage()
    return Counter(chain.crashes.calls) - before


def fmt(calls: Counter[tuple[str, str]]) -> str:
    return ", ".join(f"{op} {n}" for (_, op), n in sorted(calls.items())) or "-"


def main() -> None:
    with mock_aws():
        chain = Chain(provision())
        chain.publish(change("warm_up", 1))
        chain.run()
        print(
            f"{'change':24} {'validator':>9} {'materialiser':>12} {'propagator':>10} {'services':>8} "
            f"{'per service':>11}"
        )
        print(f"{'':24} {'':9} {'':12} {'(PutEvents)':>10} {'':8} {'(w/ Invoke)':>11}")
        details = []
        for name, detail, source in CASES:
            # A secret goes out encrypted, as `configpipe put` sends it (SENSITIVE_VALUE_IN_CLEAR).
            chain.publish(chain.sealed(detail) if is_sensitive(detail["key"], None) else detail, source)
            validator = stage_calls(chain, chain._deliver_bus_events)
            materialiser = stage_calls(chain, chain._deliver_stream_records)
            invoked_before = len(chain._async_queue)
            propagator = stage_calls(chain, chain._deliver_bus_events)
            services = len(chain._async_queue) - invoked_before
            handlers = stage_calls(chain, chain._run_async_invocations)
            chain.run()  # drain the rest (delivery records reach no function)
            # + 1: the Lambda Invoke each service costs (made through the chain's in-process invoker)
            per_service = f"{sum(handlers.values()) / services + 1:.1f}" if services else "-"
            print(
                f"{name:24} {sum(validator.values()):9} {sum(materialiser.values()):12} "
                f"{sum(propagator.values()):10} {services:8} {per_service:>11}"
            )
            details.append((name, validator, materialiser, propagator, handlers))
        print("\nper stage (operation count):")
        for name, validator, materialiser, propagator, handlers in details:
            print(
                f"  {name}:\n    validator: {fmt(validator)}\n    materialiser: {fmt(materialiser)}"
                f"\n    propagator: {fmt(propagator)}\n    update handlers: {fmt(handlers)}"
            )
        print(
            "\nNote: the propagator's Lambda Invoke calls go through the chain's in-process invoker"
            " (moto cannot run Lambda code), so each affected service adds 1 Invoke to the counts above."
        )


if __name__ == "__main__":
    main()
