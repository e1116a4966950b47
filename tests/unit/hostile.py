"""Hypothesis strategies for hostile input: the twins of ``configpipe_tools.harness.hostile``
(which scripts/fuzz.py uses for volume). The whole Unicode range including lone surrogates
(``st.text()``'s default alphabet leaves them out; ``st.characters(codec=None,
categories=None)`` does not), every JSON type, huge strings and objects, deep nesting."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from configpipe_tools.harness.hostile import MAX_NESTING

any_char = st.characters(codec=None, categories=None)
any_text = st.text(alphabet=any_char, max_size=24)
lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)


def _nest(depth_and_leaf: tuple[int, Any]) -> Any:
    depth, value = depth_and_leaf
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
    | lone_surrogate
)
#: 100 KB: a repeated chunk keeps generation cheap.
huge_text = any_text.map(lambda chunk: ((chunk or "x") * 100_000)[:100_000])
deep = st.tuples(st.integers(50, MAX_NESTING), scalars).map(_nest)
wide = st.integers(1_000, 5_000).map(lambda n: {f"f{i}": i for i in range(n)})
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)
hostile_values = st.one_of(json_values, json_values, json_values, huge_text, deep, wide)


@st.composite
def mutated(draw: Any, valid: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with some fields dropped or replaced by anything, and unknown fields added."""
    out = dict(valid)
    for name in draw(st.lists(st.sampled_from(sorted(valid)), min_size=1, max_size=4, unique=True)):
        if draw(st.booleans()):
            out.pop(name, None)
        else:
            out[name] = draw(hostile_values)
    if draw(st.booleans()):
        out[draw(any_text)] = draw(hostile_values)
    return out


@st.composite
def broken_envelopes(draw: Any, event: dict[str, Any]) -> Any:
    """Not an object at all, or the envelope with a field missing or of any type."""
    if draw(st.booleans()):
        return draw(json_values)
    out = dict(event)
    name = draw(st.sampled_from(sorted(event)))
    if draw(st.booleans()):
        out.pop(name)
    else:
        out[name] = draw(json_values)
    return out
