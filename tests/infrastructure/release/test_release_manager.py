"""The ReleaseManager construct, synthesised standalone in a test stack."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk.assertions import Match, Template

from configpipe.registry import Registry
from stacks.constructs import nag
from stacks.constructs.dead_letters import DeadLetterQueue
from stacks.constructs.observed_function import SharedCode
from stacks.release import ReleaseManager
from stacks.settings import PipelineSettings

pytestmark = pytest.mark.infrastructure

REGISTRY = Registry.model_validate(
    {
        "services": {
            "checkout": {
                "publishers": ["configpipe.team.checkout"],
                "functions": ["checkout-api", "checkout-smoke"],
            },
            "search": {"publishers": ["configpipe.team.search"]},
        }
    }
)


def build(registry: Registry = REGISTRY, *, with_nag: bool = False) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App()
    if with_nag:
        nag.attach_checks(app)
    stack = cdk.Stack(app, "ReleaseTest", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    bus = events.EventBus(stack, "Bus", event_bus_name="configpipe-config-bus")
    settings = PipelineSettings(registry=registry)
    ReleaseManager(
        stack, "Releases", bus=bus, settings=settings, shared=SharedCode(stack, "Code", settings=settings)
    )
    return app, stack


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(build()[1])


def statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


def rendered(value: Any) -> str:
    """An ARN with Fn::Join / Ref flattened to text, for readable assertions."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(rendered(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return sorted(rendered(v) for v in (value if isinstance(value, list) else [value]))


def test_alias_actions_are_granted_on_the_registered_functions_only(template: Template) -> None:
    shifting = [s for s in statements(template) if "lambda:UpdateAlias" in actions(s)]
    assert len(shifting) == 1
    assert sorted(actions(shifting[0])) == [
        "lambda:GetAlias",
        "lambda:GetFunctionConfiguration",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateAlias",
    ]
    expected = sorted(
        f"arn:<AWS::Partition>:lambda:eu-west-1:123456789012:function:{fn}{suffix}"
        for fn in ("checkout-api", "checkout-smoke")
        for suffix in ("", ":*")
    )
    assert resources(shifting[0]) == expected
    invoke = [s for s in statements(template) if "lambda:InvokeFunction" in actions(s)]
    assert len(invoke) == 1
    assert actions(invoke[0]) == ["lambda:InvokeFunction"]
    assert resources(invoke[0]) == expected
    # no lambda action anywhere on a wildcard function
    for s in statements(template):
        if any(a.startswith("lambda:") for a in actions(s)):
            assert all(":function:*" not in r and r != "*" for r in resources(s))


def test_no_lambda_statement_without_registered_functions() -> None:
    template = Template.from_stack(build(Registry.model_validate({"services": {"x": {"publishers": []}}}))[1])
    assert not [s for s in statements(template) if any(a.startswith("lambda:") for a in actions(s))]


def test_publishes_only_on_the_bus_and_only_as_the_pipeline(template: Template) -> None:
    put = [s for s in statements(template) if "events:PutEvents" in actions(s)]
    assert len(put) == 1
    assert put[0]["Condition"] == {"StringEquals": {"events:source": "configpipe.pipeline"}}
    assert resources(put[0]) == ["<Bus.Arn>"] or "Bus" in resources(put[0])[0]
    alarms = [s for s in statements(template) if "cloudwatch:DescribeAlarms" in actions(s)]
    assert resources(alarms[0]) == ["arn:<AWS::Partition>:cloudwatch:eu-west-1:123456789012:alarm:*"]


def test_release_table_has_pitr_encryption_and_the_indexes_the_store_queries(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "GlobalSecondaryIndexes": [
                        Match.object_like(
                            {
                                "IndexName": "queue",
                                "KeySchema": [
                                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                                ],
                            }
                        ),
                        Match.object_like(
                            {
                                "IndexName": "byAlias",
                                "KeySchema": [
                                    {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                                    {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                                ],
                            }
                        ),
                    ],
                }
            ),
        },
    )


