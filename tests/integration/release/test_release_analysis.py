"""Analysis gates (issue 16) on moto: each step judged by the versions' own metrics.

Metrics are put with the dimensions Lambda uses for alias traffic (``FunctionName``,
``Resource`` = ``function:alias``, ``ExecutedVersion``), at times inside the step's window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import ALIAS, FUNCTION, START, TEAM, Env, control, request

ANALYSIS: dict[str, Any] = {
    "gates": [
        {"metric": "errorRate", "maxIncreasePercent": 50},
        {"metric": "durationAverage", "maxIncreasePercent": 20},
    ],
    "minInvocations": 100,
    "inconclusiveLimitMinutes": 10,
}


def traffic(
    env: Env,
    version: str,
    minute: float,
    invocations: int,
    errors: int = 0,
    duration_ms: float = 100.0,
) -> None:
    """One minute's worth of what Lambda would publish for ``version`` behind the alias."""
    dims = [
        {"Name": "FunctionName", "Value": FUNCTION},
        {"Name": "Resource", "Value": f"{FUNCTION}:{ALIAS}"},
        {"Name": "ExecutedVersion", "Value": version},
    ]
    at = START + timedelta(minutes=minute)
    env.cw.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors},
            {
                "MetricName": "Duration",
                "Dimensions": dims,
                "Timestamp": at,
                "StatisticValues": {
                    "SampleCount": invocations,
                    "Sum": duration_ms * invocations,
                    "Minimum": duration_ms,
                    "Maximum": duration_ms,
                },
            },
        ],
    )


def healthy_split(env: Env, minutes: range, candidate_errors: int = 0) -> None:
    for minute in minutes:
        traffic(env, "2", minute + 0.5, invocations=40, errors=candidate_errors)
        traffic(env, "1", minute + 0.5, invocations=360, errors=2)


def test_a_passing_step_continues_and_its_verdict_and_figures_are_announced(env: Env) -> None:
    service = env.service()
    # Given a canary with analysis, and per-version metrics as good on the candidate as the baseline
    service.handle_request(request(analysis=ANALYSIS), TEAM)
    healthy_split(env, range(5))

    # When the step ends
    env.clock.at(5)
    service.reconcile_all()

    # Then the analysis passed and the canary went to 100 %, on CodeDeploy's timeline
    assert env.alias() == AliasTarget.of("2")
    state, history = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    stepped = env.events("ReleaseStepped")
    assert "analysis" not in stepped[0]["detail"]  # the first shift leaves no split step
    verdict = stepped[1]["detail"]["analysis"]
    assert verdict["verdict"] == "pass"
    assert verdict["candidateVersion"] == "2"
    assert verdict["baselineVersion"] == "1"
    assert verdict["candidateInvocations"] == 200
    assert verdict["baselineInvocations"] == 1800
    assert verdict["stepPercent"] == 10
    gates = {g["gate"]: g for g in verdict["gates"]}
    # candidate 0 errors / 200; baseline 10 / 1800 = 0.5556 %, limit +50 %
    assert gates["errorRate"]["candidate"] == 0
    assert gates["errorRate"]["baseline"] == round(100 * 10 / 1800, 6)
    assert gates["errorRate"]["limit"] == round(round(100 * 10 / 1800, 6) * 1.5, 6)
    assert gates["durationAverage"]["candidate"] == 100
    assert gates["durationAverage"]["limit"] == 120
    # the verdict is in the history exactly as announced
    assert [h.detail for h in history if h.detail_type == "ReleaseStepped"][1]["analysis"] == verdict


