"""Caller-controlled text made safe to log, store and announce.

Anything a publisher sends (a changeId, a source, an unknown field's name, an envelope id)
can be any JSON string: megabytes long, or holding lone surrogates (``"\\udfff"`` is valid
JSON but not valid Unicode, so UTF-8, DynamoDB, SSM and the log stream all refuse it). Every
such string goes through :func:`bounded` before it reaches a log line, a record or an event.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

#: Appended to text that was cut, so a reader knows there was more.
TRUNCATION_MARKER = "…(truncated)"

#: Limits for the places caller text lands. An identity field (service, environment, key,
#: operation, source) is at most 256 characters in any valid change; a message or field path
#: is ours plus at most a name the caller chose.
IDENTITY_LIMIT = 256
MESSAGE_LIMIT = 1024
FIELD_LIMIT = 256
CORRELATION_ID_LIMIT = 128
#: A rejection lists at most this many reasons; the last one counts the rest.
MAX_REASONS = 20


def bounded(text: str, limit: int = IDENTITY_LIMIT) -> str:
    """``text`` with lone surrogates escaped (``\\udfff``, visible, and valid UTF-8) and cut
    to at most ``limit`` characters, the cut marked with :data:`TRUNCATION_MARKER`."""
    # Escaping can only lengthen the text, so the head is enough to decide (cheap on 100 MB).
    safe = text[: limit + 1].encode("utf-8", "backslashreplace").decode("utf-8")
    if len(safe) <= limit and len(text) <= limit:
        return safe
    return safe[: max(limit - len(TRUNCATION_MARKER), 0)] + TRUNCATION_MARKER


def correlation_id(event: Any, *fields: str) -> str | None:
    """The first of ``fields`` in the event's detail that is a string, bounded; None if none
    is. Used instead of Powertools' ``correlation_id_path``, which logs whatever the caller
    put there (a 100 KB object became a 100 KB log line on every record)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return None
    for name in fields:
        value = detail.get(name)
        if isinstance(value, str):
            return bounded(value, CORRELATION_ID_LIMIT)
    return None


def stable_digest(value: Any) -> str:
    """SHA-256 hex of a JSON value, the same for equal values, computed without recursion
    (``repr`` and ``json.dumps`` recurse, and an event may nest as deep as the parser let it)
    and without failing on lone surrogates."""
    digest = hashlib.sha256()
    pending: list[Any] = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, _Token):
            digest.update(node.text)
        elif isinstance(node, dict):
            digest.update(b"{")
            pending.append(_Token(b"}"))
            for name in sorted(node, key=str, reverse=True):
                pending.extend((node[name], _Token(b":"), _scalar(str(name)), _Token(b",")))
        elif isinstance(node, list):
            digest.update(b"[")
            pending.append(_Token(b"]"))
            for item in reversed(node):
                pending.extend((item, _Token(b",")))
        else:
            digest.update(_scalar(node).text)
    return digest.hexdigest()


class _Token:
    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def _scalar(value: Any) -> _Token:
    if isinstance(value, str):
        return _Token(json.dumps(value).encode("ascii"))  # ensure_ascii: surrogates escaped
    if value is None or isinstance(value, bool | int | float):
        return _Token(json.dumps(value).encode("ascii"))
    return _Token(f"<{type(value).__name__}>".encode())


def bounded_text(value: Any, limit: int = IDENTITY_LIMIT) -> str:
    """Any value, as :func:`bounded` text: a string as it is, anything else by ``repr`` (or its
    type name where ``repr`` fails or recurses too deep on hostile input). Never raises."""
    if isinstance(value, str):
        return bounded(value, limit)
    try:
        text = repr(value)
    except Exception:  # RecursionError on a deep value, or a hostile __repr__
        text = f"<{type(value).__name__}>"
    return bounded(text, limit)


#: At most this many of a validation error's problems are reported.
MAX_PROBLEMS = 10


def validation_summary(error: ValidationError) -> list[str]:
    """Where and what kind each problem is (``detail.key: string_type``), bounded, never the
    input itself: pydantic's own messages quote the value."""
    return [
        bounded(".".join(str(part) for part in problem["loc"]), 128) + f": {problem['type']}"
        for problem in error.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]
    ]
