"""How much of a caller's input the release function repeats, and in what form.

A release request or control can carry anything (issue 9: hostile input). Whatever the
release function echoes from it — in a ``ReleaseRejected``, a reason's message or field, a
log line — goes through here: lone surrogates (valid in a Python string and in JSON escapes,
but not UTF-8, so they break the serialisers and consumers downstream) become ``?``, and a
long text is cut with a visible marker, so nothing it writes or logs grows with the input.
"""

from __future__ import annotations

from typing import Any

TRUNCATED = "…(truncated)"
#: An identifier-like value echoed back (release id, function, alias, version, field path).
MAX_ECHO_CHARS = 256
#: A reason's message.
MAX_MESSAGE_CHARS = 1024
#: Reasons listed in one rejection; the rest are counted in one last reason.
MAX_REASONS = 20
#: Integers beyond this are not spelled out (``str()`` of a huge int is slow, and raises past
#: Python's 4300-digit limit).
_MAX_SHOWN_INT = 10**18


def bounded(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` safe to repeat: valid UTF-8, at most ``limit`` characters, a cut marked."""
    clean = text.encode("utf-8", "replace").decode("utf-8")
    if len(clean) <= limit:
        return clean
    return clean[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def shown(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """A caller's value for a message: strings quoted, numbers as numbers, always bounded."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_SHOWN_INT:
        return "a number of more than 18 digits"
    if isinstance(value, str):
        return repr(bounded(value, limit))
    return bounded(repr(value), limit)


def echoed_text(value: Any, limit: int = MAX_ECHO_CHARS) -> str | None:
    """A raw detail field worth echoing: a non-empty string, bounded; anything else is None."""
    return bounded(value, limit) if isinstance(value, str) and value else None
