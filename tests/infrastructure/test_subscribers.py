"""The registry's queue consumers (cdk.json declares ``checkout``'s ``worker``): a durable
encrypted queue with a DLQ, a rule with the service's subscription pattern, a backlog alarm,
and a read policy limited to the service's and the global rows and values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from configpipe.registry import SUBSCRIBER_MAX_RECEIVES, Registry
from tests.infrastructure.conftest import cdk_context, resources

pytestmark = pytest.mark.infrastructure

QUEUE = "configpipe-sub-checkout-worker"


def registry() -> Registry:
    return Registry.model_validate(cdk_context()["configpipe"]["registry"])


def the_queue(template_json: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    found = [
        (logical_id, q["Properties"])
        for logical_id, q in resources(template_json, "AWS::SQS::Queue").items()
        if q["Properties"].get("QueueName") == name
    ]
    assert len(found) == 1, f"expected one queue {name}"
    return found[0]


def test_each_consumer_gets_an_encrypted_queue_that_dead_letters_after_bounded_receives(template_json):
    _, queue = the_queue(template_json, QUEUE)
    dlq_id, dlq = the_queue(template_json, f"{QUEUE}-dlq")

    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": SUBSCRIBER_MAX_RECEIVES,
    }
    assert queue["VisibilityTimeout"] == 60


def test_the_rule_forwards_the_services_announcements_to_its_queue(template_json):
    queue_id, _ = the_queue(template_json, QUEUE)
    dlq_id, _ = the_queue(template_json, f"{QUEUE}-dlq")
    rules = [
        r["Properties"]
        for r in resources(template_json, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["EventPattern"] == registry().subscription_pattern("checkout")
    assert rule["EventPattern"]["detail"] == {"service": ["checkout", "global"]}
    assert "ConfigurationUpdated" in rule["EventPattern"]["detail-type"]
    assert "ConfigurationRolloutStepped" in rule["EventPattern"]["detail-type"]
    assert rule["Targets"][0]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


def test_the_queue_accepts_only_its_rule_and_tls(template_json):
    queue_id, _ = the_queue(template_json, QUEUE)
    statements = [
        s
        for p in resources(template_json, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    sends = [s for s in statements if s["Effect"] == "Allow"]
    assert len(sends) == 1 and sends[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in json.dumps(sends[0]["Condition"])
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_a_backlog_alarm_watches_the_oldest_message(template_json):
    queue_id, _ = the_queue(template_json, QUEUE)
    alarms = [
        a["Properties"]
        for a in resources(template_json, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
        and any(d["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]} for d in a["Properties"]["Dimensions"])
    ]
    assert len(alarms) == 1
    assert alarms[0]["Threshold"] == 15 * 60 and alarms[0]["AlarmActions"]


def test_the_read_policy_is_the_consumers_own_queue_rows_and_values(template_json):
    queue_id, _ = the_queue(template_json, QUEUE)
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if "worker consumer of checkout" in p["Properties"].get("Description", "")
    ]
    assert len(policies) == 1
    by_sid = {s["Sid"]: s for s in policies[0]}

    assert by_sid["ConsumeOwnQueue"]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert "sqs:SendMessage" not in by_sid["ConsumeOwnQueue"]["Action"]
    change_log = by_sid["CatchUpFromChangeLog"]
    assert sorted(change_log["Action"]) == ["dynamodb:GetItem", "dynamodb:Query"]
    assert change_log["Condition"] == {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": ["KEY#checkout#*", "SCOPE#checkout#*", "KEY#global#*", "SCOPE#global#*"]
        }
    }
    values = json.dumps(by_sid["ReadValues"]["Resource"]) + json.dumps(by_sid["ReadSecrets"]["Resource"])
    assert "/checkout/" in values and "/global/" in values and "payments" not in values
    kms = by_sid["DecryptThroughTheStoresOnly"]
    assert set(kms["Action"]) == {"kms:Decrypt", "kms:DescribeKey"}
    assert "kms:ViaService" in kms["Condition"]["StringEquals"]
    # nothing in it writes or creates
    actions = [
        a for s in policies[0] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not [
        a
        for a in actions
        if a.split(":")[1].startswith(("Put", "Create", "Delete", "Update")) and a != "sqs:DeleteMessage"
    ]
