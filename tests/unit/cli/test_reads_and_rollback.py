"""``get``, ``list``, ``history``, ``diff``, ``delete`` and ``rollback``."""

from __future__ import annotations

from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log, parse_json, seed


def test_get_shows_the_current_value_with_its_metadata(cli, idle_validator: Validator):
    seed(idle_validator, "limits", {"cart": 10}, {"cart": 20}, author="bob")

    table = cli("get", "checkout", "production", "limits")
    body = parse_json(cli("get", "checkout", "production", "limits", "-o", "json"))

    assert_clean_exit(table, 0)
    assert '"cart": 20' in table.stdout
    assert "bob" in table.stdout and "seed 2" in table.stdout
    assert body["version"] == 2
    assert body["value"] == {"cart": 20}
    assert body["valueHash"].startswith("sha256:")


def test_get_a_past_version(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1, 2, 3)

    body = parse_json(cli("get", "checkout", "production", "limits", "--version", "2", "-o", "json"))

    assert body["version"] == 2 and body["value"] == 2


def test_get_prints_user_data_literally_not_as_markup(cli, idle_validator: Validator):
    seed(idle_validator, "banner", "[bold red]sale[/bold red]")

    result = cli("get", "checkout", "production", "banner")

    assert "[bold red]sale[/bold red]" in result.stdout


def test_get_of_a_missing_key_or_version_is_exit_2(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1)

    missing = cli("get", "checkout", "production", "nope", "-o", "json")
    no_version = cli("get", "checkout", "production", "limits", "--version", "9")

    assert_clean_exit(missing, 2)
    assert parse_json(missing)["error"]["code"] == "KEY_NOT_FOUND"
    assert "configpipe list checkout production" in missing.stderr
    assert_clean_exit(no_version, 2)
    assert "no version 9" in no_version.stderr


def test_list_shows_keys_and_current_versions(cli, idle_validator: Validator):
    seed(idle_validator, "a", 1, 2)
    seed(idle_validator, "b", True)
    seed(idle_validator, "other", 1, env="staging")

    table = cli("list", "checkout", "production")
    body = parse_json(cli("list", "checkout", "production", "-o", "json"))
    empty = cli("list", "payments", "production", "-o", "json")

    assert_clean_exit(table, 0)
    assert "a" in table.stdout and "b" in table.stdout and "other" not in table.stdout
    assert body["keys"] == [{"key": "a", "version": 2}, {"key": "b", "version": 1}]
    assert_clean_exit(empty, 0)
    assert parse_json(empty)["keys"] == []


def test_history_lists_every_version_newest_first(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1, 2, 3, author="carol")

    table = cli("history", "checkout", "production", "limits")
    body = parse_json(cli("history", "checkout", "production", "limits", "-o", "json"))
    limited = parse_json(cli("history", "checkout", "production", "limits", "--limit", "1", "-o", "json"))

    assert_clean_exit(table, 0)
    for column in ("version", "operation", "who", "when", "why", "hash"):
        assert column in table.stdout
    assert "carol" in table.stdout and "seed 3" in table.stdout and "sha256:" in table.stdout
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    assert body["versions"][0]["value"] == 3
    assert [v["version"] for v in limited["versions"]] == [3]


def test_history_of_a_missing_key_is_exit_2(cli, idle_validator: Validator):
    result = cli("history", "checkout", "production", "nope")

    assert_clean_exit(result, 2)


def test_diff_shows_a_unified_diff_of_two_versions(cli, idle_validator: Validator):
    seed(idle_validator, "limits", {"cart": 10, "burst": 1}, {"cart": 20, "burst": 1})

    table = cli("diff", "checkout", "production", "limits", "1", "2")
    body = parse_json(cli("diff", "checkout", "production", "limits", "1", "2", "-o", "json"))
    same = parse_json(cli("diff", "checkout", "production", "limits", "2", "2", "-o", "json"))

    assert_clean_exit(table, 0)
    assert '-  "cart": 10' in table.stdout and '+  "cart": 20' in table.stdout
    assert body["identical"] is False and body["diff"].startswith("--- checkout/production/limits v1")
    assert same["identical"] is True and same["diff"] == ""


def test_diff_of_an_unknown_version_is_exit_2(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1)

    result = cli("diff", "checkout", "production", "limits", "1", "5")

    assert_clean_exit(result, 2)
    assert "no version 5" in result.stderr


def test_rollback_restores_an_older_value_as_a_new_version(cli, validator: Validator, pipeline):
    seed(validator, "limits", {"cart": 10}, {"cart": 99})

    result = cli("rollback", "checkout", "production", "limits", "--to", "1", "--reason", "99 broke checkout")

    assert_clean_exit(result, 0)
    assert "version 3" in result.stdout
    record = change_log(pipeline).current_record("checkout", "production", "limits")
    assert record is not None and record.version == 3 and record.rolled_back_to == 1
    assert record.value_json == '{"cart":10}'
    event = validator.changes()[-1]["detail"]
    assert event["operation"] == "rollback" and event["toVersion"] == 1 and "value" not in event


def test_rollback_to_an_unknown_version_is_rejected_by_the_pipeline(cli, validator: Validator):
    seed(validator, "limits", 1)

    result = cli("rollback", "checkout", "production", "limits", "--to", "7", "-r", "r", "-o", "json")

    assert_clean_exit(result, 3)
    assert parse_json(result)["reasons"][0]["code"] == "UNKNOWN_VERSION"


def test_rollback_dry_run_shows_what_would_come_back(cli, idle_validator: Validator):
    seed(idle_validator, "limits", {"cart": 10}, {"cart": 99})

    result = cli("rollback", "checkout", "production", "limits", "--to", "1", "-r", "r", "--dry-run")

    assert_clean_exit(result, 0)
    assert '-  "cart": 99' in result.stdout and '+  "cart": 10' in result.stdout
    assert idle_validator.changes() == []


def test_rollback_needs_to_and_reason(cli):
    no_to = cli("rollback", "checkout", "production", "limits", "-r", "r")
    zero = cli("rollback", "checkout", "production", "limits", "--to", "0", "-r", "r")

    assert_clean_exit(no_to, 2)
    assert "--to" in no_to.output
    assert_clean_exit(zero, 2)


def test_delete_marks_the_key_deleted(cli, validator: Validator, pipeline):
    seed(validator, "limits", 1)

    result = cli("delete", "checkout", "production", "limits", "--reason", "unused", "-o", "json")
    get = cli("get", "checkout", "production", "limits")

    assert_clean_exit(result, 0)
    assert parse_json(result)["version"] == 2
    assert_clean_exit(get, 2)
    assert "deleted in version 2" in get.stderr
    assert cli("list", "checkout", "production", "-o", "json").stdout.count('"key"') == 0


def test_delete_of_a_missing_key_is_rejected(cli, validator: Validator):
    result = cli("delete", "checkout", "production", "nope", "-r", "r")

    assert_clean_exit(result, 3)
    assert "KEY_NOT_FOUND" in result.stdout


def test_delete_dry_run_predicts_a_missing_key(cli, idle_validator: Validator):
    result = cli("delete", "checkout", "production", "nope", "-r", "r", "--dry-run")

    assert_clean_exit(result, 3)
    assert "KEY_NOT_FOUND" in result.stdout
    assert idle_validator.changes() == []
