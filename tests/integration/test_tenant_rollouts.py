"""A tenant's own value rolls out progressively (issue 17, item 7), through every function in
one process on moto: the rollout lives in the tenant's partition, its view and candidate under
the tenant's path, its announcements carry the tenant; the service's value and other tenants
are untouched, and the two roll out independently."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from configpipe.changelog import ChangeLog, RolloutScope
from configpipe.release.health import AlarmHealth
from configpipe.rollout.service import RolloutService
from configpipe_tools.harness.aws import DEMO_REGISTRY, REGION, Pipeline, provision, set_alarm
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change

CHECKOUT = "configpipe.team.checkout"
VIP_OPS = "configpipe.team.vip-ops"
ALARM = "acme-errors"
SERVICE_KEY = "/config/checkout/production/max_items"
ACME_KEY = "/config/checkout/production.tenants/acme/max_items"
GLOBEX_KEY = "/config/checkout/production.tenants/globex/max_items"
#: The tenant's bundle (configpipe/tenant_bundle.py): what ConfigClient reads of a tenant.
ACME_BUNDLE = "/config/checkout/production.tenants/acme"
ACME = ("checkout", "production", "max_items", "acme")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)  # the write path stamps the start with the real time

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def pipeline(aws) -> Pipeline:
    registry: dict[str, Any] = copy.deepcopy(DEMO_REGISTRY)
    checkout = registry["services"]["checkout"]
    checkout["publishers"] = [CHECKOUT, VIP_OPS]
    checkout["tenants"] = {"vip": {"publishers": [VIP_OPS]}}
    return provision(registry)


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    return Chain(pipeline)


@pytest.fixture
def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(pipeline.table_name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def rollouts(chain: Chain, clock: Clock) -> RolloutService:
    return RolloutService(
        ChangeLog(chain.pipeline.table_name),
        AlarmHealth(boto3.client("cloudwatch", region_name=REGION)),
        chain.write_path._registry,
        clock=clock,
    )


def tick(chain: Chain, clock: Clock, minutes: float) -> None:
    """The rollout function's schedule: every active rollout, as the tick reads the index."""
    clock.now += timedelta(minutes=minutes)
    rollouts(chain, clock).reconcile_all()
    chain.run()


def control(chain: Chain, clock: Clock, action: str, source: str = CHECKOUT, **extra: Any) -> Any:
    detail = {
        "controlId": f"{action}-{len(chain.seen_events)}",
        "service": "checkout",
        "environment": "production",
        "key": "max_items",
        "action": action,
        "author": "bob@example.com",
        "reason": "watching acme",
        **extra,
    }
    result = rollouts(chain, clock).control(
        {"id": "e-1", "source": source, "detail-type": "ConfigurationRolloutControl", "detail": detail}
    )
    chain.run()
    return result


def parameter(name: str) -> Any:
    try:
        value = boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            return None
        raise
    return json.loads(value)


def events(chain: Chain, prefix: str) -> list[dict[str, Any]]:
    return [
        e["detail"] | {"type": e["detail-type"]}
        for e in chain.seen_events
        if e["detail-type"].startswith(prefix)
    ]


def seed(chain: Chain) -> None:
    """The service's value 10, acme's own 100 and globex's own 200."""
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "OK")
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.publish(change("max_items", 100, tenant="acme"), CHECKOUT)
    chain.publish(change("max_items", 200, tenant="globex"), CHECKOUT)
    chain.run()


def start_acme_canary(chain: Chain, **rollout: Any) -> None:
    chain.publish(
        change(
            "max_items",
            150,
            change_id="acme-canary",
            tenant="acme",
            rollout={"strategy": "Canary10Percent5Minutes", "alarms": [ALARM], **rollout},
        ),
        CHECKOUT,
    )
    chain.run()


