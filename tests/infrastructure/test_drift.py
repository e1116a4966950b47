"""The drift reconcile (issue 14) in the synthesised stack: one function on an hourly schedule
(cdk.json ``drift``), exactly the materialiser's store access plus reads of the stores — never
GetSecretValue — an alarm on DriftDetected that notifies, the metrics on the dashboard, and the
operator allowed to invoke it; a bad ``drift`` setting stops synth."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from configpipe.metrics import DRIFT_METRICS
from stacks.settings import DriftSchedule, PipelineSettings, SettingsError
from tests.infrastructure.conftest import cdk_context, resources

pytestmark = pytest.mark.infrastructure

HANDLER = "configpipe.handlers.drift.handler"


def _function(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [found] = [
        (k, f)
        for k, f in resources(template_json, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return found


def _role_statements(template_json: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    found: list[dict[str, Any]] = []
    for policy in resources(template_json, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_the_function_runs_hourly_in_repair_mode_by_default(template_json: dict[str, Any]) -> None:
    logical_id, function = _function(template_json)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DRIFT_MODE"] == "repair"
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    [rule] = [
        r
        for r in resources(template_json, "AWS::Events::Rule").values()
        if any(logical_id in json.dumps(t["Arn"]) for t in r["Properties"].get("Targets", []))
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    [target] = rule["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {}  # a sweep of every registered scope
    assert "DeadLetterConfig" in target


def test_least_privilege_no_secret_values_read_and_pipeline_source_only(
    template_json: dict[str, Any],
) -> None:
    _, function = _function(template_json)
    statements = _role_statements(template_json, function)
    granted = set().union(*(_actions(s) for s in statements))
    assert "secretsmanager:GetSecretValue" not in granted
    assert not any(a.endswith("*") and a != "kms:GenerateDataKey*" for a in granted if ":" in a)
    by_action = {a: s for s in statements for a in _actions(s)}
    assert by_action["events:PutEvents"]["Condition"] == {
        "ForAllValues:StringEquals": {"events:source": ["configpipe.pipeline"]}
    }
    assert "parameter/config/*" in json.dumps(by_action["ssm:PutParameter"]["Resource"])
    assert "secret:configpipe/*" in json.dumps(
        by_action["secretsmanager:UpdateSecretVersionStage"]["Resource"]
    )
    assert not any(
        s["Resource"] == "*" for s in statements if _actions(s) & {"ssm:PutParameter", "kms:Decrypt"}
    )
    writes = {a for a in granted if a.split(":")[1].startswith(("Put", "Delete", "Create", "Update"))}
    assert writes == {
        "ssm:PutParameter",
        "ssm:DeleteParameter",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DeleteSecret",
        "events:PutEvents",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert not any(
        a.startswith("dynamodb:") and a not in {"dynamodb:GetItem", "dynamodb:Query"} for a in granted
    )


def test_drift_is_alarmed_notified_and_on_the_dashboard(template_json: dict[str, Any]) -> None:
    alarms = [
        a["Properties"]
        for a in resources(template_json, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "DriftDetected"
    ]
    assert len(alarms) == 1 and alarms[0]["Namespace"] == "configpipe" and alarms[0]["AlarmActions"]
    [dashboard] = resources(template_json, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "Drift reconcile" in body and all(name in body for name in DRIFT_METRICS)


def test_the_operator_may_invoke_the_drift_function(template_json: dict[str, Any]) -> None:
    logical_id, _ = _function(template_json)
    [operator] = [
        p
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == "configpipe-operator"
    ]
    invokes = [
        s
        for s in operator["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in _actions(s)
    ]
    assert any(logical_id in json.dumps(s["Resource"]) for s in invokes)


def _context(**drift: Any) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context()["configpipe"])
    context["drift"] = drift
    return context


def test_the_drift_setting_is_read_and_checked() -> None:
    assert PipelineSettings.from_context(_context()).drift == DriftSchedule("rate(1 hour)", "repair")
    assert PipelineSettings.from_context(_context(schedule="rate(15 minutes)", mode="report")).drift == (
        DriftSchedule("rate(15 minutes)", "report")
    )
    for bad, field in (
        ({"mode": "fix"}, "drift.mode"),
        ({"schedule": "hourly"}, "drift.schedule"),
        ({"every": "1h"}, "drift.every"),
    ):
        with pytest.raises(SettingsError) as refused:
            PipelineSettings.from_context(_context(**bad))
        assert refused.value.field == field
