"""``bench-results.json``: every figure ``make bench`` prints, by name, so a run can be
compared with the last one (and the README's figures come from one file).

Each benchmark script calls :func:`record` with the figures it printed; the file is merged,
not rewritten, so the scripts can run in any order or alone. Every entry says which script
measured it, when, and the machine's 1-minute load average at the time (the machine the
figures come from is often shared: ratios and call counts are the solid part).

    {"figures": {"cold_start.validator.ratio": {"value": 1.21, "unit": "x", "script": ..., ...}}}
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "bench-results.json"


def record(script: str, figures: dict[str, tuple[float, str]], path: Path = RESULTS_FILE) -> None:
    """Merge ``figures`` (name → (value, unit)) into ``path``."""
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = {}
    stamp = {
        "script": script,
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "load1m": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
    }
    table = current.setdefault("figures", {})
    for name, (value, unit) in figures.items():
        table[name] = {"value": round(value, 4) if isinstance(value, float) else value, "unit": unit, **stamp}
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    print(f"({len(figures)} figures written to {path.name})")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