def test_a_failing_step_rolls_back_to_the_exact_previous_alias_state_without_any_alarm(env: Env) -> None:
    # Given the alias also routed 5 % to version 4 before the release (restored exactly on rollback)
    env.set_alias("1", {"4": 0.05})
    service = env.service()
    service.handle_request(request(analysis=ANALYSIS), TEAM)
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    # And the candidate fails 10 % of its invocations where the baseline fails 0.56 %
    healthy_split(env, range(5), candidate_errors=4)

    env.clock.at(4.99)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})  # not judged before the step ends

    env.clock.at(5)
    service.reconcile_all()

    assert env.alias() == AliasTarget.of("1", {"4": 0.05})
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "ROLLED_BACK"
    [rolled_back] = env.events("ReleaseRolledBack")
    detail = rolled_back["detail"]
    assert detail["code"] == "ANALYSIS_FAILED"
    assert detail["restoredVersion"] == "1"
    assert detail["restoredWeights"] == {"4": 0.05}
    assert detail["alarmsInAlarm"] == []
    assert detail["analysis"]["verdict"] == "fail"
    gates = {g["gate"]: g for g in detail["analysis"]["gates"]}
    assert gates["errorRate"]["verdict"] == "fail"
    assert gates["errorRate"]["candidate"] == 10.0
    assert gates["durationAverage"]["verdict"] == "pass"
    assert "errorRate" in detail["message"]
    assert env.events("ReleaseStepped")[-1]["detail"]["percent"] == 10  # never went further


def test_too_little_traffic_holds_the_step_then_pauses_for_a_person(env: Env) -> None:
    service = env.service()
    service.handle_request(request(analysis=ANALYSIS), TEAM)
    # Given the candidate served only 50 invocations in its step (100 needed)
    for minute in range(5):
        traffic(env, "2", minute + 0.5, invocations=10)
        traffic(env, "1", minute + 0.5, invocations=90)

    # When the step ends, the step is held (not shifted) and the hold is announced
    env.clock.at(5)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    [held] = env.events("ReleaseAnalysisHeld")
    assert held["detail"]["analysis"]["verdict"] == "inconclusive"
    assert held["detail"]["analysis"]["candidateInvocations"] == 50
    assert held["detail"]["holdLimitAt"].startswith("2026-03-02T09:15:00")

    # And it stays held, analysed again each minute, until the limit
    for minute in (6, 10, 14.9):
        env.clock.at(minute)
        service.reconcile_all()
        assert env.alias() == AliasTarget.of("1", {"2": 0.1}), minute
    assert env.events("ReleasePaused") == []

    # Then past the limit it pauses for a person, with the verdict that stopped it
    env.clock.at(15)
    state = service.reconcile("rel-1")
    assert state is not None
    assert state.paused
    [paused] = env.events("ReleasePaused")
    assert paused["detail"]["author"] == "configpipe"
    assert paused["detail"]["analysis"]["verdict"] == "inconclusive"
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})

    # A person's resume lets the step go on without its analysis
    env.clock.at(20)
    state = service.control(_control("resume"), TEAM).state
    assert state is not None
    assert state.status == "COMPLETED"
    assert env.alias() == AliasTarget.of("2")


def _control(action: str) -> Any:
    from configpipe.release.contracts import ReleaseControl

    return ReleaseControl.model_validate(control(action))


