"""A release stopped by its own metrics on the local pipeline (issue 16): no alarm defined.

The candidate's per-version metrics (what Lambda publishes for alias traffic, dimension
``ExecutedVersion``) show ten times the baseline's error rate; at the end of the canary step the
release function judges the step, and the release rolls back exactly as on an alarm. The step is
a real minute (strategies count real minutes; only the reconcile tick is sped up)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, eventually
from tests.e2e.test_releases import ALIAS, SEARCH, _zip, alias, history, request_release

#: A release run through its analysis window (about a minute): make test-long.
pytestmark = [pytest.mark.e2e, pytest.mark.long]

FUNCTION = "search-api"


def _traffic(local: LocalStack, version: str, invocations: int, errors: int) -> None:
    dims = [
        {"Name": "FunctionName", "Value": FUNCTION},
        {"Name": "Resource", "Value": f"{FUNCTION}:{ALIAS}"},
        {"Name": "ExecutedVersion", "Value": version},
    ]
    now = datetime.now(UTC)
    local.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors},
        ],
    )


def _aliases(lam: Any) -> list[str]:
    return [a["Name"] for a in lam.list_aliases(FunctionName=FUNCTION)["Aliases"]]


def test_a_release_failing_its_analysis_rolls_back_without_any_alarm(local: LocalStack, unique: str) -> None:
    # Given search-api:live as it is now, and a new version to release
    lam = local.client("lambda")
    lam.update_function_code(FunctionName=FUNCTION, ZipFile=_zip(f"analysis {unique}"))
    target = lam.publish_version(FunctionName=FUNCTION, Description="e2e analysis")["Version"]
    before = alias(local, FUNCTION)
    baseline = before[0]
    # ... and no beta alias yet (a release completed earlier in this stack leaves its beta alias on
    # its target, and a rollback rightly restores a beta alias it found rather than removing it)
    beta = f"{ALIAS}-candidate"
    if beta in _aliases(lam):
        lam.delete_alias(FunctionName=FUNCTION, Name=beta)

    # When a one-minute canary with an error-rate gate (and no alarm) starts
    release_id = request_release(
        local,
        SEARCH,
        release_id=f"e2e-analysis-{unique}",
        function=FUNCTION,
        target_version=target,
        strategy="Canary10Percent1Minutes",
        analysis={"gates": [{"metric": "errorRate", "maxIncreasePercent": 50}], "minInvocations": 50},
    )
    eventually(
        lambda: alias(local, FUNCTION) == (baseline, {target: 0.1}), timeout=15, what="the canary weight"
    )
    # ... and during the step the candidate fails 10 % of its invocations, the baseline 1 %
    _traffic(local, target, invocations=100, errors=10)
    _traffic(local, baseline, invocations=900, errors=9)

    # Then at the end of the step the release rolls back, naming the gate and its figures
    rolled: list[dict[str, Any]] = eventually(
        lambda: local.bus.events("ReleaseRolledBack", releaseId=release_id),
        timeout=120,
        what=f"ReleaseRolledBack for {release_id}",
    )
    detail = rolled[0]["detail"]
    assert detail["code"] == "ANALYSIS_FAILED"
    assert detail["alarmsInAlarm"] == []
    assert detail["analysis"]["verdict"] == "fail"
    [gate] = detail["analysis"]["gates"]
    assert (gate["gate"], gate["candidate"], gate["baseline"], gate["limit"]) == ("errorRate", 10.0, 1.0, 1.5)
    # And the alias is exactly as it was; the beta alias the release created is gone
    assert alias(local, FUNCTION) == before
    assert (detail["restoredVersion"], detail["restoredWeights"]) == before
    # (the release put the beta alias back before recording its end: no waiting)
    assert beta not in _aliases(lam)
    assert history(local, release_id) == [
        ("ReleaseStarted", 0.0),
        ("ReleaseStepped", 10.0),
        ("ReleaseRolledBack", 0.0),
    ]
