"""``configpipe watch``: catch-up from the change log, live events through a temporary
queue + rule, convergence per service, and clean-up of what it created."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from typer.testing import CliRunner, Result

from configpipe.bus import ConfigBus
from configpipe.client import Backoff
from configpipe.contracts import (
    ConfigurationDelivered,
    ConfigurationDeliveryFailed,
    ConfigurationUpdated,
    DetailType,
    Operation,
)
from configpipe_tools.cli.context import CliContext, OutputFormat
from configpipe_tools.cli.main import app
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.watching import WATCH_PREFIX, Subscription, Watch, WatchFilter, watch_pattern
from configpipe_tools.harness.aws import REGION
from tests.unit.cli.conftest import Validator, assert_clean_exit, frozen_environment, seed

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def lines(result: Any) -> list[dict[str, Any]]:
    """--output json for watch: one JSON object per line."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Clients:
    """The test thread's clients, made before a watch runs in the background: while it runs,
    only its thread may iterate os.environ, which making a client does (see
    :func:`frozen_environment`)."""

    events: Any
    sqs: Any


@pytest.fixture
def clients(pipeline) -> Clients:  # type: ignore[no-untyped-def]
    return Clients(boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION))


def watch_resources(clients: Clients) -> tuple[list[str], list[str]]:
    rules = clients.events.list_rules(NamePrefix=WATCH_PREFIX, EventBusName="configpipe-config-bus")["Rules"]
    queues = clients.sqs.list_queues(QueueNamePrefix=WATCH_PREFIX).get("QueueUrls", [])
    return [r["Name"] for r in rules], queues


def updated(key: str, version: int, service: str = "checkout") -> tuple[DetailType, ConfigurationUpdated]:
    return DetailType.CONFIGURATION_UPDATED, ConfigurationUpdated(
        change_id=f"c-{key}-{version}",
        service=service,
        environment="production",
        key=key,
        operation=Operation.PUT,
        version=version,
        previous_version=version - 1 or None,
        value_hash="sha256:00",
        author="alice",
        reason="because",
        applied_at=NOW,
    )


def delivered(key: str, version: int, target: str, service: str = "checkout") -> tuple[DetailType, Any]:
    return DetailType.CONFIGURATION_DELIVERED, ConfigurationDelivered(
        change_id=f"c-{key}-{version}",
        target_service=target,
        service=service,
        environment="production",
        key=key,
        version=version,
        function_name=f"{target}-config-update-handler",
        delivered_at=NOW,
    )


def failed(key: str, version: int, target: str, service: str = "checkout") -> tuple[DetailType, Any]:
    return DetailType.CONFIGURATION_DELIVERY_FAILED, ConfigurationDeliveryFailed(
        change_id=f"c-{key}-{version}",
        target_service=target,
        service=service,
        environment="production",
        key=key,
        version=version,
        function_name=f"{target}-config-update-handler",
        error_code="ResourceNotFoundException",
        error_message="function not found",
        failed_at=NOW,
    )


def announce(clients: Clients, *events: tuple[DetailType, Any]) -> None:
    """What the materialiser and propagator publish (source configpipe.pipeline)."""
    bus = ConfigBus("configpipe-config-bus", client=clients.events)
    bus.publish([bus.entry(detail_type, detail) for detail_type, detail in events])


WATCH_THREAD = "configpipe-watch"


@contextlib.contextmanager
def watching(runner: CliRunner, clients: Clients, args: list[str]) -> Iterator[dict[str, Result]]:
    """Run ``configpipe watch`` on its own thread until it ends; yields once it has subscribed.
    Typer sets and removes an environment variable around each invoke, so while the watch runs
    the test thread must not iterate os.environ (the frozen environment enforces it)."""
    box: dict[str, Result] = {}

    def run() -> None:
        box["result"] = runner.invoke(app, args)  # no env=: it would race the test thread

    thread = threading.Thread(target=run, name=WATCH_THREAD, daemon=True)
    with frozen_environment(iterating_thread=WATCH_THREAD):
        thread.start()
        try:
            wait_until_subscribed(clients)
            yield box
        finally:
            thread.join(timeout=180)
        if thread.is_alive():
            raise AssertionError("watch did not end")


