"""Every shell example in README.md and docs/local.md, run as written against the local pipeline.

A new user pastes the docs' commands into a fresh shell; so does this test, so the docs cannot
drift from what works. Per document, its fenced ``bash``, ``sh`` and ``console`` blocks run in
order in ONE bash process (variables and ``cd`` carry over, as in a terminal), under
``set -eo pipefail``: every command must succeed.

Conventions the docs follow (docs/local.md, "The docs are tested"):

* ``console`` blocks: lines starting with ``$ `` are commands (a trailing ``\\`` continues one on
  the next line); every other non-blank line is output the reader is told to expect. Each must
  appear in the block's output, in order; ``…`` stands for any text within a line.
* ``<!-- docs-test: skip (why) -->`` on the line right above a fence skips that block; the
  reason is required (an account, or a long-running command such as ``up`` itself).

The shell starts as a new user's would: a system-only ``PATH`` (no venv), no AWS or configpipe
variables, an empty ``HOME``. Two things differ, both said here rather than hidden: ``.local/`` is
the session pipeline's state directory (so ``source .local/env`` reads the env file that ``up``
wrote for it), and ``PYTHONPATH`` names this checkout's code, so the venv's ``configpipe`` runs the
code under test even where the venv is shared with another checkout.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from configpipe.contracts import ConfigurationChange
from tests.e2e.conftest import REPO, LocalStack

DOCS = ("README.md", "docs/local.md")
#: What a document tells the reader to run before its examples, in prose: the README's run against
#: a deployed stack "and unchanged against the local pipeline" after `source .local/env`.
PRELUDE = {"README.md": "source .local/env"}
SHELL_LANGUAGES = {"bash", "sh", "console"}
SKIP_MARKER = re.compile(r"^<!-- docs-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<info>\S*)\s*$")
#: A fresh user's shell: system directories only; `source .local/env` must add the venv itself.
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"
BLOCK_MARK = "::docs-test-block::"
#: A busy 2-core machine runs the docs' ~40 AWS CLI calls slowly; this only bounds a hang.
DOC_TIMEOUT = 900
#: The release stand-ins `up` creates (configpipe_tools.local.fixtures): alias `live` → version 1.
STANDINS = ("checkout-api", "payments-api", "search-api")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    skip: str | None

    def script(self) -> str:
        """The commands, as bash runs them."""
        if self.language != "console":
            return self.text
        return "\n".join(command for command, _ in console_steps(self.text))

    def expected(self) -> list[str]:
        if self.language != "console":
            return []
        return [line for _, outputs in console_steps(self.text) for line in outputs]

    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    steps: list[tuple[str, list[str]]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            steps[-1] = (steps[-1][0] + "\n" + line, steps[-1][1])
        elif line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            assert steps, f"output before any command in a console block: {line!r}"
            steps[-1][1].append(line.rstrip())
        continuing = (continuing or line.startswith("$ ")) and line.endswith("\\")
    return steps


def shell_blocks(doc: str) -> list[Block]:
    lines = (REPO / doc).read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        language = fence["info"]
        if language in SHELL_LANGUAGES:
            marker = SKIP_MARKER.match(lines[index - 1]) if index else None
            body = "\n".join(lines[index + 1 : end])
            blocks.append(Block(doc, index + 1, language, body, marker["reason"] if marker else None))
        index = end + 1
    return blocks


def matches(expected: str, actual: str) -> bool:
    """``expected`` with ``…`` as a wildcard, against one whole output line."""
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual.rstrip()) is not None


def missing_output(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in ``output``, each searched after the previous match."""
    actual = output.splitlines()
    position, missing = 0, []
    for line in expected:
        found = next((i for i in range(position, len(actual)) if matches(line, actual[i])), None)
        if found is None:
            missing.append(line)
        else:
            position = found + 1
    return missing


def run_blocks(
    blocks: list[Block], state_dir: Path, home: Path, prelude: str = ""
) -> tuple[int, dict[int, str]]:
    """Run the blocks in one bash process; the exit code and each block's output."""
    parts = ["set -eo pipefail", prelude]
    for number, block in enumerate(blocks):
        parts.append(f"printf '\\n{BLOCK_MARK}{number}\\n'")
        parts.append(block.script())
    # `.local/` is where `up` keeps its state; the session's pipeline keeps it in state_dir.
    script = "\n".join(parts).replace(".local/", f"{state_dir}/")
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env={
            "PATH": FRESH_PATH,
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{REPO / 'functions'}:{REPO / 'tooling'}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=DOC_TIMEOUT,
        check=False,
    )
    outputs: dict[int, str] = {}
    current: int | None = None
    for line in result.stdout.splitlines():
        if line.startswith(BLOCK_MARK):
            current = int(line.removeprefix(BLOCK_MARK))
            outputs[current] = ""
        elif current is not None:
            outputs[current] += line + "\n"
    return result.returncode, outputs


