"""Rollouts through the materialiser and the propagator, driven by real change-log stream
records (moto): the main store keeps the stable value, the candidate and the view sit one
level below it, every state change is announced once per record, a secret stays secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.contracts import ConfigurationRolloutEvent
from configpipe.crypto import SecretsKey
from configpipe.fanout import FanOut
from configpipe.handlers import propagator as propagator_handler
from configpipe.materialise import Materialiser
from configpipe.naming import scope_id
from configpipe.registry_source import RegistrySource
from configpipe.rollout.service import RolloutService
from configpipe.stores import CANDIDATE_STAGE, secret_version_token
from configpipe.values import is_sensitive
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import ACCOUNT, REGION, Pipeline
from configpipe_tools.harness.events import change, eventbridge_event, sealed
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.test_materialise import build_materialiser, run_materialiser, ssm_value

KEY = "/config/checkout/production/max_items"
CANDIDATE = f"{KEY}/candidate"
VIEW = f"{KEY}/rollout"
CANARY = {"strategy": "Canary10Percent5Minutes"}
SECRET_OLD = "old-pa55-w0rd-Hunter2"
SECRET_NEW = "new-pa55-w0rd-Hunter3-do-not-leak"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


class Alarms:
    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def states(self, names: Any) -> dict[str, str]:
        return {n: self.state[n] for n in names if n in self.state}


class Rig:
    """WritePath → change log → (stream) materialiser → bus; the rollout tick on a fake clock."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.log = ChangeLog(pipeline.table_name)
        self.registry = RegistrySource(
            pipeline.registry_parameter, client=boto3.client("ssm", region_name=REGION)
        )
        self.write_path = WritePath(
            change_log=self.log,
            registry=self.registry,
            secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
        )
        self.materialiser: Materialiser = build_materialiser(pipeline)
        self.clock = Clock()
        self.alarms = Alarms()
        self.rollouts = RolloutService(self.log, self.alarms, self.registry, clock=self.clock)
        self.published: list[dict[str, Any]] = []

    def put(self, key: str, value: Any, **extra: Any) -> Any:
        detail = change(key, value, **extra)
        if is_sensitive(key, extra.get("sensitive")):
            # as a publisher sends a secret: encrypted (a clear one is SENSITIVE_VALUE_IN_CLEAR)
            detail = sealed(detail, self.pipeline.secrets_key_id, boto3.client("kms", region_name=REGION))
        outcome = self.write_path.handle(eventbridge_event(detail))
        assert outcome.status == "accepted", outcome
        return outcome

    def materialise(self) -> dict[str, Any]:
        """Run the materialiser on the new stream records; return them (for replays)."""
        batch = self.pipeline.stream_event()
        if not batch["Records"]:
            return batch
        assert run_materialiser(batch, self.materialiser) == {"batchItemFailures": []}
        return batch

    def tick(self, minutes: float = 0, key: str = "max_items") -> None:
        # reconcile() rather than reconcile_all(): the harness's table has no activeRollouts
        # index yet (the stack/harness change is another branch's); the tick is the same.
        self.clock.advance(minutes)
        self.rollouts.reconcile("checkout", "production", key)

    def events(self) -> list[dict[str, Any]]:
        fresh = self.pipeline.bus_events()
        self.published.extend(fresh)
        return fresh


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail-type"] for e in events]


@pytest.fixture
def rig(pipeline: Pipeline) -> Rig:
    return Rig(pipeline)


def start_canary(rig: Rig, stable: Any = 10, candidate: Any = 20, **rollout: Any) -> None:
    rig.put("max_items", stable)
    rig.materialise()
    rig.events()
    rig.put("max_items", candidate, rollout={**CANARY, **rollout})
    rig.materialise()


def test_a_started_rollout_keeps_the_stable_value_and_writes_candidate_and_view(rig):
    # When a put goes out with a canary rollout
    start_canary(rig, targets=["tenant-7"])
    # Then readers without a push still read the stable value
    assert ssm_value(KEY) == 10
    assert ssm_value(CANDIDATE) == 20
    view = ssm_value(VIEW)
    assert (view["status"], view["stableVersion"], view["candidateVersion"], view["weight"]) == (
        "ROLLING_OUT",
        1,
        2,
        10,
    )
    assert view["targets"] == ["tenant-7"]
    assert view["candidate"]["parameterName"] == CANDIDATE
    assert view["candidate"]["value"] == 20
    # And the start is announced once, with no ConfigurationUpdated for the candidate
    events = rig.events()
    assert types(events) == ["ConfigurationRolloutStarted"]
    started = ConfigurationRolloutEvent.model_validate(events[0]["detail"])
    assert (started.sequence, started.weight, started.candidate.value) == (0, 10, 20)


