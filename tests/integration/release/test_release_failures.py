"""Rollback on alarm, hook failures, abort, pause/promote, concurrent alias change, crashes."""

from __future__ import annotations

import contextlib

import pytest

from configpipe.release.hooks import HookVerdict
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import TEAM, Env, control, request


def test_alarm_rolls_back_to_the_exact_previous_version_and_routing(env: Env) -> None:
    # Given an alias that already routes 5 % to version 4 (someone's earlier experiment)
    env.set_alias("1", {"4": 0.05})
    env.alarm("checkout-errors")
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute", alarms=["checkout-errors"]), TEAM)
    env.clock.at(3)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.4})

    # When the watched alarm fires between steps
    env.alarm("checkout-errors", "ALARM")
    env.clock.at(3.5)
    service.reconcile_all()

    # Then the alias is exactly as it was before the release: version 1 + 5 % on version 4
    assert env.alias() == AliasTarget.of("1", {"4": 0.05})
    state, history = service.status("rel-1")
    assert state is not None
    assert state.status == "ROLLED_BACK"
    rolled_back = env.events("ReleaseRolledBack")
    assert len(rolled_back) == 1
    assert rolled_back[0]["detail"]["code"] == "ALARM"
    assert rolled_back[0]["detail"]["alarmsInAlarm"] == ["checkout-errors"]
    assert rolled_back[0]["detail"]["restoredWeights"] == {"4": 0.05}
    assert history[-1].detail_type == "ReleaseRolledBack"

    # And later ticks leave it alone
    env.clock.at(20)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"4": 0.05})


def test_an_alarm_while_paused_still_rolls_back(env: Env) -> None:
    env.alarm("checkout-errors")
    service = env.service()
    service.handle_request(request(alarms=["checkout-errors"]), TEAM)
    service.handle_control(control("pause"), TEAM)
    env.alarm("checkout-errors", "ALARM")
    env.clock.at(1)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1")


def test_failed_pre_traffic_hook_moves_no_traffic(env: Env) -> None:
    env.hooks.verdicts["PreTraffic"] = HookVerdict.FAILED
    service = env.service()

    result = service.handle_request(request(preTrafficHook="checkout-smoke"), TEAM)

    assert result.state is not None
    assert result.state.status == "ROLLED_BACK"
    assert env.alias() == AliasTarget.of("1")
    assert [call[1].phase for call in env.hooks.calls] == ["PreTraffic"]
    assert env.events("ReleaseRolledBack")[0]["detail"]["code"] == "PRE_TRAFFIC_HOOK_FAILED"
    assert env.events("ReleaseStepped") == []


def test_passing_pre_traffic_hook_runs_before_any_traffic_moves(env: Env) -> None:
    service = env.service()
    service.handle_request(request(preTrafficHook="checkout-smoke", postTrafficHook="checkout-smoke"), TEAM)

    assert env.hooks.calls[0][1].phase == "PreTraffic"
    assert env.hooks.calls[0][1].percent == 0
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    env.clock.at(5)
    service.reconcile_all()
    assert [(c[1].phase, c[1].percent) for c in env.hooks.calls] == [("PreTraffic", 0), ("PostTraffic", 100)]
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"


def test_a_pause_before_the_pre_traffic_hook_passed_does_not_stretch_the_strategy(env: Env) -> None:
    # Given a canary with a pre-traffic hook, still in PRE_TRAFFIC at t=0 (the function died
    # after the hook ran, before its result was recorded)
    service = env.service()
    env.faults["hook_ran"] = 1
    with contextlib.suppress(RuntimeError):
        service.handle_request(request(preTrafficHook="checkout-smoke"), TEAM)
    state, _ = service.status("rel-1")
    assert state is not None and state.status == "PRE_TRAFFIC"

    # When it is paused there and resumed 600 s later, and the hook then passes
    assert service.handle_control(control("pause"), TEAM).outcome == "applied"
    env.clock.at(10)
    assert service.handle_control(control("resume"), TEAM).outcome == "applied"

    # Then the timeline from the first shift (t=600 s) is exactly Canary10Percent5Minutes':
    # 10 % until 900 s, 100 % at 900 s (it used to be 1,500 s: the pause was charged twice)
    seen = {}
    for minute in (10, 14, 14.99, 15):
        env.clock.at(minute)
        service.reconcile_all()
        seen[minute] = env.alias()
    assert seen == {
        10: AliasTarget.of("1", {"2": 0.1}),
        14: AliasTarget.of("1", {"2": 0.1}),
        14.99: AliasTarget.of("1", {"2": 0.1}),
        15: AliasTarget.of("2"),
    }
    state, _ = service.status("rel-1")
    assert state is not None and state.status == "COMPLETED"
    assert [e["detail"]["at"][11:19] for e in env.events("ReleaseStepped")] == ["09:10:00", "09:15:00"]


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(HookVerdict.FAILED, "POST_TRAFFIC_HOOK_FAILED"), (HookVerdict.TIMED_OUT, "HOOK_TIMED_OUT")],
)
def test_failed_or_timed_out_post_traffic_hook_rolls_back_after_the_final_shift(
    env: Env, verdict: HookVerdict, code: str
) -> None:
    env.hooks.verdicts["PostTraffic"] = verdict
    service = env.service()
    service.handle_request(request(strategy="AllAtOnce", postTrafficHook="checkout-smoke"), TEAM)

    assert env.alias() == AliasTarget.of("1")
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "ROLLED_BACK"
    assert [e["detail"]["percent"] for e in env.events("ReleaseStepped")] == [100]
    assert env.events("ReleaseRolledBack")[0]["detail"]["code"] == code


