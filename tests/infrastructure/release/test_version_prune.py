"""The scheduled version prune (issue 16): off by default — no function, no schedule, no
lambda:DeleteFunction anywhere; on for a registered function — exactly scoped, cdk-nag and
cfn-lint clean."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.settings import PipelineSettings, SettingsError
from tests.infrastructure.conftest import cdk_context, resources, synth_app

pytestmark = pytest.mark.infrastructure

HANDLER = "configpipe.handlers.version_prune.handler"


def _statements(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template_json, "AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    for policy in resources(template_json, "AWS::IAM::ManagedPolicy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_off_by_default_no_prune_function_no_schedule_no_delete(template_json: dict[str, Any]) -> None:
    # Given cdk.json as shipped (no versionPrune)
    handlers = [
        f["Properties"].get("Handler") for f in resources(template_json, "AWS::Lambda::Function").values()
    ]
    assert HANDLER not in handlers
    assert not any(
        "lambda:DeleteFunction" in _actions(s) or "lambda:*" in _actions(s)
        for s in _statements(template_json)
    )
    rule_inputs = [
        t.get("Input", "")
        for rule in resources(template_json, "AWS::Events::Rule").values()
        for t in rule["Properties"].get("Targets", [])
    ]
    assert not any('"function"' in i for i in rule_inputs)


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The whole app with the prune on for one registered function, synthesised with cdk-nag
    attached (an unacknowledged finding fails the synth)."""
    context = copy.deepcopy(cdk_context())
    context["configpipe"]["versionPrune"] = {"checkout-api": {"keep": 3, "schedule": "rate(12 hours)"}}
    outdir = tmp_path_factory.mktemp("prune-synth")
    synth_app(str(outdir), with_nag=True, context=context).synth()
    template_file = outdir / "ConfigPipe.template.json"
    return json.loads(template_file.read_text()), template_file


@pytest.mark.long  # make test-long: a second synthesis, with pruning on
def test_on_deletes_only_qualified_versions_of_the_listed_function(
    enabled: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = enabled
    deletes = [s for s in _statements(template_json) if "lambda:DeleteFunction" in _actions(s)]
    # Exactly one statement, DeleteFunction alone, on checkout-api's qualified ARNs only
    assert len(deletes) == 1
    assert _actions(deletes[0]) == ["lambda:DeleteFunction"]
    assert deletes[0]["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":lambda:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":function:checkout-api:*",
            ],
        ]
    }, "qualified ARNs (versions) of checkout-api only, never the function itself"


@pytest.mark.long  # make test-long: a second synthesis, with pruning on
def test_on_lists_and_queries_exactly(enabled: tuple[dict[str, Any], Path]) -> None:
    template = Template.from_json(enabled[0])
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": ["lambda:ListVersionsByFunction", "lambda:ListAliases"],
                                "Resource": {"Fn::Join": ["", Match.array_with([":function:checkout-api"])]},
                            }
                        ),
                        Match.object_like(
                            {
                                "Action": "dynamodb:Query",
                                "Resource": {"Fn::Join": ["", Match.array_with(["/index/byAlias"])]},
                            }
                        ),
                    ]
                )
            }
        },
    )


@pytest.mark.long  # make test-long: a second synthesis, with pruning on
def test_on_one_schedule_per_function_with_its_name_as_input(enabled: tuple[dict[str, Any], Path]) -> None:
    template_json, _ = enabled
    prune_fn = [
        k
        for k, f in resources(template_json, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == HANDLER
    ]
    assert len(prune_fn) == 1
    env = resources(template_json, "AWS::Lambda::Function")[prune_fn[0]]["Properties"]["Environment"][
        "Variables"
    ]
    assert json.loads(env["PRUNE_FUNCTIONS"]) == {"checkout-api": 3}
    schedules = [
        rule["Properties"]
        for rule in resources(template_json, "AWS::Events::Rule").values()
        if any(
            t["Arn"] == {"Fn::GetAtt": [prune_fn[0], "Arn"]} for t in rule["Properties"].get("Targets", [])
        )
    ]
    assert [s["ScheduleExpression"] for s in schedules] == ["rate(12 hours)"]
    (target,) = schedules[0]["Targets"]
    assert json.loads(target["Input"]) == {"function": "checkout-api"}
    assert "DeadLetterConfig" in target
    # Its failures are alarmed: an Errors alarm on the function
    alarms = resources(template_json, "AWS::CloudWatch::Alarm").values()
    assert any(
        a["Properties"].get("MetricName") == "Errors"
        and {"Name": "FunctionName", "Value": {"Ref": prune_fn[0]}} in a["Properties"].get("Dimensions", [])
        for a in alarms
    )


@pytest.mark.long  # make test-long: a second synthesis, with pruning on
def test_on_the_prune_function_reserves_its_concurrency(enabled: tuple[dict[str, Any], Path]) -> None:
    # Like every function (docs/security.md, L): `reservedConcurrency.versionPrune`, default 1
    template_json, _ = enabled
    [prune] = [
        f
        for f in resources(template_json, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == HANDLER
    ]
    assert prune["Properties"]["ReservedConcurrentExecutions"] == 1


@pytest.mark.long  # make test-long: a second synthesis, with pruning on
def test_on_cfn_lint_clean(enabled: tuple[dict[str, Any], Path]) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", "--ignore-checks", "W3005", "--", str(enabled[1])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"unknown-fn": {"keep": 3}}, "versionPrune.unknown-fn"),
        ({"checkout-api": {"keep": 0}}, "versionPrune.checkout-api.keep"),
        ({"checkout-api": {"keep": True}}, "versionPrune.checkout-api.keep"),
        ({"checkout-api": {"keep": 2, "schedule": "daily"}}, "versionPrune.checkout-api.schedule"),
        ({"checkout-api": {"keep": 2, "every": "day"}}, "versionPrune.checkout-api.every"),
        (["checkout-api"], "versionPrune"),
    ],
)
def test_a_bad_setting_stops_synth_naming_the_field(setting: Any, field: str) -> None:
    raw = copy.deepcopy(cdk_context()["configpipe"])
    raw["versionPrune"] = setting
    with pytest.raises(SettingsError) as error:
        PipelineSettings.from_context(raw)
    assert error.value.field == field
