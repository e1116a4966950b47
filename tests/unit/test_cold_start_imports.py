"""What a cold start imports (issue 12): no function loads Powertools' parser, whose import builds
a model of every AWS event source (about a tenth of a cold start); each reads its envelope with
``configpipe.contracts.EventBridgeEnvelope`` instead."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARSER = "aws_lambda_powertools.utilities.parser"
HANDLERS = [
    *sorted(
        f"configpipe.handlers.{path.stem}"
        for path in (REPO / "functions/configpipe/handlers").glob("*.py")
        if path.stem != "__init__"
    ),
    "sample_service.app",
]


def test_no_function_imports_the_powertools_parser() -> None:
    # Each handler imported as Lambda imports it (its own fresh interpreter, LAMBDA_TASK_ROOT set)
    code = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(sys.argv[2]))))"
    )
    loaded = {}
    for module in HANDLERS:
        done = subprocess.run(
            [sys.executable, "-c", code, module, PARSER],
            env={
                "LAMBDA_TASK_ROOT": str(REPO / "functions"),
                "PYTHONPATH": str(REPO / "functions"),
                "AWS_DEFAULT_REGION": "us-east-1",
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
            capture_output=True,
            text=True,
            check=True,
        )
        loaded[module] = json.loads(done.stdout.splitlines()[-1])

    assert len(HANDLERS) >= 8
    assert {module: parser for module, parser in loaded.items() if parser} == {}


def test_the_validator_does_not_load_the_rollout_engine_or_release_code_until_a_change_asks() -> None:
    # Most changes carry no rollout: the engine and the release strategies it builds on (about
    # 60 ms of a validator cold start) load on the first change with a rollout, not at import.
    code = (
        "import json, sys, configpipe.handlers.validator; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:])))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "configpipe.rollout", "configpipe.release"],
        env={
            "LAMBDA_TASK_ROOT": str(REPO / "functions"),
            "PYTHONPATH": str(REPO / "functions"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
