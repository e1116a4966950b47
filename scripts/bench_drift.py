"""AWS API calls of the drift reconcile (issue 14), per key checked and per key repaired.

Runs the pipeline in-process on moto (the harness's Chain: the real validator and
materialiser) to make N plain keys and N secrets, then runs the drift function's Reconciler
with clients of its own session and counts every call it makes (botocore's ``before-call``
event on that session): once on a clean scope, once after a quarter of the keys were edited by
hand (report only), once repairing them. The figures are what an hourly sweep costs per key
(GetItem, Query, GetParameter, DescribeSecret…) — moto's latency says nothing about AWS's, so
no time is printed.

    .venv/bin/python scripts/bench_drift.py [--keys N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "functions"), str(REPO / "tooling"), str(REPO)]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20, help="plain keys, and as many secrets")
    args = parser.parse_args()

    from configpipe.bus import ConfigBus
    from configpipe.changelog import ChangeLog
    from configpipe.crypto import SecretsKey
    from configpipe.drift import DriftRequest, Reconciler
    from configpipe.materialise import Materialiser
    from configpipe.registry_source import RegistrySource
    from configpipe.stores import ParameterStore, SecretStore
    from configpipe_tools.harness.aws import REGION, provision
    from configpipe_tools.harness.chain import Chain
    from configpipe_tools.harness.events import change

    with mock_aws():
        pipeline = provision()
        chain = Chain(pipeline)
        for i in range(args.keys):
            chain.publish(change(f"limit_{i}", i), "configpipe.team.checkout")
            chain.publish(
                chain.sealed(change(f"api_token_{i}", f"s-{i}", sensitive=True)), "configpipe.team.checkout"
            )
        chain.run()

        calls: Counter[str] = Counter()
        session = boto3.Session(region_name=REGION)
        session.events.register(
            "before-call.*.*",
            lambda model, **_: calls.update([f"{model.service_model.service_name}.{model.name}"]),
        )
        log = ChangeLog(pipeline.table_name, table=session.resource("dynamodb").Table(pipeline.table_name))
        parameters = ParameterStore(client=session.client("ssm"))
        secrets = SecretStore(client=session.client("secretsmanager"), kms_key_id=pipeline.secrets_key_id)
        bus = ConfigBus(pipeline.bus_name, client=session.client("events"))
        registry = RegistrySource(pipeline.registry_parameter, client=session.client("ssm"))
        reconciler = Reconciler(
            change_log=log,
            parameters=parameters,
            secrets=secrets,
            materialiser=Materialiser(
                log,
                parameters,
                secrets,
                SecretsKey(pipeline.secrets_key_id, client=session.client("kms")),
                bus,
                registry=registry,
            ),
            bus=bus,
            registry=registry,
        )

        def run(repair: bool) -> tuple[dict[str, Any], Counter[str]]:
            calls.clear()
            answer = reconciler.handle(
                DriftRequest(service="checkout", environment="production", repair=repair)
            )
            return answer.to_dict(), Counter(calls)

        keys = 2 * args.keys
        clean, clean_calls = run(repair=False)
        edited = max(1, args.keys // 4)
        ssm, sm = boto3.client("ssm", region_name=REGION), boto3.client("secretsmanager", region_name=REGION)
        for i in range(edited):
            ssm.put_parameter(
                Name=f"/config/checkout/production/limit_{i}", Value="-1", Type="String", Overwrite=True
            )
            sm.put_secret_value(SecretId=f"configpipe/checkout/production/api_token_{i}", SecretString='"x"')
        reported, report_calls = run(repair=False)
        repaired, repair_calls = run(repair=True)
        after, _ = run(repair=False)

        drifted = len(reported["drifted"])
        extra = sum(repair_calls.values()) - sum(report_calls.values())
        print(f"keys checked: {clean['checked']} ({args.keys} plain, {args.keys} secrets)")
        print(
            f"clean sweep: {sum(clean_calls.values())} calls, {sum(clean_calls.values()) / keys:.2f} per key"
        )
        print("  " + json.dumps(dict(sorted(clean_calls.items()))))
        print(f"report only, {drifted} drifted: {sum(report_calls.values())} calls")
        print("  more than clean: " + json.dumps(dict(sorted((report_calls - clean_calls).items()))))
        per_key = extra / max(drifted, 1)
        print(
            f"repair, {repaired['repaired']} repaired: {extra} calls more than report, {per_key:.2f} per key"
        )
        print("  " + json.dumps(dict(sorted((repair_calls - report_calls).items()))))
        print(f"after repair: {len(after['drifted'])} drifted")


if __name__ == "__main__":
    main()
