"""``ConfigPipeProvider`` through the real ``openfeature-sdk`` client: every reason and error
code, rules on attributes and the targeting key, typed resolution, events on a push, staleness
and recovery, a flags document under a progressive rollout. SSM is moto."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, GeneralError, ParseError
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from configpipe.client import ConfigClient, config_update_handler
from configpipe.client.feature_flags import ConfigPipeStore
from configpipe.client.openfeature import ConfigPipeProvider
from tests.unit.test_client import Clock, as_event, put, update
from tests.unit.test_client_rollouts import materialise, view
from tests.unit.test_feature_flags_store import FLAGS, ROOT

DOCUMENT: dict[str, Any] = {
    **FLAGS,
    "greeting": {"default": "hello", "boolean_type": False},
    "ratio": {"default": 0.25, "boolean_type": False},
    "whole_ratio": {"default": 2, "boolean_type": False},
    "limits": {"default": {"burst": 10}, "boolean_type": False},
    "beta_user": {
        "default": False,
        "rules": {
            "by targeting key": {
                "when_match": True,
                "conditions": [{"action": "EQUALS", "key": "targetingKey", "value": "user-1"}],
            }
        },
    },
}


class Events:
    """Every provider event the SDK hands to the client's handlers (on its own thread pool)."""

    def __init__(self, client: OpenFeatureClient) -> None:
        self.seen: list[tuple[ProviderEvent, EventDetails]] = []
        self._lock = threading.Lock()
        for event in ProviderEvent:
            client.add_handler(event, self._handler(event))

    def _handler(self, event: ProviderEvent) -> Callable[[EventDetails], None]:
        def handle(details: EventDetails) -> None:
            # Only ours: a handler added while the domain still has the SDK's No-op provider is
            # told that provider is READY too, on the SDK's thread pool — sometimes after ours
            # (seen once under stress-ng: three READY events where two were expected).
            if details.provider_name != "configpipe":
                return
            with self._lock:
                self.seen.append((event, details))

        return handle

    def wait_for(
        self, event: ProviderEvent, count: int = 1, deadline_seconds: float = 5.0
    ) -> list[EventDetails]:
        deadline = time.monotonic() + deadline_seconds
        while True:
            with self._lock:
                found = [d for e, d in self.seen if e is event]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def kinds(self) -> list[ProviderEvent]:
        with self._lock:
            return [e for e, _ in self.seen]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ssm(aws):
    import boto3

    from configpipe_tools.harness.aws import REGION
    from tests.unit.test_client import CallCounter

    client = boto3.client("ssm", region_name=REGION)
    return client, CallCounter(client)


@pytest.fixture
def config(ssm, clock) -> ConfigClient:
    put(f"{ROOT}/flags", DOCUMENT)
    return ConfigClient("checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock)


def connect(
    config: ConfigClient, key: str = "flags", fails_with: type[Exception] | None = None
) -> tuple[ConfigPipeProvider, OpenFeatureClient, Events]:
    domain = f"test-{uuid.uuid4()}"
    provider = ConfigPipeProvider(ConfigPipeStore(config, key))
    client = api.get_client(domain)
    events = Events(client)
    # initialize runs in this thread: no second thread ever touches moto
    if fails_with is None:
        api.set_provider_and_wait(provider, domain=domain)
    else:
        with pytest.raises(fails_with):
            api.set_provider_and_wait(provider, domain=domain)
    return provider, client, events


@pytest.fixture
def of(config) -> Iterator[tuple[ConfigPipeProvider, OpenFeatureClient, Events]]:
    yield connect(config)
    api.clear_providers()


def ctx(targeting_key: str | None = None, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=targeting_key, attributes=attributes)


def test_metadata_and_ready_after_initialize(of):
    provider, client, events = of
    assert provider.get_metadata().name == "configpipe"
    assert client.get_provider_status() is ProviderStatus.READY
    assert events.wait_for(ProviderEvent.PROVIDER_READY)


def test_static_default_and_targeting_match_reasons(of):
    _, client, _ = of
    static = client.get_boolean_details("maintenance", True)
    assert (static.value, static.reason, static.variant) == (False, Reason.STATIC, "default")

    match = client.get_boolean_details("new_checkout", False, ctx(tenant="tenant-7"))
    assert (match.value, match.reason, match.variant) == (True, Reason.TARGETING_MATCH, "tenant-7 first")

    no_match = client.get_boolean_details("new_checkout", True, ctx(tenant="tenant-8"))
    assert (no_match.value, no_match.reason, no_match.variant) == (False, Reason.DEFAULT, "default")
    assert match.flag_metadata["configKey"] == "flags"


def test_the_targeting_key_is_a_rule_attribute(of):
    _, client, _ = of
    assert client.get_boolean_details("beta_user", False, ctx("user-1")).reason == Reason.TARGETING_MATCH
    assert client.get_boolean_value("beta_user", True, ctx("user-2")) is False


def test_typed_resolution_of_every_type(of):
    _, client, _ = of
    assert client.get_string_value("greeting", "x") == "hello"
    assert client.get_integer_value("rate_limit", 0, ctx(tenant="tenant-1")) == 1000
    assert client.get_integer_details("rate_limit", 0, ctx(tenant="tenant-9")).reason == Reason.DEFAULT
    assert client.get_float_value("ratio", 0.0) == 0.25
    assert client.get_float_value("whole_ratio", 0.0) == 2.0
    assert client.get_object_value("limits", {}) == {"burst": 10}


def test_flag_not_found_and_type_mismatch_return_the_default_with_an_error(of):
    _, client, _ = of
    missing = client.get_boolean_details("no_such_flag", True)
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )

    mismatch = client.get_integer_details("greeting", 7)
    assert (mismatch.value, mismatch.reason, mismatch.error_code) == (
        7,
        Reason.ERROR,
        ErrorCode.TYPE_MISMATCH,
    )
    assert client.get_boolean_details("rate_limit", False).error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_string_details("maintenance", "s").error_code == ErrorCode.TYPE_MISMATCH


