"""``configpipe put … --rollout`` and ``configpipe rollout …`` against moto, synchronously.

No background thread: the rollout function's logic and the validator's run on the test thread.
The CLI's seams do it at the moments the Lambdas would run against AWS — ``--wait`` for a change
pumps the bus through :class:`WritePath` before polling, and the rollout CLI's ``_pause`` (its
sleep between polls) pumps controls through :class:`RolloutService` and moves a fake clock that
the write path, the rollout service and the CLI's views all share, so a strategy's steps happen
in milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from configpipe.crypto import SecretsKey
from configpipe.rollout.service import RolloutService
from configpipe.write_path import WritePath
from configpipe_tools.cli import publishing
from configpipe_tools.cli import rollout as rollout_cli
from configpipe_tools.harness.aws import REGION, Pipeline
from tests.unit.cli.conftest import assert_clean_exit, change_log, parse_json, seed

FAST = "AppConfig.Linear50PercentEvery30Seconds"  # 50 % at 30 s, 100 % at 60 s, complete at 120 s
SCOPE = ("checkout", "production", "max-retries")


@dataclass
class FakeAlarms:
    state: dict[str, str] = field(default_factory=dict)

    def states(self, names: Sequence[str]) -> dict[str, str]:
        return {n: self.state.get(n, "OK") for n in names}


@dataclass
class Rig:
    """The pipeline's functions, run on the test thread on what reached the bus."""

    pipeline: Pipeline
    alarms: FakeAlarms = field(default_factory=FakeAlarms)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        log = change_log(self.pipeline)
        self.log = log
        self.write_path = WritePath(
            change_log=log,
            registry=lambda: self.pipeline.registry,
            secrets=SecretsKey(
                self.pipeline.secrets_key_id,
                self.pipeline.hash_key_id,
                client=boto3.client("kms", region_name=REGION),
            ),
            clock=self.clock,
        )
        self.service = RolloutService(
            log, self.alarms, registry=lambda: self.pipeline.registry, clock=self.clock
        )

    def clock(self) -> datetime:
        return self.now

    def pump(self) -> list[dict[str, Any]]:
        """Hand every change and control on the bus to its function, as EventBridge would."""
        drained = self.pipeline.bus_events()
        for event in drained:
            self.events.append(event)
            if event["detail-type"] == "ConfigurationChange":
                self.write_path.handle(event)
            elif event["detail-type"] == "ConfigurationRolloutControl":
                self.service.control(event)
        return drained

    def tick(self, seconds: float) -> None:
        """Time passes; the rollout function's schedule runs."""
        self.pump()
        self.now += timedelta(seconds=seconds)
        self.service.reconcile(*SCOPE)

    def published(self, detail_type: str) -> list[dict[str, Any]]:
        self.pump()
        return [e for e in self.events if e["detail-type"] == detail_type]


