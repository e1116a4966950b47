"""``configpipe.client.Subscription``: catch-up from the change log by version, the durable
queue after it, per-key order with no gap and no duplicate, the DLQ for a failing callback,
and reconnect backoff. The whole pipeline runs in moto (the Chain harness); the subscriber's
queue and rule are the ones the registry declares (``provision_subscribers``)."""

from __future__ import annotations

import copy
import json
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from configpipe.changelog import ChangeLog
from configpipe.client import Backoff, ConfigClient, Subscription, SubscriptionScope
from configpipe.contracts import ConfigurationRolloutEvent, ConfigurationUpdated
from configpipe.registry import SUBSCRIBER_MAX_RECEIVES
from configpipe.release.health import AlarmHealth
from configpipe.rollout.service import RolloutService
from configpipe.stores import ParameterStore, SecretStore
from configpipe_tools.harness.aws import DEMO_REGISTRY, REGION, provision, set_alarm
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change

REGISTRY = copy.deepcopy(DEMO_REGISTRY)
REGISTRY["services"]["checkout"]["consumers"] = ["worker"]


@pytest.fixture
def chain(aws) -> Chain:
    return Chain(provision(REGISTRY))


@pytest.fixture
def sqs(chain) -> Any:
    return boto3.client("sqs", region_name=REGION)


def queue_urls(chain: Chain) -> tuple[str, str]:
    return chain.pipeline.subscriber_queues[("checkout", "worker")]


def put(chain: Chain, key: str, *values: Any, service: str = "checkout", sensitive: bool = False) -> None:
    """Publish one change per value through the real pipeline and let it settle."""
    source = "configpipe.team.platform" if service == "global" else f"configpipe.team.{service}"
    for value in values:
        detail: dict[str, Any] = {
            "changeId": f"c-{uuid.uuid4().hex}",
            "service": service,
            "environment": "production",
            "key": key,
            "operation": "put",
            "value": value,
            "author": "alice",
            "reason": "test",
        }
        if sensitive:
            detail["sensitive"] = True
            detail = chain.sealed(detail)  # a secret's value arrives encrypted (SENSITIVE_VALUE_IN_CLEAR)
        chain.publish(detail, source=source)
        chain.run()


class Seen:
    """The service's callback: what it was given, in order."""

    def __init__(self, fail_on: set[tuple[str, int]] | None = None) -> None:
        self.updates: list[tuple[str, str, int, Any]] = []
        self.fail_on = fail_on or set()

    def __call__(self, update: ConfigurationUpdated, value: Any) -> None:
        if (update.key, update.version) in self.fail_on:
            raise RuntimeError("the service could not apply it")
        self.updates.append((update.service, update.key, update.version, value))

    def versions(self, key: str) -> list[int]:
        return [v for _, k, v, _ in self.updates if k == key]


class FlakySqs:
    """A real (moto) SQS client whose first ``failures`` receives fail as a dropped
    connection does. Not our code: the network between the consumer and SQS."""

    def __init__(self, client: Any, failures: int, before_failing: Any = None) -> None:
        self._client = client
        self.failures = failures
        self._before_failing = before_failing
        #: set by the first receive that succeeds after the failures: the test's stop signal
        self.reconnected = threading.Event()

    def receive_message(self, **kwargs: Any) -> Any:
        if self.failures:
            if self._before_failing is not None:
                self._before_failing()
                self._before_failing = None
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")
        self.reconnected.set()
        return self._client.receive_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def subscription(chain: Chain, sqs: Any, seen: Seen, **kwargs: Any) -> Subscription:
    return Subscription(
        SubscriptionScope("checkout", environments=("production",)),
        queue_urls(chain)[0],
        seen,
        change_log=ChangeLog(chain.pipeline.table_name),
        sqs=kwargs.pop("sqs_client", sqs),
        parameters=ParameterStore(client=boto3.client("ssm", region_name=REGION)),
        secrets=SecretStore(client=boto3.client("secretsmanager", region_name=REGION)),
        wait_seconds=0,
        **kwargs,
    )


def drain(sub: Subscription, rounds: int = 10) -> None:
    for _ in range(rounds):
        sub.poll(0)


