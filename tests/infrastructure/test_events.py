"""Routing on the config bus: who may publish, what each rule matches, how failures land."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infrastructure.conftest import rendered, resources

pytestmark = pytest.mark.infrastructure


def test_bus_is_named_from_context(template: Template) -> None:
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "configpipe-config-bus"})


def test_change_rule_matches_team_sources_and_targets_the_validator(
    template: Template, template_json: dict[str, Any]
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "detail-type": ["ConfigurationChange"],
                "source": [{"prefix": "configpipe.team."}],
            },
            "Targets": [
                {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("^PipelineValidatorFunction"), "Arn"]}}
            ],
        },
    )


def test_updated_rule_matches_only_pipeline_announcements_and_targets_the_propagator(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "detail-type": [
                    "ConfigurationUpdated",
                    "ConfigurationRolloutStarted",
                    "ConfigurationRolloutStepped",
                    "ConfigurationRolloutPaused",
                    "ConfigurationRolloutResumed",
                    "ConfigurationRolloutCompleted",
                    "ConfigurationRolloutRolledBack",
                    "ConfigurationRolloutAborted",
                ],
                "source": ["configpipe.pipeline"],
            },
            "Targets": [
                {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("^PipelinePropagatorFunction"), "Arn"]}}
            ],
        },
    )


def test_every_rule_target_retries_for_a_day_then_dead_letters(template_json: dict[str, Any]) -> None:
    rules = resources(template_json, "AWS::Events::Rule")
    # configuration changes, announcements, release commands, the release reconcile tick,
    # rollout controls, the rollout tick, the demo's queue consumer (checkout's worker), the drift
    # reconcile's schedule, the services' acknowledgements (issue 14) and refused release
    # requests (config riding on them rolls back)
    assert len(rules) == 10
    queues = resources(template_json, "AWS::SQS::Queue")
    dlqs = []
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            if "ScheduleExpression" in rule["Properties"]:
                # A late tick is worthless (the next one comes a minute later); it still dead-letters.
                assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 300
            else:
                assert target["RetryPolicy"] == {
                    "MaximumEventAgeInSeconds": 86400,
                    "MaximumRetryAttempts": 185,
                }
            dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert dlq in queues
            dlqs.append((dlq, json.dumps(target["Arn"], sort_keys=True)))
    served: dict[str, set[str]] = {}
    for dlq, function in dlqs:
        served.setdefault(dlq, set()).add(function)
    assert all(len(functions) == 1 for functions in served.values()), "a DLQ serves one function's rules only"


def _bus_policy(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    (bus,) = resources(template_json, "AWS::Events::EventBus").values()
    statements: list[dict[str, Any]] = bus["Properties"]["Policy"]["Statement"]
    return statements


def test_teams_may_publish_only_team_sources(template_json: dict[str, Any]) -> None:
    allows = [s for s in _bus_policy(template_json) if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Action"] == "events:PutEvents"
    assert rendered(allows[0]["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::<AWS::AccountId>:root"
    assert rendered(allows[0]["Resource"]) == (
        "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/configpipe-config-bus"
    )
    assert allows[0]["Condition"] == {"ForAllValues:StringLike": {"events:source": ["configpipe.team.*"]}}
    assert resources(template_json, "AWS::Events::EventBusPolicy") == {}


def test_only_the_announcing_functions_may_publish_the_pipeline_source(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    denies = [
        s
        for s in _bus_policy(template_json)
        if s["Effect"] == "Deny"
        and "configpipe.pipeline" in str(s["Condition"].get("ForAnyValue:StringEquals"))
    ]
    assert len(denies) == 1  # (the team sources' denies: tests/infrastructure/test_security.py)
    deny = denies[0]
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"]["ForAnyValue:StringEquals"] == {"events:source": ["configpipe.pipeline"]}
    exempt = {rendered(arn) for arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    release_role = next(
        name for name in resources(template_json, "AWS::IAM::Role") if name.startswith("ReleasesManagerRole")
    )
    drift_role = next(
        name for name in resources(template_json, "AWS::IAM::Role") if name.startswith("DriftFunctionRole")
    )
    assert exempt == {
        f"<{ids['materialiser_role']}.Arn>",
        f"<{ids['propagator_role']}.Arn>",
        f"<{release_role}.Arn>",
        f"<{drift_role}.Arn>",  # issue 14: ConfigurationDriftDetected
    }


def test_archive_keeps_only_pipeline_events_for_thirty_days(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Archive",
        {"EventPattern": {"source": ["configpipe.pipeline"]}, "RetentionDays": 30},
    )
    template.resource_count_is("AWS::Events::Archive", 1)


def test_configured_publisher_accounts_replace_the_deploying_account() -> None:
    # Given a bus built on its own with two publishing accounts (no full synth needed)
    import aws_cdk as cdk

    from stacks.constructs.config_bus import ConfigBus

    stack = cdk.Stack(cdk.App(), "BusOnly")
    ConfigBus(stack, "ConfigBus", bus_name="b", publisher_accounts=["111111111111", "222222222222"])
    # Then only those accounts are allowed, still only for team sources
    (allow,) = [s for s in _bus_policy(Template.from_stack(stack).to_json()) if s["Effect"] == "Allow"]
    principals = sorted(rendered(p) for p in allow["Principal"]["AWS"])
    assert principals == [
        "arn:<AWS::Partition>:iam::111111111111:root",
        "arn:<AWS::Partition>:iam::222222222222:root",
    ]
    assert allow["Condition"] == {"ForAllValues:StringLike": {"events:source": ["configpipe.team.*"]}}


def test_rollout_controls_from_teams_and_a_minute_tick_reach_the_rollout_function(template: Template) -> None:
    target = [{"Arn": {"Fn::GetAtt": [Match.string_like_regexp("^RolloutsFunction"), "Arn"]}}]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "detail-type": ["ConfigurationRolloutControl"],
                "source": [{"prefix": "configpipe.team."}],
            },
            "Targets": Match.array_with([Match.object_like(target[0])]),
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"ScheduleExpression": "rate(1 minute)", "Targets": Match.array_with([Match.object_like(target[0])])},
    )


def test_only_the_pipelines_refusal_of_a_release_request_reaches_the_rollout_function(
    template_json: dict[str, Any],
) -> None:
    [rule] = [
        r
        for r in resources(template_json, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["ReleaseRejected"]
    ]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["configpipe.pipeline"],
        "detail-type": ["ReleaseRejected"],
        "detail": {"action": ["request"]},
    }
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("RolloutsFunction")
    assert "DeadLetterConfig" in target
