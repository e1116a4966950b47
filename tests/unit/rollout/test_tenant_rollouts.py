"""A tenant's own value rolling out (issue 17, item 7) on the change log (moto): started by the
validator's one transaction in the tenant's partition, moved by the tick, bound to a release,
rejected releases rolling it back, a rollback of the tenant's first value writing a tombstone
— while the service's value goes on as before."""

from __future__ import annotations

import json
from typing import Any

from configpipe.changelog import ChangeLog, RolloutScope
from configpipe.handlers import rollout as rollout_handler
from configpipe_tools.harness.events import change
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.unit.rollout.test_rollout_handler import TICK
from tests.unit.rollout.test_rollout_service import KEY, submit

ACME = (*KEY, "acme")
RELEASE = {"releaseId": "rel-1", "function": "checkout-api", "targetVersion": "7"}


def acme(value: Any, change_id: str, **extra: Any) -> dict[str, Any]:
    return change(value=value, change_id=change_id, tenant="acme", **extra)


def test_a_tenants_rollout_starts_in_the_tenants_partition(write_path, log: ChangeLog):
    assert submit(write_path, change(value=10, change_id="svc-1")).status == "accepted"
    assert submit(write_path, acme(100, "acme-1")).status == "accepted"

    outcome = submit(
        write_path,
        acme(
            150, "acme-r", rollout={"strategy": "Canary10Percent5Minutes", "alarms": ["e"], "targets": ["u"]}
        ),
    )

    assert (outcome.status, outcome.version) == ("accepted", 2), outcome.reasons
    rollout = log.rollout(*ACME)
    assert rollout is not None
    assert (rollout.tenant, rollout.stable_version, rollout.candidate_version) == ("acme", 1, 2)
    assert (rollout.alarms, rollout.targets, rollout.weight) == (["e"], ["u"], 10.0)
    pointer = log.current(*ACME)
    assert (pointer.rollout_id, pointer.stable_version) == ("acme-r", 1)  # type: ignore[union-attr]
    assert log.rollout(*KEY) is None
    assert log.active_rollouts() == [RolloutScope(*ACME)]
    # ROLLOUT_IN_PROGRESS is the tenant's: the service's value (and another tenant) still change
    assert submit(write_path, acme(1, "acme-x")).codes == ["ROLLOUT_IN_PROGRESS"]
    assert submit(write_path, change(value=11, change_id="svc-2")).status == "accepted"
    assert submit(write_path, change(value=1, change_id="g-1", tenant="globex")).status == "accepted"


def test_the_tick_moves_a_tenants_rollout_beside_the_services(write_path, service, log, clock):
    submit(write_path, change(value=10, change_id="svc-1"))
    submit(write_path, change(value=20, change_id="svc-r", rollout={"strategy": "Canary10Percent5Minutes"}))
    submit(write_path, acme(150, "acme-r", rollout={"strategy": "Linear50PercentEvery1Minute"}))
    clock.advance(60)

    result = rollout_handler.handler(TICK, LambdaContext(), service=service)

    assert result == {"reconciled": 2, "moved": 1}
    assert log.rollout(*ACME).weight == 100.0  # type: ignore[union-attr]
    assert log.rollout(*KEY).weight == 10.0  # type: ignore[union-attr]
    clock.advance(60)
    rollout_handler.handler(TICK, LambdaContext(), service=service)
    assert log.rollout(*ACME).status == "COMPLETED"  # type: ignore[union-attr]
    assert log.current(*ACME).rollout_id is None  # type: ignore[union-attr]
    assert log.rollout(*KEY).status == "ROLLING_OUT"  # type: ignore[union-attr]


def test_a_tenants_first_value_rolled_back_becomes_a_tombstone(write_path, service, log):
    submit(write_path, change(value=10, change_id="svc-1"))
    submit(write_path, acme(150, "acme-r", rollout={"strategy": "Canary10Percent5Minutes"}))
    assert log.tenant_overrides(*KEY) == ["acme"]  # the candidate's marker

    aborted = service.control(
        {
            "id": "e-1",
            "source": "configpipe.team.checkout",
            "detail-type": "ConfigurationRolloutControl",
            "detail": {
                "controlId": "c-1",
                "service": "checkout",
                "environment": "production",
                "key": "max_items",
                "tenant": "acme",
                "action": "abort",
                "author": "bob@example.com",
                "reason": "wrong",
            },
        }
    )

    assert aborted.outcome == "accepted"
    restored = log.current_record(*ACME)
    assert restored is not None
    assert (restored.version, restored.operation, restored.deleted, restored.tenant) == (
        2,
        "rollback",
        True,
        "acme",
    )
    assert log.tenant_overrides(*KEY) == []  # acme reads the service's value again
    assert json.loads(log.current_record(*KEY).value_json or "") == 10  # type: ignore[union-attr]


def test_a_tenants_rollout_rides_on_a_release_and_rolls_back_when_it_is_rejected(
    write_path, following, log, releases
):
    submit(write_path, acme(100, "acme-1"))
    assert submit(write_path, acme(150, "acme-rel", rollout={"release": RELEASE})).status == "accepted"
    assert log.rollout(*ACME).release == RELEASE  # type: ignore[union-attr]

    rolled_back = following.release_rejected("rel-1", ["ALARM_ACTIVE"])

    assert [r.key for r in rolled_back] == ["checkout/production.tenants/acme/max_items"]
    rollout = log.rollout(*ACME)
    assert (rollout.status, rollout.outcome["code"]) == ("ROLLED_BACK", "RELEASE_REJECTED")  # type: ignore[union-attr,index]
    assert json.loads(log.current_record(*ACME).value_json or "") == 100  # type: ignore[union-attr]