def updates_queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    """The ``ConfigurationUpdated`` events on a queue (it also receives delivery outcomes)."""
    return [e for e in queued(sqs, url) if e["detail-type"] == "ConfigurationUpdated"]


def queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on a queue (received with a zero visibility timeout, so left there)."""
    bodies: list[dict[str, Any]] = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        ids = {b["id"] for b in bodies}
        fresh = [json.loads(m["Body"]) for m in got if json.loads(m["Body"])["id"] not in ids]
        if not fresh and got:
            break
        bodies.extend(fresh)
        if not got:
            break
    return bodies


def test_the_queue_delivers_each_version_once_in_order(chain, sqs):
    # Given a subscriber that caught up with an empty change log
    seen = Seen()
    sub = subscription(chain, sqs, seen)
    assert sub.catch_up() == 0

    # When checkout's key goes through v1..v3 and another service's key changes
    put(chain, "max_items", 10, 20, 30)
    put(chain, "payments.limit", 5, service="payments")
    drain(sub)

    # Then the callback saw v1..v3 of its key with their values, nothing else, and the queue is empty
    assert seen.updates == [("checkout", "max_items", v, 10 * v) for v in (1, 2, 3)]
    assert queued(sqs, queue_urls(chain)[0]) == []


def test_catch_up_after_a_disconnect_during_a_burst_misses_nothing_and_repeats_nothing(chain, sqs):
    # Given a subscriber that applied v1 of two keys
    put(chain, "max_items", 1)
    put(chain, "feature.x", True, service="global")
    seen = Seen()
    url = queue_urls(chain)[0]

    def burst_while_disconnected() -> None:
        # A burst lands while the connection is down, and its announcements never reach this
        # consumer (lost with a recreated queue, say): only the change log has them.
        put(chain, "max_items", 2, 3, 4, 5, 6)
        put(chain, "feature.x", False, True, service="global")
        sqs.purge_queue(QueueUrl=url)
        # ...except a late duplicate of v4 and a reordered v6, which arrive after reconnecting
        announced = [e for e in chain.seen_events if e["detail-type"] == "ConfigurationUpdated"]
        late = [
            e for e in announced if e["detail"]["key"] == "max_items" and e["detail"]["version"] in (6, 4)
        ]
        for event in sorted(late, key=lambda e: -e["detail"]["version"]):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

    delays: list[float] = []
    flaky = FlakySqs(sqs, failures=3, before_failing=burst_while_disconnected)
    sub = subscription(
        chain, sqs, seen, sqs_client=flaky, sleep=delays.append, backoff=Backoff(rng=random.Random(1))
    )

    # When it runs: catches up (the v1s), loses the connection on three receives in a row
    # (catching up after each), then reconnects and receives the late messages
    sub.run(flaky.reconnected)

    # Then every version of every key reached the callback once, in order
    assert seen.versions("max_items") == [1, 2, 3, 4, 5, 6]
    assert seen.versions("feature.x") == [1, 2, 3]
    assert [v for _, k, _, v in seen.updates if k == "max_items"] == [1, 2, 3, 4, 5, 6]
    # after backing off once per failed receive, within the jittered ceilings
    assert len(delays) == 3
    assert all(0 <= d < ceiling for d, ceiling in zip(delays, (0.5, 1.0, 2.0), strict=True))
    assert queued(sqs, url) == []


def test_replayed_and_reordered_messages_are_applied_once_in_version_order(chain, sqs):
    # Given v1..v4 announced, captured off the queue
    put(chain, "max_items", 10, 20, 30, 40)
    url = queue_urls(chain)[0]
    events = {e["detail"]["version"]: e for e in updates_queued(sqs, url)}
    assert sorted(events) == [1, 2, 3, 4]
    sqs.purge_queue(QueueUrl=url)
    seen = Seen()
    sub = subscription(chain, sqs, seen)

    # When v4 and v3 arrive first (v1, v2 delayed), then v2, v1 and v4 again
    for version in (4, 3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(events[version]))
    drain(sub)
    for version in (2, 1, 4, 3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(events[version]))
    drain(sub)

    # Then the gap was filled from the change log and each version applied once, in order
    assert seen.versions("max_items") == [1, 2, 3, 4]
    assert [v for *_, v in seen.updates] == [10, 20, 30, 40]
    assert queued(sqs, url) == []


def test_a_failing_callback_leaves_the_key_at_its_last_good_version_and_the_messages_in_the_dlq(chain, sqs):
    # Given a queue that redelivers at once, and a service that cannot apply v2
    url, dlq = queue_urls(chain)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    seen = Seen(fail_on={("max_items", 2)})
    sub = subscription(chain, sqs, seen)

    # When v1..v3 arrive and the consumer keeps polling
    put(chain, "max_items", 1, 2, 3)
    drain(sub, rounds=SUBSCRIBER_MAX_RECEIVES + 3)

    # Then v1 was applied, v2 never, and v3 not past it (no gap); both wait in the DLQ
    assert seen.versions("max_items") == [1]
    assert sub.held[("checkout", "production", "max_items")] == 1
    assert sorted(e["detail"]["version"] for e in updates_queued(sqs, dlq)) == [2, 3]
    assert queued(sqs, url) == []


def test_catch_up_reads_a_secret_at_its_own_version(chain, sqs):
    # Given two versions of a sensitive key
    put(chain, "db_password", "first", "second", sensitive=True)
    sqs.purge_queue(QueueUrl=queue_urls(chain)[0])
    seen = Seen()

    # When a subscriber starts from nothing
    delivered = subscription(chain, sqs, seen).catch_up()

    # Then both versions reach it, each with its own value, read from Secrets Manager
    assert delivered == 2
    assert [(k, v, value) for _, k, v, value in seen.updates] == [
        ("db_password", 1, "first"),
        ("db_password", 2, "second"),
    ]


def test_resuming_from_held_versions_delivers_only_what_is_newer(chain, sqs):
    put(chain, "max_items", 1, 2, 3)
    seen = Seen()
    sub = subscription(chain, sqs, seen, held={("checkout", "production", "max_items"): 2})

    sub.catch_up()
    drain(sub)

    assert seen.versions("max_items") == [3]


def test_backoff_grows_exponentially_with_full_jitter_up_to_a_cap_and_resets():
    backoff = Backoff(base_seconds=1, cap_seconds=8, rng=random.Random(3))

    delays = [backoff.next_delay() for _ in range(6)]
    backoff.reset()
    after_reset = backoff.next_delay()

    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(0 <= d < c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[3:]) > 2  # it does grow past the early ceilings
    assert after_reset < 1
    # jitter: two consumers with different seeds do not wait the same times
    other = Backoff(base_seconds=1, cap_seconds=8, rng=random.Random(4))
    assert [other.next_delay() for _ in range(6)] != delays


# --- the registry's declaration -------------------------------------------------------------


def test_a_consumer_name_that_cannot_make_a_queue_name_is_refused_at_synth():
    from pydantic import ValidationError

    from configpipe.registry import Registry

    for bad in ("Worker", "ledger_worker", "-worker", "a-name-longer-than-18"):
        with pytest.raises(ValidationError):
            Registry.model_validate({"services": {"checkout": {"consumers": [bad]}}})


def test_the_subscription_pattern_narrows_like_the_fan_out():
    from configpipe.registry import Registry

    registry = Registry.model_validate(
        {"services": {"payments": {"environments": ["staging"], "keyPrefixes": ["payments.", "feature."]}}}
    )

    pattern = registry.subscription_pattern("payments")

    assert pattern["source"] == ["configpipe.pipeline"]
    assert pattern["detail"] == {
        "service": ["payments", "global"],
        "environment": ["staging"],
        "key": [{"prefix": "payments."}, {"prefix": "feature."}],
    }
    scope = SubscriptionScope("payments", environments=("staging",), key_prefixes=("payments.", "feature."))
    assert scope.wants("global", "staging", "feature.x") and not scope.wants("global", "staging", "other")
    assert not scope.wants("payments", "production", "payments.limit")


def test_an_announcement_with_a_field_it_does_not_know_is_still_applied_and_a_forged_one_is_not(chain, sqs):
    # Given v1 announced, then replaced on the queue by a newer pipeline's v1 (one more field)
    # and a forged v2 (its parameterName points at another service's parameter)
    put(chain, "max_items", 10)
    url = queue_urls(chain)[0]
    (v1,) = updates_queued(sqs, url)
    sqs.purge_queue(QueueUrl=url)
    newer = {**v1, "detail": {**v1["detail"], "deliveryTier": "gold"}}
    forged = {
        **v1,
        "detail": {
            **v1["detail"],
            "version": 2,
            "parameterName": "/config/payments/production/payments.limit",
        },
    }
    for event in (newer, forged):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    seen = Seen()

    # When the subscriber reads them
    drain(subscription(chain, sqs, seen))

    # Then v1 is applied, the forgery refused (and acknowledged, so it never reaches the DLQ)
    assert seen.updates == [("checkout", "max_items", 1, 10)]
    assert queued(sqs, url) == []


# --- progressive rollouts (docs/rollouts.md) -------------------------------------------------

ALARM = "checkout-errors"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)  # the write path stamps the rollout's start with the real time

    def __call__(self) -> datetime:
        return self.now


def tick(chain: Chain, clock: Clock, minutes: float) -> None:
    """The rollout function's schedule, ``minutes`` later (as tests/integration/test_rollout_chain.py)."""
    clock.now += timedelta(minutes=minutes)
    RolloutService(
        ChangeLog(chain.pipeline.table_name),
        AlarmHealth(boto3.client("cloudwatch", region_name=REGION)),
        chain.write_path._registry,
        clock=clock,
    ).reconcile("checkout", "production", "max_items")
    chain.run()