def test_command_rule_takes_release_events_from_team_sources_with_retry_and_dlq(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": Match.any_value(),
            "EventPattern": {
                "source": [{"prefix": "configpipe.team."}],
                "detail-type": ["ReleaseRequested", "ReleaseControl"],
            },
            "Targets": [
                Match.object_like(
                    {
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                    }
                )
            ],
        },
    )


def test_reconcile_tick_every_minute(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"DeadLetterConfig": {"Arn": Match.any_value()}})],
        },
    )


def test_function_environment_timeout_and_async_failure_destination(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "configpipe.handlers.release.handler",
            "Runtime": "python3.12",
            "Timeout": 900,
            "TracingConfig": {"Mode": "Active"},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "RELEASE_TABLE": Match.any_value(),
                        "EVENT_BUS_NAME": Match.any_value(),
                        "RELEASE_REGISTRY": json.dumps(
                            {
                                "services": {
                                    "checkout": {
                                        "publishers": ["configpipe.team.checkout"],
                                        "functions": ["checkout-api", "checkout-smoke"],
                                    }
                                }
                            },
                            separators=(",", ":"),
                        ),
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumRetryAttempts": 2, "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}}},
    )


def test_both_dlqs_are_dead_letter_queues_that_the_stack_alarms_on() -> None:
    # The stack's Operations alarm on every DeadLetterQueue (see tests/infrastructure/test_operations.py).
    _, stack = build()
    manager = stack.node.find_child("Releases")
    assert isinstance(manager, ReleaseManager)
    assert isinstance(manager.delivery_dlq, DeadLetterQueue)
    assert isinstance(manager.failure_dlq, DeadLetterQueue)
    template = Template.from_stack(stack)
    assert len(template.find_resources("AWS::SQS::Queue")) == 2


def test_cdk_nag_has_no_unacknowledged_finding() -> None:
    app, _ = build(with_nag=True)
    app.synth()


def test_release_role_has_exactly_the_dynamodb_actions_the_store_uses(template: Template) -> None:
    # Given the release table
    (table_id,) = template.find_resources("AWS::DynamoDB::Table")
    # When the role's DynamoDB statements are collected by resource
    granted: dict[str, set[str]] = {}
    for statement in statements(template):
        dynamodb = {a for a in actions(statement) if a.startswith("dynamodb:")}
        if dynamodb:
            assert statement["Effect"] == "Allow"
            for resource in resources(statement):
                granted.setdefault(resource, set()).update(dynamodb)
    # Then ReleaseStore's calls, and nothing else (no Scan, BatchWriteItem, DescribeTable, ...):
    # GetItem / UpdateItem / Query, and Put / Delete as the parts of TransactWriteItems.
    assert granted == {
        f"<{table_id}.Arn>": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        },
        f"<{table_id}.Arn>/index/*": {"dynamodb:Query"},
    }


# --- issue 16: analysis reads and the beta alias ------------------------------------------


def test_analysis_reads_metric_statistics_and_nothing_else_unscoped(template: Template) -> None:
    unscoped = [a for s in statements(template) if resources(s) == ["*"] for a in actions(s)]
    # X-Ray's trace writes (every configpipe function) and the metric reads: nothing else on "*"
    assert sorted(unscoped) == [
        "cloudwatch:GetMetricStatistics",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]


def test_the_beta_alias_is_created_and_deleted_on_the_registered_functions_only(template: Template) -> None:
    beta = [s for s in statements(template) if "lambda:CreateAlias" in actions(s)]
    assert len(beta) == 1
    assert sorted(actions(beta[0])) == ["lambda:CreateAlias", "lambda:DeleteAlias"]
    assert resources(beta[0]) == sorted(
        f"arn:<AWS::Partition>:lambda:eu-west-1:123456789012:function:{fn}{suffix}"
        for fn in ("checkout-api", "checkout-smoke")
        for suffix in ("", ":*")
    )
    # never DeleteFunction: the release manager does not prune versions
    assert not [s for s in statements(template) if "lambda:DeleteFunction" in actions(s)]
