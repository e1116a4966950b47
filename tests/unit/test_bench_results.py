"""The README's measured figures are the ones in ``bench-results.json`` (written by ``make
bench``), never typed in by hand; and the file says, for each figure, where it came from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_figures_are_rendered_from_bench_results() -> None:
    check = subprocess.run(
        [sys.executable, "scripts/bench_readme.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_every_figure_names_its_unit_script_and_load() -> None:
    figures = json.loads((REPO / "bench-results.json").read_text())["figures"]
    assert figures
    for name, figure in figures.items():
        assert {"value", "unit", "script", "measuredAt", "load1m"} <= set(figure), name
        assert (REPO / "scripts" / figure["script"]).is_file(), name
