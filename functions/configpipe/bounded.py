"""Caller-controlled text made safe to log or announce: bounded in length, with a visible
marker where it was cut, and valid UTF-8 (a lone surrogate, which Python's ``json`` parses
from a ``"\\udfff"`` escape, cannot be encoded and would make the log call or the AWS call
itself fail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

#: Long enough for any identifier the pipeline issues; short enough that a hostile one
#: cannot make a log line or an event large.
DEFAULT_LIMIT = 256


def bounded_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``str(value)`` cut to ``limit`` characters (marker included) and with lone surrogates
    replaced by U+FFFD. Never raises, whatever ``value`` is."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # a repr that fails (or recurses too deep) on hostile input
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        marker = f"…[+{len(text) - limit} chars]"
        text = text[: max(limit - len(marker), 0)] + marker
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


#: At most this many of a validation error's problems are reported.
MAX_PROBLEMS = 10


def validation_summary(error: ValidationError) -> list[str]:
    """Where and what kind each problem is (``detail.key: string_type``), bounded, never the
    input itself: pydantic's own messages quote the value."""
    return [
        bounded_text(".".join(str(part) for part in problem["loc"]), 128) + f": {problem['type']}"
        for problem in error.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]
    ]
