"""The suite's own rules, checked on its source: no test changes this process's environment.

Background threads (validator pumps, release functions, pollers) build boto3 clients, and botocore
iterates os.environ while doing so; a test writing it at the same time fails one run in N
(``RuntimeError: dictionary changed size during iteration``). What depends on the environment is
tested through a settings model given a mapping (``Settings.from_environ(mapping)``) or a child
process with an environment of its own (``cli_process`` in tests/unit/cli/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
#: the one place allowed to set the environment: at import, before any thread exists
ALLOWED = {TESTS / "conftest.py"}
WRITES = re.compile(
    r"monkeypatch\.(setenv|delenv)\(|os\.environ\[[^]]+\]\s*=|os\.environ\.(update|pop|setdefault|clear)\("
    r"|\.invoke\([^)]*\benv="
)


def test_no_test_changes_the_process_environment() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path not in ALLOWED and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if WRITES.search(line) and "``" not in line  # (a docstring naming the hazard is fine)
    ]
    assert offenders == []
