"""Issue 19 on the local pipeline, over HTTP, through the ``configpipe`` CLI as a team runs it:
snapshot a service, change it, restore it; the restore's changes go through the deployed
validator and materialiser like any others, and what they materialise is tagged."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import LocalStack, as_json, eventually

pytestmark = pytest.mark.e2e

SEARCH = "configpipe.team.search"


def configpipe(local: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return local.configpipe(*args, source=SEARCH)


def test_snapshot_then_restore_through_the_cli(local: LocalStack, unique: str) -> None:
    a, b, c = f"snap-a-{unique}", f"snap-b-{unique}", f"snap-c-{unique}"
    local.put_change(SEARCH, service="search", environment="staging", key=a, value=1)
    local.put_change(SEARCH, service="search", environment="staging", key=b, value={"x": 2})
    eventually(lambda: local.parameter("search", "staging", b), what="b materialised")
    eventually(lambda: local.parameter("search", "staging", a), what="a materialised")

    label = f"before-{unique}"
    created = as_json(
        configpipe(local, "snapshot", "create", "search", "staging", "--label", label, "-o", "json")
    )
    assert created["keys"][a]["version"] == 1

    local.put_change(SEARCH, service="search", environment="staging", key=a, value=3)
    local.put_change(SEARCH, service="search", environment="staging", key=b, operation="delete")
    local.put_change(SEARCH, service="search", environment="staging", key=c, value=True)
    eventually(lambda: local.parameter("search", "staging", c), what="c materialised")
    eventually(lambda: local.parameter("search", "staging", a) == 3, what="a changed")
    eventually(lambda: local.parameter("search", "staging", b) is None, what="b deleted")

    diff = as_json(configpipe(local, "snapshot", "diff", "search", "staging", label, "-o", "json"))
    assert {r["key"]: r["status"] for r in diff["keys"] if r["key"] in (a, b, c)} == {
        a: "changed",
        b: "removed",
        c: "added",
    }

    restored = as_json(
        configpipe(
            local,
            "snapshot",
            "restore",
            "search",
            "staging",
            "--label",
            label,
            "-r",
            "e2e",
            "--timeout",
            "120",
            "-o",
            "json",
        )
    )
    ours = {ch["key"]: ch for ch in restored["changes"] if ch["key"] in (a, b, c)}
    assert {k: (ch["operation"], ch["status"]) for k, ch in ours.items()} == {
        a: ("rollback", "accepted"),
        b: ("rollback", "accepted"),
        c: ("delete", "accepted"),
    }

    eventually(lambda: local.parameter("search", "staging", a) == 1, what="a restored")
    eventually(lambda: local.parameter("search", "staging", b) == {"x": 2}, what="b restored")
    eventually(lambda: local.parameter("search", "staging", c) is None, what="c deleted")
    announced = eventually(
        lambda: (
            {
                e["detail"]["key"]
                for e in local.bus.events("ConfigurationUpdated", restoreId=restored["restoreId"])
            }
            >= {a, b, c}
            and local.bus.events("ConfigurationUpdated", restoreId=restored["restoreId"])
        ),
        what="the restore's announcements",
    )
    assert all(e["detail"]["restoreId"] == restored["restoreId"] for e in announced)

    tags = local.client("ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId=f"/config/search/staging/{a}"
    )
    assert {t["Key"]: t["Value"] for t in tags["TagList"]}.items() >= {
        "Service": "search",
        "Environment": "staging",
        "Owner": "team-search",
        "CostCenter": "CC-1003",
        "ManagedBy": "configpipe",
    }.items()
