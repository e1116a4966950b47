"""``configpipe promote`` (issue 14) needs KMS ReEncrypt for a secret: each team may re-encrypt
only ciphertexts of its own services, only onto the same key (so a ciphertext can never be moved
onto a key the caller could decrypt with), and still may not Decrypt directly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.conftest import rendered, resources

pytestmark = pytest.mark.infrastructure


def _statements(template_json: dict[str, Any], team: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in resources(template_json, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == f"configpipe-publisher-{team}"
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_a_team_re_encrypts_only_its_own_services_secrets_on_the_same_key(
    template_json: dict[str, Any],
) -> None:
    for team, scopes in (("checkout", ["checkout/*"]), ("platform", ["global/*"])):
        statements = _statements(template_json, team)
        (promote,) = [s for s in statements if s["Sid"] == "PromoteSecretsOfOwnServices"]
        assert sorted(promote["Action"]) == ["kms:ReEncryptFrom", "kms:ReEncryptTo"]
        assert "SecretsKey" in rendered(promote["Resource"])
        assert promote["Condition"] == {
            "StringLike": {"kms:EncryptionContext:configpipe:scope": scopes},
            "Bool": {"kms:ReEncryptOnSameKey": "true"},
        }
        # ciphertext only: no direct Decrypt (the DynamoDB-mediated one reads the table)
        direct = [
            s
            for s in statements
            if "kms:Decrypt" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            and "kms:ViaService" not in str(s.get("Condition", {}))
        ]
        assert direct == []
