"""Hostile input, generated from a seeded :class:`random.Random`: what a careless or hostile
caller could put in any field of any event. Used by ``scripts/fuzz.py`` (tens of thousands of
events, so plain ``random`` rather than Hypothesis, which is built for shrinking, not volume);
the property tests have the Hypothesis twins of these in ``tests/unit/hostile.py``.

Every generator covers the whole Unicode range including lone surrogates (U+D800-U+DFFF, which
Python's ``json`` happily parses from ``"\\udfff"`` escapes), every JSON type, huge strings,
huge objects and deep nesting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: A string this long is "huge": a quarter of EventBridge's 256 KB event limit, on its own.
HUGE_STRING_CHARS = 100_000
#: Deep, but below the ~1,000 frames at which Python's ``json`` (and so Lambda's Python runtime,
#: which parses the event with it) gives up with ``RecursionError`` before our code runs.
MAX_NESTING = 900
#: "Thousands of unknown fields".
MANY_FIELDS = 5_000

SURROGATES = (0xD800, 0xDFFF)


def any_char(rng: random.Random) -> str:
    """One code point from anywhere in Unicode, surrogates and controls included, weighted
    towards the planes and ranges that break encoders."""
    pick = rng.random()
    if pick < 0.15:
        return chr(rng.randint(*SURROGATES))
    if pick < 0.3:
        return chr(rng.randint(0, 0x1F))
    if pick < 0.5:
        return chr(rng.randint(0x80, 0xFFFF))
    if pick < 0.65:
        return chr(rng.randint(0x10000, 0x10FFFF))
    return chr(rng.randint(0x20, 0x7E))


def text(rng: random.Random, max_chars: int = 40) -> str:
    """A string of up to ``max_chars`` code points from :func:`any_char`; sometimes empty."""
    return "".join(any_char(rng) for _ in range(rng.randint(0, max_chars)))


def huge_text(rng: random.Random) -> str:
    """~100 KB: a repeated chunk (generating 100,000 random code points per event is slow)."""
    chunk = text(rng, 64) or "x"
    return (chunk * (HUGE_STRING_CHARS // len(chunk) + 1))[:HUGE_STRING_CHARS]


def scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            rng.randint(-(2**63), 2**63),
            10**100,
            -(10**100),
            0.5,
            -0.0,
            1e308,
            rng.uniform(-1e6, 1e6),
            "",
            text(rng),
            chr(rng.randint(*SURROGATES)),
            "²",
            "\uff11\uff12",  # fullwidth digits: isdigit() is True, int() too
            "9" * 40,
        ]
    )


def nested(rng: random.Random, depth: int | None = None) -> Any:
    """A value nested ``depth`` levels deep (lists and objects alternating)."""
    depth = depth if depth is not None else rng.randint(50, MAX_NESTING)
    value: Any = scalar(rng)
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


def many_fields(rng: random.Random, count: int | None = None) -> dict[str, Any]:
    count = count if count is not None else rng.randint(1_000, MANY_FIELDS)
    return {f"f{i}{text(rng, 3)}": i for i in range(count)}


def json_value(rng: random.Random, budget: int = 3) -> Any:
    """Any JSON value: mostly small, sometimes huge, deep or wide."""
    pick = rng.random()
    if pick < 0.02:
        return huge_text(rng)
    if pick < 0.04:
        return nested(rng)
    if pick < 0.05:
        return many_fields(rng)
    if budget <= 0 or pick < 0.6:
        return scalar(rng)
    if pick < 0.8:
        return [json_value(rng, budget - 1) for _ in range(rng.randint(0, 4))]
    return {text(rng, 8): json_value(rng, budget - 1) for _ in range(rng.randint(0, 4))}


def mutate(rng: random.Random, detail: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """``detail`` with some of ``fields`` dropped or replaced by any JSON, and sometimes
    unknown fields added (a few, or thousands)."""
    out = dict(detail)
    for name in rng.sample(fields, k=rng.randint(1, min(4, len(fields)))):
        if rng.random() < 0.3:
            out.pop(name, None)
        else:
            out[name] = json_value(rng)
    pick = rng.random()
    if pick < 0.1:
        out.update(many_fields(rng))
    elif pick < 0.3:
        out[text(rng, 12) or "extra"] = json_value(rng)
    return out


def envelope_mutation(rng: random.Random, event: dict[str, Any]) -> Any:
    """A broken envelope around a good event: not an object, fields missing or of the wrong type."""
    pick = rng.randint(0, 6)
    if pick == 0:
        return json_value(rng)
    if pick == 1:
        return {}
    if pick == 2:
        out = dict(event)
        out.pop(rng.choice(sorted(out)), None)
        return out
    out = dict(event)
    out[rng.choice(sorted(out))] = json_value(rng)
    return out


#: Operations that change nothing (everything else counts as a write, PutEvents and Invoke too).
READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Query",
    "Scan",
    "BatchGet",
    "TransactGet",
    "Decrypt",
    "Encrypt",
    "GenerateMac",
    "VerifyMac",
    "GenerateDataKey",
    "ReceiveMessage",
)


@dataclass
class WriteMeter:
    """Every AWS write that took effect since the last :meth:`take`: register it with
    ``session.events.register("after-call.*.*", meter)`` before the session makes its clients
    (a client copies the session's hooks when it is created)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, model: Any, http_response: Any = None, **_: Any) -> None:
        refused = http_response is not None and http_response.status_code >= 300
        if not refused and not model.name.startswith(READ_PREFIXES):
            self.calls.append((model.service_model.service_name, model.name))

    def take(self) -> list[tuple[str, str]]:
        calls, self.calls = self.calls, []
        return calls


def contract_fields(model: Any) -> list[str]:
    """A contract's field names as they appear on the wire (its aliases), from the model itself,
    so a field added to the contract is fuzzed without anyone updating a list."""
    return [field.alias or name for name, field in model.model_fields.items()]
