"""How much of a caller's input the release function repeats, and in what form.

A release request or control can carry anything (issue 9: hostile input). Whatever the
release function echoes from it — in a ``ReleaseRejected``, a reason's message or field, a
log line — goes through here: lone surrogates are escaped and a long text is cut with a
visible marker by :func:`configpipe.untrusted.bounded`, the one rule every function uses, so
nothing it writes or logs grows with the input.
"""

from __future__ import annotations

from typing import Any

from configpipe.untrusted import IDENTITY_LIMIT, MAX_REASONS, MESSAGE_LIMIT, TRUNCATION_MARKER, bounded

__all__ = [
    "MAX_ECHO_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_REASONS",
    "TRUNCATED",
    "bounded",
    "echoed_text",
    "shown",
]

TRUNCATED = TRUNCATION_MARKER
#: An identifier-like value echoed back (release id, function, alias, version, field path).
MAX_ECHO_CHARS = IDENTITY_LIMIT
#: A reason's message.
MAX_MESSAGE_CHARS = MESSAGE_LIMIT
#: Integers beyond this are not spelled out (``str()`` of a huge int is slow, and raises past
#: Python's 4300-digit limit).
_MAX_SHOWN_INT = 10**18


def shown(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """A caller's value for a message: strings quoted, numbers as numbers, always bounded."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_SHOWN_INT:
        return "a number of more than 18 digits"
    if isinstance(value, str):
        return repr(bounded(value, limit))
    if isinstance(value, dict | list):
        # Not repr(): it recurses, and a caller's value may nest as deep as the parser allows.
        return f"a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)} items"
    return bounded(repr(value), limit)


def echoed_text(value: Any, limit: int = MAX_ECHO_CHARS) -> str | None:
    """A raw detail field worth echoing: a non-empty string, bounded; anything else is None."""
    return bounded(value, limit) if isinstance(value, str) and value else None
