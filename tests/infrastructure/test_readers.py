"""Issue 19 in the template: one reader policy per (service, environment) with a stack output,
snapshot writes confined to the team's own SNAPSHOT# partitions, and the materialiser reading
the registry for its tags."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.conftest import (
    actions_of,
    rendered,
    resources,
    role_of,
    statements_of_role,
    the_function,
)

pytestmark = pytest.mark.infrastructure


def _policy(template_json: dict[str, Any], name: str) -> tuple[str, list[dict[str, Any]]]:
    (found,) = [
        (logical_id, p["Properties"]["PolicyDocument"]["Statement"])
        for logical_id, p in resources(template_json, "AWS::IAM::ManagedPolicy").items()
        if p["Properties"].get("ManagedPolicyName") == name
    ]
    return found


def _sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    return next(s for s in statements if s["Sid"] == sid)


def _resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return [rendered(r) for r in (value if isinstance(value, list) else [value])]


def test_one_reader_policy_per_service_and_environment_it_runs_in(template_json: dict[str, Any]) -> None:
    names = sorted(
        name
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if (name := p["Properties"]["ManagedPolicyName"]).startswith("configpipe-reader-")
    )
    # search runs only in development and staging (cdk.json)
    assert names == sorted(
        [
            f"configpipe-reader-{s}-{e}"
            for s in ("checkout", "payments")
            for e in ("development", "staging", "production")
        ]
        + ["configpipe-reader-search-development", "configpipe-reader-search-staging"]
    )


def test_a_reader_reads_only_its_own_and_global_keys_of_one_environment(
    template_json: dict[str, Any],
) -> None:
    _, statements = _policy(template_json, "configpipe-reader-checkout-staging")

    parameters = _sid(statements, "ReadOwnParameters")
    assert sorted(actions_of(parameters)) == [
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:GetParametersByPath",
    ]
    assert sorted(r.split(":parameter", 1)[1] for r in _resources(parameters)) == [
        "/config/checkout/staging",
        "/config/checkout/staging.tenants/*",  # its tenants' values (issue 17)
        "/config/checkout/staging/*",
        "/config/global/staging",
        "/config/global/staging/*",
    ]
    secrets = _sid(statements, "ReadOwnSecrets")
    assert sorted(actions_of(secrets)) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert sorted(r.split(":secret:", 1)[1] for r in _resources(secrets)) == [
        "configpipe/checkout/staging.tenants/*",
        "configpipe/checkout/staging/*",
        "configpipe/global/staging/*",
    ]
    decrypt = _sid(statements, "DecryptOwnSecretsThroughSecretsManager")
    assert actions_of(decrypt) == ["kms:Decrypt"]
    assert "secretsmanager." in rendered(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
    contexts = [rendered(c) for c in decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"]]
    assert sorted(c.split(":secret:", 1)[1] for c in contexts) == [
        "configpipe/checkout/staging.tenants/*",
        "configpipe/checkout/staging/*",
        "configpipe/global/staging/*",
    ]
    # and nothing else: no write, no other service, no other environment
    everything = " ".join(r for s in statements for r in _resources(s))
    assert "production" not in everything and "payments" not in everything
    assert all(
        a.split(":")[1].startswith(("Get", "Describe", "Decrypt")) for s in statements for a in actions_of(s)
    )


def test_each_reader_policy_is_a_stack_output(template_json: dict[str, Any]) -> None:
    logical_id, _ = _policy(template_json, "configpipe-reader-checkout-production")
    outputs = template_json["Outputs"]

    assert outputs["CheckoutProductionReaderPolicyArn"]["Value"] == {"Ref": logical_id}
    assert "SearchProductionReaderPolicyArn" not in outputs


def test_a_team_writes_snapshots_only_of_its_own_services(template_json: dict[str, Any]) -> None:
    _, statements = _policy(template_json, "configpipe-publisher-checkout")
    snapshots = _sid(statements, "WriteOwnSnapshots")

    assert actions_of(snapshots) == ["dynamodb:PutItem"]
    assert snapshots["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SNAPSHOT#checkout#*"]}
    }
    # the only change-log write a publisher holds
    writes = [
        a
        for s in statements
        for a in actions_of(s)
        if a.startswith("dynamodb:") and "Get" not in a and a != "dynamodb:Query"
    ]
    assert writes == ["dynamodb:PutItem"]


def test_the_materialiser_reads_the_registry_for_its_tags(template_json: dict[str, Any]) -> None:
    _, fn = the_function(template_json, "configpipe.handlers.materialiser.handler")
    statements = statements_of_role(template_json, role_of(fn))
    reads = [s for s in statements if actions_of(s) == ["ssm:GetParameter"]]

    assert len(reads) == 1 and "Registry" in rendered(reads[0]["Resource"])
    tagging = [s for s in statements if "ssm:AddTagsToResource" in actions_of(s)]
    assert tagging and all("parameter/config/*" in r for s in tagging for r in _resources(s))