def test_abort_restores_the_alias_and_duplicate_controls_change_nothing(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    env.clock.at(2)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("1", {"2": 0.3})

    result = service.handle_control(control("abort"), TEAM)

    assert result.outcome == "applied"
    assert env.alias() == AliasTarget.of("1")
    aborted = env.events("ReleaseAborted")
    assert len(aborted) == 1
    assert aborted[0]["detail"]["aliasRestored"] is True
    assert aborted[0]["detail"]["code"] == "MANUAL_ABORT"
    assert service.handle_control(control("abort"), TEAM).outcome == "duplicate"
    second = service.handle_control(control("abort", control_id="abort-2"), TEAM)
    assert second.outcome == "rejected"
    assert second.reasons[0].code == "RELEASE_NOT_ACTIVE"


def test_pause_freezes_the_timeline_and_resume_continues_it(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    env.clock.at(2)
    service.reconcile_all()
    service.handle_control(control("pause"), TEAM)

    env.clock.at(7)
    service.reconcile_all()
    assert env.alias().percent_on("2") == 30

    service.handle_control(control("resume"), TEAM)  # paused 5 minutes
    assert env.alias().percent_on("2") == 30
    env.clock.at(8)
    service.reconcile_all()
    assert env.alias().percent_on("2") == 40  # minute 3 of active time
    assert [
        e["detail-type"] for e in env.events() if e["detail-type"] in ("ReleasePaused", "ReleaseResumed")
    ] == [
        "ReleasePaused",
        "ReleaseResumed",
    ]


def test_promote_shifts_everything_now(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Canary10Percent30Minutes"), TEAM)
    env.clock.at(1)

    service.handle_control(control("promote"), TEAM)

    assert env.alias() == AliasTarget.of("2")
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    assert env.events("ReleaseStepped")[-1]["detail"]["cause"] == "promoted"


def test_status_control_reports_with_its_own_seq_without_changing_the_release(env: Env) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)
    before, _ = service.status("rel-1")
    env.clock.at(2)

    assert service.handle_control(control("status"), TEAM).outcome == "reported"

    after, history = service.status("rel-1")
    assert before is not None and after is not None
    ignored = {"seq", "history_count", "updated_at"}
    assert after.model_dump(exclude=ignored) == before.model_dump(exclude=ignored)
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    report = env.events("ReleaseStatusReported")[0]["detail"]
    assert report["percent"] == 10
    assert report["nextStepAt"].startswith("2026-03-02T09:05:00")
    # Every announcement has its own seq: consumers dedupe on (releaseId, seq) and keep them all
    seqs = [e["detail"]["seq"] for e in env.events() if e["detail-type"] != "ReleaseRejected"]
    assert seqs == [1, 2, 3]
    assert [h.seq for h in history] == [1, 2, 3]
    assert history[-1].detail_type == "ReleaseStatusReported"

    # And a redelivered status control is a duplicate, not a second report
    assert service.handle_control(control("status"), TEAM).outcome == "duplicate"
    assert len(env.events("ReleaseStatusReported")) == 1


def test_a_control_id_reused_for_another_action_is_refused_not_dropped(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    assert service.handle_control(control("pause", control_id="c-1"), TEAM).outcome == "applied"

    # When an abort reuses the pause's id
    result = service.handle_control(control("abort", control_id="c-1"), TEAM)

    # Then it is refused, loudly — not swallowed as a duplicate of the pause
    assert result.outcome == "rejected"
    assert [(r.code, r.field) for r in result.reasons] == [("CONTROL_ID_CONFLICT", "controlId")]
    (rejected,) = env.events("ReleaseRejected")
    assert rejected["detail"]["controlId"] == "c-1"
    assert rejected["detail"]["action"] == "abort"
    assert rejected["detail"]["reasons"][0]["code"] == "CONTROL_ID_CONFLICT"
    assert service.handle_control(control("status", control_id="c-1"), TEAM).outcome == "rejected"
    # while the same action under the same id stays an idempotent duplicate
    assert service.handle_control(control("pause", control_id="c-1"), TEAM).outcome == "duplicate"
    state, _ = service.status("rel-1")
    assert state is not None and state.paused and state.status == "SHIFTING"
    assert service.handle_control(control("abort", control_id="c-2"), TEAM).outcome == "applied"
    assert env.alias() == AliasTarget.of("1")


def test_controls_from_another_team_are_refused(env: Env) -> None:
    service = env.service()
    service.handle_request(request(), TEAM)
    result = service.handle_control(control("abort"), "configpipe.team.payments")
    assert result.outcome == "rejected"
    assert result.reasons[0].code == "SOURCE_NOT_AUTHORIZED"
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})


def test_a_concurrent_alias_change_stops_the_release_and_is_never_overwritten(env: Env) -> None:
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    env.clock.at(1)
    service.reconcile_all()

    # When someone changes the alias behind the release's back
    env.set_alias("4")
    env.clock.at(2)
    service.reconcile_all()

    # Then the release stops, says why, and leaves their change in place
    assert env.alias() == AliasTarget.of("4")
    state, _ = service.status("rel-1")
    assert state is not None
    assert state.status == "ABORTED"
    aborted = env.events("ReleaseAborted")[0]["detail"]
    assert aborted["code"] == "CONCURRENT_ALIAS_CHANGE"
    assert aborted["aliasRestored"] is False
    assert aborted["observedVersion"] == "4"
    env.clock.at(5)
    service.reconcile_all()
    assert env.alias() == AliasTarget.of("4")


@pytest.mark.parametrize(
    ("checkpoint", "nth"),
    [
        ("committed", 1),  # intent recorded, alias not yet written
        ("intent_recorded", 1),  # same moment, seen from the alias write's side
        ("alias_updated", 1),  # alias written, not yet recorded as applied
        ("committed", 2),  # applied recorded, announcement not yet published
    ],
)
@pytest.mark.parametrize("crash_minute", [0, 4, 9])
def test_a_crash_between_any_two_steps_converges_on_the_next_reconcile(
    env: Env, checkpoint: str, nth: int, crash_minute: int
) -> None:
    allowed = {10.0 * k for k in range(11)}
    service = env.service()
    if crash_minute == 0:
        env.faults[checkpoint] = nth + (1 if checkpoint == "committed" else 0)  # create commits once first
    crashed = False
    with contextlib.suppress(RuntimeError):
        service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    crashed = crash_minute == 0 and not env.faults
    if crashed:
        assert env.alias().percent_on("2") in {0.0, 10.0}
        env.clock.at(0.5)  # the next tick
        service.reconcile_all()
        assert env.alias().percent_on("2") == 10.0
    for minute in range(1, 12):
        env.clock.at(minute)
        if minute == crash_minute:
            env.faults[checkpoint] = nth
        try:
            service.reconcile("rel-1")
        except RuntimeError:
            crashed = True
            # Then the alias carries a weight the strategy allows, never more than is due
            assert env.alias().percent_on("2") in allowed
            assert env.alias().percent_on("2") <= min(100.0, 10.0 * (minute + 1))
        # And the next reconcile (the tick) converges on the weight due now
        service.reconcile_all()
        assert env.alias().percent_on("2") == min(100.0, 10.0 * (minute + 1)), minute
    assert crashed
    assert env.alias() == AliasTarget.of("2")
    state, history = service.status("rel-1")
    assert state is not None
    assert state.status == "COMPLETED"
    # Every history entry was announced exactly once and in order, even one written just before a crash
    assert sorted(e["detail"]["seq"] for e in env.events()) == [h.seq for h in history]
    assert [h.detail["percent"] for h in history if h.detail_type == "ReleaseStepped"] == sorted(
        allowed - {0.0}
    )


def test_a_crash_after_a_hook_ran_re_runs_the_hook_then_continues(env: Env) -> None:
    env.faults["hook_ran"] = 1
    service = env.service()
    with pytest.raises(RuntimeError):
        service.handle_request(request(preTrafficHook="checkout-smoke"), TEAM)
    assert env.alias() == AliasTarget.of("1")

    service.reconcile_all()

    assert len(env.hooks.calls) == 2
    assert env.alias() == AliasTarget.of("1", {"2": 0.1})


def test_redelivery_of_the_request_resumes_a_crashed_release(env: Env) -> None:
    env.faults["intent_recorded"] = 1
    service = env.service()
    with pytest.raises(RuntimeError):
        service.handle_request(request(), TEAM)
    assert env.alias() == AliasTarget.of("1")

    assert service.handle_request(request(), TEAM).outcome == "duplicate"

    assert env.alias() == AliasTarget.of("1", {"2": 0.1})
    assert len(env.events("ReleaseStarted")) == 1