def start_canary(chain: Chain) -> None:
    """max_items: v1 = 10 for everyone, then v2 = 20 rolled out as a 10 % canary watched by ALARM."""
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "OK")
    put(chain, "max_items", 10)
    chain.publish(
        change(
            "max_items",
            20,
            environment="production",
            change_id="canary-20",
            rollout={"strategy": "Canary10Percent5Minutes", "alarms": [ALARM]},
        ),
        "configpipe.team.checkout",
    )
    chain.run()


class Rollouts:
    """The service's ``on_rollout``: what it was given, in order."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, int, float, Any, Any]] = []
        self.fail = fail

    def __call__(self, event: ConfigurationRolloutEvent, stable: Any, candidate: Any) -> None:
        if self.fail:
            raise RuntimeError("the service could not apply the step")
        self.events.append((str(event.status), event.sequence, event.weight, stable, candidate))

    def sequences(self) -> list[int]:
        return [sequence for _, sequence, *_ in self.events]


def rollout_events_queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    return [e for e in queued(sqs, url) if e["detail-type"].startswith("ConfigurationRollout")]


def test_a_rollout_started_stepped_and_completed_reaches_the_subscriber_like_the_update_handler(chain, sqs):
    # Given a subscriber that follows checkout with a ConfigClient and a rollout callback
    seen, rollouts = Seen(), Rollouts()
    config = ConfigClient("checkout", "production", ssm_client=boto3.client("ssm", region_name=REGION))
    sub = subscription(chain, sqs, seen, on_rollout=rollouts, client=config)
    clock = Clock()

    # When v2 starts as a canary over v1
    start_canary(chain)
    drain(sub)

    # Then the start reached on_rollout with the stable and candidate values and the weight,
    # the client reads the candidate's share, and on_update has v1 only (v2 is not everyone's yet)
    assert rollouts.events == [("ROLLING_OUT", 0, 10.0, 10, 20)]
    assert config.rollout("max_items")["weight"] == 10.0
    assert seen.versions("max_items") == [1]
    # ...also after a reconnect's catch-up, which waits at the stable version
    sub.catch_up()
    assert seen.versions("max_items") == [1]

    # When the schedule runs the canary to its end
    for minutes in (1, 5, 5):
        tick(chain, clock, minutes)
        drain(sub)

    # Then every step reached on_rollout once, in sequence order, ending COMPLETED, and v2
    # reached on_update once, after it (the completion's ConfigurationUpdated)
    statuses = [status for status, *_ in rollouts.events]
    assert statuses[0] == "ROLLING_OUT" and statuses[-1] == "COMPLETED"
    assert rollouts.sequences() == sorted(set(rollouts.sequences()))
    assert rollouts.events[-1][4] == 20  # the candidate (the stable read is the main value: 20 by now)
    assert seen.updates == [("checkout", "max_items", 1, 10), ("checkout", "max_items", 2, 20)]
    assert config.rollout("max_items") is None and config.get("max_items", subject="anyone") == 20
    assert queued(sqs, queue_urls(chain)[0]) == []


def test_a_rolled_back_rollout_reaches_the_subscriber_and_its_candidate_never_reaches_on_update(chain, sqs):
    # Given a subscriber on v1 that heard the canary start
    seen, rollouts = Seen(), Rollouts()
    sub = subscription(chain, sqs, seen, on_rollout=rollouts)
    clock = Clock()
    start_canary(chain)
    drain(sub)

    # When the alarm fires and the next tick rolls the canary back
    tick(chain, clock, 1)
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "ALARM")
    tick(chain, clock, 1)
    drain(sub)

    # Then on_rollout heard the rollback, and on_update went from v1 to the restoring v3
    # (v2's value 20 never reached it: the gap before v3 was filled without the candidate)
    assert [status for status, *_ in rollouts.events][-1] == "ROLLED_BACK"
    assert seen.updates == [("checkout", "max_items", 1, 10), ("checkout", "max_items", 3, 10)]
    assert sub.held[("checkout", "production", "max_items")] == 3


def test_a_subscriber_that_missed_a_rollback_catches_up_without_the_candidate(chain, sqs):
    # Given a canary rolled back while the subscriber was away (its messages lost)
    clock = Clock()
    start_canary(chain)
    tick(chain, clock, 1)
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "ALARM")
    tick(chain, clock, 1)
    sqs.purge_queue(QueueUrl=queue_urls(chain)[0])
    seen, rollouts = Seen(), Rollouts()

    # When it catches up from the change log
    subscription(chain, sqs, seen, on_rollout=rollouts).catch_up()

    # Then it gets v1 and the restoring v3, never the rolled-back candidate v2
    assert seen.updates == [("checkout", "max_items", 1, 10), ("checkout", "max_items", 3, 10)]
    assert rollouts.events == []  # an ended rollout is not replayed (docs/consuming.md)


def test_a_subscriber_that_starts_mid_rollout_hears_the_current_step_once(chain, sqs):
    # Given a canary running, its announcements drained by someone else
    start_canary(chain)
    sqs.purge_queue(QueueUrl=queue_urls(chain)[0])
    seen, rollouts = Seen(), Rollouts()
    sub = subscription(chain, sqs, seen, on_rollout=rollouts)

    # When it starts, and catches up again after a reconnect
    sub.catch_up()
    sub.catch_up()

    # Then on_update has the stable v1, on_rollout the running step once
    assert seen.updates == [("checkout", "max_items", 1, 10)]
    assert rollouts.events == [("ROLLING_OUT", 0, 10.0, 10, 20)]


def test_replayed_and_reordered_rollout_events_are_applied_once_in_sequence_order(chain, sqs):
    # Given a canary's events captured off the queue (started, steps, completed)
    clock = Clock()
    start_canary(chain)
    for minutes in (1, 5, 5):
        tick(chain, clock, minutes)
    url = queue_urls(chain)[0]
    events = rollout_events_queued(sqs, url)
    sequences = sorted(e["detail"]["sequence"] for e in events)
    assert len(sequences) >= 2 and len(set(sequences)) == len(sequences)
    sqs.purge_queue(QueueUrl=url)
    seen, rollouts = Seen(), Rollouts()
    sub = subscription(
        chain, sqs, seen, on_rollout=rollouts, held={("checkout", "production", "max_items"): 2}
    )

    # When they arrive newest first, then all of them again
    for event in sorted(events, key=lambda e: -e["detail"]["sequence"]):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    drain(sub)
    for event in events:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    drain(sub)

    # Then each reached on_rollout at most once and in increasing sequence order; nothing left queued
    assert rollouts.sequences() == sorted(set(rollouts.sequences()))
    assert rollouts.sequences()[-1] == sequences[-1]
    assert queued(sqs, url) == []


def test_a_failing_rollout_callback_leaves_the_event_to_sqs_and_then_the_dlq(chain, sqs):
    # Given a queue that redelivers at once and a service that cannot apply any step
    url, dlq = queue_urls(chain)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    sub = subscription(chain, sqs, Seen(), on_rollout=Rollouts(fail=True))

    # When the canary starts and the consumer keeps polling
    start_canary(chain)
    drain(sub, rounds=SUBSCRIBER_MAX_RECEIVES + 3)

    # Then the start was never held as applied and waits in the DLQ
    assert sub.rollouts.held == {}
    assert [e["detail-type"] for e in rollout_events_queued(sqs, dlq)] == ["ConfigurationRolloutStarted"]


class TenantSeen(Seen):
    """The callback, with each update's tenant."""

    def __init__(self) -> None:
        super().__init__()
        self.scoped: list[tuple[str | None, str, int, Any]] = []

    def __call__(self, update: ConfigurationUpdated, value: Any) -> None:
        super().__call__(update, value)
        self.scoped.append((update.tenant, update.key, update.version, value))

    def of(self, tenant: str | None) -> list[tuple[int, Any]]:
        return [(v, value) for t, _, v, value in self.scoped if t == tenant]


