"""``configpipe release start … --config SERVICE/ENV/KEY=VALUE`` against moto, synchronously.

No background thread: the pipeline's functions run on the test thread at the moments they would
run against AWS — the CLI's wait for a change's verdict first hands what is on the bus to the
validator's :class:`WritePath`, and its wait for the release to start first hands it to the
release function's service (built from its settings as test_release builds it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configpipe.crypto import SecretsKey
from configpipe.rollout.service import RolloutService
from configpipe.write_path import WritePath
from configpipe_tools.cli import publishing, release_config
from configpipe_tools.cli import release as release_cli
from configpipe_tools.cli.errors import CliError
from configpipe_tools.cli.release_config import parse_config
from configpipe_tools.harness.aws import REGION, Pipeline
from tests.unit.cli.conftest import CHECKOUT, assert_clean_exit, change_log, parse_json
from tests.unit.cli.test_release import FUNCTION, TABLE, release_service, released

__all__ = ["released"]  # the fixture, imported so pytest finds it here


class _OkAlarms:
    def states(self, names: Sequence[str]) -> dict[str, str]:
        return dict.fromkeys(names, "OK")


@dataclass
class Pipe:
    """The validator, the release function and the rollout function, on what reached the bus."""

    pipeline: Pipeline
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log = change_log(self.pipeline)
        self.write_path = WritePath(
            change_log=self.log,
            registry=lambda: self.pipeline.registry,
            secrets=SecretsKey(
                self.pipeline.secrets_key_id,
                self.pipeline.hash_key_id,
                client=boto3.client("kms", region_name=REGION),
            ),
        )
        self.rollouts = RolloutService(self.log, _OkAlarms(), registry=lambda: self.pipeline.registry)
        self.releases = release_service(self.pipeline)

    def pump(self) -> None:
        for event in self.pipeline.bus_events():
            self.events.append(event)
            kind = event["detail-type"]
            if kind == "ConfigurationChange":
                self.write_path.handle(event)
            elif kind == "ConfigurationRolloutControl":
                self.rollouts.control(event)
            elif kind == "ReleaseRequested":
                self.releases.handle_request(event["detail"], event["source"])

    def published(self) -> list[tuple[str, dict[str, Any]]]:
        """What the CLI (a team) sent, in order; the functions' announcements left out."""
        self.pump()
        return [(e["detail-type"], e["detail"]) for e in self.events if e["source"] == CHECKOUT]


