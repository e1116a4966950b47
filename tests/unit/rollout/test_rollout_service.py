"""Rollouts on the change log (moto): started by the validator's one transaction, moved by the
tick, rolled back by alarms, controlled by people; every state change is one conditional
write, so duplicates and crashes converge."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog, RolloutRecord
from configpipe.errors import RolloutConflictError
from configpipe.registry_source import RegistrySource
from configpipe.release.health import AlarmHealth
from configpipe.rollout.service import RolloutService, rollback_change_id
from configpipe_tools.harness.aws import Pipeline, set_alarm
from configpipe_tools.harness.events import change, eventbridge_event
from tests.unit.rollout.conftest import T0

KEY = ("checkout", "production", "max_items")


SOURCE = "configpipe.team.checkout"
PAYMENTS = "configpipe.team.payments"


def submit(write_path, detail: dict[str, Any], source: str = SOURCE):
    return write_path.handle(eventbridge_event(detail, source=source))


def control(
    service: RolloutService, action: str, control_id: str, source="configpipe.team.checkout", **extra
):
    detail = {
        "controlId": control_id,
        "service": "checkout",
        "environment": "production",
        "key": "max_items",
        "action": action,
        "author": "bob@example.com",
        "reason": "watching the dashboard",
        **extra,
    }
    return service.control(
        eventbridge_event(detail, detail_type="ConfigurationRolloutControl", source=source)
    )


def start(write_path, strategy: Any = "Canary10Percent5Minutes", **rollout: Any) -> None:
    assert submit(write_path, change(value=10, change_id="v1")).status == "accepted"
    outcome = submit(write_path, change(value=50, change_id="r-1", rollout={"strategy": strategy, **rollout}))
    assert (outcome.status, outcome.version) == ("accepted", 2), outcome.reasons


def alarm(name: str, state: str) -> None:
    set_alarm(boto3.client("cloudwatch"), name, state)


def items(pipeline: Pipeline) -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(pipeline.table_name).scan(ConsistentRead=True)["Items"]


# --- start ---------------------------------------------------------------------------------


def test_a_change_with_a_rollout_starts_it_in_the_same_write(write_path, log):
    start(write_path, alarms=["checkout-errors"], targets=["tenant-7"], bakeMinutes=3)

    pointer = log.current(*KEY)
    assert pointer is not None
    assert (pointer.version, pointer.rollout_id, pointer.stable_version) == (2, "r-1", 1)
    rollout = log.rollout(*KEY)
    assert rollout is not None
    assert (rollout.status, rollout.weight, rollout.sequence) == ("ROLLING_OUT", 10.0, 0)
    assert (rollout.stable_version, rollout.candidate_version) == (1, 2)
    assert (rollout.alarms, rollout.targets, rollout.bake_minutes) == (["checkout-errors"], ["tenant-7"], 3)
    assert rollout.event == "ConfigurationRolloutStarted"
    candidate = log.version(*KEY, 2)
    assert candidate is not None and candidate.rollout is not None
    assert candidate.rollout["strategy"] == "Canary10Percent5Minutes"
    assert log.active_rollouts() == [(*KEY, None)]


def test_any_change_to_a_key_rolling_out_is_refused_naming_the_way_out(write_path, log, pipeline):
    start(write_path)
    before = items(pipeline)

    for detail in (
        change(value=99, change_id="x-put"),
        change(operation="delete", change_id="x-del"),
        change(operation="rollback", toVersion=1, change_id="x-rb"),
        change(value=99, change_id="x-ro", rollout={"strategy": "AllAtOnce"}),
    ):
        outcome = submit(write_path, detail)
        assert outcome.status == "rejected"
        assert outcome.codes == ["ROLLOUT_IN_PROGRESS"]
        assert "rollout promote" in outcome.reasons[0].message
        assert "rollout abort" in outcome.reasons[0].message

    after = items(pipeline)
    new = [i for i in after if i not in before]
    assert {i["pk"] for i in new} == {f"CHANGE#{SOURCE}#x-{op}" for op in ("put", "del", "rb", "ro")}
    assert all(i["status"] == "rejected" for i in new)


@pytest.mark.parametrize(
    ("detail", "code"),
    [
        (change(operation="delete", rollout={"strategy": "AllAtOnce"}), "ROLLOUT_NOT_ALLOWED"),
        (change(rollout={"strategy": "Canary150Percent5Minutes"}), "INVALID_ROLLOUT"),
        (change(rollout={"strategy": "Sometimes"}), "INVALID_ROLLOUT"),
        (change(rollout={"strategy": {"type": "canary"}}), "INVALID_ROLLOUT"),
        (change(rollout={"strategy": "AllAtOnce", "bakeMinutes": -1}), "INVALID_ROLLOUT"),
        (change(rollout={"strategy": "AllAtOnce", "targets": ["t"] * 2}), "INVALID_ROLLOUT"),
        (change(rollout={"strategy": "AllAtOnce", "colour": "red"}), "UNKNOWN_FIELD"),
        (change(rollout={"alarms": []}), "INVALID_ROLLOUT"),  # neither a strategy nor a release
    ],
)
def test_a_bad_rollout_is_rejected_with_a_stable_code_and_writes_nothing_else(
    write_path, pipeline, detail, code
):
    outcome = submit(write_path, detail)

    assert outcome.status == "rejected"
    assert code in outcome.codes
    assert [i["pk"] for i in items(pipeline)] == [f"CHANGE#{SOURCE}#{detail['changeId']}"]


def test_a_first_version_can_roll_out_with_no_stable_value(write_path, log):
    outcome = submit(
        write_path, change(value=1, change_id="new", rollout={"strategy": "Canary10Percent5Minutes"})
    )

    assert outcome.status == "accepted"
    rollout = log.rollout(*KEY)
    assert rollout is not None and rollout.stable_version is None
    assert log.current(*KEY).version_for_readers() is None  # type: ignore[union-attr]


# --- the tick ------------------------------------------------------------------------------


def test_the_tick_steps_at_the_boundary_and_completes(write_path, service, log, clock):
    start(write_path)

    clock.advance(299)
    assert service.reconcile_all()[0].actions == []
    clock.advance(1)
    result = service.reconcile_all()[0]

    assert result.actions == ["Step", "Complete"]
    rollout = log.rollout(*KEY)
    assert rollout is not None
    assert (rollout.status, rollout.weight, rollout.sequence) == ("COMPLETED", 100.0, 2)
    pointer = log.current(*KEY)
    assert pointer is not None and (pointer.version, pointer.rollout_id) == (2, None)
    assert log.active_rollouts() == []
    assert submit(write_path, change(value=70, change_id="after")).version == 3


def test_appconfig_linear_moves_one_step_per_tick_and_completes_after_its_bake(
    write_path, service, log, clock
):
    start(write_path, strategy="AppConfig.Linear50PercentEvery30Seconds")
    seen = []
    for _ in range(10):
        clock.advance(30)
        service.reconcile_all()
        rollout = log.rollout(*KEY)
        assert rollout is not None
        seen.append((rollout.weight, rollout.status))

    assert seen[:4] == [
        (50.0, "ROLLING_OUT"),
        (100.0, "ROLLING_OUT"),
        (100.0, "ROLLING_OUT"),
        (100.0, "COMPLETED"),
    ]


def test_an_alarm_rolls_back_within_one_tick_and_history_shows_it(write_path, service, log, clock):
    start(write_path, alarms=["checkout-errors"])
    alarm("checkout-errors", "OK")
    clock.advance(60)
    assert service.reconcile_all()[0].actions == []

    alarm("checkout-errors", "ALARM")
    clock.advance(1)
    assert service.reconcile_all()[0].actions == ["RollBack"]

    rollout = log.rollout(*KEY)
    assert rollout is not None
    assert (rollout.status, rollout.event) == ("ROLLED_BACK", "ConfigurationRolloutRolledBack")
    assert rollout.outcome == {
        "code": "ALARM",
        "message": "alarm(s) in ALARM: checkout-errors",
        "alarms": ["checkout-errors"],
    }
    restoring = log.version(*KEY, 3)
    assert restoring is not None
    assert (restoring.operation, restoring.rolled_back_to, json.loads(restoring.value_json or "")) == (
        "rollback",
        1,
        10,
    )
    assert restoring.change_id == rollback_change_id("r-1")
    assert "rollout r-1 of version 2" in restoring.reason
    pointer = log.current(*KEY)
    assert pointer is not None and (pointer.version, pointer.rollout_id) == (3, None)
    assert [v.version for v in log.history(*KEY)] == [3, 2, 1]


def test_an_alarm_without_data_rolls_back_by_default(write_path, service, log, clock):
    start(write_path, alarms=["checkout-errors"])
    alarm("checkout-errors", "INSUFFICIENT_DATA")

    service.reconcile_all()

    rollout = log.rollout(*KEY)
    assert rollout is not None and rollout.outcome is not None
    assert (rollout.status, rollout.outcome["code"]) == ("ROLLED_BACK", "ALARM_INSUFFICIENT_DATA")


def test_rolling_back_a_first_version_deletes_the_key(write_path, service, log, clock):
    submit(
        write_path,
        change(value=1, change_id="new", rollout={"strategy": "Canary10Percent5Minutes", "alarms": ["a"]}),
    )
    alarm("a", "ALARM")

    service.reconcile_all()

    restoring = log.version(*KEY, 2)
    assert restoring is not None and restoring.deleted
    assert log.current(*KEY).deleted  # type: ignore[union-attr]


def test_duplicated_ticks_have_one_effect(write_path, service, log, clock):
    start(write_path)
    clock.advance(300)
    service.reconcile_all()
    after_first = log.rollout(*KEY)

    assert service.reconcile(*KEY).actions == []
    assert log.rollout(*KEY) == after_first


def test_a_stale_write_loses_to_the_one_that_moved_the_rollout(write_path, service, log, clock):
    start(write_path)
    stale = log.rollout(*KEY)
    assert stale is not None
    clock.advance(300)
    service.reconcile_all()

    with pytest.raises(RolloutConflictError):
        log.save_rollout(stale.next(weight=55.0), stale.sequence)
    assert log.rollout(*KEY).status == "COMPLETED"  # type: ignore[union-attr]


class CrashAfterWrite(ChangeLog):
    """The rollout function dying right after its write reached DynamoDB (fault injection)."""

    armed = True

    def save_rollout(self, *args: Any, **kwargs: Any) -> None:
        super().save_rollout(*args, **kwargs)
        self._crash()

    def finish_rollout(self, *args: Any, **kwargs: Any) -> None:
        super().finish_rollout(*args, **kwargs)
        self._crash()

    def _crash(self) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("crash after write")


@pytest.mark.parametrize("crash_at", [30, 60, 120])  # every write: step 50, step 100, complete
def test_a_crash_after_any_write_converges_to_the_no_crash_state(pipeline, write_path, log, clock, crash_at):
    start(write_path, strategy="AppConfig.Linear50PercentEvery30Seconds")
    crashing = CrashAfterWrite(pipeline.table_name)
    registry = RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm"))
    crashy = RolloutService(crashing, AlarmHealth(boto3.client("cloudwatch")), registry, clock=clock)
    plain = RolloutService(log, AlarmHealth(boto3.client("cloudwatch")), registry, clock=clock)

    states: list[RolloutRecord | None] = []
    for elapsed in range(30, 181, 30):
        clock.now = T0 + timedelta(seconds=elapsed)
        if elapsed == crash_at:
            with pytest.raises(RuntimeError, match="crash after write"):
                crashy.reconcile_all()
        plain.reconcile_all()
        states.append(log.rollout(*KEY))

    final = states[-1]
    assert final is not None and final.status == "COMPLETED"
    # the same history of weights as without a crash: 50, 100, then complete after the bake
    assert [s.weight for s in states if s is not None][:2] == [50.0, 100.0]
    assert final.sequence == 3


# --- controls ------------------------------------------------------------------------------


def test_pause_stops_the_clock_and_resume_restarts_it(write_path, service, log, clock):
    start(write_path)
    clock.advance(100)
    assert control(service, "pause", "p-1").outcome == "accepted"
    clock.advance(1000)
    service.reconcile_all()
    paused = log.rollout(*KEY)
    assert paused is not None and (paused.paused, paused.weight, paused.event) == (
        True,
        10.0,
        "ConfigurationRolloutPaused",
    )

    assert control(service, "resume", "p-2").outcome == "accepted"
    clock.advance(199)
    service.reconcile_all()
    assert log.rollout(*KEY).weight == 10.0  # type: ignore[union-attr]
    clock.advance(1)
    service.reconcile_all()
    assert log.rollout(*KEY).status == "COMPLETED"  # type: ignore[union-attr]


def test_promote_completes_now_and_abort_restores_stable(write_path, service, log, clock, pipeline):
    start(write_path)
    assert control(service, "promote", "c-1").outcome == "accepted"
    promoted = log.rollout(*KEY)
    assert promoted is not None and (promoted.status, promoted.author) == ("COMPLETED", "bob@example.com")

    submit(write_path, change(value=70, change_id="r-2", rollout={"strategy": "Canary10Percent5Minutes"}))
    assert control(service, "abort", "c-2").outcome == "accepted"
    aborted = log.rollout(*KEY)
    assert aborted is not None
    assert (aborted.rollout_id, aborted.status, aborted.outcome["code"]) == ("r-2", "ABORTED", "ABORTED")  # type: ignore[index]
    assert json.loads(log.current_record(*KEY).value_json or "") == 50  # type: ignore[union-attr]


def test_a_redelivered_control_has_one_effect(write_path, service, log):
    start(write_path)
    assert control(service, "pause", "p-1").outcome == "accepted"
    sequence = log.rollout(*KEY).sequence  # type: ignore[union-attr]

    assert control(service, "pause", "p-1").outcome == "duplicate"
    assert control(service, "resume", "p-2").outcome == "accepted"
    assert control(service, "resume", "p-2").outcome == "duplicate"
    assert log.rollout(*KEY).sequence == sequence + 1  # type: ignore[union-attr]

    assert control(service, "abort", "a-1").outcome == "accepted"
    assert control(service, "abort", "a-1").outcome == "duplicate"


def test_controls_are_refused_with_stable_codes_and_recorded(write_path, service, log):
    assert control(service, "pause", "n-1").reasons[0].code.value == "NO_ACTIVE_ROLLOUT"
    start(write_path)

    other_team = control(service, "abort", "n-2", source="configpipe.team.payments")
    wrong_id = control(service, "abort", "n-3", rolloutId="r-0")
    bad_action = control(service, "explode", "n-4")

    assert [r.code.value for r in other_team.reasons] == ["SOURCE_NOT_AUTHORIZED"]
    assert [r.code.value for r in wrong_id.reasons] == ["NO_ACTIVE_ROLLOUT"]
    assert bad_action.outcome == "rejected"
    assert log.rollout(*KEY).status == "ROLLING_OUT"  # type: ignore[union-attr]
    for control_id, source in (("n-1", SOURCE), ("n-2", PAYMENTS), ("n-3", SOURCE), ("n-4", SOURCE)):
        assert log.change(control_id, source).status == "rejected"  # type: ignore[union-attr]


def test_another_team_taking_a_control_id_first_does_not_swallow_the_real_control(
    write_path, service, log, pipeline
):
    # Given payments sent a control under the id checkout is about to use (refused: not its service)
    start(write_path)
    squatted = control(service, "abort", "p-1", source=PAYMENTS)

    # When checkout pauses its rollout with that id
    real = control(service, "pause", "p-1")

    # Then checkout's control takes effect, each recorded under its own source
    assert (squatted.outcome, real.outcome) == ("rejected", "accepted")
    assert log.rollout(*KEY).paused  # type: ignore[union-attr]
    assert log.change("p-1", PAYMENTS).status == "rejected"  # type: ignore[union-attr]
    assert log.change("p-1", SOURCE).status == "accepted"  # type: ignore[union-attr]
    control_records = {i["pk"] for i in items(pipeline) if i["pk"].endswith("#p-1")}
    assert control_records == {f"CHANGE#{PAYMENTS}#p-1", f"CHANGE#{SOURCE}#p-1"}


def test_a_control_replayed_by_its_own_team_after_the_rollout_ended_is_a_duplicate(write_path, service, log):
    start(write_path)
    assert control(service, "promote", "go-1").outcome == "accepted"

    # The rollout has ended: only the control's own record, under its source, makes this a duplicate
    assert control(service, "promote", "go-1").outcome == "duplicate"
    assert control(service, "promote", "go-1", source=PAYMENTS).outcome == "rejected"


# --- riding on a code release -----------------------------------------------------------------


def bound(write_path, change_id: str = "r-rel", **extra: Any):
    release = {"releaseId": "rel-1", "function": "checkout-api", "targetVersion": "7"}
    return submit(write_path, change(value=50, change_id=change_id, rollout={"release": release, **extra}))


def test_a_rollout_on_a_release_completes_with_it(write_path, following, log, releases, clock):
    submit(write_path, change(value=10, change_id="v1"))
    assert bound(write_path).status == "accepted"
    rollout = log.rollout(*KEY)
    assert rollout is not None
    assert (rollout.weight, rollout.release) == (
        0.0,
        {"releaseId": "rel-1", "function": "checkout-api", "targetVersion": "7"},
    )

    releases.statuses["rel-1"] = "SHIFTING"
    clock.advance(3600)
    assert following.reconcile_all()[0].actions == []
    releases.statuses["rel-1"] = "COMPLETED"
    assert following.reconcile_all()[0].actions == ["Complete"]
    assert log.rollout(*KEY).status == "COMPLETED"  # type: ignore[union-attr]


@pytest.mark.parametrize("ending", ["ROLLED_BACK", "ABORTED"])
def test_a_rollout_on_a_release_rolls_back_when_the_release_does(
    write_path, following, log, releases, ending
):
    submit(write_path, change(value=10, change_id="v1"))
    bound(write_path)
    releases.statuses["rel-1"] = ending

    following.reconcile_all()

    rollout = log.rollout(*KEY)
    assert rollout is not None and rollout.outcome is not None
    assert (rollout.status, rollout.outcome["code"]) == ("ROLLED_BACK", "RELEASE_ROLLED_BACK")
    assert json.loads(log.current_record(*KEY).value_json or "") == 10  # type: ignore[union-attr]


def test_a_rollout_whose_release_never_starts_gives_up_after_the_grace_period(
    write_path, following, log, clock
):
    bound(write_path)
    clock.advance(14 * 60)
    assert following.reconcile_all()[0].actions == []
    clock.advance(60)
    following.reconcile_all()

    assert log.rollout(*KEY).outcome["code"] == "RELEASE_NOT_STARTED"  # type: ignore[index,union-attr]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"strategy": "AllAtOnce"}, "rollout"),
        ({"alarms": ["a"]}, "rollout"),
    ],
)
def test_a_release_binding_takes_nothing_the_release_decides(write_path, extra, field):
    outcome = bound(write_path, **extra)

    assert outcome.codes == ["INVALID_ROLLOUT"]
    assert outcome.reasons[0].field == field


def test_a_release_binding_names_a_function_of_the_changes_own_service(write_path):
    release = {"releaseId": "rel-1", "function": "payments-api", "targetVersion": "7"}
    outcome = submit(write_path, change(value=1, change_id="x", rollout={"release": release}))

    assert outcome.codes == ["INVALID_ROLLOUT"]
    assert outcome.reasons[0].field == "rollout.release.function"


def test_a_rejected_release_rolls_the_config_riding_on_it_back_at_once(write_path, following, log):
    submit(write_path, change(value=10, change_id="v1"))
    bound(write_path)

    [result] = following.release_rejected("rel-1", ["ALARM_ACTIVE"])

    rollout = log.rollout(*KEY)
    assert result.actions == ["RollBack"]
    assert rollout is not None and rollout.outcome is not None
    assert (rollout.status, rollout.outcome["code"]) == ("ROLLED_BACK", "RELEASE_REJECTED")
    assert "ALARM_ACTIVE" in rollout.outcome["message"]
    assert json.loads(log.current_record(*KEY).value_json or "") == 10  # type: ignore[union-attr]


def test_a_rejection_of_another_release_or_of_a_release_that_exists_changes_nothing(
    write_path, following, log, releases
):
    bound(write_path)

    assert following.release_rejected("rel-2", ["UNKNOWN_STRATEGY"]) == []
    # a second request reusing a running release's id is refused (RELEASE_ID_CONFLICT): the
    # release, and the config riding on it, go on
    releases.statuses["rel-1"] = "SHIFTING"
    assert following.release_rejected("rel-1", ["RELEASE_ID_CONFLICT"]) == []

    assert log.rollout(*KEY).status == "ROLLING_OUT"  # type: ignore[union-attr]
