"""``.local/env``, which ``up`` writes: after ``source .local/env`` in a fresh shell, the commands the
docs show next (``aws``, ``configpipe``) are found, and are the venv's."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

from configpipe_tools.local.runner import client_env_file

#: A fresh shell's PATH: system directories only, no venv (neither ``aws`` nor ``configpipe`` is there).
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"


def source_and_run(env_file: Path, command: str) -> list[str]:
    result = subprocess.run(
        ["bash", "-c", f"source {env_file} && {command}"],
        env={"PATH": FRESH_PATH, "HOME": str(env_file.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_sourcing_it_puts_the_venv_bin_first_on_path(tmp_path: Path) -> None:
    # Given the env file `up` writes
    env_file = tmp_path / "env"
    env_file.write_text(client_env_file({"CONFIGPIPE_STACK": "ConfigPipe"}))

    # When a fresh shell sources it and looks for the commands the docs use
    found = source_and_run(env_file, "command -v configpipe aws && echo $PATH")

    # Then both come from this interpreter's scripts directory, which is first on PATH
    scripts = Path(sysconfig.get_path("scripts")).absolute()
    assert found == [str(scripts / "configpipe"), str(scripts / "aws"), f"{scripts}:{FRESH_PATH}"]


def test_the_path_is_absolute_and_the_values_survive_the_shell(tmp_path: Path) -> None:
    # Given a relative scripts directory and a value the shell would split or expand
    env_file = tmp_path / "env"
    env_file.write_text(client_env_file({"ODD": "a b $HOME 'q'"}, scripts_dir=Path("rel/bin")))

    # When it is sourced from another directory
    seen = source_and_run(env_file, 'cd / && echo "$ODD" && echo "${PATH%%:*}"')

    # Then the value is exactly as given and PATH names the directory absolutely
    assert seen == ["a b $HOME 'q'", str(Path("rel/bin").absolute())]
