"""A beta alias must not be an alias another active release of the function shifts or maintains
(issue 16): both releases would repoint it and each restore it differently. Refused with
BETA_ALIAS_IN_USE, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from configpipe.release.contracts import ReleaseControl
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import FUNCTION, TEAM, Env, control, request


def _target(env: Env, name: str) -> AliasTarget:
    response = env.lam.get_alias(FunctionName=FUNCTION, Name=name)
    return AliasTarget.of(
        response["FunctionVersion"], (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    )


@pytest.fixture
def live_release(env: Env) -> Env:
    """rel-1 shifts ``live`` 1 → 2 and maintains ``live-candidate`` (the default beta alias);
    ``qa`` → 1 is another alias of the same function with no release."""
    env.lam.create_alias(FunctionName=FUNCTION, Name="qa", FunctionVersion="1")
    assert env.service().handle_request(request(), TEAM).outcome == "accepted"
    assert _target(env, "live-candidate") == AliasTarget.of("2")
    return env


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # the beta alias is another active release's beta alias
        ({"alias": "qa", "betaAlias": "live-candidate"}, "betaAlias"),
        # the beta alias is the alias another active release shifts
        ({"alias": "qa", "betaAlias": "live"}, "betaAlias"),
        # the alias is another active release's beta alias
        ({"alias": "live-candidate", "betaAlias": False}, "alias"),
    ],
)
def test_a_colliding_alias_is_refused_and_nothing_changes(
    live_release: Env, overrides: dict[str, Any], field: str
) -> None:
    env = live_release
    result = env.service().handle_request(request(releaseId="rel-2", targetVersion="4", **overrides), TEAM)
    assert result.outcome == "rejected"
    assert [(r.code, r.field) for r in result.reasons] == [("BETA_ALIAS_IN_USE", field)]
    assert "rel-1" in result.reasons[0].message
    # Nothing moved and no lock was taken for rel-2
    assert _target(env, "qa") == AliasTarget.of("1")
    assert _target(env, "live-candidate") == AliasTarget.of("2")
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    [rejected] = [e for e in env.events("ReleaseRejected") if e["detail"]["releaseId"] == "rel-2"]
    assert rejected["detail"]["reasons"][0]["code"] == "BETA_ALIAS_IN_USE"


def test_another_beta_alias_on_another_alias_is_accepted(live_release: Env) -> None:
    env = live_release
    result = env.service().handle_request(
        request(releaseId="rel-2", alias="qa", targetVersion="4", strategy="AllAtOnce"), TEAM
    )
    assert result.outcome == "accepted", result.reasons
    assert _target(env, "qa-candidate") == AliasTarget.of("4")


def test_once_the_other_release_ended_the_alias_may_be_used(live_release: Env) -> None:
    env = live_release
    service = env.service()
    service.control(ReleaseControl.model_validate(control("abort")), TEAM)
    result = service.handle_request(
        request(releaseId="rel-2", alias="qa", targetVersion="4", betaAlias="live-candidate"), TEAM
    )
    assert result.outcome == "accepted", result.reasons
