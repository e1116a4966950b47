"""``configpipe flag``: list / get / set / enable / disable edit the flags document as a normal
change — a diff before publishing, --dry-run, and expectedVersion so concurrent editors never
overwrite each other."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log, parse_json, seed

DOCUMENT: dict[str, Any] = {
    "maintenance": {"default": False},
    "rate_limit": {"default": 100, "boolean_type": False},
}


def current(pipeline) -> tuple[Any, int]:
    record = change_log(pipeline).current_record("checkout", "production", "flags")
    assert record is not None
    return json.loads(record.value_json or "null"), record.version


def test_list_and_get_read_the_current_document(cli, validator: Validator):
    seed(validator, "flags", DOCUMENT)

    listed = cli("flag", "list", "checkout", "production", "--output", "json")
    assert_clean_exit(listed, 0)
    body = parse_json(listed)
    assert body["version"] == 1
    assert [row["flag"] for row in body["flags"]] == ["maintenance", "rate_limit"]

    got = cli("flag", "get", "checkout", "production", "rate_limit", "--output", "json")
    assert_clean_exit(got, 0)
    assert parse_json(got)["definition"] == {"default": 100, "boolean_type": False}

    missing = cli("flag", "get", "checkout", "production", "nope", "--output", "json")
    assert_clean_exit(missing, 2)
    assert "FLAG_NOT_FOUND" in missing.output


def test_enable_for_one_tenant_adds_a_rule_as_a_new_version(cli, validator: Validator, pipeline):
    seed(validator, "flags", DOCUMENT)

    result = cli(
        "flag", "enable", "checkout", "production", "maintenance", "--for", "tenant=t-7", "-r", "pilot"
    )

    assert_clean_exit(result, 0)
    document, version = current(pipeline)
    assert version == 2
    assert document["maintenance"] == {
        "default": False,
        "rules": {
            "configpipe: tenant in list": {
                "when_match": True,
                "conditions": [{"action": "IN", "key": "tenant", "value": ["t-7"]}],
            }
        },
    }
    assert document["rate_limit"] == DOCUMENT["rate_limit"]  # the rest of the document is untouched
    # and what crossed the bus carried the version it was edited from
    assert validator.changes()[-1]["detail"]["expectedVersion"] == 1

    # Disabling the last tenant removes the rule again
    cli("flag", "disable", "checkout", "production", "maintenance", "--for", "tenant=t-7", "-r", "done")
    document, version = current(pipeline)
    assert (version, document["maintenance"]) == (3, {"default": False})


def test_enable_disable_and_set_change_the_default(cli, validator: Validator, pipeline):
    seed(validator, "flags", DOCUMENT)
    assert_clean_exit(cli("flag", "enable", "checkout", "production", "maintenance", "-r", "r"), 0)
    assert current(pipeline)[0]["maintenance"] == {"default": True}
    assert_clean_exit(cli("flag", "set", "checkout", "production", "rate_limit", "250", "-r", "r"), 0)
    assert current(pipeline)[0]["rate_limit"] == {"default": 250, "boolean_type": False}
    assert_clean_exit(cli("flag", "set", "checkout", "production", "greeting", "hello", "-r", "r"), 0)
    assert current(pipeline)[0]["greeting"] == {"default": "hello", "boolean_type": False}
    refused = cli("flag", "enable", "checkout", "production", "rate_limit", "-r", "r", "--output", "json")
    assert_clean_exit(refused, 2)
    assert "NOT_BOOLEAN_FLAG" in refused.output


def test_dry_run_shows_the_diff_and_publishes_nothing(cli, validator: Validator, pipeline):
    seed(validator, "flags", DOCUMENT)

    result = cli("flag", "enable", "checkout", "production", "maintenance", "-r", "r", "--dry-run")

    assert_clean_exit(result, 0)
    assert "would become version 2" in result.stdout
    assert '-    "default": false' in result.stdout and '+    "default": true' in result.stdout
    assert validator.changes() == []
    assert current(pipeline)[1] == 1


def test_a_concurrent_edit_is_a_version_conflict_not_a_lost_update(cli, validator: Validator, pipeline):
    seed(validator, "flags", DOCUMENT)
    # Someone else's edit lands after this user read version 1
    seed(validator, "flags", {**DOCUMENT, "maintenance": {"default": True}})

    result = cli(
        "flag", "disable", "checkout", "production", "rate_limit", "-r", "r", "--expected-version", "1"
    )

    assert_clean_exit(result, 2)  # a value flag cannot be disabled: refused before anything is sent
    result = cli(
        "flag", "set", "checkout", "production", "rate_limit", "5", "-r", "r", "--expected-version", "1"
    )
    assert_clean_exit(result, 3)
    assert "VERSION_CONFLICT" in result.output
    assert current(pipeline) == ({**DOCUMENT, "maintenance": {"default": True}}, 2)


def test_the_first_flag_creates_the_document(cli, validator: Validator, pipeline):
    result = cli("flag", "enable", "checkout", "production", "maintenance", "-r", "first flag")

    assert_clean_exit(result, 0)
    assert current(pipeline) == ({"maintenance": {"default": True}}, 1)
    assert validator.changes()[-1]["detail"]["expectedVersion"] == 0