def test_a_tenants_canary_lives_under_the_tenant_and_completes_there(chain: Chain, log: ChangeLog, clock):
    seed(chain)

    # When acme's own value rolls out
    start_acme_canary(chain)

    # Then the rollout is the tenant's: its partition, its pointer, the index, its paths
    assert log.change("acme-canary", CHECKOUT).status == "accepted"
    rollout = log.rollout(*ACME)
    assert rollout is not None and rollout.tenant == "acme"
    assert (rollout.stable_version, rollout.candidate_version, rollout.weight) == (1, 2, 10.0)
    assert log.rollout("checkout", "production", "max_items") is None
    assert log.current(*ACME).rollout_id == "acme-canary"  # type: ignore[union-attr]
    assert log.current("checkout", "production", "max_items").rollout_id is None  # type: ignore[union-attr]
    assert log.active_rollouts() == [RolloutScope(*ACME)]
    assert parameter(ACME_KEY) == 100  # readers outside the rollout keep acme's stable value
    assert parameter(f"{ACME_KEY}/candidate") == 150
    view = parameter(f"{ACME_KEY}/rollout")
    assert (view["tenant"], view["candidateVersion"], view["weight"]) == ("acme", 2, 10.0)
    assert view["candidate"]["parameterName"] == f"{ACME_KEY}/candidate"
    assert parameter(f"{SERVICE_KEY}/rollout") is None
    # the tenant's bundle holds its value, view and candidate, as readers read them in one call
    bundled = parameter(ACME_BUNDLE)["parameters"]
    assert sorted(bundled) == ["max_items", "max_items/candidate", "max_items/rollout"]
    assert (bundled["max_items"], bundled["max_items/candidate"]) == ("100", "150")
    (started,) = events(chain, "ConfigurationRolloutStarted")
    assert (started["tenant"], started["rolloutId"]) == ("acme", "acme-canary")
    delivered = [e["detail"] for e in chain.seen_events if e["detail-type"] == "ConfigurationDelivered"]
    assert any(d["changeId"] == "acme-canary" and d.get("tenant") == "acme" for d in delivered)

    # When the schedule runs it to the end
    for _ in range(3):
        tick(chain, clock, 5)

    # Then acme's value is the candidate everywhere, announced with the tenant, views gone
    assert log.rollout(*ACME).status == "COMPLETED"  # type: ignore[union-attr]
    assert parameter(ACME_KEY) == 150
    assert parameter(f"{ACME_KEY}/rollout") is None and parameter(f"{ACME_KEY}/candidate") is None
    assert parameter(ACME_BUNDLE)["parameters"] == {"max_items": "150"}
    completed = events(chain, "ConfigurationRolloutCompleted")
    assert [c["tenant"] for c in completed] == ["acme"]
    updated = [u for u in events(chain, "ConfigurationUpdated") if u["changeId"] == "acme-canary"]
    assert [(u["tenant"], u["version"], u["parameterName"]) for u in updated] == [("acme", 2, ACME_KEY)]
    # and the service's value and globex's are untouched
    assert (parameter(SERVICE_KEY), parameter(GLOBEX_KEY)) == (10, 200)
    assert log.active_rollouts() == []
    assert not chain.dead_letters


