"""Limits a release keeps whatever it is asked: its records stay far below DynamoDB's item
limit, and the alias never gets a weight the strategy does not announce."""

from __future__ import annotations

from typing import Any

from configpipe.release.bounds import MAX_MESSAGE_CHARS
from configpipe.release.hooks import HookVerdict
from configpipe.release.model import AliasTarget
from tests.integration.release.conftest import HOOK, TEAM, Env, control, request

#: DynamoDB's maximum item size (names and values, UTF-8).
DYNAMODB_ITEM_LIMIT = 400 * 1024
WIDE = "\U0001f680"  # 4 bytes in UTF-8, 12 as a JSON escape


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, rounded up: every attribute name plus its value
    (strings in UTF-8; a number is at most 21 bytes)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode("utf-8"))
        if "S" in value:
            size += len(value["S"].encode("utf-8"))
        elif "N" in value:
            size += 21
        else:
            raise AssertionError(f"unexpected attribute type in {name}: {value}")
    return size


def test_the_largest_release_anyone_can_ask_for_stays_far_below_the_item_limit(env: Env) -> None:
    # Given the request with the most steps an accepted strategy has (1 % growth over a day:
    # 100 steps at fractional minutes, plus the 0 % start) and every text field at its maximum,
    # in the widest characters
    alarms = [f"{i}{WIDE * 254}" for i in range(10)]
    for name in alarms:
        env.alarm(name)
    detail = request(
        releaseId="r" * 128,
        strategy="AppConfig.Linear1PercentOver1439MinutesBake1440Minutes",
        alarms=alarms,
        preTrafficHook=HOOK,
        postTrafficHook=HOOK,
        author=WIDE * 256,
        reason=WIDE * 1024,
    )
    service = env.service()

    # When it is accepted, steps, is paused and aborted with the longest reason a control takes
    assert service.handle_request(detail, TEAM).outcome == "accepted"
    env.clock.at(30)
    service.reconcile_all()
    for action in ("pause", "abort"):
        abort = control(action, release_id="r" * 128)
        abort.update(author=WIDE * 256, reason=WIDE * 1024)
        assert service.handle_control(abort, TEAM).outcome == "applied"

    # Then every record it wrote is a small fraction of DynamoDB's item limit
    state, history = service.status("r" * 128)
    assert state is not None and state.status == "ABORTED"
    assert len(history[0].detail["schedule"]) == 101
    sizes = [item_size(item) for item in env.table_items()]
    assert max(sizes) < DYNAMODB_ITEM_LIMIT / 8, sorted(sizes)[-3:]


def test_a_fractional_linear_step_never_reaches_100_percent_before_the_last_step(env: Env) -> None:
    # Given Linear33.333PercentEvery1Minute: 33.333, 66.666, 99.999 % then 100 % at minute 3
    service = env.service()
    service.handle_request(request(strategy="Linear33.333PercentEvery1Minute"), TEAM)

    # When the release runs minute by minute
    seen = []
    for minute in (0, 1, 2, 2.99, 3):
        env.clock.at(minute)
        service.reconcile_all()
        seen.append(env.alias())

    # Then the alias carries exactly the announced weights, and 100 % comes once, at minute 3
    assert seen == [
        AliasTarget.of("1", {"2": 0.3333}),
        AliasTarget.of("1", {"2": 0.6666}),
        AliasTarget.of("1", {"2": 0.9999}),
        AliasTarget.of("1", {"2": 0.9999}),
        AliasTarget.of("2"),
    ]
    stepped = [e["detail"]["percent"] for e in env.events("ReleaseStepped")]
    assert stepped == [33.33, 66.66, 99.99, 100]
    started = env.events("ReleaseStarted")[0]["detail"]
    assert started["schedule"] == [[0, 33.33], [1, 66.66], [2, 99.99], [3, 100]]


def test_a_hooks_long_answer_is_announced_and_kept_bounded(env: Env) -> None:
    # Given a pre-traffic hook that fails with a 100,000-character answer (the service team's text)
    env.hooks.verdicts["PreTraffic"] = HookVerdict.FAILED
    env.hooks.messages["PreTraffic"] = "boom \ud800 " + "x" * 100_000
    service = env.service()

    service.handle_request(request(preTrafficHook=HOOK), TEAM)

    # Then what is announced and stored of it is bounded, the cut marked
    hook = env.events("ReleaseHookCompleted")[0]["detail"]["message"]
    rolled_back = env.events("ReleaseRolledBack")[0]["detail"]["message"]
    assert len(hook) <= 500 and hook.endswith("…(truncated)") and "\ud800" not in hook
    assert len(rolled_back) <= MAX_MESSAGE_CHARS and rolled_back.endswith("…(truncated)")
    assert max(item_size(item) for item in env.table_items()) < 8 * 1024
