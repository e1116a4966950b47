"""A change id re-used for another change, on the local pipeline: refused, changes nothing, and
is announced as ConfigurationRejected like every other refusal (docs/security.md, L)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LocalStack, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"


def test_a_reused_change_id_is_announced_as_rejected_and_the_first_change_stands(
    local: LocalStack, unique: str
) -> None:
    key = f"reuse-{unique}"
    change_id = f"reuse-{unique}"
    # Given checkout's change accepted and materialised
    local.put_change(CHECKOUT, changeId=change_id, service="checkout", key=key, value=1)
    eventually(lambda: local.parameter("checkout", "development", key) == 1 or None, what="first value")

    # When checkout sends another value under the same id
    local.put_change(CHECKOUT, changeId=change_id, service="checkout", key=key, value=2)

    # Then it is announced as rejected, with CHANGE_ID_REUSED and without the value
    rejected = eventually(
        lambda: local.bus.events("ConfigurationRejected", changeId=change_id), what="ConfigurationRejected"
    )
    detail = rejected[0]["detail"]
    assert [r["code"] for r in detail["reasons"]] == ["CHANGE_ID_REUSED"]
    assert (detail["source"], detail["key"]) == (CHECKOUT, key)
    assert "value" not in detail
    # And the first change stands: one version, the first value
    assert local.parameter("checkout", "development", key) == 1
    versions = [
        i for i in local.change_log_items(f"KEY#checkout#development#{key}") if i["sk"]["S"].startswith("V#")
    ]
    assert len(versions) == 1