def test_a_held_step_moves_on_once_enough_traffic_arrives_and_hold_time_does_not_count(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery2Minutes", analysis=ANALYSIS), TEAM)
    # Minutes 0-2: 10 % step with too little traffic
    traffic(env, "2", 0.5, invocations=10)
    traffic(env, "1", 0.5, invocations=90)
    env.clock.at(2)
    service.reconcile_all()
    assert env.alias().percent_on("2") == 10
    assert len(env.events("ReleaseAnalysisHeld")) == 1

    # Traffic arrives during the hold; at minute 4 the step is analysed again over its whole window
    traffic(env, "2", 3.5, invocations=200)
    traffic(env, "1", 3.5, invocations=1800, errors=2)
    env.clock.at(4)
    service.reconcile_all()

    # Then it passes and the release moves to the next step (20 %), announcing the verdict
    assert env.alias().percent_on("2") == 20
    last = env.events("ReleaseStepped")[-1]["detail"]
    assert last["analysis"]["verdict"] == "pass"
    assert last["analysis"]["candidateInvocations"] == 210
    assert last["analysis"]["windowStart"].startswith("2026-03-02T09:00:00")
    # And the 2 held minutes do not count: without the hold 30 % was due at minute 4, now at 6
    env.clock.at(5.99)
    service.reconcile_all()
    assert env.alias().percent_on("2") == 20
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.held_seconds == 120
    assert state.elapsed_seconds(env.clock.now) == pytest.approx(5.99 * 60 - 120)


def test_a_custom_metric_with_a_version_dimension_can_fail_a_step(env: Env) -> None:
    gate = {
        "metric": "custom",
        "name": "payment failures",
        "namespace": "Checkout",
        "metricName": "PaymentFailures",
        "statistic": "Sum",
        "dimensions": {"Service": "checkout"},
        "versionDimension": "FunctionVersion",
        "maxValue": 2,
    }
    service = env.service()
    service.handle_request(request(analysis={"gates": [gate], "minInvocations": 100}), TEAM)
    healthy_split(env, range(5))
    for version, failures in (("2", 3), ("1", 0)):
        env.cw.put_metric_data(
            Namespace="Checkout",
            MetricData=[
                {
                    "MetricName": "PaymentFailures",
                    "Dimensions": [
                        {"Name": "Service", "Value": "checkout"},
                        {"Name": "FunctionVersion", "Value": version},
                    ],
                    "Timestamp": START + timedelta(minutes=2),
                    "Value": failures,
                }
            ],
        )

    env.clock.at(5)
    service.reconcile_all()

    assert env.alias() == AliasTarget.of("1")
    [rolled_back] = env.events("ReleaseRolledBack")
    [result] = rolled_back["detail"]["analysis"]["gates"]
    assert result == {
        "gate": "payment failures",
        "verdict": "fail",
        "candidate": 3.0,
        "baseline": 0.0,
        "limit": 2.0,
        "message": "candidate 3 > limit 2 (baseline 0)",
    }


def test_analysis_on_a_strategy_that_never_splits_traffic_is_rejected(env: Env) -> None:
    result = env.service().handle_request(request(strategy="BlueGreen", analysis=ANALYSIS), TEAM)

    assert result.outcome == "rejected"
    assert [r.code for r in result.reasons] == ["ANALYSIS_NOT_APPLICABLE"]
    assert env.table_items() == []


def test_a_gate_needs_exactly_one_threshold(env: Env) -> None:
    bad = {"gates": [{"metric": "errorRate", "maxValue": 1, "maxIncreasePercent": 10}]}
    result = env.service().handle_request(request(analysis=bad), TEAM)

    assert result.outcome == "rejected"
    assert [r.code for r in result.reasons] == ["INVALID_FIELD"]
    assert "exactly one of maxValue and maxIncreasePercent" in result.reasons[0].message
    assert env.table_items() == []


def test_metrics_that_cannot_be_read_hold_the_step_and_never_pass_it(env: Env) -> None:
    import boto3
    from botocore.stub import Stubber

    from configpipe.bus import ConfigBus
    from configpipe.release.alias import LambdaAliases
    from configpipe.release.health import AlarmHealth
    from configpipe.release.service import ReleaseService
    from configpipe.release.store import ReleaseStore
    from configpipe.release.version_metrics import VersionMetrics
    from tests.integration.release.conftest import BUS, REGION, REGISTRY, TABLE

    # Given CloudWatch refusing every GetMetricStatistics (e.g. the role lost the permission)
    denied = boto3.client("cloudwatch", region_name=REGION)
    stubber = Stubber(denied)
    for _ in range(3):
        stubber.add_client_error("get_metric_statistics", "AccessDenied", "not authorised", 403)
    stubber.activate()
    service = ReleaseService(
        store=ReleaseStore(TABLE, env.ddb),
        aliases=LambdaAliases(env.lam),
        health=AlarmHealth(env.cw),
        hooks=env.hooks,
        bus=ConfigBus(BUS, boto3.client("events", region_name=REGION)),
        registry=REGISTRY,
        clock=env.clock,
        version_metrics=VersionMetrics(denied),
    )
    service.handle_request(request(analysis={**ANALYSIS, "inconclusiveLimitMinutes": 1}), TEAM)
    healthy_split(env, range(5), candidate_errors=40)  # would fail, if anyone could read it

    # When the step ends, it is held (inconclusive), not passed and not failed
    env.clock.at(5)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    [held] = env.events("ReleaseAnalysisHeld")
    gates = held["detail"]["analysis"]["gates"]
    assert {g["verdict"] for g in gates} == {"inconclusive"}
    assert all("metrics unreadable" in g["message"] and "AccessDenied" in g["message"] for g in gates)

    # And past the limit the release pauses for a person
    env.clock.at(6)
    state = service.reconcile("rel-1")
    assert state is not None
    assert state.paused
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