def wait_until_subscribed(clients: Clients) -> None:
    deadline = time.monotonic() + 120  # generous: under stress-ng, subscribing once took > 10 s
    while time.monotonic() < deadline:  # the watch subscribes before it shows anything
        rules, _ = watch_resources(clients)
        if (
            rules
            and clients.events.list_targets_by_rule(Rule=rules[0], EventBusName="configpipe-config-bus")[
                "Targets"
            ]
        ):
            return
        time.sleep(0.05)
    raise AssertionError("watch never subscribed")


def test_catch_up_replays_versions_newer_than_since_and_cleans_up(cli, clients, idle_validator: Validator):
    # Given versions 1..3 of a checkout key, a global key, and another service's key
    seed(idle_validator, "max_items", 10, 20, 30)
    seed(idle_validator, "feature.x", True, False, service="global")
    seed(idle_validator, "payments.limit", 1, 2, service="payments")

    # When a watcher resumes from version 1
    result = cli(
        "watch",
        "--service",
        "checkout",
        "--env",
        "production",
        "--since-version",
        "1",
        "--timeout",
        "1",
        "-o",
        "json",
    )

    # Then it shows exactly what it missed, in version order per key
    assert_clean_exit(result, 0)
    events = lines(result)
    caught = [(e["service"], e["key"], e["version"]) for e in events if e["type"] == "caughtUp"]
    assert caught == [("checkout", "max_items", 2), ("checkout", "max_items", 3), ("global", "feature.x", 2)]
    # and a convergence summary with the latest versions (nothing delivered yet)
    summary = events[-1]
    assert summary["type"] == "summary" and summary["converged"] is False
    rows = {(r["targetService"], r["key"]): r for r in summary["services"]}
    assert rows[("checkout", "max_items")]["latestVersion"] == 3
    assert rows[("checkout", "max_items")]["state"] == "pending"
    # and its temporary queue and rule are gone
    assert watch_resources(clients) == ([], [])


def test_live_events_show_per_service_convergence(runner, clients):
    # Given a watcher following production
    args = ["watch", "--env", "production", "--max-events", "5", "--timeout", "120", "-o", "json"]
    with watching(runner, clients, args) as box:
        # When checkout's key moves to v4 and payments' key to v2, delivered to checkout only
        announce(
            clients,
            updated("max_items", 4),
            delivered("max_items", 4, "checkout"),
            updated("payments.limit", 2, service="payments"),
            failed("payments.limit", 2, "payments", service="payments"),
            delivered("payments.limit", 1, "payments", service="payments"),
        )

    # Then every event is shown and each service's state is right
    result = box["result"]
    assert_clean_exit(result, 0)
    events = lines(result)
    assert sorted(e["type"] for e in events[:-1]) == [
        "delivered",
        "delivered",
        "deliveryFailed",
        "updated",
        "updated",
    ]
    rows = {r["targetService"]: r for r in events[-1]["services"]}
    assert rows["checkout"]["state"] == "converged" and rows["checkout"]["appliedVersion"] == 4
    assert rows["payments"]["state"] == "failed" and rows["payments"]["appliedVersion"] == 1
    assert "ResourceNotFoundException" in rows["payments"]["error"]
    assert watch_resources(clients) == ([], [])


def test_service_filter_and_human_output(runner, clients):
    with watching(
        runner, clients, ["watch", "--service", "checkout", "--max-events", "2", "--timeout", "120"]
    ) as box:
        announce(
            clients,
            updated("payments.limit", 9, service="payments"),  # not checkout's: ignored
            updated("max_items", 5),
            delivered("max_items", 5, "checkout"),
        )

    result = box["result"]
    assert_clean_exit(result, 0)
    assert "v5 checkout/production/max_items" in result.stdout
    assert "→ checkout" in result.stdout
    assert "payments.limit" not in result.stdout
    assert "converged" in result.stdout