@pytest.fixture
def rig(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Rig:
    rig = Rig(pipeline)
    original_wait = publishing.wait_for_outcome

    def wait_after_pumping(log: Any, change_id: str, source: str, timeout: float) -> Any:
        rig.pump()
        return original_wait(log, change_id, source, timeout)

    monkeypatch.setattr(publishing, "wait_for_outcome", wait_after_pumping)
    monkeypatch.setattr(rollout_cli, "_pause", rig.tick)
    monkeypatch.setattr(rollout_cli, "_now", rig.clock)
    return rig


@pytest.fixture
def rolling(cli, rig: Rig) -> Rig:
    """max-retries at v1 = 3, rolling out v2 = 5 with FAST (weight 0 %, the first step due at 30 s)."""
    seed_rig(rig, 3)
    result = cli(
        "put", *SCOPE, "5", "--rollout", FAST, "--target", "tenant-7", "-r", "retry more", "-o", "json"
    )
    assert_clean_exit(result, 0)
    return rig


def seed_rig(rig: Rig, *values: Any) -> None:
    class _Seeder:
        def handle(self, detail: dict[str, Any], source: str) -> Any:
            return rig.write_path.handle(
                {"id": f"seed-{detail['changeId']}", "source": source, "detail": detail}
            )

    seed(_Seeder(), SCOPE[2], *values)  # type: ignore[arg-type]


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --- put --rollout ---------------------------------------------------------------------------------


def test_put_with_rollout_starts_a_rollout_that_status_shows(cli, rig: Rig):
    # Given the key at v1
    seed_rig(rig, 3)

    # When it is changed with a rollout
    result = cli(
        "put", *SCOPE, "5", "--rollout", FAST, "--alarm", "checkout-errors", "--target", "tenant-7",
        "--bake", "2", "-r", "retry more", "-o", "json",
    )  # fmt: skip

    # Then the change carries the request, is accepted as v2, and a rollout started
    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "accepted" and body["version"] == 2
    assert body["rollout"]["status"] == "ROLLING_OUT"
    assert (body["rollout"]["stableVersion"], body["rollout"]["candidateVersion"]) == (1, 2)
    (change,) = rig.published("ConfigurationChange")
    assert change["detail"]["rollout"] == {
        "strategy": FAST,
        "alarms": ["checkout-errors"],
        "bakeMinutes": 2,
        "targets": ["tenant-7"],
    }

    status = cli("rollout", "status", *SCOPE, "-o", "json")
    assert_clean_exit(status, 0)
    view = parse_json(status)
    assert view["rolloutId"] == body["changeId"]
    assert view["strategy"] == "AppConfig.Linear50PercentOver1MinutesBake2Minutes"  # canonical name
    assert view["weight"] == 0 and view["targets"] == ["tenant-7"]
    assert view["alarms"] == [{"name": "checkout-errors", "state": "UNKNOWN"}]  # no such alarm in moto
    assert view["nextStep"]["weight"] == 50
    assert view["steps"] == [
        {"atSeconds": 0.0, "weight": 0.0},
        {"atSeconds": 30.0, "weight": 50.0},
        {"atSeconds": 60.0, "weight": 100.0},
    ]
    assert view["finalBakeSeconds"] == 120
    assert {"paused", "startedAt", "elapsedSeconds", "completesAt", "outcome", "sequence"} <= set(view)


def test_put_with_rollout_renders_the_started_rollout_for_people(cli, rig: Rig):
    seed_rig(rig, 3)

    result = cli("put", *SCOPE, "5", "--rollout", FAST, "-r", "retry more")

    assert_clean_exit(result, 0)
    assert "rollout started: AppConfig.Linear50PercentEvery30Seconds, 0% of subjects on v2" in result.stdout
    assert "configpipe rollout status checkout production max-retries --follow" in result.stdout
    table = cli("rollout", "status", *SCOPE)
    assert_clean_exit(table, 0)
    assert "ROLLING_OUT" in table.stdout and "steps" in table.stdout and "next step" in table.stdout


def test_a_bad_strategy_exits_with_invalid_rollout_and_sends_nothing(cli, rig: Rig):
    result = cli("put", *SCOPE, "5", "--rollout", "Canary150Percent5Minutes", "-r", "r", "-o", "json")

    assert_clean_exit(result, 2)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "INVALID_ROLLOUT"
    assert error["reasons"][0]["field"] == "rollout.strategy"
    assert rig.pump() == []


def test_rollout_options_without_rollout_are_a_usage_error(cli, rig: Rig):
    result = cli("put", *SCOPE, "5", "--alarm", "checkout-errors", "-r", "r")

    assert_clean_exit(result, 2)
    assert "--alarm only makes sense with --rollout" in result.stderr
    assert rig.pump() == []


def test_rollback_takes_a_rollout_too(cli, rig: Rig):
    seed_rig(rig, 3, 4)

    result = cli("rollback", *SCOPE, "--to", "1", "--rollout", FAST, "-r", "back, slowly", "-o", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["rollout"]["candidateVersion"] == 3 and body["rollout"]["stableVersion"] == 2


def test_a_change_while_rolling_out_is_rejected_with_the_way_out(cli, rolling: Rig):
    result = cli("put", *SCOPE, "6", "-r", "again")

    assert_clean_exit(result, 3)
    assert "ROLLOUT_IN_PROGRESS" in result.stdout
    assert "configpipe rollout promote checkout production max-retries" in result.stdout
    assert "configpipe rollout abort checkout production max-retries" in result.stdout

    dry = cli("put", *SCOPE, "6", "-r", "again", "--dry-run", "-o", "json")
    assert_clean_exit(dry, 3)
    assert parse_json(dry)["reasons"][0]["code"] == "ROLLOUT_IN_PROGRESS"
    assert "rollout abort" in parse_json(dry)["hint"]


# --- controls -------------------------------------------------------------------------------------


def test_pause_resume_and_promote_change_the_rollout(cli, rolling: Rig):
    paused = cli("rollout", "pause", *SCOPE, "-r", "looking", "-o", "json")
    assert_clean_exit(paused, 0)
    body = parse_json(paused)
    assert body["status"] == "applied" and body["rollout"]["paused"] is True
    (control,) = rolling.published("ConfigurationRolloutControl")
    assert control["source"] == "configpipe.team.checkout"
    assert control["detail"]["action"] == "pause"
    assert control["detail"]["rolloutId"] == body["rolloutId"]
    assert control["detail"]["controlId"] == body["controlId"]

    resumed = cli("rollout", "resume", *SCOPE, "-r", "fine", "-o", "json")
    assert_clean_exit(resumed, 0)
    assert parse_json(resumed)["rollout"]["paused"] is False

    promoted = cli("rollout", "promote", *SCOPE, "-r", "ship it", "-o", "json")
    assert_clean_exit(promoted, 0)
    assert parse_json(promoted)["rollout"]["status"] == "COMPLETED"
    assert parse_json(promoted)["rollout"]["weight"] == 100
    assert rolling.log.current(*SCOPE).rollout_id is None  # type: ignore[union-attr]


def test_abort_restores_the_stable_value_and_history_shows_it(cli, rolling: Rig):
    aborted = cli("rollout", "abort", *SCOPE, "-r", "wrong value")

    assert_clean_exit(aborted, 0)
    assert "abort applied" in aborted.stdout and "ABORTED" in aborted.stdout

    history = cli("history", *SCOPE, "-o", "json")
    versions = {v["version"]: v for v in parse_json(history)["versions"]}
    assert versions[2]["rollout"]["status"] == "ABORTED"
    assert versions[2]["rollout"]["request"]["strategy"] == FAST
    assert versions[3]["operation"] == "rollback" and versions[3]["rolledBackTo"] == 1
    assert versions[3]["rollout"] == {"endsRollout": versions[2]["changeId"], "candidateVersion": 2}
    table = cli("history", *SCOPE)
    assert "aborted" in table.stdout and f"({FAST})" in table.stdout  # the rollout column
    assert "ends rollout" in table.stdout


def test_a_control_without_an_active_rollout_exits_no_active_rollout(cli, rig: Rig):
    seed_rig(rig, 3)

    result = cli("rollout", "promote", *SCOPE, "-r", "go", "-o", "json")

    assert_clean_exit(result, 2)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "NO_ACTIVE_ROLLOUT"
    assert "the key has no active rollout" in error["message"]
    assert rig.published("ConfigurationRolloutControl") == []


def test_a_control_for_another_rollout_id_is_refused_locally(cli, rolling: Rig):
    result = cli("rollout", "abort", *SCOPE, "--rollout-id", "someone-else", "-r", "go")

    assert_clean_exit(result, 2)
    assert "no active rollout with id someone-else" in result.stderr
    assert rolling.published("ConfigurationRolloutControl") == []


def test_a_control_the_pipeline_refuses_is_exit_3(cli, rolling: Rig, monkeypatch: pytest.MonkeyPatch):
    # Given the rollout completes between the CLI's check and the control's arrival
    def promote_first_then_pump(seconds: float) -> None:
        rolling.service.reconcile(*SCOPE)
        rolling.now += timedelta(minutes=5)
        rolling.service.reconcile(*SCOPE)
        rolling.pump()

    monkeypatch.setattr(rollout_cli, "_pause", promote_first_then_pump)

    result = cli("rollout", "pause", *SCOPE, "-r", "too late", "-o", "json")

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "rejected"
    assert body["reasons"][0]["code"] == "NO_ACTIVE_ROLLOUT"


# --- follow ---------------------------------------------------------------------------------------


def test_follow_ends_with_exit_0_when_the_rollout_completes(cli, rolling: Rig):
    result = cli("rollout", "status", *SCOPE, "--follow", "--interval", "30", "--timeout", "60", "-o", "json")

    assert_clean_exit(result, 0)
    events = lines(result)
    weights = [e["weight"] for e in events if e["type"] == "rollout"]
    assert weights == [0, 50, 100, 100]  # started, stepped, stepped, completed
    assert events[-1]["type"] == "summary" and events[-1]["status"] == "COMPLETED"


def test_follow_ends_with_exit_3_when_an_alarm_rolls_it_back(cli, rig: Rig):
    seed_rig(rig, 3)
    started = cli("put", *SCOPE, "5", "--rollout", FAST, "--alarm", "errors", "-r", "r", "-o", "json")
    assert_clean_exit(started, 0)
    rig.alarms.state["errors"] = "ALARM"

    result = cli("rollout", "status", *SCOPE, "--follow", "--interval", "1", "--timeout", "30")

    assert_clean_exit(result, 3)
    assert "ROLLED_BACK" in result.stdout and "ALARM" in result.stdout


def test_follow_stops_at_its_timeout_with_exit_4(cli, rolling: Rig, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rollout_cli, "_pause", lambda seconds: None)  # nothing moves

    result = cli("rollout", "status", *SCOPE, "--follow", "--timeout", "0")

    assert_clean_exit(result, 4)
    assert "still ROLLING_OUT" in result.stderr


def test_status_of_a_key_that_never_rolled_out(cli, rig: Rig):
    seed_rig(rig, 3)

    result = cli("rollout", "status", *SCOPE)

    assert_clean_exit(result, 2)
    assert "has never rolled out" in result.stderr
