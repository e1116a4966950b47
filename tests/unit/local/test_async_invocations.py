"""The local runner's asynchronous invocation queue runs as many queued events at once as the
function may have execution environments, as Lambda does: a slow event does not hold up the
others. Against the emulator's own SQS, over HTTP; the function is a stand-in runtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from configpipe_tools.local.provision import aws_client
from configpipe_tools.local.sandbox import FunctionSpec, InvocationResult
from configpipe_tools.local.server import EmulatorServer
from configpipe_tools.local.sources import AsyncInvocations, Destinations


class RendezvousRuntime:
    """Each invocation returns only once ``parties`` invocations are running at the same time."""

    def __init__(self, parties: int) -> None:
        self.spec = FunctionSpec(
            logical_id="Fn",
            name="fn",
            arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
            handler="app.handler",
            environment={},
            async_retry_attempts=0,
        )
        self._barrier = threading.Barrier(parties, timeout=10)
        self._lock = threading.Lock()
        self.outcomes: list[bool] = []

    def invoke(self, payload: bytes, *, invoked_arn: str | None = None) -> InvocationResult:
        try:
            self._barrier.wait()
            ok = True
        except threading.BrokenBarrierError:
            ok = False
        with self._lock:
            self.outcomes.append(ok)
        return InvocationResult(request_id="r", ok=ok, error=None if ok else {"errorMessage": "alone"})


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


def test_queued_events_run_concurrently_up_to_the_functions_concurrency(emulator: EmulatorServer) -> None:
    # Given three events on a function's async queue and a function that may run 3 at once
    def client(service: str) -> Any:
        return aws_client(service, emulator.url)

    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="fn-async")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"n": {i}}}')
    runtime = RendezvousRuntime(parties=3)
    poller = AsyncInvocations(
        runtime,  # type: ignore[arg-type]
        queue_url,
        client,
        Destinations(client, lambda *_: None),
        concurrency=3,
    )
    # When the poller runs them
    poller.start()
    try:
        deadline = time.monotonic() + 60
        while len(runtime.outcomes) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
        poller.join()
    # Then all three were running at once (one at a time, each would wait alone and fail)
    assert runtime.outcomes == [True, True, True]
