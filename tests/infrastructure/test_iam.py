"""Least privilege: each function's role holds exact actions on exact ARNs."""

from __future__ import annotations

import re
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

VALIDATOR = "configpipe.handlers.validator.handler"
MATERIALISER = "configpipe.handlers.materialiser.handler"
PROPAGATOR = "configpipe.handlers.propagator.handler"
SAMPLE = "sample_service.app.handler"

#: Read-only verbs (and X-Ray's trace upload, which has no resource type) may use "*".
_READ_ONLY = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)[A-Za-z]*$|^xray:")


def _allowed(template_json: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    _, fn = the_function(template_json, handler)
    return [s for s in statements_of_role(template_json, role_of(fn)) if s["Effect"] == "Allow"]


def _all_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in actions_of(s)}


def test_no_iam_policy_grants_a_write_action_on_every_resource(template_json: dict[str, Any]) -> None:
    offenders = []
    policies = [
        p["Properties"]["PolicyDocument"]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for p in resources(template_json, kind).values()
    ]
    for role in resources(template_json, "AWS::IAM::Role").values():
        policies.extend(p["PolicyDocument"] for p in role["Properties"].get("Policies", []))
    assert policies, "the template has no IAM policies at all"
    for document in policies:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow" or "*" not in resources_of(statement):
                continue
            offenders += [a for a in actions_of(statement) if not _READ_ONLY.match(a)]
    assert offenders == []


def test_no_role_uses_aws_managed_policies_and_each_function_has_its_own(
    template_json: dict[str, Any],
) -> None:
    for role in resources(template_json, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    functions = resources(template_json, "AWS::Lambda::Function").values()
    roles = [role_of(fn) for fn in functions]
    assert len(roles) == len(set(roles)) == 11  # + the drift reconcile and the delivery ledger (issue 14)


def test_validator_writes_only_the_change_log(template_json: dict[str, Any], ids: dict[str, str]) -> None:
    statements = _allowed(template_json, VALIDATOR)
    actions = _all_actions(statements)
    for forbidden in (
        "events:PutEvents",
        "ssm:PutParameter",
        "lambda:InvokeFunction",
        "secretsmanager:CreateSecret",
    ):
        assert forbidden not in actions
    # The one wildcard: CDK's SqsDestination grant (kms:ReEncrypt*, kms:GenerateDataKey*) so Lambda
    # can park a failed change in the validator's async DLQ, which is under the events key.
    wildcards = [s for s in statements if any(a.endswith("*") for a in actions_of(s))]
    assert [rendered(r) for s in wildcards for r in resources_of(s)] == [
        f"<{_events_key(template_json)}.Arn>"
    ]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in actions_of(s))]
    assert {a for s in dynamodb for a in actions_of(s)} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    for statement in dynamodb:
        assert [rendered(r) for r in resources_of(statement)] == [f"<{ids['change_log_table']}.Arn>"]