def test_an_alarm_rolls_back_a_tenants_first_value_and_the_tenant_reads_the_service_again(
    chain: Chain, log: ChangeLog, clock
):
    # Given the service's value and globex's, and acme without a value of its own
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "OK")
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.publish(change("max_items", 200, tenant="globex"), CHECKOUT)
    chain.run()

    # When acme's first value rolls out and its alarm fires
    start_acme_canary(chain)
    assert parameter(ACME_KEY) is None  # no stable value: readers fall back to the service's
    assert parameter(f"{ACME_KEY}/candidate") == 150
    set_alarm(boto3.client("cloudwatch", region_name=REGION), ALARM, "ALARM")
    tick(chain, clock, 1)

    # Then the rollout is rolled back by a tombstone in acme's own history
    rollout = log.rollout(*ACME)
    assert rollout is not None and rollout.status == "ROLLED_BACK"
    history = list(log.history("checkout", "production", "max_items", tenant="acme"))
    assert [(r.version, r.operation, r.deleted) for r in history] == [
        (2, "rollback", True),
        (1, "put", False),
    ]
    assert log.tenant_overrides("checkout", "production", "max_items") == ["globex"]
    assert parameter(ACME_KEY) is None
    assert parameter(f"{ACME_KEY}/candidate") is None and parameter(f"{ACME_KEY}/rollout") is None
    assert parameter(ACME_BUNDLE) is None  # no value of its own left: no bundle
    (rolled_back,) = events(chain, "ConfigurationRolloutRolledBack")
    assert (rolled_back["tenant"], rolled_back["outcome"]["alarms"]) == ("acme", [ALARM])
    restoring = [u for u in events(chain, "ConfigurationUpdated") if u.get("tenant") == "acme"]
    assert [(u["version"], u["deleted"]) for u in restoring] == [(2, True)]
    # and nothing else moved
    assert (parameter(SERVICE_KEY), parameter(GLOBEX_KEY)) == (10, 200)
    assert log.current("checkout", "production", "max_items").version == 1  # type: ignore[union-attr]
    assert not chain.dead_letters


def test_the_service_value_and_a_tenants_value_roll_out_independently(chain: Chain, log: ChangeLog, clock):
    seed(chain)
    start_acme_canary(chain)

    # When the service's value starts a rollout of its own while acme's is active
    chain.publish(
        change("max_items", 20, change_id="svc", rollout={"strategy": "Linear50PercentEvery1Minute"}),
        CHECKOUT,
    )
    # and acme's value is changed again while it rolls out
    chain.publish(change("max_items", 999, change_id="acme-again", tenant="acme"), CHECKOUT)
    # and globex's value is changed (not rolling out)
    chain.publish(change("max_items", 300, change_id="globex-again", tenant="globex"), CHECKOUT)
    chain.run()

    # Then both rollouts are active, each in its own partition
    assert log.change("svc", CHECKOUT).status == "accepted"
    assert log.change("globex-again", CHECKOUT).status == "accepted"
    refused = log.change("acme-again", CHECKOUT)
    assert refused.status == "rejected"
    assert [r["code"] for r in refused.reasons] == ["ROLLOUT_IN_PROGRESS"]
    assert sorted(log.active_rollouts(), key=lambda s: s.tenant or "") == [
        RolloutScope("checkout", "production", "max_items"),
        RolloutScope(*ACME),
    ]
    assert parameter(f"{SERVICE_KEY}/rollout")["rolloutId"] == "svc"
    assert parameter(f"{ACME_KEY}/rollout")["rolloutId"] == "acme-canary"

    # When acme's rollout is aborted, the service's goes on and completes by itself
    assert control(chain, clock, "abort", tenant="acme").outcome == "accepted"
    assert log.rollout(*ACME).status == "ABORTED"  # type: ignore[union-attr]
    assert log.rollout("checkout", "production", "max_items").status == "ROLLING_OUT"  # type: ignore[union-attr]
    for _ in range(3):
        tick(chain, clock, 1)
    assert log.rollout("checkout", "production", "max_items").status == "COMPLETED"  # type: ignore[union-attr]
    assert (parameter(SERVICE_KEY), parameter(ACME_KEY), parameter(GLOBEX_KEY)) == (20, 100, 300)
    assert not chain.dead_letters


