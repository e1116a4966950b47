"""AWS API calls per accepted change on the write path, and per service on fan-out.

Runs the whole pipeline in-process on moto (tooling/configpipe_tools/harness/chain.py: the real
validator, materialiser, propagator and sample update handlers) and counts every AWS call each
stage makes. Every boto3 session is hooked, the default one too (the update handlers' config
client builds its clients from it): the count wraps botocore's ``BaseClient._make_api_call``,
which every client of every session goes through. Only the harness's own calls, the ones that
stand in for AWS moving events (draining the bus's capture queue, reading the stream), are left
out. The propagator's ``Invoke`` goes to the chain's in-process invoker (moto cannot run
Lambda code); it is counted there, one per attempt, at the point the real invoker calls AWS.

The first change runs on cold execution environments (the registry is read, then cached
60 s); it is printed as its own row, then the steady state of a warm pipeline.

    .venv/bin/python scripts/bench_write_path.py

The environment the functions need is set for the run and restored afterwards.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from bench_results import record

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "configpipe",
    "POWERTOOLS_METRICS_DISABLED": "true",
}

Calls = Counter[tuple[str, str]]


class CallCounter:
    """Every AWS API call made by any botocore client, while counting is on (per thread)."""

    def __init__(self) -> None:
        self.calls: Calls = Counter()
        self._paused = threading.local()

    @contextmanager
    def installed(self) -> Iterator[None]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation_name: str, api_params: Any) -> Any:
            if not getattr(counter._paused, "on", False):
                counter.calls[(client.meta.service_model.service_name, operation_name)] += 1
            return original(client, operation_name, api_params)

        with mock.patch.object(BaseClient, "_make_api_call", counted):
            yield

    def count(self, key: tuple[str, str]) -> None:
        self.calls[key] += 1

    def uncounted(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._paused.on = True
            try:
                return function(*args, **kwargs)
            finally:
                self._paused.on = False

        return call

    def during(self, stage: Callable[[], Any]) -> Calls:
        before = Counter(self.calls)
        stage()
        return self.calls - before


def fmt(calls: Calls) -> str:
    return ", ".join(f"{op} {n}" for (_, op), n in sorted(calls.items())) or "-"


def main() -> None:
    logging.disable(logging.INFO)  # the functions' INFO logs would drown the figures
    with mock.patch.dict(os.environ, ENVIRONMENT):
        # Imported here: Powertools reads the environment at import.
        from moto import mock_aws

        from configpipe.values import is_sensitive
        from configpipe_tools.harness.aws import provision
        from configpipe_tools.harness.chain import Chain
        from configpipe_tools.harness.events import change

        counter = CallCounter()

        class CountingChain(Chain):
            def _invoke_async(self, function_name: str, payload: bytes) -> None:
                counter.count(("lambda", "Invoke"))
                super()._invoke_async(function_name, payload)

        cases = [
            ("put, new key (cold)", change("rate_limit", 10), "configpipe.team.checkout"),
            ("put, existing key", change("rate_limit", 20), "configpipe.team.checkout"),
            ("put, secret (new)", change("db_password", "pw-1"), "configpipe.team.checkout"),
            ("put, secret (existing)", change("db_password", "pw-2"), "configpipe.team.checkout"),
            ("put, large value", change("banner", "x" * 2000), "configpipe.team.checkout"),
            ("rollback", change("rate_limit", operation="rollback", toVersion=1), "configpipe.team.checkout"),
            ("delete", change("rate_limit", operation="delete"), "configpipe.team.checkout"),
            ("put, global key", change("feature.beta", True, service="global"), "configpipe.team.platform"),
            ("rejected (schema)", change("max_items", 5000), "configpipe.team.checkout"),
        ]
        with mock_aws(), counter.installed():
            chain = CountingChain(provision())
            pipeline = chain.pipeline
            pipeline.bus_events = counter.uncounted(pipeline.bus_events)  # type: ignore[method-assign]
            pipeline.stream_event = counter.uncounted(pipeline.stream_event)  # type: ignore[method-assign]
            print(
                f"{'change':24} {'validator':>9} {'materialiser':>12} {'propagator':>10} {'services':>8} "
                f"{'per service':>11}"
            )
            print(f"{'':24} {'':9} {'':12} {'(+Invoke)':>10} {'':8} {'(handler)':>11}")
            details = []
            figures: dict[str, tuple[float, str]] = {}
            for name, detail, source in cases:
                # A secret goes out encrypted, as `configpipe put` sends it (SENSITIVE_VALUE_IN_CLEAR).
                chain.publish(chain.sealed(detail) if is_sensitive(detail["key"], None) else detail, source)
                validator = counter.during(chain._deliver_bus_events)
                materialiser = counter.during(chain._deliver_stream_records)
                invoked_before = len(chain._async_queue)
                propagator = counter.during(chain._deliver_bus_events)
                services = len(chain._async_queue) - invoked_before
                handlers = counter.during(chain._run_async_invocations)
                counter.uncounted(chain.run)()  # drain the rest (delivery records reach no function)
                per_service = sum(handlers.values()) / services if services else 0.0
                print(
                    f"{name:24} {sum(validator.values()):9} {sum(materialiser.values()):12} "
                    f"{sum(propagator.values()):10} {services:8} {per_service if services else '-':>11}"
                )
                details.append((name, validator, materialiser, propagator, handlers))
                slug = name.replace(", ", ".").replace(" ", "_").replace("(", "").replace(")", "")
                figures[f"write_path.{slug}.validator_calls"] = (sum(validator.values()), "calls")
                figures[f"write_path.{slug}.materialiser_calls"] = (sum(materialiser.values()), "calls")
                figures[f"write_path.{slug}.propagator_calls"] = (sum(propagator.values()), "calls")
                if services:
                    figures[f"write_path.{slug}.handler_calls_per_service"] = (per_service, "calls")
        print("\nper stage (operation count):")
        for name, validator, materialiser, propagator, handlers in details:
            print(
                f"  {name}:\n    validator: {fmt(validator)}\n    materialiser: {fmt(materialiser)}"
                f"\n    propagator: {fmt(propagator)}\n    update handlers: {fmt(handlers)}"
            )
        record("bench_write_path.py", figures)


if __name__ == "__main__":
    main()
