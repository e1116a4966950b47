"""Fixtures of the rollout tests: a controllable clock, the change log, the validator's write
path and the rollout service, all on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.registry_source import RegistrySource
from configpipe.release.health import AlarmHealth
from configpipe.rollout.service import RolloutService
from configpipe_tools.harness.aws import Pipeline
from tests.unit.test_write_path import make_write_path

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(pipeline.table_name)


@pytest.fixture
def write_path(pipeline: Pipeline, clock: Clock):
    path = make_write_path(pipeline)
    path._clock = clock  # the validator's clock stamps the rollout's start
    return path


@pytest.fixture
def service(pipeline: Pipeline, log: ChangeLog, clock: Clock) -> RolloutService:
    return RolloutService(
        change_log=log,
        alarms=AlarmHealth(boto3.client("cloudwatch")),
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
        clock=clock,
    )


class Releases:
    """The release table as the rollout function reads it (its ``ReleaseStatuses`` port):
    release id → status, set by each test."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}

    def status(self, release_id: str) -> str | None:
        return self.statuses.get(release_id)


@pytest.fixture
def releases() -> Releases:
    return Releases()


@pytest.fixture
def following(pipeline: Pipeline, log: ChangeLog, clock: Clock, releases: Releases) -> RolloutService:
    """The rollout service of a stack with releases: rollouts may ride on a code release."""
    registry = RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm"))
    return RolloutService(
        log, AlarmHealth(boto3.client("cloudwatch")), registry, clock=clock, releases=releases
    )
