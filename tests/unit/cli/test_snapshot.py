"""``configpipe snapshot create | list | show | diff | restore`` against moto, with the real
validator logic (tests/unit/cli/conftest.py)."""

from __future__ import annotations

import pytest

from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log, parse_json, seed


def test_create_records_versions_not_values_and_labels_are_never_reused(cli, idle_validator: Validator):
    seed(idle_validator, "limits", {"cart": 10}, {"cart": 20})
    seed(idle_validator, "banner", "hi")
    seed(idle_validator, "other", 1, env="staging")

    created = cli("snapshot", "create", "checkout", "production", "--label", "v1", "-o", "json")
    again = cli("snapshot", "create", "checkout", "production", "--label", "v1", "-o", "json")
    shown = parse_json(cli("snapshot", "show", "checkout", "production", "v1", "-o", "json"))
    listed = parse_json(cli("snapshot", "list", "checkout", "production", "-o", "json"))

    assert_clean_exit(created, 0)
    assert set(shown["keys"]) == {"limits", "banner"}
    assert shown["keys"]["limits"]["version"] == 2
    assert "cart" not in created.stdout  # versions and hashes, never a value
    assert_clean_exit(again, 2)
    assert parse_json(again)["error"]["code"] == "SNAPSHOT_EXISTS"
    assert [s["label"] for s in listed["snapshots"]] == ["v1"]
    assert listed["snapshots"][0]["author"]


def test_snapshots_are_invisible_to_the_key_listing(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1)
    cli("snapshot", "create", "checkout", "production", "--label", "v1")

    assert parse_json(cli("list", "checkout", "production", "-o", "json"))["keys"] == [
        {"key": "limits", "version": 1}
    ]


def test_diff_between_two_snapshots_shows_values_of_plain_keys(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 10)
    cli("snapshot", "create", "checkout", "production", "--label", "a")
    seed(idle_validator, "limits", 20)
    seed(idle_validator, "fresh", True)
    cli("snapshot", "create", "checkout", "production", "--label", "b")

    body = parse_json(cli("snapshot", "diff", "checkout", "production", "a", "--to", "b", "-o", "json"))
    table = cli("snapshot", "diff", "checkout", "production", "a", "--to", "b")

    rows = {r["key"]: r for r in body["keys"]}
    assert rows["limits"] == {
        "key": "limits",
        "status": "changed",
        "fromVersion": 1,
        "toVersion": 2,
        "fromValue": 10,
        "toValue": 20,
    }
    assert rows["fresh"]["status"] == "added" and rows["fresh"]["toValue"] is True
    assert body["identical"] is False
    assert "changed" in table.stdout and "added" in table.stdout


def test_unknown_snapshot_and_bad_input_are_exit_2_and_send_nothing(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1)

    missing = cli("snapshot", "diff", "checkout", "production", "nope", "-o", "json")
    both = cli(
        "snapshot", "restore", "checkout", "production", "--label", "a", "--at", "2026-01-01", "-r", "x"
    )
    bad_time = cli(
        "snapshot", "restore", "checkout", "production", "--at", "yesterday", "-r", "x", "-o", "json"
    )
    bad_label = cli("snapshot", "create", "checkout", "production", "--label", "a b", "-o", "json")

    assert parse_json(missing)["error"]["code"] == "SNAPSHOT_NOT_FOUND"
    assert_clean_exit(both, 2)
    assert parse_json(bad_time)["error"]["code"] == "INVALID_TIMESTAMP"
    assert parse_json(bad_label)["error"]["code"] == "INVALID_LABEL"
    assert idle_validator.changes() == []


