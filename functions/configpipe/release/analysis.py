"""Release analysis (issue 16): judge a traffic step by the two versions' own metrics.

Pure: given what each version measured over the step's window (:class:`VersionFigures`, read by
:mod:`configpipe.release.version_metrics`), :func:`judge` returns the step's
:class:`~configpipe.release.contracts.AnalysisVerdict` — every gate's figures and one verdict:

* **fail** if any gate's candidate value is above its limit (``maxValue``, or the baseline's value
  plus ``maxIncreasePercent`` %) — the release rolls back exactly as on an alarm;
* else **inconclusive** if either version served fewer than ``minInvocations`` invocations in the
  window, or a gate has no data — the step is held;
* else **pass**.

Error rate is computed here from plain sums (100 · Errors / Invocations) rather than with
CloudWatch metric math, so the same code runs on moto, which has no metric math for
GetMetricStatistics. A count metric (errors, throttles, a custom Sum/SampleCount) with no
datapoint is 0 — CloudWatch publishes nothing for a minute without the event; every other
statistic with no datapoint is "no data".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from configpipe.release.contracts import (
    AnalysisGate,
    AnalysisMetric,
    AnalysisVerdict,
    GateResult,
    ReleaseAnalysis,
    Verdict,
)

#: Statistics where "no datapoint" means zero events rather than "unknown".
COUNT_STATISTICS = frozenset({"Sum", "SampleCount"})


@dataclass(frozen=True)
class VersionFigures:
    """What one version measured over a window. None = CloudWatch returned no datapoint."""

    version: str
    invocations: float = 0.0
    errors: float | None = None
    throttles: float | None = None
    duration_average: float | None = None
    duration_p50: float | None = None
    duration_p99: float | None = None
    #: Custom gates' values, by gate label.
    custom: dict[str, float | None] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        """Errors per 100 invocations; None without invocations (a rate of nothing is unknown)."""
        if self.invocations <= 0:
            return None
        return round(100.0 * (self.errors or 0.0) / self.invocations, 6)

    def value(self, gate: AnalysisGate) -> float | None:
        metric = gate.metric
        if metric is AnalysisMetric.ERRORS:
            return self.errors or 0.0
        if metric is AnalysisMetric.ERROR_RATE:
            return self.error_rate
        if metric is AnalysisMetric.THROTTLES:
            return self.throttles or 0.0
        if metric is AnalysisMetric.DURATION_AVERAGE:
            return self.duration_average
        if metric is AnalysisMetric.DURATION_P50:
            return self.duration_p50
        if metric is AnalysisMetric.DURATION_P99:
            return self.duration_p99
        found = self.custom.get(gate.label)
        if found is None and gate.statistic in COUNT_STATISTICS:
            return 0.0
        return found


def _limit(gate: AnalysisGate, baseline: float | None) -> float | None:
    if gate.max_value is not None:
        return gate.max_value
    if baseline is None or gate.max_increase_percent is None:
        return None
    return round(baseline * (1.0 + gate.max_increase_percent / 100.0), 6)


def judge_gate(gate: AnalysisGate, candidate: VersionFigures, baseline: VersionFigures) -> GateResult:
    """One gate, assuming both versions had enough traffic."""
    mine, theirs = candidate.value(gate), baseline.value(gate)
    limit = _limit(gate, theirs)
    if mine is None or limit is None:
        missing = "candidate" if mine is None else "baseline"
        return GateResult(
            gate=gate.label,
            verdict=Verdict.INCONCLUSIVE,
            candidate=mine,
            baseline=theirs,
            limit=limit,
            message=f"no {missing} data",
        )
    passed = mine <= limit
    how = "≤" if passed else ">"
    shown_baseline = "none" if theirs is None else f"{theirs:g}"
    return GateResult(
        gate=gate.label,
        verdict=Verdict.PASS if passed else Verdict.FAIL,
        candidate=mine,
        baseline=theirs,
        limit=limit,
        message=f"candidate {mine:g} {how} limit {limit:g} (baseline {shown_baseline})",
    )


def judge(
    analysis: ReleaseAnalysis,
    candidate: VersionFigures,
    baseline: VersionFigures,
    *,
    window_start: datetime,
    window_end: datetime,
    step_percent: float,
) -> AnalysisVerdict:
    """The step's verdict: fail beats inconclusive beats pass."""
    enough = min(candidate.invocations, baseline.invocations) >= analysis.min_invocations
    if enough:
        gates = [judge_gate(gate, candidate, baseline) for gate in analysis.gates]
    else:
        message = (
            f"too little traffic: candidate {candidate.invocations:g}, baseline "
            f"{baseline.invocations:g} invocations; {analysis.min_invocations} each needed"
        )
        gates = [
            GateResult(
                gate=gate.label,
                verdict=Verdict.INCONCLUSIVE,
                candidate=candidate.value(gate),
                baseline=baseline.value(gate),
                limit=_limit(gate, baseline.value(gate)),
                message=message,
            )
            for gate in analysis.gates
        ]
    verdicts = {g.verdict for g in gates}
    overall = (
        Verdict.FAIL
        if Verdict.FAIL in verdicts
        else Verdict.INCONCLUSIVE
        if Verdict.INCONCLUSIVE in verdicts
        else Verdict.PASS
    )
    return AnalysisVerdict(
        verdict=overall,
        window_start=window_start,
        window_end=window_end,
        candidate_version=candidate.version,
        baseline_version=baseline.version,
        candidate_invocations=candidate.invocations,
        baseline_invocations=baseline.invocations,
        step_percent=step_percent,
        gates=gates,
    )


def unreadable(
    analysis: ReleaseAnalysis,
    error: str,
    *,
    candidate_version: str,
    baseline_version: str,
    window_start: datetime,
    window_end: datetime,
    step_percent: float,
) -> AnalysisVerdict:
    """The verdict when CloudWatch could not be read: inconclusive (the step is held, and past the
    limit the release pauses for a person), never a pass on figures nobody saw."""
    return AnalysisVerdict(
        verdict=Verdict.INCONCLUSIVE,
        window_start=window_start,
        window_end=window_end,
        candidate_version=candidate_version,
        baseline_version=baseline_version,
        candidate_invocations=0.0,
        baseline_invocations=0.0,
        step_percent=step_percent,
        gates=[
            GateResult(gate=gate.label, verdict=Verdict.INCONCLUSIVE, message=f"metrics unreadable: {error}")
            for gate in analysis.gates
        ],
    )


def summary(verdict: AnalysisVerdict) -> str:
    """A one-line reason naming the gates that decided the verdict (for outcomes and logs)."""
    deciding = [g for g in verdict.gates if g.verdict == verdict.verdict] or verdict.gates
    return f"analysis {verdict.verdict.value}: " + "; ".join(f"{g.gate}: {g.message}" for g in deciding)
