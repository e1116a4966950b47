"""Fan-out wall time against the number of affected services, with a fixed latency injected
into every AWS call the propagator's logic makes (``Invoke`` and ``PutEvents``).

The real :class:`configpipe.fanout.FanOut` runs in-process with a registry of N services, an
invoker that takes ``--latency`` ms per call (what an async Invoke round trip costs) and an
EventBridge client whose ``put_events`` takes the same (the delivery records go through the
real :class:`configpipe.bus.ConfigBus`). No other AWS is involved, so the figure is the
fan-out's own shape: how it scales with N at its configured bound of concurrency. Sizes are
interleaved round by round; medians are printed, and the peak number of calls in flight.

    .venv/bin/python scripts/bench_fanout.py [--latency 50] [--rounds 15] [--bound 64]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench_results import load_average, record

from configpipe.bus import ConfigBus
from configpipe.contracts import ConfigurationUpdated
from configpipe.fanout import MAX_PARALLEL_INVOKES, FanOut
from configpipe.registry import Registry

SIZES = (1, 10, 50, 200)


class InFlight:
    """Counts concurrent calls, and the peak."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.current = self.peak = 0
        self._lock = threading.Lock()

    def call(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(self.latency)
        with self._lock:
            self.current -= 1


class SlowEvents:
    """An EventBridge client whose PutEvents takes ``latency`` and accepts everything."""

    def __init__(self, flight: InFlight) -> None:
        self.flight = flight

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.flight.call()
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def registry(n: int) -> Registry:
    return Registry.model_validate({"services": {f"svc{i:03d}": {} for i in range(n)}})


def update() -> ConfigurationUpdated:
    return ConfigurationUpdated(
        change_id="bench",
        service="global",
        environment="production",
        key="feature.bench",
        operation="put",
        version=1,
        previous_version=None,
        value_hash="sha256:" + "0" * 64,
        value=True,
        value_inline=True,
        parameter_name="/config/global/production/feature.bench",
        author="bench",
        reason="bench",
        applied_at=datetime.now(UTC),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=50, help="ms per Invoke and per PutEvents")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--bound", type=int, default=MAX_PARALLEL_INVOKES, help="max concurrent calls")
    args = parser.parse_args()
    latency = args.latency / 1000
    logging.disable(logging.INFO)  # one log line per fan-out would drown the figures
    announcement = update()
    event = {"detail-type": "ConfigurationUpdated", "detail": announcement.to_detail()}
    walls: dict[int, list[float]] = {n: [] for n in SIZES}
    peaks: dict[int, tuple[int, int]] = {}
    print(f"machine: {load_average()}")
    for round_ in range(args.rounds):
        sizes = SIZES if round_ % 2 == 0 else tuple(reversed(SIZES))
        for n in sizes:
            invokes, puts = InFlight(latency), InFlight(latency)
            services = registry(n)
            fanout = FanOut(
                registry=lambda services=services: services,
                invoker=lambda _name, _payload, invokes=invokes: invokes.call(),
                bus=ConfigBus("bench-bus", client=SlowEvents(puts)),  # type: ignore[arg-type]
                max_parallel=args.bound,
            )
            started = time.perf_counter()
            deliveries = fanout.deliver(announcement, event)
            walls[n].append(time.perf_counter() - started)
            assert len(deliveries) == n
            peaks[n] = (invokes.peak, puts.peak)
    base = statistics.median(walls[1])
    print(
        f"fan-out, {args.latency:.0f} ms per Invoke and PutEvents, bound {args.bound}, {args.rounds} rounds:"
    )
    print(f"{'services':>8} {'wall ms':>8} {'/ wall(1)':>9} {'peak invokes':>12} {'peak PutEvents':>14}")
    figures: dict[str, tuple[float, str]] = {"fanout.bound": (args.bound, "calls")}
    for n in SIZES:
        wall = statistics.median(walls[n])
        print(f"{n:8} {wall * 1000:8.0f} {wall / base:9.2f} {peaks[n][0]:12} {peaks[n][1]:14}")
        figures[f"fanout.wall_{n}_ms"] = (wall * 1000, "ms")
        figures[f"fanout.wall_{n}_over_wall_1"] = (wall / base, "x")
    record("bench_fanout.py", figures)


if __name__ == "__main__":
    main()
