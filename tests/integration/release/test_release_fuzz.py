"""Property-based (issue 9): whatever detail a ``ReleaseRequested`` or ``ReleaseControl`` carries —
any JSON type in any field, any Unicode including lone surrogates, thousands of fields — the
release function returns a structured outcome, never raises, and what it announces or answers
about the input is bounded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configpipe.handlers import release as release_handler
from configpipe.release.bounds import MAX_ECHO_CHARS, MAX_MESSAGE_CHARS, MAX_REASONS
from configpipe.release.contracts import ReleaseReasonCode
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.integration.release.conftest import TEAM, Env, control, request

#: Every code point, surrogates included (hypothesis leaves category Cs out by default).
any_text = st.text(st.characters(codec=None, categories=None, exclude_categories=()), max_size=40)
long_text = st.text(st.characters(codec=None, exclude_categories=()), min_size=300, max_size=3000)

#: Values that broke the release function once, or nearly (issue 9), mixed into the search.
HOSTILE = [
    "²",
    "\uff11\uff12",
    "0",
    "007",
    "$LATEST",
    "9" * 5000,
    "Linear0.001PercentEvery1Minute",
    "Canary0.004Percent5Minutes",
    "Canary10Percent" + "1" * 5000 + "Minutes",
    "Linear33.333PercentEvery1Minute",
    "x\ud800y",
    "n" * 300_000,
]

json_values = st.recursive(
    st.sampled_from(HOSTILE)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
    | long_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)

REQUEST_FIELDS = [*request().keys(), "alarms", "preTrafficHook", "postTrafficHook", "hookTimeoutSeconds"]
CONTROL_FIELDS = list(control("pause").keys())


@st.composite
def mutated(draw: Any, base: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """A valid detail with some fields dropped or replaced by arbitrary JSON, maybe a few (or
    a few thousand) added."""
    detail = dict(base)
    for name in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
        if draw(st.booleans()):
            detail.pop(name, None)
        else:
            detail[name] = draw(json_values)
    if draw(st.booleans()):
        detail[draw(any_text)] = draw(json_values)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        many = draw(st.integers(min_value=100, max_value=3000))
        detail.update({f"extra-field-{i:06d}-" * 4: i for i in range(many)})
    return detail


details = st.one_of(
    st.dictionaries(any_text, json_values, max_size=6),
    mutated(request(releaseId="fuzz-1"), REQUEST_FIELDS),
    mutated(request(releaseId="fuzz-2", strategy="Linear10PercentEvery1Minute"), REQUEST_FIELDS),
    mutated(control("pause", release_id="fuzz-1"), CONTROL_FIELDS),
    mutated(control("abort", release_id="fuzz-2"), CONTROL_FIELDS),
)

OUTCOMES = {"accepted", "duplicate", "rejected", "applied", "reported"}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(detail=details, detail_type=st.sampled_from(["ReleaseRequested", "ReleaseControl"]))
@pytest.mark.long  # make test-long: 150 generated events
def test_any_detail_gets_a_structured_outcome_and_a_bounded_rejection(
    env: Env, detail: dict[str, Any], detail_type: str
) -> None:
    service = env.service()
    before = len(env.events("ReleaseRejected"))

    answer = release_handler.handler(
        eventbridge_event(detail, detail_type, TEAM, "evt-fuzz"),
        LambdaContext(),  # type: ignore[arg-type]
        service=service,
    )

    assert answer["outcome"] in OUTCOMES
    rejected = env.events("ReleaseRejected")[before:]
    if answer["outcome"] != "rejected":
        assert rejected == []
        return
    (event,) = rejected
    body = event["detail"]
    assert len(json.dumps(body)) < 64_000
    reasons = body["reasons"]
    assert 1 <= len(reasons) <= MAX_REASONS + 1
    for reason in reasons:
        assert ReleaseReasonCode(reason["code"])
        assert 0 < len(reason["message"]) <= MAX_MESSAGE_CHARS
        assert len(reason.get("field") or "") <= MAX_ECHO_CHARS
    for name in ("releaseId", "function", "alias", "targetVersion", "controlId"):
        assert len(body.get(name) or "") <= MAX_ECHO_CHARS