def test_a_step_updates_the_view_and_is_announced(rig):
    start_canary(rig)
    rig.events()
    sequence_before = ssm_value(VIEW)["sequence"]
    # When the schedule moves the weight (the canary's 5 minutes are up)
    rig.tick(minutes=5.5)
    rig.materialise()
    events = rig.events()
    # Then the view has moved on and each step is announced by its own record
    assert "ConfigurationRolloutStepped" in types(events) or "ConfigurationRolloutCompleted" in types(events)
    assert "ConfigurationUpdated" not in types(events[:1])
    stepped = [e for e in events if e["detail-type"] == "ConfigurationRolloutStepped"]
    for event in stepped:
        assert event["detail"]["sequence"] > sequence_before
    if ssm_value(VIEW) != "<absent>":
        assert ssm_value(VIEW)["weight"] > 10
        assert ssm_value(KEY) == 10


def run_to_completion(rig: Rig) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for _ in range(10):
        rig.tick(minutes=10)
        rig.materialise()
        events += rig.events()
        if rig.log.rollout("checkout", "production", "max_items").status != "ROLLING_OUT":  # type: ignore[union-attr]
            return events
    raise AssertionError("the rollout never completed")


def test_completion_makes_the_candidate_the_main_value_and_removes_the_rollout_parameters(rig):
    start_canary(rig)
    rig.events()
    events = run_to_completion(rig)
    assert ssm_value(KEY) == 20
    assert ssm_value(CANDIDATE) == "<absent>"
    assert ssm_value(VIEW) == "<absent>"
    assert types(events)[-2:] == ["ConfigurationRolloutCompleted", "ConfigurationUpdated"]
    completed, updated = events[-2]["detail"], events[-1]["detail"]
    assert completed["status"] == "COMPLETED"
    assert completed["weight"] == 100
    assert completed["candidate"]["parameterName"] == KEY
    assert (updated["version"], updated["value"], updated["parameterName"]) == (2, 20, KEY)


def test_an_alarm_rolls_back_to_the_stable_value_as_a_new_version(rig):
    start_canary(rig, alarms=["checkout-errors"])
    rig.events()
    rig.alarms.state["checkout-errors"] = "OK"
    rig.tick(minutes=1)
    rig.materialise()
    rig.events()
    # When the watched alarm fires
    rig.alarms.state["checkout-errors"] = "ALARM"
    rig.tick(minutes=1)
    rig.materialise()
    events = rig.events()
    # Then the stable value is back as version 3 and the rollout parameters are gone
    assert ssm_value(KEY) == 10
    assert ssm_value(CANDIDATE) == "<absent>"
    assert ssm_value(VIEW) == "<absent>"
    assert sorted(types(events)) == ["ConfigurationRolloutRolledBack", "ConfigurationUpdated"]
    [rolled_back] = [e["detail"] for e in events if e["detail-type"] == "ConfigurationRolloutRolledBack"]
    [updated] = [e["detail"] for e in events if e["detail-type"] == "ConfigurationUpdated"]
    assert rolled_back["outcome"]["alarms"] == ["checkout-errors"]
    assert "parameterName" not in rolled_back["candidate"]
    assert (updated["version"], updated["operation"], updated["rolledBackTo"], updated["value"]) == (
        3,
        "rollback",
        1,
        10,
    )


def test_a_replayed_old_rollout_record_after_completion_does_not_resurrect_the_rollout(rig):
    rig.put("max_items", 10)
    rig.materialise()
    rig.put("max_items", 20, rollout=CANARY)
    started_batch = rig.materialise()
    rig.events()
    run_to_completion(rig)
    # When the stream redelivers the rollout's first records (start, candidate version)
    assert run_materialiser(started_batch, rig.materialiser) == {"batchItemFailures": []}
    # Then the stores keep the completed state; the replayed announcement is the old Started
    assert ssm_value(KEY) == 20
    assert ssm_value(VIEW) == "<absent>"
    assert ssm_value(CANDIDATE) == "<absent>"
    replayed = rig.events()
    assert types(replayed) == ["ConfigurationRolloutStarted"]
    assert replayed[0]["detail"]["sequence"] == 0


