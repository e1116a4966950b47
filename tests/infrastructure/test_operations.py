"""Operations: every dead-letter queue is encrypted, retained and alarmed; every function's
errors and the stream's iterator age are alarmed; the dashboard shows the pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from configpipe.metrics import ALL_METRICS, NAMESPACE, PIPELINE_METRICS, RELEASE_METRICS
from tests.infrastructure.conftest import rendered, resources

pytestmark = pytest.mark.infrastructure


def _alarms(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources(template_json, "AWS::CloudWatch::Alarm").values()]


def test_every_queue_is_an_encrypted_two_week_dlq_with_ssl_enforced(template_json: dict[str, Any]) -> None:
    queues = resources(template_json, "AWS::SQS::Queue")
    # 8 for the pipeline, 2 for rollouts, 2 for releases, 2 for the demo's queue consumer, 1 for drift,
    # 2 for the delivery ledger (its rule's DLQ and its async DLQ)
    assert len(queues) == 17
    for queue in queues.values():
        # SQS-managed, or (the two that may hold a team's change) the events key: test_security.py
        assert (
            queue["Properties"].get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue["Properties"]
        )
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    guarded = set()
    for policy in resources(template_json, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                guarded.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert guarded == set(queues)


def test_every_dead_letter_queue_has_an_alarm_at_one_message(template_json: dict[str, Any]) -> None:
    # every queue but the consumers' own subscriptions (tests/infrastructure/test_subscribers.py)
    queues = {
        logical_id
        for logical_id, queue in resources(template_json, "AWS::SQS::Queue").items()
        if "RedrivePolicy" not in queue["Properties"]
    }
    alarmed = set()
    for alarm in _alarms(template_json):
        if alarm["MetricName"] != "ApproximateNumberOfMessagesVisible":
            continue
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"], "a DLQ alarm must notify someone"
        alarmed.update(d["Value"]["Fn::GetAtt"][0] for d in alarm["Dimensions"] if d["Name"] == "QueueName")
    assert alarmed == queues


def test_every_function_has_an_error_alarm_and_the_materialiser_an_iterator_age_alarm(
    template_json: dict[str, Any],
) -> None:
    functions = resources(template_json, "AWS::Lambda::Function")
    by_metric: dict[str, set[str]] = {}
    for alarm in _alarms(template_json):
        for dimension in alarm.get("Dimensions", []):
            if dimension["Name"] == "FunctionName":
                by_metric.setdefault(alarm["MetricName"], set()).add(dimension["Value"]["Ref"])
    assert by_metric["Errors"] == set(functions)
    (materialiser,) = by_metric["IteratorAge"]
    assert functions[materialiser]["Properties"]["Handler"] == "configpipe.handlers.materialiser.handler"


def test_alarms_notify_an_encrypted_topic(template: Template, template_json: dict[str, Any]) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("AlarmTopicKey"), "Arn"]}},
    )
    (topic,) = resources(template_json, "AWS::SNS::Topic")
    for alarm in _alarms(template_json):
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_dashboard_shows_functions_dlqs_iterator_age_and_pipeline_metrics(
    template_json: dict[str, Any],
) -> None:
    (dashboard,) = resources(template_json, "AWS::CloudWatch::Dashboard").values()
    body = rendered(dashboard["Properties"]["DashboardBody"])
    for metric in (
        *PIPELINE_METRICS,
        "Invocations",
        "Errors",
        "Duration",
        "IteratorAge",
        "ApproximateNumberOfMessagesVisible",
    ):
        assert f'"{metric}"' in body, metric
    assert '"configpipe"' in body
    assert json.dumps("ChangesAccepted") in body


def _graph_widgets(template_json: dict[str, Any]) -> dict[str, list[Any]]:
    """Dashboard graph widgets: title → the metric arrays on its left axis."""
    (dashboard,) = resources(template_json, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(rendered(dashboard["Properties"]["DashboardBody"]))
    return {
        w["properties"]["title"]: w["properties"].get("metrics", [])
        for w in body["widgets"]
        if w["type"] == "metric"
    }


def test_every_metric_a_function_emits_is_on_the_dashboard(template_json: dict[str, Any]) -> None:
    # ALL_METRICS is exactly what the runtime emits (tests/unit/test_metric_names.py).
    widgets = _graph_widgets(template_json)
    on_dashboard = {
        (m[0], m[1]) for metrics in widgets.values() for m in metrics if isinstance(m[0], str) and len(m) > 1
    }
    assert {(NAMESPACE, name) for name in ALL_METRICS} <= on_dashboard


def test_the_dashboard_has_a_pipeline_row_and_a_release_row(template_json: dict[str, Any]) -> None:
    widgets = _graph_widgets(template_json)
    assert [m[1] for m in widgets["Pipeline outcomes"]] == list(PIPELINE_METRICS)
    assert [m[1] for m in widgets["Release outcomes"]] == list(RELEASE_METRICS)
