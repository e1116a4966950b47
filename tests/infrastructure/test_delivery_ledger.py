"""Issue 14 in the template: the delivery ledger's table, function, rule, DLQs and alarm, and the
binding of each service's acknowledgements to its own handler role."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.conftest import (
    actions_of,
    rendered,
    resources,
    resources_of,
    role_of,
    statements_of_role,
    the_function,
)

pytestmark = pytest.mark.infrastructure

SERVICES = ("checkout", "payments", "search")


def _ledger_table(template_json: dict[str, Any]) -> str:
    (found,) = [
        logical_id
        for logical_id, r in resources(template_json, "AWS::DynamoDB::Table").items()
        if r["Metadata"]["aws:cdk:path"].startswith("ConfigPipe/Ledger/")
    ]
    return found


def test_the_ledger_is_its_own_table_without_a_stream_with_point_in_time_recovery(template_json):
    table = template_json["Resources"][_ledger_table(template_json)]["Properties"]
    assert "StreamSpecification" not in table  # no materialiser wakes up for an acknowledgement
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_ledger_function_may_only_update_items_of_the_ledger(template_json):
    _, function = the_function(template_json, "configpipe.handlers.ledger.handler")
    statements = statements_of_role(template_json, role_of(function))
    data = [
        s
        for s in statements
        if any(a.startswith(("dynamodb:", "kms:", "events:", "ssm:")) for a in actions_of(s))
    ]
    assert len(data) == 1
    assert actions_of(data[0]) == ["dynamodb:UpdateItem"]
    assert resources_of(data[0]) == [{"Fn::GetAtt": [_ledger_table(template_json), "Arn"]}]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DELIVERY_LEDGER_TABLE"] == {"Ref": _ledger_table(template_json)}


def test_acknowledgements_from_consumer_sources_reach_the_ledger_function_with_a_dlq(template_json):
    function_id, _ = the_function(template_json, "configpipe.handlers.ledger.handler")
    (rule,) = [
        r
        for r in resources(template_json, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["ConfigurationAcknowledged"]
    ]
    assert rule["Properties"]["EventPattern"]["source"] == [{"prefix": "configpipe.consumer."}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert "DeadLetterConfig" in target


@pytest.mark.parametrize("service", SERVICES)
def test_a_handler_acknowledges_only_as_itself_and_its_role_carries_the_tag_the_bus_checks(
    template_json, service
):
    (handler,) = [
        f
        for f in resources(template_json, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == f"{service}-config-update-handler"
    ]
    role_id = role_of(handler)
    tags = template_json["Resources"][role_id]["Properties"]["Tags"]
    assert {"Key": "configpipe-consumer", "Value": service} in tags
    (put,) = [s for s in statements_of_role(template_json, role_id) if "events:PutEvents" in actions_of(s)]
    assert put["Condition"]["ForAllValues:StringEquals"] == {
        "events:source": [f"configpipe.consumer.{service}"],
        "events:detail-type": ["ConfigurationAcknowledged"],
    }
    assert put["Condition"]["Null"] == {"events:source": "false"}
    assert handler["Properties"]["Environment"]["Variables"]["ACK_BUS_NAME"]


def test_the_bus_binds_every_services_consumer_source_to_its_tag(template_json):
    (bus,) = resources(template_json, "AWS::Events::EventBus").values()
    denies = {
        s["Condition"]["ForAnyValue:StringEquals"]["events:source"][0]: s
        for s in bus["Properties"]["Policy"]["Statement"]
        if s["Effect"] == "Deny"
        and "aws:PrincipalTag/configpipe-consumer" in s["Condition"].get("StringNotEquals", {})
    }
    assert sorted(denies) == [f"configpipe.consumer.{s}" for s in SERVICES]
    for service in SERVICES:
        deny = denies[f"configpipe.consumer.{service}"]
        assert deny["Principal"] == {"AWS": "*"} and deny["Action"] == "events:PutEvents"
        assert deny["Condition"]["StringNotEquals"] == {"aws:PrincipalTag/configpipe-consumer": service}


def test_a_refused_version_alarms_and_notifies(template_json):
    (alarm,) = [
        a
        for a in resources(template_json, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "AcksRefused"
    ]
    assert alarm["Properties"]["Namespace"] == "configpipe"
    assert alarm["Properties"]["Threshold"] == 1
    assert alarm["Properties"]["AlarmActions"]


def test_operators_and_teams_may_read_the_ledger_teams_only_their_services(template_json):
    policies = {
        p["Properties"]["ManagedPolicyName"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if "ManagedPolicyName" in p["Properties"]
    }
    (operator,) = [s for s in policies["configpipe-operator"] if s.get("Sid") == "ReadTheDeliveryLedger"]
    assert actions_of(operator) == ["dynamodb:Query"]
    (team,) = [s for s in policies["configpipe-publisher-checkout"] if s.get("Sid") == "ReadDeliveryLedger"]
    assert team["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["checkout#*", "global#*"]}
    }
    assert json.dumps(rendered(team["Resource"])).count("Ledger") == 1
