"""``configpipe put``: publishing through the contract, waiting for the verdict, and every
way a user can get it wrong (exit 2 with nothing sent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.cli.conftest import (
    CHECKOUT,
    Validator,
    assert_clean_exit,
    change_log,
    parse_json,
    seed,
)


def test_put_publishes_a_change_and_reports_the_accepted_version(cli, validator: Validator, pipeline):
    # When
    result = cli("put", "checkout", "production", "max_items", "50", "--reason", "raise the cart limit")

    # Then the pipeline accepted it as version 1 and the CLI says so
    assert_clean_exit(result, 0)
    assert "accepted" in result.stdout
    assert "version 1" in result.stdout
    record = change_log(pipeline).current_record("checkout", "production", "max_items")
    assert record is not None and record.value_json == "50"
    # and what crossed the bus is the public contract, published as the team's source
    (event,) = validator.changes()
    assert event["source"] == CHECKOUT
    detail = event["detail"]
    assert (
        detail["operation"] == "put" and detail["value"] == 50 and detail["reason"] == "raise the cart limit"
    )
    assert detail["author"] == "arn:aws:sts::123456789012:user/moto"  # the caller identity, by default


def test_put_json_output_is_one_parseable_document(cli, validator: Validator):
    result = cli("put", "checkout", "production", "max_items", "7", "--reason", "r", "--output", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "accepted"
    assert body["version"] == 1
    assert body["key"] == "max_items"
    assert body["changeId"]


def test_global_output_option_before_the_command_works_too(runner, pipeline, validator: Validator):
    from configpipe_tools.cli.main import app

    result = runner.invoke(
        app, ["--output", "json", "--source", CHECKOUT, "put", "checkout", "production", "k", "1", "-r", "r"]
    )

    assert_clean_exit(result, 0)
    assert parse_json(result)["status"] == "accepted"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["true"], True),
        (["42"], 42),
        (["hello world"], "hello world"),
        (['{"a": [1, 2]}'], {"a": [1, 2]}),
        (["NaN"], "NaN"),  # not JSON: sent as text, never as a float
        (['"quoted"', "--json"], "quoted"),
    ],
)
def test_value_is_json_when_it_parses_and_text_otherwise(cli, idle_validator: Validator, args, expected):
    result = cli("put", "checkout", "production", "flag", *args, "--reason", "r", "--no-wait")

    assert_clean_exit(result, 0)
    (event,) = idle_validator.changes()
    assert event["detail"]["value"] == expected


def test_bad_json_with_json_flag_is_refused_and_nothing_is_sent(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "flag", "{not json", "--json", "--reason", "r")

    assert_clean_exit(result, 2)
    assert "not valid JSON" in result.stderr
    assert idle_validator.changes() == []


def test_value_from_a_yaml_file(cli, idle_validator: Validator, tmp_path: Path):
    path = tmp_path / "limits.yaml"
    path.write_text("limits:\n  cart: 50\n  burst: [1, 2]\nenabled: yes\n")

    result = cli("put", "checkout", "production", "limits", "--file", str(path), "-r", "r", "--no-wait")

    assert_clean_exit(result, 0)
    (event,) = idle_validator.changes()
    assert event["detail"]["value"] == {"limits": {"cart": 50, "burst": [1, 2]}, "enabled": True}


def test_value_from_a_json_file_and_from_stdin(cli, idle_validator: Validator, tmp_path: Path):
    path = tmp_path / "v.json"
    path.write_text('{"ratio": 0.25}')

    assert_clean_exit(cli("put", "checkout", "production", "ab", "-f", str(path), "-r", "r", "--no-wait"), 0)
    assert_clean_exit(
        cli("put", "checkout", "production", "ab2", "-f", "-", "-r", "r", "--no-wait", input="[1]"), 0
    )

    values = [e["detail"]["value"] for e in idle_validator.changes()]
    assert sorted(values, key=str) == sorted([{"ratio": 0.25}, [1]], key=str)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{", "not valid JSON"),
        ("bad.yaml", "a: [1, 2\n", "not valid YAML"),
        ("date.yaml", "when: 2024-01-01\n", "JSON cannot represent"),
        ("empty.yaml", "   \n", "is empty"),
        ("latin1.yaml", None, "not UTF-8"),
    ],
)
def test_invalid_files_are_refused_with_a_clear_message(
    cli, idle_validator, tmp_path: Path, name, content, message
):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"value: caf\xe9\n")
    else:
        path.write_text(content)

    result = cli("put", "checkout", "production", "k", "--file", str(path), "-r", "r")

    assert_clean_exit(result, 2)
    assert message in result.stderr
    assert idle_validator.changes() == []


def test_unreadable_file_paths_are_refused(cli, idle_validator: Validator, tmp_path: Path):
    missing = cli("put", "checkout", "production", "k", "--file", str(tmp_path / "nope.yaml"), "-r", "r")
    directory = cli("put", "checkout", "production", "k", "--file", str(tmp_path), "-r", "r")

    assert_clean_exit(missing, 2)
    assert "file not found" in missing.stderr
    assert_clean_exit(directory, 2)
    assert "is a directory" in directory.stderr
    assert idle_validator.changes() == []


def test_value_and_file_together_or_neither_are_usage_errors(cli, tmp_path: Path):
    path = tmp_path / "v.json"
    path.write_text("1")

    both = cli("put", "checkout", "production", "k", "1", "--file", str(path), "-r", "r")
    neither = cli("put", "checkout", "production", "k", "-r", "r")

    assert_clean_exit(both, 2)
    assert "not both" in both.stderr
    assert_clean_exit(neither, 2)
    assert "needs a VALUE or --file" in neither.stderr


@pytest.mark.parametrize(
    ("service", "env", "key", "code"),
    [
        ("checkout", "production", "bad key!", "INVALID_KEY"),
        ("Checkout", "production", "k", "INVALID_SERVICE"),
        ("checkout", "Prod!", "k", "INVALID_ENVIRONMENT"),
        ("checkout", "qa", "k", "ENVIRONMENT_NOT_ALLOWED"),  # format fine, not in the registry
        ("billing", "production", "k", "UNKNOWN_SERVICE"),
        ("search", "production", "k", "ENVIRONMENT_NOT_ALLOWED"),  # search runs in dev/staging only
    ],
)
def test_invalid_changes_are_refused_locally_and_nothing_is_sent(
    cli, idle_validator, service, env, key, code
):
    source = "configpipe.team.search" if service == "search" else CHECKOUT
    result = cli("put", service, env, key, "1", "--reason", "r", "--output", "json", source=source)

    assert_clean_exit(result, 2)
    body = parse_json(result)
    assert body["error"]["code"] == "INVALID_CHANGE"
    assert code in [r["code"] for r in body["error"]["reasons"]]
    assert "nothing was sent" in result.stderr
    assert idle_validator.changes() == []


def test_bad_key_message_says_what_a_key_may_contain(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "bad key!", "1", "--reason", "r")

    assert_clean_exit(result, 2)
    assert "INVALID_KEY" in result.stderr
    assert "^[a-zA-Z0-9\\-_.]+$" in result.stderr


def test_a_team_cannot_publish_for_another_teams_service(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "k", "1", "-r", "r", source="configpipe.team.payments")

    assert_clean_exit(result, 2)
    assert "SOURCE_NOT_AUTHORIZED" in result.stderr
    assert idle_validator.changes() == []


def test_value_violating_the_keys_schema_is_refused(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "max_items", "5000", "-r", "r")

    assert_clean_exit(result, 2)
    assert "SCHEMA_VIOLATION" in result.stderr
    assert idle_validator.changes() == []


def test_too_large_value_is_refused(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "blob", "x" * 5000, "-r", "r")

    assert_clean_exit(result, 2)
    assert "VALUE_TOO_LARGE" in result.stderr
    assert idle_validator.changes() == []


def test_missing_reason_is_a_usage_error(cli, idle_validator: Validator):
    missing = cli("put", "checkout", "production", "k", "1")
    blank = cli("put", "checkout", "production", "k", "1", "--reason", "   ")

    assert_clean_exit(missing, 2)
    assert "--reason" in missing.output
    assert_clean_exit(blank, 2)
    assert "--reason" in blank.stderr
    assert idle_validator.changes() == []


@pytest.mark.parametrize(
    ("source", "message"), [(None, "no event source"), ("team.checkout", "--source must")]
)
def test_writes_need_a_team_source(cli, idle_validator: Validator, source, message):
    # (CONFIGPIPE_SOURCE is not set in the test process: tests/conftest.py removes it at import)
    result = cli("put", "checkout", "production", "k", "1", "-r", "r", source=source)

    assert_clean_exit(result, 2)
    assert message in result.stderr
    assert idle_validator.changes() == []


def test_source_can_come_from_the_environment(cli_process):
    # Given a process whose only source is CONFIGPIPE_SOURCE (a process of its own: no test changes
    # this one's environment), and no reachable AWS
    def put(env: dict[str, str]):  # type: ignore[no-untyped-def]
        return cli_process(
            "--endpoint-url",
            "http://127.0.0.1:9",
            "put",
            "checkout",
            "production",
            "k",
            "1",
            "-r",
            "r",
            env={"AWS_MAX_ATTEMPTS": "1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", **env},
        )

    # Then without it the put is refused for want of a source; with it, it gets past that check and
    # as far as calling AWS (which is down here)
    without = put({})
    assert_clean_exit(without, 2)
    assert "no event source" in without.stderr
    with_source = put({"CONFIGPIPE_SOURCE": CHECKOUT})
    assert_clean_exit(with_source, 5)
    assert "no event source" not in with_source.stderr
    assert "could not reach AWS" in with_source.stderr


def test_expected_version_conflict_is_reported_as_rejected(cli, validator: Validator):
    # Given the key is at version 2
    seed(validator, "max_items", 10, 20)

    # When a writer expects version 1
    result = cli("put", "checkout", "production", "max_items", "30", "-r", "r", "--expected-version", "1")

    # Then the pipeline's verdict is shown and the exit code is 3
    assert_clean_exit(result, 3)
    assert "rejected" in result.stdout
    assert "VERSION_CONFLICT" in result.stdout
    assert "at version 2" in result.stdout


def test_expected_version_match_is_accepted(cli, validator: Validator):
    seed(validator, "max_items", 10)

    result = cli(
        "put", "checkout", "production", "max_items", "30", "-r", "r", "--expected-version", "1", "-o", "json"
    )

    assert_clean_exit(result, 0)
    assert parse_json(result)["version"] == 2


def test_rejection_json_carries_the_reasons(cli, validator: Validator):
    seed(validator, "max_items", 10)

    result = cli(
        "put", "checkout", "production", "max_items", "1", "-r", "r", "--expected-version", "0", "-o", "json"
    )

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["VERSION_CONFLICT"]


def test_no_wait_prints_the_change_id_and_returns_at_once(cli, idle_validator: Validator):
    result = cli("put", "checkout", "production", "k", "1", "-r", "r", "--no-wait", "-o", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "published"
    (event,) = idle_validator.changes()
    assert event["detail"]["changeId"] == body["changeId"]


def test_given_change_id_makes_a_retry_idempotent(cli, validator: Validator, pipeline):
    first = cli("put", "checkout", "production", "k", "1", "-r", "r", "--change-id", "retry-1", "-o", "json")
    again = cli("put", "checkout", "production", "k", "1", "-r", "r", "--change-id", "retry-1", "-o", "json")

    assert_clean_exit(first, 0)
    assert_clean_exit(again, 0)
    assert parse_json(first)["version"] == parse_json(again)["version"] == 1
    assert [r.version for r in change_log(pipeline).history("checkout", "production", "k")] == [1]


def test_waiting_times_out_with_exit_4_when_no_verdict_arrives(cli, idle_validator: Validator):
    # Given no validator is processing the bus
    result = cli(
        "put", "checkout", "production", "k", "1", "-r", "r", "--timeout", "0.3", "--change-id", "c-42"
    )

    assert_clean_exit(result, 4)
    assert "c-42" in result.stderr
    assert "--change-id c-42" in result.stderr  # says how to retry safely
    assert len(idle_validator.changes()) == 1  # it was published, just not judged


def test_dry_run_shows_the_diff_and_publishes_nothing(cli, idle_validator: Validator):
    seed(idle_validator, "limits", {"cart": 50, "burst": 5})

    result = cli(
        "put", "checkout", "production", "limits", '{"cart": 80, "burst": 5}', "-r", "r", "--dry-run"
    )

    assert_clean_exit(result, 0)
    assert "would become version 2" in result.stdout
    assert '-  "cart": 50' in result.stdout
    assert '+  "cart": 80' in result.stdout
    assert idle_validator.changes() == []


def test_dry_run_json_predicts_a_version_conflict_with_exit_3(cli, idle_validator: Validator):
    seed(idle_validator, "limits", 1, 2)

    result = cli(
        "put",
        "checkout",
        "production",
        "limits",
        "3",
        "-r",
        "r",
        "--dry-run",
        "--expected-version",
        "1",
        "-o",
        "json",
    )

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "would-reject"
    assert body["reasons"][0]["code"] == "VERSION_CONFLICT"
    assert body["dryRun"]["currentVersion"] == 2
    assert body["dryRun"]["registryChecked"] is True
    assert idle_validator.changes() == []


def test_dry_run_without_a_readable_registry_checks_the_contract_only(
    cli, idle_validator: Validator, pipeline
):
    import boto3

    boto3.client("ssm", region_name="us-east-1").delete_parameter(Name=pipeline.registry_parameter)

    ok = cli("put", "checkout", "qa", "k", "1", "-r", "r", "--dry-run", "-o", "json")
    bad = cli("put", "checkout", "production", "bad key", "1", "-r", "r", "--dry-run")

    assert_clean_exit(ok, 0)  # 'qa' is not allowed, but only the registry knows that
    assert parse_json(ok)["dryRun"]["registryChecked"] is False
    assert_clean_exit(bad, 2)


def test_help_lists_every_command(runner):
    from configpipe_tools.cli.main import app

    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    for command in ("put", "get", "delete", "list", "history", "diff", "rollback", "watch"):
        assert command in result.stdout


def test_value_is_never_echoed_in_an_error(cli, idle_validator: Validator):
    secret_like = "hunter2-" + "x" * 5000
    result = cli("put", "checkout", "production", "blob", secret_like, "-r", "r", "-o", "json")

    assert_clean_exit(result, 2)
    assert "hunter2" not in result.output
    json.loads(result.stdout)


def test_source_after_the_command_overrides_the_global_one(cli, idle_validator: Validator):
    result = cli(
        "put", "payments", "production", "payments.limit", "5", "-r", "r", "--no-wait",
        "--source", "configpipe.team.payments",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    (event,) = idle_validator.changes()
    assert event["source"] == "configpipe.team.payments"
