"""``up --keep-state``: a restart keeps history, values and secrets, and replays nothing; without
the flag ``up`` says that everything is lost when it stops (issue 15, item 4)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    REPO,
    START_DEADLINE,
    LocalStack,
    _capture_bus,
    eventually,
    free_port,
    start_up,
    stop_up,
)

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"
#: ``up`` waits for no test: a restart must find its saved state whatever the machine's load
WAIT = 60.0


@contextmanager
def running(state_dir: Path, *options: str) -> Iterator[tuple[LocalStack, str]]:
    port = free_port()
    process, banner = start_up(state_dir, port, "--no-demo-fixtures", *options)
    outputs = json.loads((state_dir / "outputs.json").read_text())
    stack = LocalStack(f"http://127.0.0.1:{port}", state_dir, outputs, bus=None, process=process)  # type: ignore[arg-type]
    try:
        stack.bus = _capture_bus(stack)
        yield stack, banner
    finally:
        stop_up(process)


def put_secret(local: LocalStack, key: str, secret: str) -> str:
    """A sensitive put as the CLI sends it: encrypted with the stack's secrets key."""
    ciphertext = local.client("kms").encrypt(
        KeyId=local.outputs["SecretsKeyArn"],
        Plaintext=json.dumps(secret).encode(),
        EncryptionContext={"configpipe:scope": f"checkout/development/{key}"},
    )["CiphertextBlob"]
    return local.put_change(
        CHECKOUT,
        service="checkout",
        key=key,
        sensitive=True,
        encryptedValue=base64.b64encode(ciphertext).decode(),
    )


def secret_value(local: LocalStack, key: str) -> str | None:
    try:
        stored = local.client("secretsmanager").get_secret_value(
            SecretId=f"configpipe/checkout/development/{key}"
        )
    except local.client("secretsmanager").exceptions.ResourceNotFoundException:
        return None
    return str(json.loads(stored["SecretString"]))


def versions(local: LocalStack, key: str) -> list[int]:
    items = local.change_log_items(f"KEY#checkout#development#{key}")
    return sorted(int(i["version"]["N"]) for i in items if i["sk"]["S"].startswith("V#"))


@pytest.mark.long  # make test-long: two pipeline starts, about a minute
def test_keep_state_keeps_history_values_and_secrets_across_a_restart(tmp_path: Path, unique: str) -> None:
    state_dir = tmp_path / "local"
    key, token = f"limit-{unique}", f"token-{unique}"
    first_changes: list[str] = []
    # Given a pipeline started with --keep-state: a key at version 2, a secret at version 2
    with running(state_dir, "--keep-state") as (first, banner):
        assert "kept: nothing saved yet" in banner
        for value in (1, 2):
            first_changes.append(first.put_change(CHECKOUT, service="checkout", key=key, value=value))
            eventually(lambda v=value: first.parameter("checkout", "development", key) == v, timeout=WAIT)
        for secret in (f"old-{unique}", f"new-{unique}"):
            first_changes.append(put_secret(first, token, secret))
            eventually(
                lambda s=secret: secret_value(first, token) == s, timeout=WAIT, what=f"secret {secret}"
            )
    saved = state_dir / "emulator-state.json"
    assert saved.stat().st_mode & 0o777 == 0o600, "it holds Secrets Manager's values: the owner's only"
    tables = json.dumps(json.loads(saved.read_text())["tables"])
    assert f"new-{unique}" not in tables, "the change log is saved as stored: secret values as ciphertext"

    # When `up --keep-state` starts again
    with running(state_dir, "--keep-state") as (second, banner):
        # Then it says what it restored, and history, values and the secret are back
        assert "kept: restored" in banner
        assert second.parameter("checkout", "development", key) == 2
        assert versions(second, key) == [1, 2]
        assert secret_value(second, token) == f"new-{unique}"

        # And the history goes on: a compare-and-set on version 2 is version 3
        second.put_change(CHECKOUT, service="checkout", key=key, value=3, expectedVersion=2)
        applied = eventually(
            lambda: (a := second.applied("checkout", "development", key)) and int(a["version"]) == 3 and a,
            timeout=WAIT,
            what="version 3 applied",
        )
        assert applied and second.parameter("checkout", "development", key) == 3

        # And a secret rolls back to a version saved before the restart: its ciphertext still
        # decrypts (the stack's key kept its id and material)
        second.put_change(CHECKOUT, service="checkout", key=token, operation="rollback", toVersion=1)
        eventually(
            lambda: secret_value(second, token) == f"old-{unique}", timeout=WAIT, what="secret rolled back"
        )

        # And the restore replayed nothing: no function saw the first run's changes again
        logs = second.logs()
        assert [c for c in first_changes if c in logs] == []

    # And without --keep-state `up` starts empty and says so
    with running(state_dir) as (third, banner):
        assert "NOT kept: every change is lost when `up` stops" in banner
        assert "emulator-state.json is ignored" in banner
        assert third.parameter("checkout", "development", key) is None


def test_an_unreadable_saved_state_stops_up_with_code_5_and_is_left_as_it_is(tmp_path: Path) -> None:
    # Given a state file that is not one (a truncated copy, say)
    state_dir = tmp_path / "local"
    state_dir.mkdir()
    saved = state_dir / "emulator-state.json"
    saved.write_text('{"format": 1, "tables": {')

    # When `up --keep-state` starts on it
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "configpipe_tools.local",
            "up",
            "--keep-state",
            "--state-dir",
            str(state_dir),
            "--port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=START_DEADLINE,
    )

    # Then it stops with code 5 and says how to go on, and the file is untouched
    assert result.returncode == 5, result.stdout + result.stderr
    assert f"error: {saved} is not a saved state" in result.stderr
    assert "move it away to start empty" in result.stderr
    assert saved.read_text() == '{"format": 1, "tables": {'