def test_controls_name_the_tenant_and_the_tenants_publishers_decide(chain: Chain, log: ChangeLog, clock):
    seed(chain)
    start_acme_canary(chain)

    # A control without the tenant is about the service's value, which is not rolling out
    refused = control(chain, clock, "pause")
    assert (refused.outcome, [r.code.value for r in refused.reasons]) == ("rejected", ["NO_ACTIVE_ROLLOUT"])

    # With the tenant it pauses acme's rollout, announced with the tenant
    assert control(chain, clock, "pause", tenant="acme").outcome == "accepted"
    assert log.rollout(*ACME).paused  # type: ignore[union-attr]
    (paused,) = events(chain, "ConfigurationRolloutPaused")
    assert paused["tenant"] == "acme"

    # A tenant restricted to vip-ops: checkout's own team may not steer its rollout
    chain.publish(change("max_items", 1, tenant="vip"), VIP_OPS)
    chain.publish(
        change("max_items", 2, change_id="vip-canary", tenant="vip", rollout={"strategy": "AllAtOnce"}),
        VIP_OPS,
    )
    chain.run()
    assert log.rollout("checkout", "production", "max_items", "vip").active  # type: ignore[union-attr]
    stranger = control(chain, clock, "abort", tenant="vip")
    assert [r.code.value for r in stranger.reasons] == ["TENANT_NOT_AUTHORIZED"]
    assert log.rollout("checkout", "production", "max_items", "vip").active  # type: ignore[union-attr]
    assert control(chain, clock, "promote", source=VIP_OPS, tenant="vip").outcome == "accepted"
    assert parameter("/config/checkout/production.tenants/vip/max_items") == 2
    rejected = [e for e in events(chain, "ConfigurationRejected") if e.get("tenant") == "vip"]
    assert [r["reasons"][0]["code"] for r in rejected] == ["TENANT_NOT_AUTHORIZED"]


@pytest.mark.parametrize(
    ("rollout", "code"),
    [
        ({"strategy": "Sometimes"}, "INVALID_ROLLOUT"),
        ({"release": {"releaseId": "r-1", "function": "nope", "targetVersion": "2"}}, "INVALID_ROLLOUT"),
    ],
)
def test_a_tenants_rollout_is_checked_like_a_service_values(chain: Chain, log: ChangeLog, rollout, code):
    chain.publish(change("max_items", 5, change_id="bad", tenant="acme", rollout=rollout), CHECKOUT)
    chain.run()

    assert [r["code"] for r in log.change("bad", CHECKOUT).reasons] == [code]
    assert log.rollout(*ACME) is None and log.current(*ACME) is None


def test_a_tenants_secret_rolls_out_as_a_staged_version_of_the_tenants_secret(chain: Chain, log, clock):
    name = "configpipe/checkout/production.tenants/acme/api_token"
    chain.publish(chain.sealed(change("api_token", "acme-old", tenant="acme")), CHECKOUT)
    chain.run()

    # When the tenant's secret rolls out
    chain.publish(
        chain.sealed(
            change(
                "api_token",
                "acme-new",
                change_id="acme-secret",
                tenant="acme",
                rollout={"strategy": "AllAtOnce"},
            )
        ),
        CHECKOUT,
    )
    chain.run()

    # Then the candidate is a version of the tenant's own secret, staged apart from AWSCURRENT,
    secrets = boto3.client("secretsmanager", region_name=REGION)
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == "acme-old"
    staged = secrets.get_secret_value(SecretId=name, VersionStage="CONFIGPIPE_CANDIDATE")
    assert json.loads(staged["SecretString"]) == "acme-new"
    view = parameter("/config/checkout/production.tenants/acme/api_token/rollout")
    assert view["candidate"]["secretArn"].split(":secret:")[1].startswith(name)
    assert parameter("/config/checkout/production.tenants/acme/api_token/candidate") is None
    # and never in clear on the bus
    assert not [e for e in chain.seen_events if "acme-new" in json.dumps(e)]

    # When it completes (AllAtOnce bakes 10 minutes), the candidate is the tenant's current secret
    tick(chain, clock, 11)
    assert log.rollout("checkout", "production", "api_token", "acme").status == "COMPLETED"  # type: ignore[union-attr]
    # (by stage: moto's UpdateSecretVersionStage does not move its default version, AWS's does)
    current = secrets.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    assert json.loads(current["SecretString"]) == "acme-new"
