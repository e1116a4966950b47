"""Flags documents are checked when published: a key the registry marks as a feature-flags
document (``featureFlags``) takes only what Powertools' ``FeatureFlags`` can evaluate. A bad
one is rejected with ``INVALID_FEATURE_FLAGS`` and the path of the problem, never a value,
and nothing but the rejection record is written."""

from __future__ import annotations

from typing import Any

import pytest

from configpipe.changelog import ChangeLog
from configpipe.registry import Registry
from configpipe.validation import check_feature_flags
from configpipe_tools.harness.aws import DEMO_REGISTRY
from configpipe_tools.harness.events import change
from tests.unit.test_write_path import all_items, make_write_path, submit

MARKER = "zz-never-echoed-zz"

GOOD: dict[str, Any] = {
    "maintenance": {"default": False},
    "new_checkout": {
        "default": False,
        "rules": {
            "tenant-7 first": {
                "when_match": True,
                "conditions": [{"action": "EQUALS", "key": "tenant", "value": "tenant-7"}],
            }
        },
    },
    "rate_limit": {"default": 100, "boolean_type": False},
}


def rule(**condition: Any) -> dict[str, Any]:
    return {"f": {"default": False, "rules": {"r": {"when_match": True, "conditions": [condition]}}}}


BAD: list[tuple[Any, str]] = [
    (["not", "an", "object"], "value"),
    ({"f": MARKER}, "value.f"),
    ({"f": {"rules": {}}}, "value.f"),  # no default
    ({"f": {"default": MARKER}}, "value.f"),  # a boolean flag with a non-boolean default
    ({"f": {"default": False, "rules": [MARKER]}}, "value.f.rules"),
    ({"f": {"default": False, "rules": {"r": {"when_match": MARKER}}}}, "value.f.rules.r"),
    ({"f": {"default": False, "rules": {"r": {"when_match": True}}}}, "value.f.rules.r.conditions"),
    (rule(action=MARKER, key="tenant", value="x"), "value.f.rules.r.conditions[0]"),
    (rule(action="EQUALS", key="", value=MARKER), "value.f.rules.r.conditions[0]"),
    # shapes Powertools' validators raise TypeError on: a bounded reason all the same
    (rule(action=[MARKER], key="tenant", value="x"), "value.f.rules.r.conditions[0]"),
    (rule(action={MARKER: 1}, key="tenant", value="x"), "value.f.rules.r.conditions[0]"),
    (rule(action="EQUALS", key="tenant"), "value.f.rules.r.conditions[0]"),  # no value
    (rule(action="ANY_IN_VALUE", key="tenant", value=MARKER), "value.f.rules.r.conditions[0]"),
    (
        rule(action="SCHEDULE_BETWEEN_TIME_RANGE", key="CURRENT_TIME", value={"START": MARKER, "END": "9"}),
        "value.f.rules.r.conditions[0]",
    ),
]


@pytest.mark.parametrize(("document", "path"), BAD)
def test_a_bad_document_gets_the_path_and_powertools_rule_never_a_value(document, path):
    [reason] = check_feature_flags(document)
    assert reason.code == "INVALID_FEATURE_FLAGS"
    assert reason.field == path
    assert path in reason.message
    assert MARKER not in reason.message


def test_a_good_document_and_an_empty_one_pass():
    assert check_feature_flags(GOOD) == []
    assert check_feature_flags({}) == []
    assert check_feature_flags({"f": {"default": True, "rules": {}}}) == []


def test_the_registry_marks_flags_keys_per_service_and_for_global():
    registry = Registry.model_validate(
        {**DEMO_REGISTRY, "global": {"publishers": ["configpipe.team.platform"], "featureFlags": ["kill"]}}
    )
    assert registry.is_feature_flags("checkout", "flags")
    assert not registry.is_feature_flags("checkout", "max_items")
    assert not registry.is_feature_flags("payments", "flags")
    assert registry.is_feature_flags("global", "kill")
    assert not registry.is_feature_flags("nope", "flags")


def test_the_validator_accepts_a_good_flags_document(pipeline):
    outcome = submit(make_write_path(pipeline), change(key="flags", value=GOOD))
    assert (outcome.status, outcome.version) == ("accepted", 1)


def test_the_validator_rejects_a_bad_flags_document_and_writes_only_the_rejection(pipeline):
    bad = rule(action="EQUALS", key="tenant")
    outcome = submit(make_write_path(pipeline), change(key="flags", value=bad, change_id="c-bad"))

    assert outcome.status == "rejected"
    [reason] = outcome.reasons
    assert (reason.code, reason.field) == ("INVALID_FEATURE_FLAGS", "value.f.rules.r.conditions[0]")
    assert [item["pk"] for item in all_items(pipeline)] == ["CHANGE#configpipe.team.checkout#c-bad"]
    assert ChangeLog(pipeline.table_name).current("checkout", "production", "flags") is None


def test_the_same_document_on_an_unmarked_key_is_just_json(pipeline):
    outcome = submit(make_write_path(pipeline), change(key="other_doc", value=rule(action="EQUALS", key="t")))
    assert outcome.status == "accepted"


def test_a_flags_document_cannot_be_sent_as_a_secret(pipeline):
    outcome = submit(make_write_path(pipeline), change(key="flags", value=GOOD, sensitive=True))
    assert outcome.status == "rejected"
    assert [r.code for r in outcome.reasons] == ["INVALID_FEATURE_FLAGS"]
    assert outcome.reasons[0].field == "sensitive"
