"""``ConfigClient.get_for_tenant(tenant, key, subject=…)`` while the tenant's own value rolls out
(issue 17, item 7): the view and candidate below the tenant's parameters come in the same
bundle as the tenant's values (one GetParameter, configpipe/tenant_bundle.py), and a subject
reads the candidate or the tenant's stable value (or the service's, when the tenant had none)
exactly as ``get`` decides for the service's value. Pushed tenant rollout events are ordered
per tenant and drop the tenant's cached values. The parameters (and the bundle) are written
here exactly as the materialiser writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from configpipe.client import ConfigClient
from configpipe.client.rollout_events import AppliedRollouts
from configpipe.contracts import ConfigurationRolloutEvent, RolloutCandidate, RolloutStatus, RolloutView
from configpipe.naming import environment_segment
from configpipe.rollout.bucketing import receives_candidate
from configpipe.stores import ParameterStore, SecretStore
from configpipe.values import value_hash
from configpipe_tools.harness.aws import REGION
from tests.unit.test_client import CallCounter, Clock, put

ROOT = "/config/checkout/production"
ACME = f"{ROOT}.tenants/acme"
SUBJECTS = [f"user-{i}" for i in range(4000)]


def tenant_view(
    tenant: str = "acme",
    *,
    candidate_version: int = 2,
    sequence: int = 1,
    weight: float = 25.0,
    targets: tuple[str, ...] = (),
    stable_version: int | None = 1,
    value: Any = 150,
    release: dict[str, str] | None = None,
    status: RolloutStatus = RolloutStatus.ROLLING_OUT,
) -> RolloutView:
    return RolloutView(
        rollout_id=f"r-{tenant}-{candidate_version}",
        service="checkout",
        environment="production",
        key="max_items",
        tenant=tenant,
        status=status,
        sequence=sequence,
        stable_version=stable_version,
        candidate_version=candidate_version,
        weight=weight,
        targets=list(targets),
        strategy="AppConfig.Canary10Percent20Minutes",
        started_at=datetime(2026, 11, 25, 8, tzinfo=UTC),
        release=release,
        candidate=RolloutCandidate(
            value_hash=value_hash(value), parameter_name=f"{ROOT}.tenants/{tenant}/max_items/candidate"
        ),
    )


def materialise(v: RolloutView, candidate: Any = 150) -> None:
    base = f"{ROOT}.tenants/{v.tenant}/{v.key}"
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=f"{base}/rollout", Value=json.dumps(v.to_detail()), Type="String", Overwrite=True)
    put(f"{base}/candidate", candidate)


def in_rollout(subject: str, v: RolloutView) -> bool:
    return receives_candidate(
        service="checkout",
        environment=environment_segment("production", v.tenant),
        key=v.key,
        candidate_version=v.candidate_version,
        subject=subject,
        weight_percent=v.weight,
        targets=v.targets,
    )


@pytest.fixture
def ssm(aws):
    client = boto3.client("ssm", region_name=REGION)
    return client, CallCounter(client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_of(ssm, clock, **kwargs: Any) -> ConfigClient:
    return ConfigClient("checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock, **kwargs)


@pytest.fixture
def config(ssm, clock) -> ConfigClient:
    put(f"{ROOT}/max_items", 10)
    put(f"{ACME}/max_items", 100)
    put(f"{ROOT}.tenants/globex/max_items", 200)
    return client_of(ssm, clock)


def test_subjects_in_the_weight_read_the_tenants_candidate_others_its_stable_value(config, ssm):
    v = tenant_view(weight=25.0)
    materialise(v)
    config.get("max_items")
    ssm[1].calls.clear()

    reads = {s: config.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS}

    # One call for the tenant's values, view and candidate together: the tenant's bundle
    assert ssm[1].calls == ["GetParameter"]
    assert {s for s, value in reads.items() if value == 150} == {s for s in SUBJECTS if in_rollout(s, v)}
    assert {s for s, value in reads.items() if value != 150} == {s for s in SUBJECTS if not in_rollout(s, v)}
    assert set(reads.values()) == {100, 150}
    assert 0.22 < sum(value == 150 for value in reads.values()) / len(SUBJECTS) < 0.28
    # the service's value and another tenant do not roll out
    assert {config.get("max_items", subject=s) for s in SUBJECTS[:200]} == {10}
    assert {config.get_for_tenant("globex", "max_items", subject=s) for s in SUBJECTS[:200]} == {200}
    assert config.tenant_overrides("acme") == {"max_items": 100}  # the stable values only
    assert config.tenant_rollout("acme", "max_items")["candidateVersion"] == 2  # type: ignore[index]
    assert config.tenant_rollout("globex", "max_items") is None


def test_targets_read_the_candidate_at_weight_zero(config):
    materialise(tenant_view(weight=0.0, targets=("vip-user",)))

    assert config.get_for_tenant("acme", "max_items", subject="vip-user") == 150
    assert config.reads_tenant_candidate("acme", "max_items", subject="vip-user")
    assert {config.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS[:500]} == {100}


def test_a_tenant_without_a_stable_value_falls_back_to_the_service_outside_the_rollout(config, ssm):
    put("/config/global/production/max_items", 1)
    v = tenant_view("newco", stable_version=None, weight=50.0)
    materialise(v)

    reads = {s: config.get_for_tenant("newco", "max_items", subject=s) for s in SUBJECTS[:1000]}

    assert {s for s, value in reads.items() if value == 150} == {
        s for s in SUBJECTS[:1000] if in_rollout(s, v)
    }
    assert set(reads.values()) == {10, 150}  # the service's value, never the global one
    assert config.tenant_overrides("newco") == {}


def test_a_tenants_candidate_is_bucketed_apart_from_the_services_candidate(config):
    # The tenant's candidate v2 and a service candidate v2 of the same key at the same weight
    v = tenant_view(weight=50.0)
    service_rollout = v.model_copy(update={"tenant": None, "rollout_id": "r-svc"})
    materialise(v)
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=f"{ROOT}/max_items/rollout", Value=json.dumps(service_rollout.to_detail()), Type="String"
    )
    put(f"{ROOT}/max_items/candidate", 150)

    tenant_side = {s for s in SUBJECTS if config.get_for_tenant("acme", "max_items", subject=s) == 150}
    service_side = {s for s in SUBJECTS if config.get("max_items", subject=s) == 150}

    # Each about half, and independent (overlap about a quarter, not all of them)
    assert 0.45 < len(tenant_side) / len(SUBJECTS) < 0.55
    assert 0.45 < len(service_side) / len(SUBJECTS) < 0.55
    assert 0.20 < len(tenant_side & service_side) / len(SUBJECTS) < 0.30


def test_a_rollout_riding_on_a_release_gives_the_tenants_candidate_to_the_target_version_only(ssm, clock):
    put(f"{ROOT}/max_items", 10)
    put(f"{ACME}/max_items", 100)
    materialise(
        tenant_view(
            weight=0.0, release={"releaseId": "rel-1", "function": "checkout-api", "targetVersion": "7"}
        )
    )
    new = client_of(ssm, clock, function_name="checkout-api", function_version="7")
    old = client_of(ssm, clock, function_name="checkout-api", function_version="6")

    assert {new.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS[:100]} == {150}
    assert {old.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS[:100]} == {100}


def test_an_ended_or_unreadable_view_leaves_every_subject_on_the_stable_value(config, ssm):
    ended = tenant_view(weight=100.0, status=RolloutStatus.COMPLETED)
    materialise(ended)
    assert {config.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS[:100]} == {100}

    other = client_of(ssm, Clock())
    materialise(tenant_view(weight=100.0), candidate=999)  # the candidate does not match its hash
    assert {other.get_for_tenant("acme", "max_items", subject=s) for s in SUBJECTS[:100]} == {100}


def test_a_pushed_tenant_rollout_event_drops_the_tenants_values_and_not_the_service_view(config, ssm):
    assert config.get_for_tenant("acme", "max_items", subject="u") == 100
    v = tenant_view(weight=100.0)
    materialise(v)  # the materialiser writes before it announces
    event = ConfigurationRolloutEvent(
        **v.model_dump(), event_at=datetime.now(UTC), author="configpipe", reason="step"
    )

    assert config.apply_rollout(event) is True  # the tenant was held: dropped
    assert config.rollout("max_items") is None  # not taken for the service's rollout
    assert config.get_for_tenant("acme", "max_items", subject="u") == 150  # re-read: the view
    assert config.get("max_items", subject="u") == 10


def test_rollout_events_are_ordered_per_tenant_apart_from_the_service_value(aws):
    applied = AppliedRollouts(
        "checkout", ParameterStore(boto3.client("ssm", region_name=REGION)), SecretStore()
    )

    def event(tenant: str | None, candidate_version: int, sequence: int) -> ConfigurationRolloutEvent:
        v = tenant_view(candidate_version=candidate_version, sequence=sequence)
        return ConfigurationRolloutEvent(
            **v.model_dump() | {"tenant": tenant}, event_at=datetime.now(UTC), author="a", reason="r"
        )

    assert applied.apply(event(None, 7, 3))["applied"] is True  # the service's rollout, far along
    assert applied.apply(event("acme", 2, 0))["applied"] is True  # acme's own: not stale
    assert applied.apply(event("acme", 2, 0))["reason"] == "stale"  # a duplicate of acme's
    assert applied.apply(event("globex", 2, 0))["applied"] is True
