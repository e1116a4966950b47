"""The change log table and the registry parameter: durable, encrypted, as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from configpipe.registry import Registry
from tests.infrastructure.conftest import cdk_context, resources

pytestmark = pytest.mark.infrastructure


def _change_log(template_json: dict[str, Any]) -> dict[str, Any]:
    tables = [
        t
        for t in resources(template_json, "AWS::DynamoDB::Table").values()
        if any(i["IndexName"] == "byScope" for i in t["Properties"].get("GlobalSecondaryIndexes", []))
    ]
    assert len(tables) == 1
    return tables[0]


def test_change_log_is_recoverable_streamed_and_encrypted_with_the_customer_key(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^KeysSecretsKey"), "Arn"]},
            },
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "byScope",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    # sparse: only rollouts in progress carry rolloutActive (the rollout tick)
                    "IndexName": "activeRollouts",
                    "KeySchema": [
                        {"AttributeName": "rolloutActive", "KeyType": "HASH"},
                        {"AttributeName": "pk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
        },
    )


def test_change_log_outlives_the_stack_when_data_is_retained(template_json: dict[str, Any]) -> None:
    table = _change_log(template_json)
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


def test_secrets_key_rotates_and_hash_key_is_hmac(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {"EnableKeyRotation": True, "Description": Match.string_like_regexp("encrypts secret values")},
    )
    template.has_resource_properties(
        "AWS::KMS::Key", {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}
    )


def test_demo_applied_table_is_durable_and_keyed_as_the_handler_writes(template: Template) -> None:
    # sample_service.app.AppliedVersions writes pk = the applying service, sk = "<env>#<key>"
    # (tooling/configpipe_tools/harness/aws.py provisions the same shape for the in-process tests).
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_registry_parameter_round_trips_through_the_registry_model(template_json: dict[str, Any]) -> None:
    parameters = [
        p["Properties"]
        for p in resources(template_json, "AWS::SSM::Parameter").values()
        if p["Properties"].get("Name") == "/configpipe/registry"
    ]
    assert len(parameters) == 1
    stored = Registry.model_validate_json(parameters[0]["Value"])
    assert stored == Registry.model_validate(cdk_context()["configpipe"]["registry"])
    assert parameters[0]["Tier"] == "Standard"
    # The demo registry exercises the features the pipeline relies on.
    assert stored.schema_for("checkout", "max_items") == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert stored.affected_services("global", "production", "feature.x") == ["checkout", "payments"]
    assert stored.affected_services("global", "production", "other.x") == ["checkout"]
    assert json.loads(parameters[0]["Value"])["global"]["publishers"] == ["configpipe.team.platform"]


def test_change_log_is_deleted_with_the_stack_when_data_is_not_retained() -> None:
    # Given a change log built on its own with retainData false (no full synth needed)
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms

    from stacks.constructs.change_log import ChangeLog

    stack = cdk.Stack(cdk.App(), "ChangeLogOnly")
    ChangeLog(stack, "ChangeLog", key=kms.Key(stack, "Key", enable_key_rotation=True), retain_data=False)
    (table,) = resources(Template.from_stack(stack).to_json(), "AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    # PITR and the stream do not depend on retention.
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
