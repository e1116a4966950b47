"""Measure the evaluation cost of both feature-flag integrations against moto (in-process):
Powertools ``FeatureFlags.evaluate`` over ``ConfigPipeStore`` and the OpenFeature client over
``ConfigPipeProvider``, per call, with the document cached (the steady state between pushes);
and Powertools' ``AppConfigStore`` on moto for comparison when moto serves AppConfigData.

    .venv/bin/python scripts/bench_feature_flags.py [--calls 20000]

Every figure printed is measured in this run; nothing is estimated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3
from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
from moto import mock_aws
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from configpipe.client import ConfigClient
from configpipe.client.feature_flags import ConfigPipeStore
from configpipe.client.openfeature import ConfigPipeProvider
from configpipe.values import canonical_json

DOCUMENT: dict[str, Any] = {
    "maintenance": {"default": False},
    "new_checkout": {
        "default": False,
        "rules": {
            "pilot tenants": {
                "when_match": True,
                "conditions": [{"action": "IN", "key": "tenant", "value": ["t-1", "t-7"]}],
            }
        },
    },
    **{f"flag_{i}": {"default": i % 2 == 0} for i in range(20)},
}


def per_call_us(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """(median, p99) microseconds per call, each call timed on its own after 1,000 warm-ups."""
    for _ in range(1000):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def report(label: str, figures: tuple[float, float]) -> None:
    print(f"  {label:<58} median {figures[0]:7.2f} µs   p99 {figures[1]:7.2f} µs")


def appconfig_store(calls: int) -> None:
    """Powertools' own store, if moto serves AppConfigData (StartConfigurationSession)."""
    try:
        appconfig = boto3.client("appconfig", region_name="us-east-1")
        app = appconfig.create_application(Name="checkout")["Id"]
        profile = appconfig.create_configuration_profile(
            ApplicationId=app, Name="flags", LocationUri="hosted"
        )["Id"]
        appconfig.create_hosted_configuration_version(
            ApplicationId=app,
            ConfigurationProfileId=profile,
            Content=canonical_json(DOCUMENT).encode(),
            ContentType="application/json",
        )
        data = boto3.client("appconfigdata", region_name="us-east-1")
        store = AppConfigStore(
            environment="production", application="checkout", name="flags", max_age=3600, boto3_client=data
        )
        flags = FeatureFlags(store=store)
        # Not evaluate(): it turns a store failure into the default, which would time a failing call.
        store.get_configuration()
    except Exception as error:  # what moto answers is the finding
        cause = f" ← {str(error.__cause__)[:160]}" if error.__cause__ is not None else ""
        print(f"  AppConfigStore on moto: not measured — {type(error).__name__}: {str(error)[:120]}{cause}")
        return
    report(
        "AppConfigStore FeatureFlags.evaluate (rule match)",
        per_call_us(
            lambda: flags.evaluate(name="new_checkout", context={"tenant": "t-7"}, default=False), calls
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name="/config/checkout/production/flags", Value=canonical_json(DOCUMENT), Type="String"
        )
        calls: list[str] = []
        ssm.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        client = ConfigClient("checkout", "production", ttl_seconds=3600, ssm_client=ssm)
        store = ConfigPipeStore(client, "flags")
        flags = FeatureFlags(store=store)
        api.set_provider_and_wait(ConfigPipeProvider(store), domain="bench")
        openfeature = api.get_client("bench")
        tenant = EvaluationContext(targeting_key="t-7", attributes={"tenant": "t-7"})
        loaded = len(calls)

        print(f"{len(DOCUMENT)} flags, one document under one key; {args.calls:,} timed calls each")
        print("Powertools FeatureFlags over ConfigPipeStore:")
        report(
            "evaluate, flag without rules (STATIC)",
            per_call_us(lambda: flags.evaluate(name="maintenance", default=True), args.calls),
        )
        report(
            "evaluate, rule match (IN)",
            per_call_us(
                lambda: flags.evaluate(name="new_checkout", context={"tenant": "t-7"}, default=False),
                args.calls,
            ),
        )
        print("OpenFeature client over ConfigPipeProvider:")
        report(
            "get_boolean_value, flag without rules (STATIC)",
            per_call_us(lambda: openfeature.get_boolean_value("maintenance", True), args.calls),
        )
        report(
            "get_boolean_value, rule match with targeting key",
            per_call_us(lambda: openfeature.get_boolean_value("new_checkout", False, tenant), args.calls),
        )
        report(
            "get_boolean_details, rule match with targeting key",
            per_call_us(lambda: openfeature.get_boolean_details("new_checkout", False, tenant), args.calls),
        )
        provider = ConfigPipeProvider(store)
        report(
            "the provider alone: resolve_boolean_details, rule match",
            per_call_us(lambda: provider.resolve_boolean_details("new_checkout", False, tenant), args.calls),
        )
        print(f"AWS calls during all timed evaluations: {len(calls) - loaded} (the load made {loaded})")
        api.clear_providers()
        appconfig_store(args.calls)


if __name__ == "__main__":
    main()
