"""Patient waits on the local pipeline, for people watching a terminal (the demo).

A busy machine makes every step slower, never wrong: a wait gives the pipeline minutes, says
every few seconds that it is still waiting and for what, and gives up only when nothing has
happened for the whole deadline — then it says what it waited for and what it saw last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: what a wait allows by default: generous, so only a stuck pipeline reaches it
DEFAULT_TIMEOUT = 120.0
#: how often a wait says it is still waiting
PROGRESS_EVERY = 5.0


class GaveUpError(Exception):
    """Nothing came within the deadline; the message names what was awaited and what was seen."""


def wait_for(
    probe: Callable[[], Any],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.1,
    progress: Callable[[str], None] | None = None,
    progress_every: float = PROGRESS_EVERY,
    last_seen: Callable[[], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Poll ``probe`` until it returns something truthy and return that.

    ``progress`` gets a "still waiting for <what> (Ns)" line every ``progress_every`` seconds;
    ``last_seen`` describes the latest state for the error when the deadline passes.
    """
    started = clock()
    next_report = started + progress_every
    while True:
        result = probe()
        if result:
            return result
        now = clock()
        if now - started >= timeout:
            seen = last_seen() if last_seen else repr(result)
            raise GaveUpError(f"gave up after {timeout:.0f}s waiting for {what}; last seen: {seen}")
        if progress is not None and now >= next_report:
            progress(f"still waiting for {what} ({now - started:.0f}s)")
            next_report = now + progress_every
        sleep(interval)