def put_tenant(chain: Chain, tenant: str, key: str, *values: Any) -> None:
    for value in values:
        chain.publish(change(key, value, environment="production", tenant=tenant), "configpipe.team.checkout")
        chain.run()


def test_a_tenants_values_are_followed_in_their_own_order_beside_the_services(chain, sqs):
    # Given a subscriber that caught up with an empty change log
    seen = TenantSeen()
    sub = subscription(chain, sqs, seen)
    sub.catch_up()

    # When the service's value and two tenants' own values of the same key change
    put(chain, "max_items", 10)
    put_tenant(chain, "acme", "max_items", 100, 200)
    put_tenant(chain, "globex", "max_items", 7)
    put(chain, "max_items", 20)
    drain(sub)

    # Then each (key, tenant) reached the callback once, in its own version order, with its value
    assert seen.of(None) == [(1, 10), (2, 20)]
    assert seen.of("acme") == [(1, 100), (2, 200)]
    assert seen.of("globex") == [(1, 7)]
    assert sub.held[("checkout", "production", "max_items")] == 2
    assert sub.held[("checkout", "production", "max_items", "acme")] == 2
    assert queued(sqs, queue_urls(chain)[0]) == []


def test_a_tenants_missed_versions_are_caught_up_from_the_change_log(chain, sqs):
    # Given a subscriber holding acme's v1, whose queue then lost every announcement
    put_tenant(chain, "acme", "max_items", 100)
    seen = TenantSeen()
    sub = subscription(chain, sqs, seen)
    sub.catch_up()
    put_tenant(chain, "acme", "max_items", 200, 300)
    put_tenant(chain, "initech", "banner", "hi")
    sqs.purge_queue(QueueUrl=queue_urls(chain)[0])

    # When it catches up (as after a reconnect)
    delivered = sub.catch_up()

    # Then every missed tenant version arrived once, in order, and a second catch-up has nothing
    assert seen.of("acme") == [(1, 100), (2, 200), (3, 300)]
    assert seen.of("initech") == [(1, "hi")]
    assert delivered == 3 and sub.catch_up() == 0


def test_a_tenants_rollout_reaches_on_rollout_apart_from_the_services(chain, sqs):
    # Given a subscriber, and tenant acme's own value rolling out (a Started event with tenant)
    url, _ = queue_urls(chain)
    rollouts = Rollouts()
    sub = subscription(chain, sqs, TenantSeen(), on_rollout=rollouts)
    put(chain, "max_items", 10)
    put_tenant(chain, "acme", "max_items", 100)
    chain.publish(
        change(
            "max_items",
            150,
            environment="production",
            change_id="acme-canary",
            tenant="acme",
            rollout={"strategy": "Canary10Percent5Minutes"},
        ),
        "configpipe.team.checkout",
    )
    chain.run()

    # When the subscriber polls
    drain(sub)

    # Then the tenant's rollout step reached on_rollout with the tenant's stable and candidate
    # values, held under the tenant (the service's own value is not rolling out)
    assert [(status, stable, candidate) for status, _, _, stable, candidate in rollouts.events] == [
        ("ROLLING_OUT", 100, 150)
    ]
    assert set(sub.rollouts.held) == {("checkout", "production", "max_items", "acme")}
    assert queued(sqs, url) == []
