"""Releases on the local pipeline, over HTTP, as a release engineer drives them in AWS.

The release targets are ``up``'s demo fixtures (``configpipe_tools.local.fixtures``): stand-ins for
the registry's ``checkout-api``, ``payments-api`` and ``search-api``, each with versions 1 and 2
and ``live`` → 1. Each test uses its own function, so the tests do not depend on each other's
order. The session's pipeline fires the reconcile tick every 2 s (``--schedule-speedup``), so
an alarm is acted on within seconds.

moto never changes an alias's ``RevisionId`` and echoes ``RoutingConfig:
{"AdditionalVersionWeights": {}}`` where Lambda omits it, so "the same alias" is compared as
(FunctionVersion, AdditionalVersionWeights).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from configpipe.release.contracts import (
    ControlAction,
    ReleaseControl,
    ReleaseDetailType,
    ReleaseRequested,
)
from tests.e2e.conftest import LocalStack, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"
PAYMENTS = "configpipe.team.payments"
SEARCH = "configpipe.team.search"
ALIAS = "live"
#: a request/control is acted on at once, an alarm within one tick (2 s); the margin is for a loaded
#: machine (a deadline is for something stuck, not slow)
RELEASE_DEADLINE = 60.0


def publish(local: LocalStack, source: str, detail_type: ReleaseDetailType, detail: dict[str, Any]) -> None:
    response = local.client("events").put_events(
        Entries=[
            {
                "EventBusName": local.bus_name,
                "Source": source,
                "DetailType": detail_type.value,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0, response


def request_release(local: LocalStack, source: str, **fields: Any) -> str:
    fields.setdefault("alias", ALIAS)
    fields.setdefault("author", "e2e")
    fields.setdefault("reason", "end-to-end release")
    request = ReleaseRequested(**fields)
    publish(local, source, ReleaseDetailType.RELEASE_REQUESTED, request.to_detail())
    return request.release_id


def control(local: LocalStack, source: str, release_id: str, action: ControlAction) -> None:
    detail = ReleaseControl(
        release_id=release_id,
        control_id=f"{release_id}-{action.value}",
        action=action,
        author="e2e",
        reason=f"e2e {action.value}",
    ).to_detail()
    publish(local, source, ReleaseDetailType.RELEASE_CONTROL, detail)


def alias(local: LocalStack, function: str) -> tuple[str, dict[str, float]]:
    """(FunctionVersion, AdditionalVersionWeights) from Lambda's GetAlias in the emulator."""
    response = local.client("lambda").get_alias(FunctionName=function, Name=ALIAS)
    weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return response["FunctionVersion"], {k: float(v) for k, v in weights.items()}


def alias_becomes(
    local: LocalStack, function: str, expected: tuple[str, dict[str, float]], what: str
) -> tuple[str, dict[str, float]]:
    return eventually(
        lambda: (lambda seen: seen if seen == expected else None)(alias(local, function)),
        timeout=RELEASE_DEADLINE,
        what=f"{function}:{ALIAS} {what} {expected}",
    )


def announced(local: LocalStack, detail_type: str, release_id: str) -> list[dict[str, Any]]:
    return eventually(
        lambda: local.bus.events(detail_type, releaseId=release_id),
        timeout=RELEASE_DEADLINE,
        what=f"{detail_type} for {release_id}",
    )


def history(local: LocalStack, release_id: str) -> list[tuple[str, float]]:
    """The release's announcements as a subscriber saw them, in ``seq`` order."""
    events = [
        e
        for e in local.bus.events(releaseId=release_id)
        if e["source"] == "configpipe.pipeline" and "seq" in e["detail"]
    ]
    return [
        (e["detail-type"], e["detail"]["percent"]) for e in sorted(events, key=lambda e: e["detail"]["seq"])
    ]


def test_a_canary_shifts_the_alias_weight_and_completes_on_promote(local: LocalStack, unique: str) -> None:
    # Given checkout-api:live serving version 1 only
    assert alias(local, "checkout-api") == ("1", {})

    # When the checkout team starts a canary to version 2
    release_id = request_release(
        local,
        CHECKOUT,
        release_id=f"e2e-canary-{unique}",
        function="checkout-api",
        target_version="2",
        strategy="Canary10Percent5Minutes",
    )

    # Then 10 % of the alias goes to version 2, through the alias's routing config
    started = announced(local, "ReleaseStarted", release_id)[0]["detail"]
    assert started["previousVersion"] == "1"
    assert started["schedule"] == [[0, 10.0], [5, 100.0]]
    alias_becomes(local, "checkout-api", ("1", {"2": 0.1}), "at the canary weight")
    stepped = announced(local, "ReleaseStepped", release_id)
    assert [e["detail"]["percent"] for e in stepped] == [10.0]

    # When the team promotes it (without waiting the 5 minutes)
    control(local, CHECKOUT, release_id, ControlAction.PROMOTE)

    # Then the alias points at version 2 with no routing, and the release completed
    alias_becomes(local, "checkout-api", ("2", {}), "on the target")
    completed = announced(local, "ReleaseCompleted", release_id)[0]["detail"]
    assert completed["status"] == "COMPLETED"
    assert completed["percent"] == 100.0
    promoted = [
        e for e in local.bus.events("ReleaseStepped", releaseId=release_id) if e["detail"]["percent"] == 100
    ]
    assert promoted[0]["detail"]["cause"] == "promoted"
    assert history(local, release_id) == [
        ("ReleaseStarted", 0.0),
        ("ReleaseStepped", 10.0),
        ("ReleaseStepped", 100.0),
        ("ReleaseCompleted", 100.0),
    ]


