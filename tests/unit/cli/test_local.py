"""``configpipe local up``: the CLI forwards to ``python -m configpipe_tools.local up`` without starting
anything itself, and imports the local runner only when ``up`` runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from configpipe_tools.cli.main import app


def test_local_up_help_works_through_the_cli() -> None:
    result = CliRunner().invoke(app, ["local", "up", "--help"])

    assert result.exit_code == 0, result.output
    for option in (
        "--host",
        "--port",
        "--template",
        "--resynth",
        "--state-dir",
        "--keep-state",
        "--retry-delay",
    ):
        assert option in result.output
    assert "local" in CliRunner().invoke(app, ["--help"]).output


@pytest.mark.parametrize(
    ("args", "forwarded"),
    [
        ("", "up"),  # the defaults stay configpipe_tools.local's
        (
            "--host 0.0.0.0 --port 0 --template cdk.out --resynth",
            "up --host 0.0.0.0 --port 0 --template cdk.out --resynth",
        ),
        (
            "--state-dir state --retry-delay 0.5 --schedule-speedup 60 --no-demo-fixtures",
            "up --state-dir state --retry-delay 0.5 --schedule-speedup 60.0 --no-demo-fixtures",
        ),
        ("--state-dir state --keep-state", "up --state-dir state --keep-state"),
    ],
)
def test_local_up_forwards_its_options_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, args: str, forwarded: str
) -> None:
    import configpipe_tools.local.__main__ as local_main

    seen: list[list[str]] = []

    def fake_main(argv: list[str] | None = None) -> int:
        seen.append(list(argv or []))
        return 3  # e.g. the port is taken

    monkeypatch.setattr(local_main, "main", fake_main)
    result = CliRunner().invoke(app, ["local", "up", *args.split()])

    assert result.exit_code == 3, result.output
    assert seen == [forwarded.split()]


def test_the_cli_does_not_import_the_local_runner_to_start() -> None:
    code = (
        "import sys, configpipe_tools.cli.main; "
        "print(any(m.startswith('configpipe_tools.local') for m in sys.modules))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert imported.stdout.strip() == "False"
