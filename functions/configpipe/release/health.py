"""CloudWatch alarm check: which watched alarms exist and which are in ALARM.

Only ``ALARM`` counts as unhealthy (as with CodeDeploy); ``INSUFFICIENT_DATA`` — common for an
error metric on a version that has had no traffic yet — does not stop a release."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

_BATCH = 100  # DescribeAlarms accepts at most 100 names


class AlarmHealth:
    def __init__(self, client: CloudWatchClient | None = None) -> None:
        self._client = client or boto3.client("cloudwatch")

    def states(self, names: Sequence[str]) -> dict[str, str]:
        """``{alarm name: StateValue}`` for the alarms that exist (metric and composite)."""
        found: dict[str, str] = {}
        names = list(names)
        for start in range(0, len(names), _BATCH):
            paginator = self._client.get_paginator("describe_alarms")
            pages = paginator.paginate(
                AlarmNames=names[start : start + _BATCH], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    found[alarm["AlarmName"]] = alarm["StateValue"]
        return found

    def in_alarm(self, names: Sequence[str]) -> list[str]:
        if not names:
            return []
        return sorted(name for name, state in self.states(names).items() if state == "ALARM")
