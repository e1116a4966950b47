"""CloudWatch alarm check: which watched alarms exist and which are in ALARM.

Only ``ALARM`` counts as unhealthy (as with CodeDeploy); ``INSUFFICIENT_DATA`` — common for an
error metric on a version that has had no traffic yet — does not stop a release. An alarm that
cannot be read (deleted, or DescribeAlarms failing) is reported as such in an
:class:`AlarmReading`; what that means for a release is the engine's decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from configpipe.release.bounds import MAX_MESSAGE_CHARS, bounded

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

    def read(self, names: Sequence[str]) -> AlarmReading:
        """The watched alarms' health, including the ones that could not be read. A failed
        DescribeAlarms (after botocore's own retries) is an answer here, not an exception:
        CodeDeploy stops a deployment it cannot watch, and so can a release."""
        if not names:
            return AlarmReading()
        try:
            states = self.states(names)
        except (ClientError, BotoCoreError) as e:
            return AlarmReading(error=bounded(str(e), MAX_MESSAGE_CHARS))
        return AlarmReading(
            in_alarm=sorted(name for name, state in states.items() if state == "ALARM"),
            missing=sorted(name for name in names if name not in states),
        )


@dataclass(frozen=True)
class AlarmReading:
    """One look at the watched alarms: those in ALARM, those that no longer exist, and the
    error when none could be read."""

    in_alarm: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None