def test_caught_up_versions_are_not_shown_twice(runner, clients, idle_validator: Validator):
    # Given v1..v2 in the change log
    seed(idle_validator, "max_items", 10, 20)
    args = ["watch", "--service", "checkout", "--env", "production", "--since-version", "0"]
    args += ["--max-events", "1", "--timeout", "120", "-o", "json"]
    with watching(runner, clients, args) as box:
        # When the announcement of v2 arrives live after the catch-up showed it, then v3
        announce(clients, updated("max_items", 2), updated("max_items", 3))

    result = box["result"]
    assert_clean_exit(result, 0)
    shown = [(e["type"], e["version"]) for e in lines(result) if e["type"] != "summary"]
    assert shown == [("caughtUp", 1), ("caughtUp", 2), ("updated", 3)]


def test_since_version_needs_a_service(cli, clients):
    result = cli("watch", "--since-version", "3", "--timeout", "0")

    assert_clean_exit(result, 2)
    assert "--service" in result.stderr
    assert watch_resources(clients) == ([], [])


@pytest.mark.parametrize("option", ["--max-events", "--timeout"])
def test_bounds_must_be_sensible(cli, option):
    result = cli("watch", option, "-1")

    assert_clean_exit(result, 2)


class DroppingSqs:
    """The moto SQS client, with its first ``failures`` receives failing like a dropped
    connection (the network, not our code)."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def receive_message(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")
        return self._client.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_dropped_connection_is_retried_with_backoff_and_misses_nothing(pipeline, clients, capsys):
    # Given a watch whose first two receives fail, and v6 announced meanwhile
    ctx = CliContext(output=OutputFormat.JSON)
    ctx._clients["sqs"] = DroppingSqs(clients.sqs, failures=2)
    ctx._clients["events"] = clients.events
    watch = Watch(ctx, Output(as_json=True), WatchFilter(service="checkout"))
    subscription = Subscription(ctx, watch_pattern(WatchFilter(service="checkout")))
    subscription.open()
    delays: list[float] = []
    try:
        announce(clients, updated("max_items", 6))

        # When it follows the bus
        shown = watch.follow(
            subscription,
            max_events=1,
            timeout=120,
            backoff=Backoff(rng=random.Random(2)),
            sleep=delays.append,
        )
    finally:
        subscription.close()

    # Then it backed off twice (jittered, growing ceilings), reconnected and showed v6
    assert shown == 1
    assert len(delays) == 2 and 0 <= delays[0] < 0.5 and 0 <= delays[1] < 1.0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [(e["type"], e["version"]) for e in events] == [("updated", 6)]


def test_watch_names_are_prefixed_with_the_team_its_policy_allows() -> None:
    # M1 (docs/security.md): the publisher policy allows configpipe-watch-<team>-* only.
    from configpipe_tools.cli.watching import watch_prefix

    assert watch_prefix("configpipe.team.checkout") == "configpipe-watch-checkout-"
    assert watch_prefix("configpipe.team.data.eng") == "configpipe-watch-data-eng-"
    assert watch_prefix(None) == "configpipe-watch-anonymous-"


def test_the_watch_queue_gets_its_policy_at_creation_and_its_attributes_are_never_set(pipeline, clients):
    # M1 (docs/security.md): the publisher policy grants no sqs:SetQueueAttributes.
    set_calls: list[str] = []
    clients.sqs.meta.events.register(
        "before-call.sqs.SetQueueAttributes", lambda **kwargs: set_calls.append(kwargs["model"].name)
    )
    ctx = CliContext(output=OutputFormat.JSON, source="configpipe.team.checkout")
    ctx._clients["sqs"], ctx._clients["events"] = clients.sqs, clients.events
    subscription = Subscription(ctx, watch_pattern(WatchFilter(service="checkout")))
    subscription.open()
    try:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=subscription.queue_url, AttributeNames=["Policy", "QueueArn"]
        )["Attributes"]
        [target] = clients.events.list_targets_by_rule(Rule=subscription.name, EventBusName=ctx.bus_name)[
            "Targets"
        ]
        announce(clients, updated("max_items", 6))
        delivered = subscription.receive(wait_seconds=1)
    finally:
        subscription.close()

    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Resource"] == attributes["QueueArn"] == target["Arn"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(
        f"rule/{ctx.bus_name}/{subscription.name}"
    )
    assert set_calls == []
    assert [e["detail"]["version"] for e in delivered] == [6]