@pytest.fixture
def pipe(released: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipe:
    pipe = Pipe(released)
    original_wait, original_poll = publishing.wait_for_outcome, release_cli.poll

    def wait_after_pumping(log: Any, change_id: str, source: str, timeout: float) -> Any:
        pipe.pump()
        return original_wait(log, change_id, source, timeout)

    def poll_after_pumping(deadline: float, rejected: Any, effect: Any) -> Any:
        pipe.pump()
        return original_poll(deadline, rejected, effect)

    monkeypatch.setattr(publishing, "wait_for_outcome", wait_after_pumping)
    monkeypatch.setattr(release_cli, "poll", poll_after_pumping)
    return pipe


@pytest.fixture
def start(cli):  # type: ignore[no-untyped-def]
    def invoke(*configs: str, extra: Sequence[str] = ()) -> Any:
        args = ["release", "--release-table", TABLE, "start", FUNCTION, "--to-version", "2"]
        args += ["--strategy", "Canary10Percent5Minutes", "--reason", "ship v2", *extra]
        for config in configs:
            args += ["--config", config]
        return cli(*args, "-o", "json")

    return invoke


def test_config_changes_are_published_first_bound_to_the_release_then_the_release(start, pipe: Pipe):
    # When a release carries two keys
    result = start("checkout/production/max-retries=5", "checkout/production/banner=hello")

    # Then it started, and each change was accepted before the release went out
    assert_clean_exit(result, 0)
    body = parse_json(result)
    rid = body["releaseId"]
    assert body["status"] == "started"
    assert [c["status"] for c in body["config"]] == ["accepted", "accepted"]
    kinds = [kind for kind, _ in pipe.published()]
    assert kinds == ["ConfigurationChange", "ConfigurationChange", "ReleaseRequested"]

    # And each change rides on the release, as the same author with the same reason and source
    changes = [e for e in pipe.events if e["detail-type"] == "ConfigurationChange"]
    release_event = next(e for e in pipe.events if e["detail-type"] == "ReleaseRequested")
    binding = {"releaseId": rid, "function": FUNCTION, "targetVersion": "2"}
    for event in changes:
        assert event["source"] == CHECKOUT == release_event["source"]
        assert event["detail"]["rollout"]["release"] == binding
        assert event["detail"]["author"] == release_event["detail"]["author"]
        assert event["detail"]["reason"] == "ship v2"
    assert [e["detail"]["value"] for e in changes] == [5, "hello"]

    # And the change log holds both rollouts, bound to the release
    for key in ("max-retries", "banner"):
        rollout = pipe.log.rollout("checkout", "production", key)
        assert rollout is not None and rollout.active
        assert rollout.release == binding


def test_a_tenants_own_value_rides_on_the_release_beside_the_services(start, pipe: Pipe):
    # When a release carries the service's value of a key and tenant acme's own value of it
    result = start("checkout/production/max-retries=5", "checkout/production/max-retries@acme=9")

    # Then both were accepted as two changes, the tenant's naming its tenant, both bound
    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert [c["status"] for c in body["config"]] == ["accepted", "accepted"]
    changes = [e["detail"] for e in pipe.events if e["detail-type"] == "ConfigurationChange"]
    assert [(c.get("tenant"), c["value"]) for c in changes] == [(None, 5), ("acme", 9)]
    assert len({c["changeId"] for c in changes}) == 2
    binding = {"releaseId": body["releaseId"], "function": FUNCTION, "targetVersion": "2"}
    for tenant in (None, "acme"):
        rollout = pipe.log.rollout("checkout", "production", "max-retries", tenant)
        assert rollout is not None and rollout.active and rollout.release == binding


def test_parse_config_reads_a_tenant_after_the_key():
    parsed = parse_config("checkout/production/max-retries@acme=9")
    assert (parsed.key, parsed.tenant, parsed.value, parsed.label) == (
        "max-retries",
        "acme",
        9,
        "checkout/production/max-retries@acme",
    )


def test_a_rejected_config_change_stops_the_release_and_aborts_the_others(
    start, pipe: Pipe, monkeypatch: pytest.MonkeyPatch
):
    # Given banner starts rolling out after the CLI's local check (a race the validator catches)
    monkeypatch.setattr(release_config, "_refuse_rolling_out", lambda log, prepared: None)
    outcome = pipe.write_path.handle(
        {
            "id": "seed-banner",
            "source": CHECKOUT,
            "detail": {
                "changeId": "seed-banner",
                "service": "checkout",
                "environment": "production",
                "key": "banner",
                "operation": "put",
                "value": "old",
                "author": "alice",
                "reason": "seed",
                "rollout": {"strategy": "AppConfig.Linear20PercentEvery6Minutes"},
            },
        }
    )
    assert outcome.status == "accepted"

    # When the release carries max-retries (accepted) and banner (rejected)
    result = start("checkout/production/max-retries=5", "checkout/production/banner=new")

    # Then it exits 3 with the rejection's reasons, and no release was published
    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["ROLLOUT_IN_PROGRESS"]
    assert body["aborted"] == ["checkout/production/max-retries"]
    kinds = [kind for kind, _ in pipe.published()]
    assert "ReleaseRequested" not in kinds

    # And max-retries' rollout was aborted with a control naming exactly that rollout
    (control,) = [d for k, d in pipe.published() if k == "ConfigurationRolloutControl"]
    accepted = next(c for c in body["config"] if c["key"] == "max-retries")
    assert control["action"] == "abort" and control["rolloutId"] == accepted["changeId"]
    rollout = pipe.log.rollout("checkout", "production", "max-retries")
    assert rollout is not None and not rollout.active and rollout.status == "ABORTED"


def test_a_service_that_does_not_register_the_function_exits_2_and_sends_nothing(start, pipe: Pipe):
    result = start("checkout/production/max-retries=5", "payments/production/feature.x=true")

    assert_clean_exit(result, 2)
    error = parse_json(result)["error"]
    assert error["message"].startswith("--config payments/production/feature.x:")
    assert {"code": "INVALID_ROLLOUT", "field": "rollout.release.function"} in [
        {"code": r["code"], "field": r.get("field")} for r in error["reasons"]
    ]
    assert pipe.published() == []


def test_a_key_already_rolling_out_exits_2_and_sends_nothing(start, pipe: Pipe):
    first = start("checkout/production/banner=one", extra=["--no-wait"])
    assert_clean_exit(first, 0)
    pipe.pump()
    sent = len(pipe.events)

    result = start("checkout/production/banner=two")

    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["code"] == "ROLLOUT_IN_PROGRESS"
    assert len(pipe.published()) == sent


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("checkout/production/max-retries=5", 5),
        ("checkout/production/on=true", True),
        ('checkout/production/limits={"a": [1, 2]}', {"a": [1, 2]}),
        ("checkout/production/banner=hello world", "hello world"),
        ("checkout/production/expr=a=b", "a=b"),
        ('checkout/production/quoted="42"', "42"),
        ("checkout/production/empty=", ""),
    ],
)
def test_values_are_parsed_like_put(spec: str, value: Any):
    parsed = parse_config(spec)
    assert (parsed.service, parsed.environment) == ("checkout", "production")
    assert parsed.value == value and type(parsed.value) is type(value)


@pytest.mark.parametrize(
    "spec",
    [
        "checkout/production/max-retries",
        "checkout/max-retries=5",
        "a/b/c/d=1",
        "/production/k=1",
        "checkout/production/k@=1",
    ],
)
def test_malformed_config_is_refused(spec: str):
    with pytest.raises(CliError) as raised:
        parse_config(spec)
    assert raised.value.code == "INVALID_CONFIG"


def test_a_sensitive_key_is_encrypted_and_never_published_in_clear(start, pipe: Pipe):
    result = start("checkout/production/db-password=hunter2-not-in-clear")

    assert_clean_exit(result, 0)
    assert "hunter2" not in result.output
    events = pipe.published()
    assert "hunter2" not in json.dumps(pipe.events)
    change = next(d for k, d in events if k == "ConfigurationChange")
    assert "value" not in change and change["encryptedValue"] and change["sensitive"] is True
    current = pipe.log.current_record("checkout", "production", "db-password")
    assert current is not None and current.sensitive