def test_an_alarm_rolls_the_release_back_and_restores_the_alias_exactly(
    local: LocalStack, unique: str
) -> None:
    # Given payments-api:live on version 1 with 5 % already routed to a version 3, so that "exactly"
    # covers the routing config and not only the version
    lam = local.client("lambda")
    lam.update_function_code(FunctionName="payments-api", ZipFile=_zip(f"v3 {unique}"))
    third = lam.publish_version(FunctionName="payments-api", Description="e2e v3")["Version"]
    lam.update_alias(
        FunctionName="payments-api",
        Name=ALIAS,
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {third: 0.05}},
    )
    before = alias(local, "payments-api")
    assert before == ("1", {third: 0.05})
    # ... and a CloudWatch alarm on its errors, not firing
    alarm = f"payments-api-errors-{unique}"
    cloudwatch = local.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "payments-api"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )

    # When a linear release to version 2 watching that alarm takes its first step
    release_id = request_release(
        local,
        PAYMENTS,
        release_id=f"e2e-alarm-{unique}",
        function="payments-api",
        target_version="2",
        strategy="Linear10PercentEvery1Minute",
        alarms=[alarm],
    )
    alias_becomes(local, "payments-api", ("1", {"2": 0.1}), "at the first step")
    # ... and the alarm goes off; nobody sends anything: the reconcile tick must notice
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: errors on v2")

    # Then the release is rolled back, and the alias is exactly as it was, third version included
    rolled = announced(local, "ReleaseRolledBack", release_id)[0]["detail"]
    assert rolled["code"] == "ALARM"
    assert rolled["alarmsInAlarm"] == [alarm]
    assert rolled["status"] == "ROLLED_BACK"
    assert (rolled["restoredVersion"], rolled["restoredWeights"]) == before
    assert alias(local, "payments-api") == before
    assert history(local, release_id) == [
        ("ReleaseStarted", 0.0),
        ("ReleaseStepped", 10.0),
        ("ReleaseRolledBack", 0.0),
    ]
    assert not local.bus.events("ReleaseCompleted", releaseId=release_id)


@pytest.mark.parametrize(
    ("source", "fields", "code"),
    [
        pytest.param(
            SEARCH,
            {"target_version": "1", "strategy": "Canary10Percent5Minutes"},
            "TARGET_IS_CURRENT",
            id="target-is-current",
        ),
        pytest.param(
            SEARCH,
            {"target_version": "2", "strategy": "Canary10PercentSometimes"},
            "UNKNOWN_STRATEGY",
            id="unknown-strategy",
        ),
        pytest.param(
            PAYMENTS,
            {"target_version": "2", "strategy": "AllAtOnce"},
            "SOURCE_NOT_AUTHORIZED",
            id="another-teams-function",
        ),
    ],
)
def test_a_rejected_request_is_announced_with_its_code_and_leaves_the_alias_untouched(
    local: LocalStack, unique: str, source: str, fields: dict[str, Any], code: str
) -> None:
    # Given search-api:live serving version 1 only
    before = alias(local, "search-api")
    assert before == ("1", {})

    # When a request breaks a rule
    release_id = request_release(
        local, source, release_id=f"e2e-rejected-{code.lower()}-{unique}", function="search-api", **fields
    )

    # Then it is rejected with its code, before anything moved or was written
    rejected = announced(local, "ReleaseRejected", release_id)[0]
    assert rejected["source"] == "configpipe.pipeline"
    assert rejected["detail"]["action"] == "request"
    assert [r["code"] for r in rejected["detail"]["reasons"]] == [code]
    assert rejected["detail"]["source"] == source
    assert alias(local, "search-api") == before
    items = local.client("dynamodb").scan(TableName=local.outputs["ReleaseTableName"], ConsistentRead=True)
    assert not [i for i in items["Items"] if release_id in json.dumps(i)]
    assert history(local, release_id) == []  # no lifecycle announcement, only the rejection


def _zip(marker: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", f"def handler(event, context):\n    return {marker!r}\n")
    return buffer.getvalue()
