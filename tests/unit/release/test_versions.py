"""Version housekeeping's pure plan (issue 16)."""

from __future__ import annotations

import pytest

from configpipe.release.versions import LambdaVersions, plan_prune


def test_versions_are_ordered_as_numbers_not_text() -> None:
    decisions = plan_prune(["1", "2", "9", "10", "11"], {}, keep=2)

    assert [(d.version, d.action) for d in decisions] == [
        ("11", "keep"),
        ("10", "keep"),
        ("9", "delete"),
        ("2", "delete"),
        ("1", "delete"),
    ]


def test_a_referenced_version_is_kept_with_every_reason_and_latest_is_never_a_candidate() -> None:
    decisions = plan_prune(["$LATEST", "1", "2"], {"1": ["alias live", "alias beta"]}, keep=0)

    assert [(d.version, d.action, d.reason) for d in decisions] == [
        ("2", "delete", "no alias or release needs it; older than the newest 0"),
        ("1", "keep", "alias live; alias beta"),
    ]


@pytest.mark.parametrize("version", ["$LATEST", "live", ""])
def test_the_adapter_deletes_only_a_version_number(version: str) -> None:
    with pytest.raises(ValueError, match="only a published version number"):
        LambdaVersions(client=object()).delete("checkout-api", version)  # type: ignore[arg-type]
