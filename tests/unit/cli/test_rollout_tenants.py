"""``configpipe put --tenant T … --rollout`` and ``configpipe rollout … --tenant T`` (issue 17,
item 7) against moto, with the rollout function's and validator's logic on the test thread
(the rig of test_rollout.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from configpipe_tools.cli import publishing
from configpipe_tools.cli import rollout as rollout_cli
from configpipe_tools.harness.aws import Pipeline
from tests.unit.cli.conftest import assert_clean_exit, parse_json
from tests.unit.cli.test_rollout import FAST, SCOPE, Rig, seed_rig

TENANT = ("--tenant", "acme")


@pytest.fixture
def rig(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """test_rollout.py's rig: the validator and rollout function run when the CLI waits."""
    rig = Rig(pipeline)
    original_wait = publishing.wait_for_outcome

    def wait_after_pumping(log: Any, change_id: str, source: str, timeout: float) -> Any:
        rig.pump()
        return original_wait(log, change_id, source, timeout)

    monkeypatch.setattr(publishing, "wait_for_outcome", wait_after_pumping)
    monkeypatch.setattr(rollout_cli, "_pause", rig.tick)
    monkeypatch.setattr(rollout_cli, "_now", rig.clock)
    return rig


def start(cli, rig: Rig):  # type: ignore[no-untyped-def]
    seed_rig(rig, 3)
    assert_clean_exit(cli("put", *SCOPE, "7", *TENANT, "-r", "acme's own", "-o", "json"), 0)
    result = cli(
        "put", *SCOPE, "9", *TENANT, "--rollout", FAST, "--target", "u-1", "-r", "acme more", "-o", "json"
    )
    assert_clean_exit(result, 0)
    return parse_json(result)


def test_put_with_tenant_and_rollout_starts_the_tenants_rollout(cli, rig: Rig):
    body = start(cli, rig)

    assert (body["status"], body["version"], body["tenant"]) == ("accepted", 2, "acme")
    assert body["rollout"]["tenant"] == "acme"
    assert (body["rollout"]["stableVersion"], body["rollout"]["candidateVersion"]) == (1, 2)
    change = rig.published("ConfigurationChange")[-1]["detail"]
    assert (change["tenant"], change["rollout"]["strategy"]) == ("acme", FAST)
    assert rig.log.rollout(*SCOPE, "acme") is not None
    assert rig.log.rollout(*SCOPE) is None

    status = parse_json(cli("rollout", "status", *SCOPE, *TENANT, "-o", "json"))
    assert (status["rolloutId"], status["tenant"], status["targets"]) == (body["changeId"], "acme", ["u-1"])
    table = cli("rollout", "status", *SCOPE, *TENANT)
    assert_clean_exit(table, 0)
    assert "checkout/production/max-retries (tenant acme)" in table.stdout
    # without --tenant: the service's value, which never rolled out
    service = cli("rollout", "status", *SCOPE, "-o", "json")
    assert_clean_exit(service, 2)
    assert json.loads(service.stdout)["error"]["code"] == "ROLLOUT_NOT_FOUND"


def test_put_with_tenant_and_rollout_prints_how_to_follow_it(cli, rig: Rig):
    seed_rig(rig, 3)

    result = cli("put", *SCOPE, "9", *TENANT, "--rollout", FAST, "-r", "acme more")

    assert_clean_exit(result, 0)
    assert "configpipe rollout status checkout production max-retries --tenant acme --follow" in result.stdout


def test_a_change_to_the_tenant_while_it_rolls_out_names_the_tenants_way_out(cli, rig: Rig):
    start(cli, rig)

    refused = cli("put", *SCOPE, "1", *TENANT, "-r", "again", "-o", "json")
    service = cli("put", *SCOPE, "4", "-r", "the service's value is free", "-o", "json")

    assert_clean_exit(refused, 3)
    assert parse_json(refused)["reasons"][0]["code"] == "ROLLOUT_IN_PROGRESS"
    assert (
        "configpipe rollout abort checkout production max-retries --tenant acme"
        in parse_json(refused)["hint"]
    )
    assert_clean_exit(service, 0)


def test_controls_with_tenant_steer_the_tenants_rollout_and_history_shows_it(cli, rig: Rig):
    start(cli, rig)

    paused = cli("rollout", "pause", *SCOPE, *TENANT, "-r", "looking", "-o", "json")
    assert_clean_exit(paused, 0)
    assert parse_json(paused)["rollout"]["paused"] is True
    control = rig.published("ConfigurationRolloutControl")[-1]["detail"]
    assert (control["tenant"], control["action"]) == ("acme", "pause")

    aborted = cli("rollout", "abort", *SCOPE, *TENANT, "-r", "wrong value", "-o", "json")
    assert_clean_exit(aborted, 0)
    assert parse_json(aborted)["rollout"]["status"] == "ABORTED"
    assert rig.log.current_record(*SCOPE, "acme").value_json == "7"  # type: ignore[union-attr]

    history = parse_json(cli("history", *SCOPE, *TENANT, "-o", "json"))
    versions = {v["version"]: v for v in history["versions"]}
    assert versions[2]["rollout"]["status"] == "ABORTED"
    assert versions[3]["rollout"] == {"endsRollout": versions[2]["changeId"], "candidateVersion": 2}


def test_a_control_without_the_tenant_does_not_touch_the_tenants_rollout(cli, rig: Rig):
    start(cli, rig)

    result = cli("rollout", "abort", *SCOPE, "-r", "oops", "-o", "json")

    assert_clean_exit(result, 2)
    assert json.loads(result.stdout)["error"]["code"] == "NO_ACTIVE_ROLLOUT"
    assert rig.published("ConfigurationRolloutControl") == []
    assert rig.log.rollout(*SCOPE, "acme").active  # type: ignore[union-attr]


def test_a_bad_tenant_on_a_control_is_refused_before_any_call(cli, rig: Rig):
    result = cli("rollout", "promote", *SCOPE, "--tenant", "Acme/x", "-r", "go", "-o", "json")

    assert_clean_exit(result, 2)
    assert rig.published("ConfigurationRolloutControl") == []