def test_a_key_that_never_held_a_valid_document_is_a_parse_error(config):
    put(f"{ROOT}/broken", {"f": {"default": "not a boolean"}})
    config.refresh()
    _, client, events = connect(config, key="broken", fails_with=ParseError)
    try:
        assert client.get_provider_status() is ProviderStatus.ERROR
        assert events.wait_for(ProviderEvent.PROVIDER_ERROR)[0].error_code == ErrorCode.PARSE_ERROR
        details = client.get_boolean_details("f", True)
        assert (details.value, details.reason, details.error_code) == (
            True,
            Reason.ERROR,
            ErrorCode.PARSE_ERROR,
        )
    finally:
        api.clear_providers()


def test_a_store_unreadable_at_cold_start_is_an_error_until_it_recovers(ssm, clock):
    put(f"{ROOT}/flags", DOCUMENT)
    ssm[1].outage = "network"
    config = ConfigClient(
        "checkout", "production", ssm_client=ssm[0], clock=clock, retry_after_failure_seconds=5
    )
    _, client, events = connect(config, fails_with=GeneralError)
    try:
        assert client.get_provider_status() is ProviderStatus.ERROR
        details = client.get_boolean_details("maintenance", True)
        assert (details.value, details.reason, details.error_code) == (True, Reason.ERROR, ErrorCode.GENERAL)
        # When the store answers again, the next evaluation serves the document and says READY
        ssm[1].outage = None
        clock.now += 6
        assert client.get_boolean_details("maintenance", True).reason == Reason.STATIC
        assert client.get_provider_status() is ProviderStatus.READY
        assert len(events.wait_for(ProviderEvent.PROVIDER_READY, 1)) >= 1
    finally:
        api.clear_providers()


def test_a_push_changes_the_answer_at_once_and_names_the_flags_changed(of, config, clock):
    _, client, events = of
    assert client.get_boolean_value("maintenance", True) is False
    handler = config_update_handler("checkout", on_update=lambda u, v: None, client=config)
    document = {
        **DOCUMENT,
        "maintenance": {"default": True},
        "greeting": {"default": "hi", "boolean_type": False},
    }

    assert handler(as_event(update("flags", 2, document)), None)["applied"] is True  # no TTL has passed

    assert client.get_boolean_value("maintenance", False) is True
    [changed] = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["greeting", "maintenance"]
    assert changed.provider_name == "configpipe"


def test_a_document_refreshed_after_its_ttl_is_noticed_at_the_next_evaluation(of, clock):
    _, client, events = of
    put(f"{ROOT}/flags", {**DOCUMENT, "maintenance": {"default": True}})
    clock.now += 61
    assert client.get_boolean_value("maintenance", False) is True
    [changed] = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["maintenance"]


def test_stale_while_unreachable_then_ready_again(of, ssm, clock):
    _, client, events = of
    ssm[1].outage = "throttled"
    clock.now += 61
    details = client.get_boolean_details("new_checkout", False, ctx(tenant="tenant-7"))
    assert (details.value, details.reason) == (True, Reason.TARGETING_MATCH)  # the last good document
    assert details.flag_metadata["stale"] is True
    assert client.get_provider_status() is ProviderStatus.STALE
    assert events.wait_for(ProviderEvent.PROVIDER_STALE)

    ssm[1].outage = None
    clock.now += 61
    assert "stale" not in client.get_boolean_details("maintenance", True).flag_metadata
    assert client.get_provider_status() is ProviderStatus.READY
    assert len(events.wait_for(ProviderEvent.PROVIDER_READY, 2)) == 2  # initialize, then recovery


def test_a_flags_document_under_rollout_resolves_per_targeting_key(of, clock):
    _, client, _ = of
    candidate = {**DOCUMENT, "maintenance": {"default": True}}
    materialise(view("flags", weight=0, targets=("tenant-7",), value=candidate), candidate=candidate)
    clock.now += 61  # the next read brings the rollout's view

    reached = client.get_boolean_details("maintenance", False, ctx("tenant-7"))
    assert reached.value is True
    assert reached.flag_metadata["readsCandidate"] is True
    assert reached.flag_metadata["rolloutId"] == "r-flags-5"
    other = client.get_boolean_details("maintenance", True, ctx("tenant-8"))
    assert other.value is False
    assert other.flag_metadata["readsCandidate"] is False


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"tenant": "tenant-7"},
        {"tenant": "tenant-1"},
        {"tenant": "tenant-2", "targetingKey": "user-1"},
        {"targetingKey": "user-2"},
    ],
)
def test_every_answer_is_the_one_powertools_evaluate_gives(config, context):
    # The provider uses a private Powertools step to learn the reason; its values must stay
    # exactly those of the public FeatureFlags.evaluate.
    provider = ConfigPipeProvider(ConfigPipeStore(config, "flags"))
    flags = FeatureFlags(store=ConfigPipeStore(config, "flags"))
    evaluation = EvaluationContext(
        targeting_key=context.get("targetingKey"),
        attributes={k: v for k, v in context.items() if k != "targetingKey"},
    )
    resolvers = {
        bool: provider.resolve_boolean_details,
        str: provider.resolve_string_details,
        int: provider.resolve_integer_details,
        float: provider.resolve_float_details,
        dict: provider.resolve_object_details,
    }
    for name in DOCUMENT:
        expected = flags.evaluate(name=name, context=context, default=None)
        resolve: Any = resolvers[type(expected)]
        assert resolve(name, None, evaluation).value == expected, name
