"""The synth cache key (tooling/configpipe_tools/local/template.py) covers everything the stack
reads: a stale key would hand the local pipeline and the test suite an old template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from configpipe_tools.local.template import SYNTH_INPUTS, _inputs_digest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files the synth reads, plus files it does not."""
    for name in SYNTH_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, tmp_path / name)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("notes")
    return tmp_path


def test_editing_a_runtime_module_the_stack_imports_changes_the_key(checkout: Path) -> None:
    # Given the stack imports the runtime's stream filter (stacks/ reads configpipe.streams)
    module = checkout / "functions" / "configpipe" / "streams.py"
    assert "configpipe.streams" in "".join(p.read_text() for p in (checkout / "stacks").rglob("*.py"))
    before = _inputs_digest(checkout)

    # When the module changes
    module.write_text(module.read_text() + "\n# a change\n")

    # Then the key changes
    assert _inputs_digest(checkout) != before


@pytest.mark.parametrize(
    "name",
    ["app.py", "cdk.json", "requirements.txt", "package-lock.json", "layers/openfeature/requirements.txt"],
)
def test_editing_any_synth_input_changes_the_key(checkout: Path, name: str) -> None:
    before = _inputs_digest(checkout)
    with (checkout / name).open("a") as file:
        file.write("\n")
    assert _inputs_digest(checkout) != before


def test_files_the_synth_does_not_read_leave_the_key_alone(checkout: Path) -> None:
    before = _inputs_digest(checkout)
    (checkout / "docs" / "notes.md").write_text("other notes")
    (checkout / "functions" / "configpipe" / "__pycache__").mkdir(exist_ok=True)
    (checkout / "functions" / "configpipe" / "__pycache__" / "streams.cpython-311.pyc").write_bytes(b"x")
    assert _inputs_digest(checkout) == before