def test_a_rollout_of_a_new_key_leaves_the_main_parameter_absent(rig):
    rig.put("max_items", 30, rollout=CANARY)
    rig.materialise()
    assert ssm_value(KEY) == "<absent>"
    assert ssm_value(CANDIDATE) == 30
    assert ssm_value(VIEW)["stableVersion"] is None if "stableVersion" in ssm_value(VIEW) else True
    assert types(rig.events()) == ["ConfigurationRolloutStarted"]


def test_a_sensitive_candidate_stays_in_secrets_manager_and_out_of_every_announcement(rig, logs):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/db_password"
    rig.put("db_password", SECRET_OLD)
    rig.materialise()
    rig.put("db_password", SECRET_NEW, rollout=CANARY)
    rig.materialise()
    # The current value is still the stable one; the candidate is a staged version only
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == SECRET_OLD
    token = secret_version_token(scope_id("checkout", "production", "db_password"), 2)
    staged = secrets.get_secret_value(SecretId=name, VersionStage=CANDIDATE_STAGE)
    assert (staged["VersionId"], json.loads(staged["SecretString"])) == (token, SECRET_NEW)
    view = ssm_value("/config/checkout/production/db_password/rollout")
    assert view["candidate"]["secretVersionId"] == token
    assert "value" not in view["candidate"]
    assert ssm_value("/config/checkout/production/db_password/candidate") == "<absent>"
    # When it completes
    for _ in range(10):
        rig.tick(minutes=10, key="db_password")
        rig.materialise()
    rig.events()
    # (by stage: moto's UpdateSecretVersionStage does not move its default version, AWS's does)
    current = secrets.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    assert (current["VersionId"], json.loads(current["SecretString"])) == (token, SECRET_NEW)
    # Then no announcement, no SSM parameter and no log line ever held the plaintext
    assert {"ConfigurationRolloutStarted", "ConfigurationRolloutCompleted"} <= set(types(rig.published))
    for event in rig.published:
        assert SECRET_NEW not in json.dumps(event) and SECRET_OLD not in json.dumps(event)
    parameters = boto3.client("ssm", region_name=REGION).get_parameters_by_path(
        Path="/config", Recursive=True
    )
    assert SECRET_NEW not in json.dumps(parameters["Parameters"])
    assert SECRET_NEW not in logs.getvalue()


def test_a_secret_rollout_rolled_back_keeps_the_old_secret_current(rig):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = "configpipe/checkout/production/db_password"
    rig.put("db_password", SECRET_OLD)
    rig.materialise()
    rig.put("db_password", SECRET_NEW, rollout={**CANARY, "alarms": ["errors"]})
    rig.materialise()
    rig.alarms.state["errors"] = "ALARM"
    rig.tick(minutes=1, key="db_password")
    rig.materialise()
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == SECRET_OLD
    staged = secrets.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert not any(CANDIDATE_STAGE in stages for stages in staged.values())


def test_fan_out_delivers_a_rollout_event_to_the_affected_handlers(rig):
    start_canary(rig)
    # (moto's capture queue leaves out "account", which EventBridge always sends to Lambda)
    [started] = [
        {"account": ACCOUNT, **e} for e in rig.events() if e["detail-type"] == "ConfigurationRolloutStarted"
    ]
    invoked: list[tuple[str, dict[str, Any]]] = []
    fanout = FanOut(
        registry=rig.registry,
        invoker=lambda name, payload: invoked.append((name, json.loads(payload))),
        bus=rig.materialiser._bus,
    )
    result = propagator_handler.handler(started, LambdaContext(), fanout=fanout)
    assert result == {"delivered": ["checkout"]}
    assert [name for name, _ in invoked] == ["checkout-config-update-handler"]
    assert invoked[0][1]["detail-type"] == "ConfigurationRolloutStarted"
    [delivered] = [e["detail"] for e in rig.events() if e["detail-type"] == "ConfigurationDelivered"]
    assert (delivered["version"], delivered["targetService"], delivered["changeId"]) == (
        2,
        "checkout",
        started["detail"]["rolloutId"],
    )


def test_a_rollout_on_a_release_names_the_release_in_the_view_and_its_announcement(rig):
    rig.put("max_items", 10)
    rig.materialise()
    rig.events()
    release = {"releaseId": "rel-9", "function": "checkout-api", "targetVersion": "7"}

    rig.put("max_items", 20, rollout={"release": release})
    rig.materialise()

    assert ssm_value(VIEW)["release"] == release
    assert ssm_value(VIEW)["weight"] == 0
    started = [e for e in rig.events() if e["detail-type"] == "ConfigurationRolloutStarted"]
    assert started[0]["detail"]["release"] == release
