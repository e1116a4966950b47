"""The beta alias (issue 16): testers reach the target version directly while a release runs."""

from __future__ import annotations

from configpipe.release.contracts import ReleaseControl
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import FUNCTION, TEAM, Env, control, request


def beta(env: Env, name: str = "live-candidate") -> AliasTarget | None:
    try:
        response = env.lam.get_alias(FunctionName=FUNCTION, Name=name)
    except env.lam.exceptions.ResourceNotFoundException:
        return None
    return AliasTarget.of(
        response["FunctionVersion"], (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    )


def test_the_beta_alias_points_at_the_target_from_the_start_and_stays_on_it_after_completion(
    env: Env,
) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)

    # During the 10 % step testers reach version 2 through live-candidate, all of it
    assert beta(env) == AliasTarget.of("2")
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    [started] = env.events("ReleaseStarted")
    assert started["detail"]["betaAlias"] == "live-candidate"

    env.clock.at(5)
    service.reconcile_all()

    # After completion it is left pointing at the released version (documented)
    assert env.alias() == AliasTarget.of("2")
    assert beta(env) == AliasTarget.of("2")
    [completed] = env.events("ReleaseCompleted")
    assert completed["detail"]["betaAlias"] == "live-candidate"
    assert completed["detail"]["betaAliasVersion"] == "2"


def test_a_rollback_removes_a_beta_alias_the_release_created(env: Env) -> None:
    env.alarm("checkout-errors")
    service = env.service()
    service.handle_request(request(alarms=["checkout-errors"]), TEAM)
    assert beta(env) == AliasTarget.of("2")

    env.clock.at(2)
    env.alarm("checkout-errors", "ALARM")
    service.reconcile_all()

    assert env.alias() == AliasTarget.of("1")
    assert beta(env) is None
    [rolled_back] = env.events("ReleaseRolledBack")
    assert rolled_back["detail"]["betaAlias"] == "live-candidate"
    assert "betaAliasVersion" not in rolled_back["detail"]


def test_an_abort_restores_a_beta_alias_that_existed_exactly(env: Env) -> None:
    # Given testers' alias already pointed at version 1 with 30 % on version 4
    env.lam.create_alias(
        FunctionName=FUNCTION,
        Name="testers",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"4": 0.3}},
    )
    service = env.service()
    service.handle_request(request(betaAlias="testers"), TEAM)
    assert beta(env, "testers") == AliasTarget.of("2")
    assert beta(env) is None  # the default name is not used when one is given

    env.clock.at(1)
    service.control(ReleaseControl.model_validate(control("abort")), TEAM)

    assert env.alias() == AliasTarget.of("1")
    assert beta(env, "testers") == AliasTarget.of("1", {"4": 0.3})
    [aborted] = env.events("ReleaseAborted")
    assert aborted["detail"]["betaAliasVersion"] == "1"


def test_a_concurrent_alias_change_leaves_the_main_alias_but_restores_the_beta_alias(env: Env) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)
    env.set_alias("4")  # somebody else takes the alias over

    env.clock.at(1)
    service.reconcile_all()

    assert env.alias() == AliasTarget.of("4")
    assert beta(env) is None


def test_no_beta_alias_when_switched_off(env: Env) -> None:
    service = env.service()
    service.handle_request(request(betaAlias=False, strategy="AllAtOnce"), TEAM)

    assert env.alias() == AliasTarget.of("2")
    assert beta(env) is None
    assert [a["Name"] for a in env.lam.list_aliases(FunctionName=FUNCTION)["Aliases"]] == ["live"]
    assert "betaAlias" not in env.events("ReleaseCompleted")[0]["detail"]


def test_a_beta_alias_named_like_the_released_alias_is_refused(env: Env) -> None:
    result = env.service().handle_request(request(betaAlias="live"), TEAM)

    assert result.outcome == "rejected"
    assert "betaAlias must differ from alias" in result.reasons[0].message
    assert beta(env) is None
