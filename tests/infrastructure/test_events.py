"""Routing on the config bus: who may publish, what each rule matches, how failures land."""

from __future__ import annotations

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
            "EventPattern": {"detail-type": ["ConfigurationUpdated"], "source": ["configpipe.pipeline"]},
            "Targets": [
                {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("^PipelinePropagatorFunction"), "Arn"]}}
            ],
        },
    )


def test_every_rule_target_retries_for_a_day_then_dead_letters(template_json: dict[str, Any]) -> None:
    rules = resources(template_json, "AWS::Events::Rule")
    assert len(rules) == 2
    queues = resources(template_json, "AWS::SQS::Queue")
    dlqs = []
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
            dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert dlq in queues
            dlqs.append(dlq)
    assert len(set(dlqs)) == len(dlqs), "each rule target has its own dead-letter queue"


def test_teams_may_publish_only_team_sources(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {
            "Statement": {
                "Effect": "Allow",
                "Action": "events:PutEvents",
                "Principal": {"AWS": Match.any_value()},
                "Condition": {"ForAllValues:StringLike": {"events:source": ["configpipe.team.*"]}},
            }
        },
    )


def test_only_materialiser_and_propagator_may_publish_the_pipeline_source(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    denies = [
        p["Properties"]["Statement"]
        for p in resources(template_json, "AWS::Events::EventBusPolicy").values()
        if p["Properties"]["Statement"]["Effect"] == "Deny"
    ]
    assert len(denies) == 1
    deny = denies[0]
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"]["ForAnyValue:StringEquals"] == {"events:source": ["configpipe.pipeline"]}
    exempt = {rendered(arn) for arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    assert exempt == {f"<{ids['materialiser_role']}.Arn>", f"<{ids['propagator_role']}.Arn>"}


def test_archive_keeps_only_pipeline_events_for_thirty_days(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Archive",
        {"EventPattern": {"source": ["configpipe.pipeline"]}, "RetentionDays": 30},
    )
    template.resource_count_is("AWS::Events::Archive", 1)
