"""The pure analysis verdict (issue 16) and how CloudWatch datapoints are combined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from configpipe.release.analysis import VersionFigures, judge
from configpipe.release.contracts import AnalysisGate, ReleaseAnalysis
from configpipe.release.version_metrics import _combine, period_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def analysis(*gates: dict[str, object], min_invocations: int = 100) -> ReleaseAnalysis:
    return ReleaseAnalysis.model_validate({"gates": list(gates), "minInvocations": min_invocations})


def verdict(spec: ReleaseAnalysis, candidate: VersionFigures, baseline: VersionFigures) -> str:
    return judge(
        spec, candidate, baseline, window_start=T0, window_end=T0 + timedelta(minutes=5), step_percent=10
    ).verdict.value


def test_fail_beats_inconclusive_beats_pass() -> None:
    spec = analysis({"metric": "errors", "maxValue": 1}, {"metric": "durationP99", "maxIncreasePercent": 10})
    base = VersionFigures("1", invocations=1000, errors=0, duration_p99=None)

    # p99 has no data (inconclusive) but errors are over the limit: fail
    assert verdict(spec, VersionFigures("2", invocations=100, errors=2), base) == "fail"
    # errors fine, p99 unknown: inconclusive
    assert verdict(spec, VersionFigures("2", invocations=100, errors=1), base) == "inconclusive"


def test_relative_limit_is_the_baseline_plus_the_allowed_increase() -> None:
    spec = analysis({"metric": "durationAverage", "maxIncreasePercent": 20})
    base = VersionFigures("1", invocations=1000, duration_average=100.0)

    assert verdict(spec, VersionFigures("2", invocations=100, duration_average=120.0), base) == "pass"
    assert verdict(spec, VersionFigures("2", invocations=100, duration_average=120.1), base) == "fail"


def test_too_little_traffic_on_either_version_is_inconclusive_even_with_bad_figures() -> None:
    spec = analysis({"metric": "errorRate", "maxValue": 1}, min_invocations=100)
    result = judge(
        spec,
        VersionFigures("2", invocations=99, errors=50),
        VersionFigures("1", invocations=5000),
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        step_percent=10,
    )
    assert result.verdict.value == "inconclusive"
    assert result.gates[0].candidate == pytest.approx(100 * 50 / 99, abs=1e-6)
    assert "too little traffic" in result.gates[0].message


def test_count_metrics_without_datapoints_are_zero_but_averages_are_unknown() -> None:
    count = AnalysisGate.model_validate(
        {"metric": "custom", "namespace": "N", "metricName": "M", "statistic": "Sum", "maxValue": 0}
    )
    average = AnalysisGate.model_validate(
        {"metric": "custom", "namespace": "N", "metricName": "M", "statistic": "Average", "maxValue": 0}
    )
    empty = VersionFigures("2", invocations=10)
    assert empty.value(count) == 0.0
    assert empty.value(average) is None
    assert empty.error_rate == 0.0
    assert VersionFigures("2").error_rate is None


@pytest.mark.parametrize(
    "gate",
    [
        {"metric": "errorRate"},  # no threshold
        {"metric": "errorRate", "maxValue": 1, "maxIncreasePercent": 1},  # two
        {"metric": "errorRate", "maxValue": -1},
        {"metric": "errorRate", "maxValue": 1, "namespace": "N"},  # custom-only field
        {"metric": "custom", "maxValue": 1, "namespace": "N", "metricName": "M"},  # no statistic
        {"metric": "custom", "maxValue": 1, "namespace": "N", "metricName": "M", "statistic": "Median"},
        {"metric": "latency", "maxValue": 1},
        {"metric": "errorRate", "maxValue": 1, "typo": 1},
    ],
)
def test_malformed_gates_are_refused(gate: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AnalysisGate.model_validate(gate)


def test_two_datapoints_combine_by_kind_of_statistic() -> None:
    points = [
        {
            "Sum": 10.0,
            "SampleCount": 10.0,
            "Average": 100.0,
            "Maximum": 300.0,
            "ExtendedStatistics": {"p99": 250.0},
        },
        {
            "Sum": 30.0,
            "SampleCount": 30.0,
            "Average": 200.0,
            "Maximum": 400.0,
            "ExtendedStatistics": {"p99": 390.0},
        },
    ]
    assert _combine(points, "Sum") == 40.0
    assert _combine(points, "Average") == 175.0  # weighted by sample count
    assert _combine(points, "Maximum") == 400.0
    assert _combine(points, "p99") == 390.0  # cautious: the larger
    assert _combine([], "Sum") is None


def test_the_period_covers_the_whole_window_in_minutes() -> None:
    assert period_for(T0, T0 + timedelta(seconds=10)) == 60
    assert period_for(T0, T0 + timedelta(minutes=5)) == 300
    assert period_for(T0, T0 + timedelta(minutes=5, seconds=1)) == 360
