"""The drift check's two pure pieces (issue 14): a parameter's stored text hashes to the
version's ``valueHash`` exactly when it is the canonical JSON the materialiser wrote (so a hand
edit that only re-spaces or re-orders a value still counts as drift: readers compare by hash),
and the function's request is refused unless it is a sweep or one whole scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from configpipe.drift import DriftRequest, stored_text_hash
from configpipe.values import canonical_json, value_hash

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# the machine running the tests may be busy: no deadline, and slow generation is not a failure
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_the_materialised_text_hashes_to_the_versions_value_hash(value: Any) -> None:
    assert stored_text_hash(canonical_json(value)) == value_hash(value)


def test_the_same_value_spelt_differently_is_drift() -> None:
    value = {"b": 1, "a": [1, 2]}
    assert stored_text_hash(json.dumps(value, indent=2)) != value_hash(value)


def test_a_sweep_or_one_whole_scope() -> None:
    assert DriftRequest.model_validate({}).on_demand is False
    one = DriftRequest.model_validate({"service": "checkout", "environment": "production", "repair": True})
    assert one.on_demand and one.repair is True


@pytest.mark.parametrize(
    "event",
    [
        {"service": "checkout"},
        {"environment": "production"},
        {"service": "Checkout", "environment": "production"},
        {"service": "checkout", "environment": "prod uction"},
        {"service": "checkout", "environment": "production", "repair": "yes please"},
        {"detail-type": "Scheduled Event"},
        [],
    ],
)
def test_anything_else_is_refused(event: Any) -> None:
    with pytest.raises(ValidationError):
        DriftRequest.model_validate(event)
