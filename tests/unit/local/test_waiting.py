"""The demo's waits: generous, say that they are still waiting, and give up with what they saw."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from configpipe_tools.local.waiting import DEFAULT_TIMEOUT, GaveUpError, wait_for


class FakeClock:
    """Time that moves only when the wait sleeps: the test is exact on any machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def arrives_at(clock: FakeClock, second: float, value: object) -> Callable[[], object]:
    return lambda: value if clock.now >= second else []


def test_a_slow_answer_is_waited_for_with_a_progress_line_every_five_seconds() -> None:
    clock, lines = FakeClock(), []

    got = wait_for(
        arrives_at(clock, 17.0, ["delivered"]),
        "checkout delivery",
        interval=0.5,
        progress=lines.append,
        clock=clock,
        sleep=clock.sleep,
    )

    assert got == ["delivered"]
    assert lines == [f"still waiting for checkout delivery ({s}s)" for s in (5, 10, 15)]


def test_the_default_deadline_outlasts_a_busy_machine() -> None:
    clock = FakeClock()

    # the 15 s the demo used to allow, several times over
    assert wait_for(arrives_at(clock, 90.0, True), "x", clock=clock, sleep=clock.sleep) is True
    assert DEFAULT_TIMEOUT >= 120


def test_a_stuck_wait_says_what_it_waited_for_and_what_it_saw_last() -> None:
    clock = FakeClock()

    with pytest.raises(GaveUpError) as raised:
        wait_for(
            lambda: [],
            "checkout delivery",
            timeout=30,
            last_seen=lambda: "ConfigurationUpdated v1, no ConfigurationDelivered",
            clock=clock,
            sleep=clock.sleep,
        )

    assert str(raised.value) == (
        "gave up after 30s waiting for checkout delivery; "
        "last seen: ConfigurationUpdated v1, no ConfigurationDelivered"
    )
    assert clock.now == pytest.approx(30, abs=0.2)