def test_dry_run_shows_the_plan_and_publishes_nothing(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 10)
    cli("snapshot", "create", "checkout", "production", "--label", "good")
    seed(idle_validator, "limits", 20)

    body = parse_json(
        cli(
            "snapshot",
            "restore",
            "checkout",
            "production",
            "--label",
            "good",
            "-r",
            "x",
            "--dry-run",
            "-o",
            "json",
        )
    )

    assert body["dryRun"] is True
    assert [(c["key"], c["operation"], c["toVersion"], c["expectedVersion"]) for c in body["changes"]] == [
        ("limits", "rollback", 1, 2)
    ]
    assert body["diff"][0]["fromValue"] == 10 and body["diff"][0]["toValue"] == 20
    assert idle_validator.changes() == []


def test_restore_waits_for_every_verdict_and_ties_them_with_one_restore_id(cli, validator: Validator):
    seed(validator, "limits", 10)
    seed(validator, "banner", "a")
    cli("snapshot", "create", "checkout", "production", "--label", "good")
    seed(validator, "limits", 20)
    seed(validator, "banner", "b")

    result = cli(
        "snapshot", "restore", "checkout", "production", "--label", "good", "-r", "incident 42",
        "--restore-id", "restore-incident-42", "-o", "json",
    )  # fmt: skip
    again = cli(
        "snapshot", "restore", "checkout", "production", "--label", "good", "-r", "incident 42",
        "--restore-id", "restore-incident-42", "-o", "json",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert {c["status"] for c in body["changes"]} == {"accepted"}
    history = parse_json(cli("history", "checkout", "production", "limits", "-o", "json"))["versions"]
    assert history[0]["restoreId"] == "restore-incident-42"
    assert history[0]["rolledBackTo"] == 1 and "incident 42" in history[0]["reason"]
    # the service now matches the snapshot: the same restore again has nothing to send
    assert parse_json(again)["changes"] == []


def test_restore_through_a_rollout(cli, validator: Validator):
    seed(validator, "limits", 10)
    cli("snapshot", "create", "checkout", "production", "--label", "good")
    seed(validator, "limits", 20)

    result = cli(
        "snapshot", "restore", "checkout", "production", "--label", "good", "-r", "careful",
        "--rollout", "Linear10PercentEvery1Minute", "-o", "json",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    log = change_log(validator.pipeline)
    pointer = log.current("checkout", "production", "limits")
    assert pointer is not None and pointer.rollout_id is not None and pointer.stable_version == 2
    rollout = log.rollout("checkout", "production", "limits")
    assert rollout is not None and rollout.strategy_name == "Linear10PercentEvery1Minute"


def test_restore_is_rejected_whole_locally_without_a_source(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 10)
    cli("snapshot", "create", "checkout", "production", "--label", "good")
    seed(idle_validator, "limits", 20)

    result = cli("snapshot", "restore", "checkout", "production", "--label", "good", "-r", "x", source=None)

    assert_clean_exit(result, 2)
    assert idle_validator.changes() == []


def test_a_bad_restore_id_is_refused_locally_and_by_the_contract(cli, idle_validator: Validator):
    from pydantic import ValidationError

    from configpipe.contracts import ConfigurationChange

    seed(idle_validator, "limits", 1)
    cli("snapshot", "create", "checkout", "production", "--label", "good")
    seed(idle_validator, "limits", 2)

    result = cli(
        "snapshot", "restore", "checkout", "production", "--label", "good", "-r", "x",
        "--restore-id", "no spaces", "-o", "json",
    )  # fmt: skip

    assert parse_json(result)["error"]["code"] == "INVALID_RESTORE_ID"
    assert idle_validator.changes() == []
    base = {
        "changeId": "c1", "service": "checkout", "environment": "production", "key": "k",
        "operation": "delete", "author": "a", "reason": "r",
    }  # fmt: skip
    assert ConfigurationChange.model_validate({**base, "restoreId": "restore-1"}).restore_id == "restore-1"
    with pytest.raises(ValidationError) as raised:
        ConfigurationChange.model_validate({**base, "restoreId": "no spaces"})
    assert raised.value.errors()[0]["loc"] == ("restoreId",)
