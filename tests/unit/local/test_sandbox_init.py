"""The local runner's execution environments keep Lambda's Init phase apart from the invocation:
the handler module's import runs under its own limit, not the function's timeout; an init that
outlasts that limit is retried at the invocation, inside the timeout; and concurrent cold starts
of one function initialise one environment at a time. Real worker processes, with a handler
module written for each test."""

from __future__ import annotations

import itertools
import json
import textwrap
import threading
from pathlib import Path

from configpipe_tools.local.sandbox import FunctionRuntime, FunctionSpec, InvocationResult


def runtime_for(tmp_path: Path, module: str, *, timeout: int, **options: float) -> FunctionRuntime:
    """A function whose handler is ``handler`` in a module with ``module`` as its source."""
    (tmp_path / "fn_code.py").write_text(textwrap.dedent(module))
    spec = FunctionSpec(
        logical_id="Fn",
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        handler="fn_code.handler",
        environment={"MARKS": str(tmp_path)},
        timeout=timeout,
    )
    return FunctionRuntime(
        spec=spec,
        base_environment={},
        task_root=tmp_path,
        log_file=tmp_path / "fn.log",
        **options,  # type: ignore[arg-type]
    )


def test_a_cold_start_longer_than_the_timeout_does_not_time_out_the_invocation(tmp_path: Path) -> None:
    # Given a function with a 1 s timeout whose module takes 1.5 s to import
    runtime = runtime_for(
        tmp_path,
        """
        import time
        time.sleep(1.5)

        def handler(event, context):
            return {"echo": event, "remaining_ms": context.get_remaining_time_in_millis()}
        """,
        timeout=1,
    )
    try:
        # When it is invoked cold
        result = runtime.invoke(b'{"n": 1}')
    finally:
        runtime.close()
    # Then the import ran in the Init phase, outside the timeout, and the invocation had its
    # whole second
    assert result.ok, result.error
    answer = json.loads(result.payload)
    assert answer["echo"] == {"n": 1}
    assert answer["remaining_ms"] > 500
    assert result.init_duration_ms is not None and result.init_duration_ms >= 1500
    assert "Init Duration:" in (tmp_path / "fn.log").read_text()


def test_an_init_past_its_limit_is_retried_at_the_invocation_inside_the_timeout(tmp_path: Path) -> None:
    # Given a module whose first import hangs past the init limit (later ones are quick), and a
    # function timeout long enough for a quick init
    runtime = runtime_for(
        tmp_path,
        """
        import os, time
        mark = os.path.join(os.environ["MARKS"], "first-init")
        if not os.path.exists(mark):
            open(mark, "w").close()
            time.sleep(30)

        def handler(event, context):
            return "ran"
        """,
        timeout=5,
        init_timeout=1.0,
    )
    try:
        # When it is invoked cold
        result = runtime.invoke(b"{}")
    finally:
        runtime.close()
    # Then the hung init was cut at its limit, and a fresh environment initialised and ran
    # within the function's timeout (Lambda's suppressed init)
    assert result.ok, result.error
    assert json.loads(result.payload) == "ran"
    log = (tmp_path / "fn.log").read_text()
    assert "Phase: init\tStatus: timeout" in log


def test_an_init_that_fails_answers_the_import_error_and_is_retried_fresh(tmp_path: Path) -> None:
    # Given a module that fails to import until a mark file exists
    runtime = runtime_for(
        tmp_path,
        """
        import os
        if not os.path.exists(os.path.join(os.environ["MARKS"], "fixed")):
            raise RuntimeError("broken at import")

        def handler(event, context):
            return "ran"
        """,
        timeout=3,
    )
    try:
        # When it is invoked, then fixed and invoked again
        broken = runtime.invoke(b"{}")
        (tmp_path / "fixed").touch()
        fixed = runtime.invoke(b"{}")
    finally:
        runtime.close()
    # Then the first answers Lambda's import error (init tried in the Init phase and again at
    # the invocation), and the broken environment was not kept
    assert not broken.ok
    assert broken.error is not None and broken.error["errorType"] == "Runtime.ImportModuleError"
    assert "broken at import" in broken.error["errorMessage"]
    log = (tmp_path / "fn.log").read_text()
    assert "Phase: init\tStatus: error" in log and "Phase: invoke\tStatus: error" in log
    assert fixed.ok and json.loads(fixed.payload) == "ran"


def test_the_invocation_itself_is_still_bound_by_the_functions_timeout(tmp_path: Path) -> None:
    # Given a quick import and a handler slower than the 1 s timeout
    runtime = runtime_for(
        tmp_path,
        """
        import time

        def handler(event, context):
            time.sleep(5)
        """,
        timeout=1,
    )
    try:
        result = runtime.invoke(b"{}")
    finally:
        runtime.close()
    assert not result.ok
    assert result.error is not None and result.error["errorType"] == "Sandbox.Timedout"


def test_concurrent_cold_starts_of_one_function_initialise_one_environment_at_a_time(
    tmp_path: Path,
) -> None:
    # Given a cold function that may run 3 environments, whose import records when it ran
    runtime = runtime_for(
        tmp_path,
        """
        import os, time
        began = time.time()
        time.sleep(0.4)
        with open(os.path.join(os.environ["MARKS"], "inits"), "a") as f:
            f.write(f"{began} {time.time()}\\n")

        def handler(event, context):
            time.sleep(0.2)
            return event
        """,
        timeout=3,
        max_concurrency=3,
    )
    results: list[InvocationResult] = []
    lock = threading.Lock()

    def invoke(n: int) -> None:
        result = runtime.invoke(json.dumps(n).encode())
        with lock:
            results.append(result)

    # When three events arrive at once
    threads = [threading.Thread(target=invoke, args=(n,)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        runtime.close()
    # Then all ran, and no two inits overlapped
    assert len(results) == 3 and all(r.ok for r in results), [r.error for r in results]
    assert sorted(json.loads(r.payload) for r in results) == [0, 1, 2]
    inits = sorted(tuple(map(float, line.split())) for line in (tmp_path / "inits").read_text().splitlines())
    assert 1 <= len(inits) <= 3
    for (_, end), (start, _) in itertools.pairwise(inits):
        assert start >= end, f"inits overlapped: {inits}"