@pytest.fixture
def standins_as_up_creates_them(local: LocalStack) -> Iterator[None]:
    """The docs' releases start from the stand-ins as a fresh `up` leaves them (`live` → 1), and
    this test leaves them so for the other tests of the session, which expect the same."""
    reset_standins(local)
    yield
    reset_standins(local)


def reset_standins(local: LocalStack) -> None:
    lam = local.client("lambda")
    for function in STANDINS:
        lam.update_alias(
            FunctionName=function,
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {}},
        )
        # a completed release leaves its beta alias (``live-candidate``) on its target; `up` has none
        for other in lam.list_aliases(FunctionName=function)["Aliases"]:
            if other["Name"] != "live":
                lam.delete_alias(FunctionName=function, Name=other["Name"])


@pytest.mark.usefixtures("standins_as_up_creates_them")
@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.long  # make test-long: every example of a page, about 30 s each
def test_every_shell_example_runs_as_written(local: LocalStack, tmp_path: Path, doc: str) -> None:
    # Given the document's shell examples, minus the few it marks as needing an account or time
    blocks = [b for b in shell_blocks(doc) if b.skip is None]
    assert blocks, f"no shell examples found in {doc}"

    # When they run in order in a fresh shell against the local pipeline
    code, outputs = run_blocks(blocks, local.state_dir, tmp_path, PRELUDE.get(doc, ""))

    # Then every block ran to the end, and printed what the document says it prints
    if code != 0:
        failed = max(outputs) if outputs else 0
        pytest.fail(
            f"{blocks[failed].where()}: the example exited {code}\n--- block ---\n{blocks[failed].text}\n"
            f"--- output ---\n{outputs.get(failed, '')}"
        )
    for number, block in enumerate(blocks):
        output = outputs.get(number, "")
        missing = missing_output(block.expected(), output)
        assert not missing, (
            f"{block.where()}: expected output not printed: {missing}\n--- output ---\n{output}"
        )


@pytest.mark.parametrize("doc", DOCS)
def test_only_a_few_examples_are_skipped_each_with_its_reason(doc: str) -> None:
    skipped = [b for b in shell_blocks(doc) if b.skip is not None]

    assert len(skipped) <= 2, [b.where() for b in skipped]
    assert all(len(b.skip or "") > 10 for b in skipped)


@pytest.mark.parametrize("doc", DOCS)
def test_every_change_the_docs_publish_is_a_valid_contract(doc: str) -> None:
    # PutEvents takes an invalid change without complaint (the pipeline rejects it later, on the
    # bus), so running the example cannot catch one: the README's changeId "4f0c…" was rejected
    # INVALID_CHANGE_ID in silence. Every ConfigurationChange the docs publish must parse.
    changes = [
        json.loads(entry["Detail"])
        for block in shell_blocks(doc)
        for argument in re.findall(r"--entries '([^']*)'", block.text)
        for entry in json.loads(argument)
        if entry["DetailType"] == "ConfigurationChange"
    ]

    assert changes, f"{doc} publishes no change with the AWS CLI"
    for change in changes:
        ConfigurationChange.model_validate(change)


@pytest.mark.parametrize("doc", DOCS)
def test_no_shell_example_hides_under_another_fence(doc: str) -> None:
    # ```shell or ```zsh would be skipped silently: the docs use only these fences
    languages = {m["info"] for line in (REPO / doc).read_text().splitlines() if (m := FENCE.match(line))}

    assert languages <= SHELL_LANGUAGES | {"", "python", "json", "text"}, languages


def test_the_conventions_are_read_as_documented() -> None:
    # A console block: commands after "$ ", continued by "\", and the output expected of each
    steps = console_steps("$ echo a \\\n    b\na b\n\n$ true\n$ printf 'x\\n'\nx\n")

    assert steps == [("echo a \\\n    b", ["a b"]), ("true", []), ("printf 'x\\n'", ["x"])]
    assert matches('{"id": "…", …"version": 1}}', '{"id": "e1", "detail": {"version": 1}}')
    assert not matches("25", "250")
    assert missing_output(["b", "a"], "a\nb\n") == ["a"]
