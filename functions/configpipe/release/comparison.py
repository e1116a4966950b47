"""Both versions of a release side by side (issue 16; ``configpipe release compare``).

The window is the current step's for an active release (as its analysis would judge it now)
and the whole time traffic was split for an ended one (first shift until 100 %, or until it
ended). With an analysis, the gates are judged on those figures; without, the figures alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from configpipe.release.analysis import VersionFigures, judge
from configpipe.release.contracts import AnalysisVerdict
from configpipe.release.model import ReleaseState
from configpipe.release.version_metrics import VersionMetrics


@dataclass(frozen=True)
class Comparison:
    state: ReleaseState
    window_start: datetime
    window_end: datetime
    candidate: VersionFigures
    baseline: VersionFigures
    verdict: AnalysisVerdict | None

    def to_dict(self) -> dict[str, Any]:
        def figures(f: VersionFigures) -> dict[str, Any]:
            return {
                "version": f.version,
                "invocations": f.invocations,
                "errors": f.errors or 0.0,
                "errorRate": f.error_rate,
                "throttles": f.throttles or 0.0,
                "durationAverage": f.duration_average,
                "durationP50": f.duration_p50,
                "durationP99": f.duration_p99,
                **({"custom": f.custom} if f.custom else {}),
            }

        return {
            "releaseId": self.state.release_id,
            "function": self.state.function,
            "alias": self.state.alias,
            "status": self.state.status.value,
            "percent": self.state.percent,
            "windowStart": self.window_start.isoformat(),
            "windowEnd": self.window_end.isoformat(),
            "baseline": figures(self.baseline),
            "candidate": figures(self.candidate),
            "analysis": self.verdict.to_detail() if self.verdict else None,
        }


def window(state: ReleaseState, now: datetime) -> tuple[datetime, datetime]:
    if state.status.terminal:
        start = state.shift_started_at or state.requested_at
        end = state.traffic_completed_at or state.ended_at or now
    else:
        start = state.step_started_at or state.shift_started_at or state.requested_at
        end = now
    return start, max(end, start + timedelta(seconds=1))


def compare(state: ReleaseState, metrics: VersionMetrics, now: datetime) -> Comparison:
    start, end = window(state, now)
    gates = state.analysis.gates if state.analysis else []
    candidate, baseline = (
        metrics.figures(state.function, state.alias, version, gates, start, end, percentiles=True)
        for version in (state.target_version, state.previous.function_version)
    )
    verdict = (
        judge(
            state.analysis,
            candidate,
            baseline,
            window_start=start,
            window_end=end,
            step_percent=state.percent,
        )
        if state.analysis
        else None
    )
    return Comparison(state, start, end, candidate, baseline, verdict)
