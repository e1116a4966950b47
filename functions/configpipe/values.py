"""Value rules shared by the write path, the materialiser and the clients: the canonical
serialisation (what "size" and "hash" are measured on), nesting depth, and which keys are
secrets whatever the publisher says."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

#: Names that mark a key as a secret whatever its flag says. Short words (dsn, auth, pwd) only
#: as a whole segment of the key (``db.dsn``, ``auth-header``), not inside another word.
_SENSITIVE_NAME = re.compile(
    r"password|passwd|secret|token|credential|private[-_.]?key|api[-_.]?key|connection[-_.]?string"
    r"|(?:^|[-_.])(?:pwd|dsn|auth|passphrase|cert[-_.]?key)(?:$|[-_.])",
    re.I,
)
#: A name the platform adds to the list (cdk.json ``configpipe.registry.sensitiveKeyNames``):
#: lower-case words joined by ``-``, ``_`` or ``.``. It matches as whole segments of a key, any
#: of those separators standing for any other (``signing-key`` marks ``jwt.signing_key``, and
#: ``iban`` marks ``customer.iban`` but not ``libanon``), case-insensitively.
SENSITIVE_KEY_NAME_PATTERN = r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$"


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, no insignificant white space."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def value_hash(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def nesting_depth(value: Any) -> int:
    """Depth of containers, computed without recursion so hostile input cannot blow the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += 1
            stack.extend((child, depth) for child in node.values())
        elif isinstance(node, list):
            depth += 1
            stack.extend((child, depth) for child in node)
        deepest = max(deepest, depth)
    return deepest


def is_sensitive(key: str, flagged: bool | None, extra_names: Sequence[str] = ()) -> bool:
    """Flagged by the publisher, or named like a secret (so a forgotten flag cannot leak one):
    by the built-in list or by ``extra_names``, which only ever add to it."""
    if flagged or _SENSITIVE_NAME.search(key):
        return True
    extra = _extra_names(tuple(extra_names))
    return extra is not None and extra.search(key) is not None


@lru_cache(maxsize=16)
def _extra_names(names: tuple[str, ...]) -> re.Pattern[str] | None:
    if not names:
        return None
    words = ("[-_.]".join(re.escape(part) for part in re.split(r"[-_.]", name)) for name in names)
    return re.compile(r"(?:^|[-_.])(?:" + "|".join(words) + r")(?:$|[-_.])", re.I)
