"""Per-team publisher policies: a team publishes only as itself and encrypts secrets only
for its own services."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.conftest import rendered, resources

pytestmark = pytest.mark.infrastructure


def _policy(template_json: dict[str, Any], team: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == f"configpipe-publisher-{team}"
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    return next(s for s in statements if s["Sid"] == sid)


def test_one_policy_per_publishing_source(template_json: dict[str, Any]) -> None:
    names = sorted(
        name
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if (name := p["Properties"]["ManagedPolicyName"]).startswith("configpipe-publisher-")
    )
    assert names == [f"configpipe-publisher-{t}" for t in ("checkout", "payments", "platform", "search")]


def test_a_team_publishes_only_its_own_source_and_contract_types(template_json: dict[str, Any]) -> None:
    publish = _sid(_policy(template_json, "checkout"), "PublishAsOwnSource")

    assert publish["Action"] == "events:PutEvents"
    assert publish["Condition"]["StringEquals"] == {
        "events:source": "configpipe.team.checkout",
        "aws:PrincipalTag/configpipe-team": "checkout",
    }
    assert set(publish["Condition"]["ForAllValues:StringEquals"]["events:detail-type"]) == {
        "ConfigurationChange",
        "ConfigurationRolloutControl",
        "ReleaseRequested",
        "ReleaseControl",
    }
    assert "ConfigBus" in rendered(publish["Resource"])


def test_a_team_encrypts_secrets_only_for_its_own_services(template_json: dict[str, Any]) -> None:
    checkout = _sid(_policy(template_json, "checkout"), "EncryptSecretsForOwnServices")
    platform = _sid(_policy(template_json, "platform"), "EncryptSecretsForOwnServices")

    assert checkout["Action"] == "kms:Encrypt"
    scopes = checkout["Condition"]["StringLike"]["kms:EncryptionContext:configpipe:scope"]
    assert scopes == ["checkout/*"]
    assert platform["Condition"]["StringLike"]["kms:EncryptionContext:configpipe:scope"] == ["global/*"]


def test_publishers_cannot_write_the_tables(template_json: dict[str, Any]) -> None:
    for team in ("checkout", "platform"):
        actions = [
            a
            for s in _policy(template_json, team)
            # issue 19: the one write, PutItem confined to the team's SNAPSHOT# partitions by
            # dynamodb:LeadingKeys, is asserted in test_readers.py
            if s["Sid"] != "WriteOwnSnapshots"
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        assert not [
            a
            for a in actions
            if a.startswith("dynamodb:") and a not in ("dynamodb:GetItem", "dynamodb:Query")
        ]
        assert not [a for a in actions if a.startswith(("ssm:Put", "secretsmanager:", "lambda:"))]


def test_every_dlq_url_is_an_output(template_json: dict[str, Any]) -> None:
    queues = dead_letter_queues(template_json)
    urls = {
        o["Value"]["Ref"]
        for name, o in template_json["Outputs"].items()
        if name.endswith("DlqUrl") or name.endswith("DLQUrl")
    }
    assert urls == set(queues)


def dead_letter_queues(template_json: dict[str, Any]) -> dict[str, Any]:
    """Every queue but the queue consumers' subscriptions (which dead-letter, so have a redrive
    policy; tests/infrastructure/test_subscribers.py)."""
    return {
        k: q
        for k, q in resources(template_json, "AWS::SQS::Queue").items()
        if "RedrivePolicy" not in q["Properties"]
    }
