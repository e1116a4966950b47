"""Metric names live in one place: every ``add_metric`` in the runtime names its metric through a
constant of ``configpipe.metrics``, and that module's lists hold exactly the metrics emitted.
(The dashboard is built from those lists; tests/infrastructure/test_operations.py checks it.)"""

from __future__ import annotations

import ast
from pathlib import Path

from configpipe import metrics

RUNTIME = Path(__file__).resolve().parents[2] / "functions"


def _imported_metric_constants(tree: ast.Module) -> dict[str, str]:
    """Local name → constant name, for ``from configpipe.metrics import X [as Y]``."""
    return {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "configpipe.metrics"
        for alias in node.names
    }


def _module_dicts(tree: ast.Module) -> dict[str, ast.Dict]:
    """Module-level ``NAME = {...}`` (a handler may map outcomes to metric names)."""
    found = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(value, ast.Dict):
            found.update({t.id: value for t in targets if isinstance(t, ast.Name)})
    return found


def _metric_names(expr: ast.expr, tree: ast.Module, where: str) -> tuple[set[str], list[str]]:
    """The metric names ``expr`` can evaluate to, and what is wrong with how it names them."""
    constants = _imported_metric_constants(tree)
    if isinstance(expr, ast.Name) and expr.id in constants:
        return {getattr(metrics, constants[expr.id])}, []
    if isinstance(expr, ast.IfExp):
        names_a, errors_a = _metric_names(expr.body, tree, where)
        names_b, errors_b = _metric_names(expr.orelse, tree, where)
        return names_a | names_b, errors_a + errors_b
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
        mapping = _module_dicts(tree).get(expr.value.id)
        if mapping is not None:
            names: set[str] = set()
            errors: list[str] = []
            for value in mapping.values:
                n, e = _metric_names(value, tree, where)
                names |= n
                errors += e
            return names, errors
    return set(), [f"{where}: metric named by {ast.unparse(expr)!r}, not a configpipe.metrics constant"]


def emitted_metrics() -> tuple[set[str], list[str]]:
    names: set[str] = set()
    errors: list[str] = []
    for path in sorted(RUNTIME.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in ast.walk(tree):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "add_metric"
            ):
                continue
            where = f"{path.relative_to(RUNTIME)}:{call.lineno}"
            named = [k.value for k in call.keywords if k.arg == "name"] or call.args[:1]
            if not named:
                errors.append(f"{where}: add_metric without a name")
                continue
            n, e = _metric_names(named[0], tree, where)
            names |= n
            errors += e
    return names, errors


def test_every_add_metric_names_its_metric_through_a_configpipe_metrics_constant() -> None:
    names, errors = emitted_metrics()
    assert names, "the scan found no add_metric call: it is looking in the wrong place"
    assert errors == []


def test_the_metric_lists_are_exactly_what_the_functions_emit() -> None:
    names, _ = emitted_metrics()
    assert set(metrics.ALL_METRICS) == names
    assert len(metrics.ALL_METRICS) == len(set(metrics.ALL_METRICS))


def test_the_scan_flags_a_metric_named_by_a_literal() -> None:
    tree = ast.parse('metrics.add_metric(name="Sneaky", unit="Count", value=1)')
    call = tree.body[0].value  # type: ignore[attr-defined]
    _, errors = _metric_names(call.keywords[0].value, tree, "example.py:1")
    assert errors and "Sneaky" in errors[0]