def test_validator_uses_kms_for_secrets_and_the_hmac_key_only(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    statements = _allowed(template_json, VALIDATOR)
    by_action: dict[str, list[str]] = {}
    for s in statements:
        for a in actions_of(s):
            by_action.setdefault(a, []).extend(rendered(r) for r in resources_of(s))
    assert by_action["kms:GenerateMac"] == [f"<{ids['hash_key']}.Arn>"]
    # The events key only for parking a failed change in the validator's async DLQ (M3).
    expected = sorted([f"<{ids['secrets_key']}.Arn>", f"<{_events_key(template_json)}.Arn>"])
    assert sorted(by_action["kms:Encrypt"]) == sorted(by_action["kms:Decrypt"]) == expected
    assert by_action["ssm:GetParameter"] == [
        f"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter<{ids['registry_parameter']}>"
    ]


def test_materialiser_writes_parameters_only_under_config(
    template_json: dict[str, Any], ids: dict[str, str]
) -> None:
    statements = _allowed(template_json, MATERIALISER)
    writes = [s for s in statements if "ssm:PutParameter" in actions_of(s)]
    assert len(writes) == 1
    assert set(actions_of(writes[0])) == {"ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource"}
    assert [rendered(r) for r in resources_of(writes[0])] == [
        "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/config/*"
    ]
    # Reads only to rebuild a tenant's bundle from its tree (configpipe/tenant_bundle.py).
    reads = [s for s in statements if "ssm:GetParametersByPath" in actions_of(s)]
    assert [rendered(r) for s in reads for r in resources_of(s)] == [
        "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/config/*"
    ]
    secrets = [s for s in statements if "secretsmanager:CreateSecret" in actions_of(s)]
    # every Secrets Manager call the materialiser's SecretStore paths make (a rollout of a secret
    # moves the CANDIDATE stage: without UpdateSecretVersionStage it fails in a real account)
    assert {a for s in secrets for a in actions_of(s)} >= {
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:RestoreSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:TagResource",
        "secretsmanager:UpdateSecretVersionStage",
    }
    assert [rendered(r) for s in secrets for r in resources_of(s)] == [
        "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:configpipe/*"
    ]
    publish = [s for s in statements if "events:PutEvents" in actions_of(s)]
    assert [rendered(r) for s in publish for r in resources_of(s)] == [f"<{ids['bus']}.Arn>"]


def test_materialiser_uses_the_key_through_secrets_manager_only_for_data_keys(
    template_json: dict[str, Any],
) -> None:
    statements = _allowed(template_json, MATERIALISER)
    data_keys = [s for s in statements if "kms:GenerateDataKey" in actions_of(s)]
    assert len(data_keys) == 1
    via = data_keys[0]["Condition"]["StringEquals"]["kms:ViaService"]
    assert rendered(via) == "secretsmanager.<AWS::Region>.amazonaws.com"


def test_propagator_invokes_exactly_the_registered_handlers(template_json: dict[str, Any]) -> None:
    statements = _allowed(template_json, PROPAGATOR)
    invoke = [s for s in statements if "lambda:InvokeFunction" in actions_of(s)]
    assert sorted(rendered(r) for s in invoke for r in resources_of(s)) == [
        f"arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:{service}-config-update-handler"
        for service in ("checkout", "payments", "search")
    ]
    actions = _all_actions(statements)
    assert "ssm:PutParameter" not in actions
    assert "dynamodb:PutItem" not in actions


def test_each_service_handler_reads_only_its_own_and_global_config(template_json: dict[str, Any]) -> None:
    from tests.infrastructure.conftest import function_by_handler

    handlers = function_by_handler(template_json, SAMPLE)
    assert len(handlers) == 3
    for _, fn in handlers:
        service = fn["Properties"]["Environment"]["Variables"]["SERVICE_NAME"]
        statements = [s for s in statements_of_role(template_json, role_of(fn)) if s["Effect"] == "Allow"]
        reads = {
            rendered(r) for s in statements if "ssm:GetParameter" in actions_of(s) for r in resources_of(s)
        }
        prefix = "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/config/"
        assert reads == {f"{prefix}{s}{tail}" for s in (service, "global") for tail in ("", "/*")}
        secrets = {
            rendered(r)
            for s in statements
            if "secretsmanager:GetSecretValue" in actions_of(s)
            for r in resources_of(s)
        }
        secret_prefix = (
            "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:configpipe/"
        )
        assert secrets == {f"{secret_prefix}{service}/*", f"{secret_prefix}global/*"}


def test_each_function_writes_only_its_own_log_group(template_json: dict[str, Any]) -> None:
    for _, fn in resources(template_json, "AWS::Lambda::Function").items():
        log_group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        statements = statements_of_role(template_json, role_of(fn))
        log_writes = [s for s in statements if "logs:PutLogEvents" in actions_of(s)]
        assert [rendered(r) for s in log_writes for r in resources_of(s)] == [f"<{log_group}.Arn>"]


def test_the_rollout_function_writes_only_the_change_log_and_reads_alarms_and_the_registry(
    template_json: dict[str, Any],
) -> None:
    _, fn = the_function(template_json, "configpipe.handlers.rollout.handler")
    statements = statements_of_role(template_json, role_of(fn))
    actions = {a for s in statements if s["Effect"] == "Allow" for a in actions_of(s)}

    assert {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:Query",
    } <= actions
    assert "cloudwatch:DescribeAlarms" in actions
    # it never publishes, materialises or invokes: the stream and the materialiser do that
    assert not {
        a for a in actions if a.startswith(("events:", "ssm:Put", "secretsmanager:", "lambda:Invoke"))
    }
    query = next(s for s in statements if "dynamodb:Query" in actions_of(s))
    assert [rendered(r).rsplit("/index/", 1)[1] for r in resources_of(query)] == ["activeRollouts"]


def _events_key(template_json: dict[str, Any]) -> str:
    (key,) = [
        logical_id
        for logical_id, r in template_json["Resources"].items()
        if r.get("Metadata", {}).get("aws:cdk:path") == "ConfigPipe/Keys/EventsKey/Resource"
    ]
    return key
