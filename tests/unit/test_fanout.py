"""Fan-out: every affected service's update handler gets the update, in parallel, and each
delivery is recorded on the bus.

moto cannot run Lambda code without Docker, so delivery goes through the invoker port: an
in-process invoker that hands the payload to the sample service's real handler (the
service's code, as Lambda would run it), or the default boto3 invoker against moto where
only the Invoke API's own answers matter."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from configpipe.bus import ConfigBus
from configpipe.fanout import DeliveryFailedError, FanOut, Invoker, LambdaInvoker
from configpipe.handlers import propagator
from configpipe.registry_source import RegistrySource
from configpipe.settings import PropagatorSettings
from configpipe_tools.harness.aws import ACCOUNT, REGION, Pipeline
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service.app import AppliedVersions
from sample_service.app import build as build_update_handler
from sample_service.settings import SampleServiceSettings
from tests.unit.test_materialise import ChangeWriter, build_materialiser, run_materialiser


class InProcessLambda:
    """Runs each service's sample update handler in this process, as the async Lambda
    runtime would: the payload bytes are decoded and handed to the handler."""

    def __init__(self, pipeline: Pipeline, barrier: threading.Barrier | None = None) -> None:
        self.handlers = {
            pipeline.registry.handler_of(name): build_update_handler(
                SampleServiceSettings(service_name=name, applied_table=pipeline.applied_table_name)
            )
            for name in pipeline.registry.services
        }
        self.invoked: list[tuple[str, int]] = []
        self.failing: set[str] = set()
        self._barrier = barrier
        self._lock = threading.Lock()

    def __call__(self, function_name: str, payload: bytes) -> None:
        if self._barrier is not None:
            self._barrier.wait()  # returns only if every delivery is in flight at once
        if function_name in self.failing:
            raise RuntimeError("TooManyRequestsException: Rate exceeded")
        with self._lock:
            self.invoked.append((function_name, threading.get_ident()))
        self.handlers[function_name](json.loads(payload), LambdaContext(function_name=function_name))


def announce(pipeline: Pipeline, writer: ChangeWriter, key: str, value: Any, **kwargs: Any) -> dict[str, Any]:
    """Accept a change, materialise it, and return ConfigurationUpdated as the bus delivered it."""
    writer.append(key, value, **kwargs)
    run_materialiser(pipeline.stream_event(), build_materialiser(pipeline))
    [event] = pipeline.bus_events("ConfigurationUpdated")
    # moto's SQS target drops "account", which EventBridge always sends to a Lambda target
    return {"account": ACCOUNT, **event}


def fanout_with(pipeline: Pipeline, invoker: Invoker) -> FanOut:
    return FanOut(
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm", region_name=REGION)),
        invoker=invoker,
        bus=ConfigBus(pipeline.bus_name, client=boto3.client("events", region_name=REGION)),
    )


def applied(pipeline: Pipeline, service: str, environment: str, key: str) -> dict[str, Any] | None:
    return AppliedVersions(service, pipeline.applied_table_name).get(environment, key)


@pytest.fixture
def writer(pipeline: Pipeline) -> ChangeWriter:
    return ChangeWriter(pipeline)


def test_global_key_reaches_every_service_subscribed_to_the_environment(pipeline, writer):
    # Given a global key in staging (search runs in development+staging only;
    # payments subscribes to the prefixes payments. and feature.)
    event = announce(pipeline, writer, "feature.dark_mode", True, service="global", environment="staging")
    lambdas = InProcessLambda(pipeline)
    # When the propagator handles the announcement
    result = propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas))
    # Then every service's handler applied version 1
    assert sorted(result["delivered"]) == ["checkout", "payments", "search"]
    for service in ("checkout", "payments", "search"):
        row = applied(pipeline, service, "staging", "feature.dark_mode")
        assert row is not None
        assert row["version"] == 1
        assert row["service"] == "global"


def test_environment_and_prefix_subscriptions_are_honoured(pipeline, writer):
    # production excludes search; the key's prefix excludes payments
    event = announce(pipeline, writer, "timeout_ms", 250, service="global", environment="production")
    lambdas = InProcessLambda(pipeline)
    result = propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas))
    assert result["delivered"] == ["checkout"]
    assert [name for name, _ in lambdas.invoked] == ["checkout-config-update-handler"]
    assert applied(pipeline, "payments", "production", "timeout_ms") is None
    assert applied(pipeline, "search", "production", "timeout_ms") is None


def test_a_service_key_reaches_only_its_own_service(pipeline, writer):
    event = announce(pipeline, writer, "max_items", 50, service="checkout", environment="production")
    lambdas = InProcessLambda(pipeline)
    assert propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas)) == {
        "delivered": ["checkout"]
    }


def test_handlers_are_invoked_in_parallel(pipeline, writer):
    event = announce(pipeline, writer, "feature.beta", "on", service="global", environment="development")
    # Three deliveries must all be waiting at the barrier at once; sequential calls would time out
    lambdas = InProcessLambda(pipeline, barrier=threading.Barrier(3, timeout=5))
    propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas))
    assert len({thread for _, thread in lambdas.invoked}) == 3


def test_each_delivery_is_recorded_on_the_bus(pipeline, writer):
    event = announce(pipeline, writer, "feature.beta", "on", service="global", environment="staging")
    propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, InProcessLambda(pipeline)))
    delivered = pipeline.bus_events("ConfigurationDelivered")
    assert sorted(e["detail"]["targetService"] for e in delivered) == ["checkout", "payments", "search"]
    detail = next(e["detail"] for e in delivered if e["detail"]["targetService"] == "payments")
    assert detail["functionName"] == "payments-config-update-handler"
    assert detail["changeId"] == event["detail"]["changeId"]
    assert (detail["service"], detail["environment"], detail["key"], detail["version"]) == (
        "global",
        "staging",
        "feature.beta",
        1,
    )
    assert all(e["source"] == "configpipe.pipeline" for e in delivered)


def test_a_failing_handler_is_reported_and_the_propagator_raises_for_a_retry(pipeline, writer):
    event = announce(pipeline, writer, "feature.beta", "on", service="global", environment="production")
    lambdas = InProcessLambda(pipeline)
    lambdas.failing = {"payments-config-update-handler"}
    # When one of two deliveries fails
    with pytest.raises(DeliveryFailedError) as raised:
        propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas))
    # Then it is reported (after the other one went through) and the propagator raises
    assert [f.target_service for f in raised.value.failures] == ["payments"]
    [failed] = pipeline.bus_events("ConfigurationDeliveryFailed")
    assert failed["detail"]["targetService"] == "payments"
    assert failed["detail"]["errorCode"] == "RuntimeError"
    assert "Rate exceeded" in failed["detail"]["errorMessage"]
    assert applied(pipeline, "checkout", "production", "feature.beta")["version"] == 1
    # When the async retry redelivers to both, the one that already applied it is unaffected
    lambdas.failing = set()
    propagator.handler(event, LambdaContext(), fanout=fanout_with(pipeline, lambdas))
    assert applied(pipeline, "payments", "production", "feature.beta")["version"] == 1
    assert applied(pipeline, "checkout", "production", "feature.beta")["version"] == 1


def test_default_invoker_reports_lambda_errors_as_failed_deliveries(pipeline, writer):
    # moto answers Invoke for a function that does not exist with ResourceNotFoundException
    event = announce(pipeline, writer, "max_items", 3, service="checkout", environment="production")
    fanout = fanout_with(pipeline, LambdaInvoker(boto3.client("lambda", region_name=REGION)))
    with pytest.raises(DeliveryFailedError):
        propagator.handler(event, LambdaContext(), fanout=fanout)
    [failed] = pipeline.bus_events("ConfigurationDeliveryFailed")
    assert failed["detail"]["errorCode"] == "ResourceNotFoundException"
    assert failed["detail"]["functionName"] == "checkout-config-update-handler"


def test_an_unaffecting_update_delivers_nothing(pipeline, writer):
    event = announce(pipeline, writer, "timeout_ms", 1, service="global", environment="production")
    registry = pipeline.registry.model_copy(update={"services": {}})
    fanout = FanOut(
        registry=lambda: registry,
        invoker=InProcessLambda(pipeline),
        bus=ConfigBus(pipeline.bus_name, client=boto3.client("events", region_name=REGION)),
    )
    assert propagator.handler(event, LambdaContext(), fanout=fanout) == {"delivered": []}
    assert pipeline.bus_events() == []


def test_propagator_builds_its_dependencies_from_the_environment(pipeline, writer):
    fanout = propagator.build(PropagatorSettings.from_environ(pipeline.env()))
    event = announce(pipeline, writer, "max_items", 3, service="checkout", environment="production")
    with pytest.raises(DeliveryFailedError):  # no such function in moto: a recorded failure
        propagator.handler(event, LambdaContext(), fanout=fanout)
    assert len(pipeline.bus_events("ConfigurationDeliveryFailed")) == 1


# --- bounded, concurrent fan-out (no AWS: the invoker and the EventBridge client are stand-ins) ---


class AcceptingEvents:
    """An EventBridge client that takes every entry; ``refuse`` names DetailTypes it refuses.
    With a barrier, each PutEvents returns only once ``parties`` of them are in flight."""

    def __init__(self, barrier: threading.Barrier | None = None, refuse: str = "") -> None:
        self.barrier = barrier
        self.refuse = refuse
        self.chunks: list[int] = []
        self._lock = threading.Lock()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.barrier is not None:
            self.barrier.wait()
        with self._lock:
            self.chunks.append(len(Entries))
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}
            if e["DetailType"] == self.refuse
            else {"EventId": "e"}
            for e in Entries
        ]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def many_services(n: int) -> Any:
    from configpipe.registry import Registry

    return Registry.model_validate({"services": {f"svc{i:02d}": {} for i in range(n)}})


def test_the_fan_out_never_runs_more_invokes_at_once_than_its_bound(pipeline, writer):
    event = announce(pipeline, writer, "feature.beta", "on", service="global", environment="production")
    update = propagator.parse_announcement(event)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow_invoke(function_name: str, payload: bytes) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        threading.Event().wait(0.05)
        with lock:
            in_flight[0] -= 1

    registry = many_services(12)
    fanout = FanOut(
        registry=lambda: registry,
        invoker=slow_invoke,
        bus=ConfigBus("b", client=AcceptingEvents()),
        max_parallel=3,
    )
    assert len(fanout.deliver(update, event)) == 12
    assert peak[0] == 3


def test_delivery_records_are_published_in_concurrent_batches(pipeline, writer):
    event = announce(pipeline, writer, "feature.beta", "on", service="global", environment="production")
    update = propagator.parse_announcement(event)
    registry = many_services(25)  # 3 PutEvents batches of at most 10
    # Every batch must be in flight at once, or the barrier breaks (sequential sends would)
    events = AcceptingEvents(barrier=threading.Barrier(3, timeout=5))
    fanout = FanOut(registry=lambda: registry, invoker=lambda *_: None, bus=ConfigBus("b", client=events))
    fanout.deliver(update, event)
    assert sorted(events.chunks) == [5, 10, 10]


def test_a_refused_record_in_any_concurrent_batch_fails_the_publish():
    from configpipe.errors import EventPublishError

    events = AcceptingEvents(refuse="Refused")
    entries = [
        {
            "EventBusName": "b",
            "Source": "s",
            "DetailType": "Refused" if i in (3, 17) else "Fine",
            "Detail": "{}",
        }
        for i in range(25)
    ]
    with pytest.raises(EventPublishError) as raised:
        ConfigBus("b", client=events).publish(entries, max_parallel=4)  # type: ignore[arg-type]
    assert sorted(events.chunks) == [5, 10, 10]  # every batch was still sent
    assert [f["DetailType"] for f in raised.value.failed_entries] == ["Refused", "Refused"]
