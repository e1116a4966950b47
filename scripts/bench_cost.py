"""The AWS call counts docs/cost.md is built from, and the request cost they imply.

Counts every AWS call the real functions make (the whole pipeline in-process on moto,
``configpipe_tools.harness.chain``) for accepted changes, and every call the client helper
makes for reads, then multiplies by the public unit prices in ``PRICES`` (stated with the
date they were read). Only request-priced items are costed: Lambda duration, log ingestion
and storage are not measured here and are listed as such.

    .venv/bin/python scripts/bench_cost.py
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
)
import logging  # noqa: E402

logging.disable(logging.INFO)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from configpipe.client import ConfigClient  # noqa: E402
from configpipe_tools.harness.aws import REGION, provision  # noqa: E402
from configpipe_tools.harness.chain import Chain  # noqa: E402
from configpipe_tools.harness.events import change  # noqa: E402

#: us-east-1 list prices, read 2026-12-02 from the services' public pricing pages
#: (aws.amazon.com/<service>/pricing). USD per single request / unit.
PRICES_AS_OF = "2026-12-02 (us-east-1 list prices; check the pricing pages before relying on them)"
PRICES: dict[str, float] = {
    "eventbridge.event": 1.00 / 1e6,  # custom events published (per 64 KB chunk)
    "lambda.request": 0.20 / 1e6,
    "dynamodb.wru": 0.625 / 1e6,  # on-demand write request unit
    "dynamodb.rru": 0.125 / 1e6,  # on-demand read request unit
    "ssm.standard": 0.0,  # standard parameters, standard throughput: no charge
    "ssm.higher_throughput": 0.05 / 1e4,  # per API interaction, when higher throughput is enabled
    "secretsmanager.call": 0.05 / 1e4,
    "kms.request": 0.03 / 1e4,
}
CHANGES = 10  # accepted changes per case (the steady state repeats exactly); scaled to 1,000


def count_calls(chain: Chain, publish: Any) -> tuple[Counter[str], int, int]:
    """(calls by service.Operation, DynamoDB write and read request units) for what
    ``publish`` starts. Calls are counted by the chain's after-call hook on every client the
    functions use; transaction sizes are read from the requests themselves."""
    before = Counter(chain.crashes.calls)
    items: list[int] = []

    def transaction(params: Any, **_: Any) -> None:
        items.append(len(params.get("TransactItems", [])))

    events = chain.write_path._log._table.meta.client.meta.events
    # before-parameter-build sees the API parameters (before-call sees the serialised request)
    events.register("before-parameter-build.dynamodb.TransactWriteItems", transaction)
    publish()
    chain.run()
    events.unregister("before-parameter-build.dynamodb.TransactWriteItems", transaction)
    calls = Counter({f"{s}.{op}": n for (s, op), n in (Counter(chain.crashes.calls) - before).items()})
    # Item sizes here are under 1 KB (writes) and 4 KB (reads): one unit per item, two per item
    # in a transaction (DynamoDB's transactional pricing); a consistent read is one RRU.
    wru = 2 * sum(items) + sum(calls[f"dynamodb.{op}"] for op in ("PutItem", "UpdateItem", "DeleteItem"))
    rru = calls["dynamodb.GetItem"] + calls["dynamodb.Query"]
    return calls, wru, rru


def write_path() -> None:
    print("accepted changes (per 1,000; whole pipeline, 1 affected service each):")
    print(
        f"  {'case':22} {'AWS calls':>9} {'DDB WRU':>8} {'DDB RRU':>8} {'USD (requests)':>15}  calls by API"
    )
    with mock_aws():
        chain = Chain(provision())
        chain.publish(change("warm_up", 1))
        chain.run()
        cases = {
            "put (plain value)": lambda i: change("rate_limit", i),
            "put (secret)": lambda i: change("db_password", f"pw-{i}"),
        }
        for name, make in cases.items():
            total: Counter[str] = Counter()
            wru = rru = 0
            for i in range(CHANGES):
                detail = make(i)
                calls, w, r = count_calls(chain, lambda: chain.publish(detail))  # noqa: B023 - called at once
                total += calls
                wru += w
                rru += r
            scale = 1000 / CHANGES
            # Lambda invocations per change: validator, materialiser (a batch of 1 here), propagator,
            # one update handler; EventBridge events: the change itself + what the pipeline publishes.
            published = total["events.PutEvents"] + CHANGES  # + the team's own ConfigurationChange
            invocations = 4 * CHANGES
            cost = (
                published * PRICES["eventbridge.event"]
                + invocations * PRICES["lambda.request"]
                + wru * PRICES["dynamodb.wru"]
                + rru * PRICES["dynamodb.rru"]
                + sum(n for k, n in total.items() if k.startswith("secretsmanager."))
                * PRICES["secretsmanager.call"]
                + sum(n for k, n in total.items() if k.startswith("kms.")) * PRICES["kms.request"]
            )
            by_api = ", ".join(f"{k} {n * scale:,.0f}" for k, n in sorted(total.items()))
            print(
                f"  {name:22} {sum(total.values()) * scale:9,.0f} {wru * scale:8,.0f} {rru * scale:8,.0f} "
                f"{cost * scale:15.4f}  {by_api}; Lambda invocations {invocations * scale:,.0f}, "
                f"EventBridge events {published * scale:,.0f}"
            )


def reads() -> None:
    print("\nreads through configpipe.client.ConfigClient (service + global keys, 20 + 1 parameters):")
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        for i in range(20):
            ssm.put_parameter(Name=f"/config/checkout/production/key{i}", Value=str(i), Type="String")
        ssm.put_parameter(Name="/config/global/production/flag", Value="true", Type="String")
        calls: list[str] = []
        ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        for label, ttl, n in (
            ("cached (one TTL window)", 3600.0, 1_000_000),
            ("uncached (TTL 0)", 0.0, 1_000),
        ):
            calls.clear()
            clock = [0.0]
            client = ConfigClient(
                "checkout",
                "production",
                ttl_seconds=ttl,
                ssm_client=ssm,
                clock=lambda: clock[0],  # noqa: B023
            )
            for i in range(n):
                client.get(f"key{i % 20}")
                clock[0] += 0.001
            per_million = len(calls) * (1_000_000 / n)
            usd = per_million * PRICES["ssm.higher_throughput"]
            print(
                f"  {label:24} {per_million:>12,.0f} SSM calls per 1,000,000 reads "
                f"({Counter(calls).most_common()}); USD 0 at standard throughput, "
                f"{usd:,.2f} with higher throughput enabled"
            )


def main() -> None:
    print(f"prices: {PRICES_AS_OF}")
    write_path()
    reads()
    print(
        "\nnot costed here (not measured by this script): Lambda duration (GB-s), CloudWatch Logs "
        "ingestion, X-Ray traces, DynamoDB storage/PITR/streams, Secrets Manager's per-secret "
        "monthly fee, KMS key monthly fees."
    )


if __name__ == "__main__":
    main()
