"""CloudWatch adapter: what one function version measured over a window (issue 16).

Lambda publishes the metrics of invocations through an alias per executed version, under the
dimensions ``FunctionName``, ``Resource`` (``function:alias``) and ``ExecutedVersion``; a custom
metric names its own namespace, dimensions and version dimension. One ``GetMetricStatistics``
per metric and version, with a period covering the whole window (rounded up to a minute), so a
window is one or two datapoints (CloudWatch aligns periods to the minute). Two datapoints are
combined here: sums and sample counts add, an average is weighted by sample count, and a
percentile takes the larger of the two (it cannot be combined exactly; the larger is the
cautious reading for "lower is better" gates).

Moto 5.2.5 accepts ``ExtendedStatistics`` but returns no percentile values; a percentile gate
is then "no data" (inconclusive). See docs/releases.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from configpipe.release.analysis import COUNT_STATISTICS, VersionFigures
from configpipe.release.contracts import AnalysisGate, AnalysisMetric

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

LAMBDA_NAMESPACE = "AWS/Lambda"
_PERCENTILES = {AnalysisMetric.DURATION_P50: "p50", AnalysisMetric.DURATION_P99: "p99"}


def period_for(start: datetime, end: datetime) -> int:
    """A CloudWatch period (a multiple of 60 s) that covers the whole window."""
    return max(60, 60 * math.ceil((end - start).total_seconds() / 60))


def _combine(datapoints: Sequence[Any], statistic: str) -> float | None:
    values = [(p.get(statistic), p.get("SampleCount")) for p in datapoints]
    values = [(v, n) for v, n in values if v is not None]
    if not values:
        extended = [p.get("ExtendedStatistics", {}).get(statistic) for p in datapoints]
        found = [float(v) for v in extended if v is not None]
        return max(found) if found else None
    if statistic in COUNT_STATISTICS:
        return float(sum(v for v, _ in values))
    if statistic == "Maximum":
        return float(max(v for v, _ in values))
    if statistic == "Minimum":
        return float(min(v for v, _ in values))
    weight = sum(n or 0 for _, n in values)
    if statistic == "Average" and weight:
        return float(sum(v * (n or 0) for v, n in values) / weight)
    return float(values[0][0])


class VersionMetrics:
    def __init__(self, client: CloudWatchClient | None = None) -> None:
        self._client = client or boto3.client("cloudwatch")

    def _statistic(
        self,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        statistic: str,
        start: datetime,
        end: datetime,
    ) -> float | None:
        kwargs: dict[str, Any] = {
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            "StartTime": start,
            "EndTime": end,
            "Period": period_for(start, end),
        }
        if statistic.startswith("p"):
            kwargs["ExtendedStatistics"] = [statistic]
        else:
            # SampleCount rides along so that two averages can be weighted.
            kwargs["Statistics"] = sorted({statistic, "SampleCount"})
        datapoints = self._client.get_metric_statistics(**kwargs).get("Datapoints", [])
        return _combine(datapoints, statistic)

    def figures(
        self,
        function: str,
        alias: str,
        version: str,
        gates: Sequence[AnalysisGate],
        start: datetime,
        end: datetime,
        *,
        percentiles: bool = False,
    ) -> VersionFigures:
        """Invocations, errors, throttles and duration of ``version`` behind ``function:alias``,
        plus whatever the gates need beyond those (``percentiles``: p50 and p99 in any case)."""
        dims = {"FunctionName": function, "Resource": f"{function}:{alias}", "ExecutedVersion": version}

        def lam(metric: str, statistic: str) -> float | None:
            return self._statistic(LAMBDA_NAMESPACE, metric, dims, statistic, start, end)

        wanted = {gate.metric for gate in gates} | (set(_PERCENTILES) if percentiles else set())
        custom: dict[str, float | None] = {}
        for gate in gates:
            if gate.metric is AnalysisMetric.CUSTOM:
                assert gate.namespace and gate.metric_name and gate.statistic  # the contract checks
                custom[gate.label] = self._statistic(
                    gate.namespace,
                    gate.metric_name,
                    {**gate.dimensions, gate.version_dimension: version},
                    gate.statistic,
                    start,
                    end,
                )
        return VersionFigures(
            version=version,
            invocations=lam("Invocations", "Sum") or 0.0,
            errors=lam("Errors", "Sum"),
            throttles=lam("Throttles", "Sum"),
            duration_average=lam("Duration", "Average"),
            duration_p50=lam("Duration", "p50") if AnalysisMetric.DURATION_P50 in wanted else None,
            duration_p99=lam("Duration", "p99") if AnalysisMetric.DURATION_P99 in wanted else None,
            custom=custom,
        )
