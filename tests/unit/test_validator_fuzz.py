"""Property-based: whatever arrives, the validator answers with a structured outcome, never
raises, writes at most one record, and never repeats a submitted value in its answer.
Strategies (tests/unit/hostile.py) span the whole Unicode range with lone surrogates, huge
strings and objects, and deep nesting."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configpipe.changelog import ChangeLog
from configpipe.contracts import ConfigurationChange, ReasonCode
from configpipe.crypto import SecretsKey
from configpipe.registry_source import RegistrySource
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import provision
from configpipe_tools.harness.events import change, eventbridge_event
from configpipe_tools.harness.hostile import contract_fields
from tests.unit.hostile import any_text, hostile_values, json_values, lone_surrogate

MARKER = "zz-secret-marker-zz"

FIELDS = contract_fields(ConfigurationChange)


@st.composite
def mutated_changes(draw: Any) -> Any:
    """A valid change with some fields dropped, replaced by arbitrary JSON, spiked with a lone
    surrogate (a valid value but for one code point: the case that reaches deepest), or added."""
    detail: dict[str, Any] = change(
        key=draw(st.sampled_from(["max_items", "db_password", "flag"])), value=MARKER
    )
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "replace", "spike"]))
        if action == "drop":
            detail.pop(name, None)
        elif action == "spike":
            detail[name] = f"{detail.get(name, '')}{draw(lone_surrogate)}"
        else:
            detail[name] = draw(hostile_values)
    if draw(st.booleans()):
        detail[draw(any_text)] = draw(json_values)
    return detail


anything = st.one_of(mutated_changes(), json_values)


@pytest.fixture(scope="module")
def moto_pipeline():
    from moto import mock_aws

    with mock_aws():
        pipeline = provision()
        yield (
            pipeline,
            WritePath(
                change_log=ChangeLog(pipeline.table_name),
                registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
                secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
            ),
        )


# Issue 9, item 1: a lone surrogate in key/service/environment/operation crashes the validator
# (UnicodeEncodeError in values.value_hash via write_path._rejection_hash), before the fix.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(detail=anything)
@pytest.mark.long  # make test-long: 150 generated events
def test_any_detail_gets_a_structured_outcome_and_at_most_one_record(moto_pipeline, detail):
    pipeline, write_path = moto_pipeline
    table = boto3.resource("dynamodb").Table(pipeline.table_name)
    before = table.scan(Select="COUNT")["Count"]

    outcome = write_path.handle(eventbridge_event(detail))

    assert outcome.status in {"accepted", "rejected", "duplicate"}
    if outcome.status == "rejected":
        assert outcome.reasons
        assert all(isinstance(r.code, ReasonCode) and r.message for r in outcome.reasons)
    assert MARKER not in json.dumps(outcome.to_dict())
    written = table.scan(Select="COUNT")["Count"] - before
    # a rejection writes one record; an acceptance three (version, pointer-or-update, change)
    assert written in ({0, 1} if outcome.status != "accepted" else {2, 3})
