"""Client helpers during progressive rollouts (docs/rollouts.md): per-subject reads of the
stable or candidate value from the views the materialiser writes, pushed rollout events,
the update handler's ``on_rollout`` callback and sensitive candidates. The view and candidate
parameters are written here exactly as the materialiser writes them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from configpipe.client import ConfigClient, config_update_handler
from configpipe.client import config as client_config
from configpipe.contracts import (
    ConfigurationRolloutEvent,
    ConfigurationUpdated,
    RolloutCandidate,
    RolloutStatus,
    RolloutView,
)
from configpipe.rollout.bucketing import execution_environment_subject, receives_candidate
from configpipe.stores import secret_version_token
from configpipe.values import canonical_json, value_hash
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.events import eventbridge_event
from tests.unit.test_client import CallCounter, Clock, put

ROOT = "/config/checkout/production"
SUBJECTS = [f"tenant-{i}" for i in range(10_000)]


def view(
    key: str = "max_items",
    *,
    candidate_version: int = 5,
    sequence: int = 1,
    weight: float = 10.0,
    targets: tuple[str, ...] = (),
    status: RolloutStatus = RolloutStatus.ROLLING_OUT,
    stable_version: int | None = 4,
    value: Any = 60,
    **candidate: Any,
) -> RolloutView:
    fields: dict[str, Any] = {"value_hash": value_hash(value), **candidate}
    if candidate.get("value_inline"):
        fields["value"] = value
    return RolloutView(
        rollout_id=f"r-{key}-{candidate_version}",
        service="checkout",
        environment="production",
        key=key,
        status=status,
        sequence=sequence,
        stable_version=stable_version,
        candidate_version=candidate_version,
        weight=weight,
        targets=list(targets),
        strategy="AppConfig.Canary10Percent20Minutes",
        started_at=datetime(2026, 11, 25, 8, tzinfo=UTC),
        candidate=RolloutCandidate(**fields),
    )


def event_of(v: RolloutView, **overrides: Any) -> ConfigurationRolloutEvent:
    fields = {**v.model_dump(), "event_at": datetime.now(UTC), "author": "configpipe", "reason": "test"}
    fields.update(overrides)
    return ConfigurationRolloutEvent(**fields)


def as_bus_event(
    e: ConfigurationRolloutEvent, detail_type: str = "ConfigurationRolloutStepped"
) -> dict[str, Any]:
    return eventbridge_event(e.to_detail(), detail_type=detail_type, source="configpipe.pipeline")


def materialise(v: RolloutView, candidate: Any = 60) -> None:
    """What the materialiser writes during a rollout: the view and the candidate's canonical JSON."""
    put_text(f"{ROOT}/{v.key}/rollout", json.dumps(v.to_detail()))
    if not v.candidate.sensitive and not v.candidate.value_inline:
        put(f"{ROOT}/{v.key}/candidate", candidate)


def put_text(name: str, text: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=name, Value=text, Type="String", Overwrite=True
    )


def end_rollout(key: str = "max_items") -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.delete_parameters(Names=[f"{ROOT}/{key}/rollout", f"{ROOT}/{key}/candidate"])


def share_reading_candidate(client: ConfigClient, key: str = "max_items", candidate: Any = 60) -> float:
    return sum(client.get(key, subject=s) == candidate for s in SUBJECTS) / len(SUBJECTS)


@pytest.fixture
def ssm(aws):
    client = boto3.client("ssm", region_name=REGION)
    counter = CallCounter(client)
    requests: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.ssm.GetParametersByPath", lambda params, **_: requests.append(dict(params))
    )
    return client, counter, requests


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(ssm, clock) -> ConfigClient:
    put(f"{ROOT}/max_items", 50)
    put("/config/global/production/region_label", "eu")
    return ConfigClient("checkout", "production", ttl_seconds=60, ssm_client=ssm[0], clock=clock)


# --- reads without a push --------------------------------------------------------------------


def test_a_cold_client_reads_a_consistent_view_without_any_push(config, ssm):
    # Given a rollout the materialiser wrote before this instance started
    materialise(view(weight=10, targets=("tenant-7",)))
    # When it reads
    assert config.get("max_items", subject="tenant-7") == 60
    # Then one recursive GetParametersByPath per origin brought values, view and candidate
    _, counter, requests = ssm
    assert counter.calls == ["GetParametersByPath", "GetParametersByPath"]
    assert all(r["Recursive"] is True for r in requests)
    assert config.rollout("max_items")["candidateVersion"] == 5
    assert config.get_str("region_label") == "eu"
    assert "max_items/rollout" not in config.get_all()  # views never read as keys
    assert set(config.get_all(subject="tenant-7")) == {"max_items", "region_label"}


def test_ten_percent_of_ten_thousand_subjects_read_the_candidate(config):
    materialise(view(weight=10))
    assert 0.09 <= share_reading_candidate(config) <= 0.11
    for subject in SUBJECTS[:500]:  # and exactly the ones the bucketing names
        expected = receives_candidate(
            service="checkout",
            environment="production",
            key="max_items",
            candidate_version=5,
            subject=subject,
            weight_percent=10,
        )
        assert (config.get_int("max_items", subject=subject) == 60) is expected


def test_targets_always_read_the_candidate(config):
    materialise(view(weight=0, targets=("tenant-7", "vip")))
    assert config.get("max_items", subject="vip") == 60
    assert config.get_int("max_items", subject="tenant-7") == 60
    assert config.reads_candidate("max_items", subject="vip") is True
    assert share_reading_candidate(config) == pytest.approx(1 / len(SUBJECTS))  # only tenant-7


def test_a_subject_that_has_the_candidate_keeps_it_as_the_weight_grows(config, clock):
    previous: set[str] = set()
    for sequence, weight in enumerate([1, 5, 10, 25, 50, 100], start=1):
        materialise(view(weight=weight, sequence=sequence))
        clock.now += 61  # the next refresh reads the next step
        having = {s for s in SUBJECTS[:2000] if config.get("max_items", subject=s) == 60}
        assert previous <= having
        previous = having
    assert len(previous) == 2000  # 100 %


def test_no_subject_means_this_execution_environment_same_answer_every_call(config):
    materialise(view(weight=50))
    expected = 60 if config.reads_candidate("max_items") else 50
    assert {config.get("max_items") for _ in range(200)} == {expected}
    assert config.reads_candidate("max_items") is receives_candidate(
        service="checkout",
        environment="production",
        key="max_items",
        candidate_version=5,
        subject=execution_environment_subject(),
        weight_percent=50,
    )


def test_a_candidate_whose_hash_does_not_match_is_not_served(config):
    # The view is written before its candidate: nobody reads the half-written rollout
    materialise(view(weight=100), candidate=59)
    assert config.get("max_items", subject="anyone") == 50


def test_an_inline_candidate_needs_no_candidate_parameter(config):
    materialise(view(weight=100, value="x", value_inline=True))
    assert config.get("max_items", subject="anyone") == "x"


def test_a_deleted_candidate_reads_as_absent(config):
    materialise(view(weight=0, targets=("t",), value=None, deleted=True))
    assert config.get("max_items", default="absent", subject="t") == "absent"
    assert config.get("max_items", subject="someone-else") == 50


def test_a_new_key_rolling_out_is_absent_for_subjects_on_stable(config):
    materialise(view("fresh_flag", weight=0, targets=("t",), stable_version=None, value=True), candidate=True)
    assert config.get_bool("fresh_flag", subject="t") is True
    assert config.get("fresh_flag", subject="other") is None
    assert "fresh_flag" not in config.get_all(subject="other")


def test_a_cache_hit_during_a_rollout_makes_no_aws_call(config, ssm):
    materialise(view(weight=30, targets=("t",)))
    config.get("max_items")
    _, counter, _ = ssm
    calls = len(counter.calls)
    for subject in SUBJECTS[:1000]:
        config.get("max_items", subject=subject)
        config.get_int("max_items", subject=subject)
    config.get_all(subject="t")
    assert len(counter.calls) == calls


def test_the_rollout_ended_in_the_store_is_gone_after_the_next_refresh(config, clock):
    materialise(view(weight=100))
    assert config.get("max_items", subject="a") == 60
    end_rollout()
    clock.now += 61
    assert config.get("max_items", subject="a") == 50
    assert config.rollout("max_items") is None


# --- pushed rollout events -----------------------------------------------------------------


def test_pushed_steps_change_reads_at_once_and_older_sequences_are_dropped(config):
    config.get("max_items")  # warm, no rollout yet
    started = event_of(view(weight=0, sequence=0, targets=("t",), value=60, value_inline=True))
    assert config.apply_rollout(started) is True
    assert config.get("max_items", subject="t") == 60  # no refresh needed
    assert share_reading_candidate(config) == 0  # nobody else at weight 0
    stepped = event_of(view(weight=100, sequence=2, value=60, value_inline=True))
    assert config.apply_rollout(stepped.to_detail()) is True  # the camelCase detail works too
    assert config.get("max_items", subject="anyone") == 60
    late = event_of(view(weight=10, sequence=1, value=60, value_inline=True))
    assert config.apply_rollout(late) is False  # reordered: older sequence
    assert config.apply_rollout(stepped) is False  # duplicate: one effect
    assert config.get("max_items", subject="anyone") == 60
    assert config.rollout("max_items")["weight"] == 100


def test_a_completed_rollout_serves_the_candidate_to_everyone_at_once(config):
    config.get("max_items")
    v = view(weight=10, value=60, value_inline=True)
    config.apply_rollout(event_of(v))
    done = event_of(view(weight=100, sequence=3, status=RolloutStatus.COMPLETED, value=60, value_inline=True))
    assert config.apply_rollout(done) is True
    assert config.rollout("max_items") is None
    assert {config.get("max_items", subject=s) for s in SUBJECTS[:200]} == {60}
    assert config.version_of("max_items") == 5
    # The ConfigurationUpdated that follows for the candidate version is already held
    assert config.apply_update(updated("max_items", 5, 60)) is False


def test_a_rolled_back_rollout_serves_the_stable_value_at_once(config):
    materialise(view(weight=100))
    assert config.get("max_items", subject="a") == 60
    back = event_of(view(weight=100, sequence=2, status=RolloutStatus.ROLLED_BACK), reason="alarm")
    assert config.apply_rollout(back) is True
    assert config.get("max_items", subject="a") == 50


def test_an_ended_rollout_is_not_brought_back_by_a_racing_refresh_for_one_ttl(config, clock):
    materialise(view(weight=100))
    assert config.get("max_items", subject="a") == 60
    config.apply_rollout(event_of(view(weight=100, sequence=2, status=RolloutStatus.ABORTED)))
    config.refresh()  # the materialiser has not deleted the view yet
    assert config.get("max_items", subject="a") == 50
    clock.now += 61
    end_rollout()
    assert config.get("max_items", subject="a") == 50


def test_a_pushed_step_is_not_undone_by_an_older_store_copy_for_one_ttl(config, clock):
    materialise(view(weight=0, sequence=1))
    config.get("max_items")
    config.apply_rollout(event_of(view(weight=100, sequence=2)))
    assert config.get("max_items", subject="a") == 60
    config.refresh()  # store still at sequence 1
    assert config.get("max_items", subject="a") == 60
    materialise(view(weight=100, sequence=3, targets=("x",)))
    config.refresh()  # a strictly newer store view wins even while pinned
    assert config.rollout("max_items")["sequence"] == 3


def test_a_newer_version_pushed_ends_the_rollout_even_if_its_end_event_was_lost(config):
    materialise(view(weight=100))
    assert config.get("max_items", subject="a") == 60
    assert config.apply_update(updated("max_items", 6, 50)) is True  # the rollback version
    assert config.get("max_items", subject="a") == 50
    assert config.rollout("max_items") is None


def test_events_of_other_scopes_are_ignored(config):
    other = view().model_copy(update={"environment": "staging"})
    assert config.apply_rollout(event_of(other)) is False


def test_the_status_constants_match_the_contracts():
    assert client_config.ROLLING_OUT == RolloutStatus.ROLLING_OUT
    assert client_config.COMPLETED == RolloutStatus.COMPLETED


# --- the update handler ------------------------------------------------------------------------


def updated(key: str, version: int, value: Any) -> ConfigurationUpdated:
    return ConfigurationUpdated(
        change_id=f"c-{key}-{version}",
        service="checkout",
        environment="production",
        key=key,
        operation="put",
        version=version,
        value_hash=value_hash(value),
        value=value,
        value_inline=True,
        author="alice",
        reason="test",
        applied_at=datetime.now(UTC),
    )


def test_the_update_handler_gives_the_callback_stable_candidate_and_weight(config):
    materialise(view(weight=10, sequence=1))
    seen: list[tuple[str, float, Any, Any]] = []
    handler = config_update_handler(
        "checkout",
        on_update=lambda u, v: None,
        client=config,
        on_rollout=lambda e, stable, candidate: seen.append((str(e.status), e.weight, stable, candidate)),
    )
    step = event_of(view(weight=25, sequence=2))
    result = handler(as_bus_event(step), None)
    assert result == {
        "applied": True,
        "rolloutId": "r-max_items-5",
        "status": "ROLLING_OUT",
        "candidateVersion": 5,
        "sequence": 2,
        "weight": 25.0,
    }
    assert seen == [("ROLLING_OUT", 25.0, 50, 60)]
    assert handler(as_bus_event(step), None)["reason"] == "stale"  # duplicate
    assert handler(as_bus_event(event_of(view(weight=10, sequence=1))), None)["applied"] is False
    assert len(seen) == 1
    assert config.rollout("max_items")["weight"] == 25  # and the client applied it
    # ConfigurationUpdated handling is unchanged
    plain = eventbridge_event(
        updated("max_items", 6, 70).to_detail(),
        detail_type="ConfigurationUpdated",
        source="configpipe.pipeline",
    )
    assert handler(plain, None) == {"applied": True, "version": 6}


def test_without_on_rollout_the_event_is_applied_to_the_client_only(config):
    config.get("max_items")
    materialise(view(weight=0, sequence=0))
    handler = config_update_handler("checkout", on_update=lambda u, v: None, client=config)
    started = event_of(view(weight=0, sequence=0, targets=("t",)))
    assert handler(as_bus_event(started, "ConfigurationRolloutStarted"), None)["applied"] is True
    assert config.get("max_items", subject="t") == 60  # the candidate was read from /candidate


def test_a_step_whose_candidate_is_gone_is_skipped(config):
    seen: list[Any] = []
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: None, on_rollout=lambda e, s, c: seen.append(c), client=config
    )
    assert handler(as_bus_event(event_of(view(weight=10))), None)["reason"] == "superseded"
    assert seen == []


# --- sensitive candidates ------------------------------------------------------------------------


@pytest.fixture
def secret(aws) -> Any:
    sm = boto3.client("secretsmanager", region_name=REGION)
    scope = "checkout/production/db_password"
    sm.create_secret(
        Name="configpipe/checkout/production/db_password",
        SecretString=canonical_json("pw-stable-4"),
        ClientRequestToken=secret_version_token(scope, 4),
    )
    sm.put_secret_value(
        SecretId="configpipe/checkout/production/db_password",
        SecretString=canonical_json("pw-candidate-5"),
        ClientRequestToken=secret_version_token(scope, 5),
        VersionStages=["CONFIGPIPE_CANDIDATE"],
    )
    return sm


def sensitive_view(**overrides: Any) -> RolloutView:
    fields: dict[str, Any] = {"weight": 0, "targets": ("t",), "value": "hmac", "sensitive": True}
    fields.update(overrides)
    return view("db_password", **fields)


def test_a_sensitive_candidate_is_read_by_its_version_id_and_never_logged(secret, ssm, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="configpipe")
    materialise(sensitive_view())
    counter = CallCounter(secret)
    config = ConfigClient("checkout", "production", ssm_client=ssm[0], secrets_client=secret, clock=clock)
    assert config.get_secret("db_password", subject="t") == "pw-candidate-5"
    assert config.get_secret("db_password", subject="other") == "pw-stable-4"
    assert config.get("db_password", subject="t") is None  # a secret never enters the SSM cache
    calls = len(counter.calls)
    for _ in range(50):  # both cached
        assert config.get_secret("db_password", subject="t") == "pw-candidate-5"
        assert config.get_secret("db_password", subject="other") == "pw-stable-4"
    assert len(counter.calls) == calls
    # Rolled back: the candidate is no longer served
    config.apply_rollout(event_of(sensitive_view(sequence=2, status=RolloutStatus.ROLLED_BACK)))
    assert config.get_secret("db_password", subject="t") == "pw-stable-4"
    assert "pw-" not in caplog.text


def test_the_update_handler_reads_sensitive_stable_and_candidate_by_version(secret, ssm, caplog):
    caplog.set_level(logging.DEBUG, logger="configpipe")
    seen: list[tuple[Any, Any]] = []
    config = ConfigClient("checkout", "production", ssm_client=ssm[0], secrets_client=secret)
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: None, client=config, on_rollout=lambda e, s, c: seen.append((s, c))
    )
    event = as_bus_event(event_of(sensitive_view(weight=50)), "ConfigurationRolloutStarted")
    assert handler(event, None)["applied"] is True
    assert seen == [("pw-stable-4", "pw-candidate-5")]
    assert "pw-" not in json.dumps(event) + caplog.text
    assert config.get_secret("db_password", subject="t") == "pw-candidate-5"


# --- a rollout riding on a code release ------------------------------------------------------


def test_only_the_releases_target_version_reads_a_candidate_bound_to_it(ssm):
    put(f"{ROOT}/max_items", 50)
    bound = view(weight=0.0).model_copy(
        update={"release": {"releaseId": "rel-1", "function": "checkout-api", "targetVersion": "7"}}
    )
    materialise(bound)

    def client(name: str, version: str) -> ConfigClient:
        return ConfigClient(
            "checkout", "production", ssm_client=ssm[0], function_name=name, function_version=version
        )

    new_code = client("checkout-api", "7")
    old_code = client("checkout-api", "6")
    other = client("search-api", "7")

    assert new_code.get("max_items") == 60
    assert all(new_code.get("max_items", subject=s) == 60 for s in SUBJECTS[:100])  # subjects do not matter
    assert old_code.get("max_items") == 50
    assert other.get("max_items") == 50
    assert (new_code.reads_candidate("max_items"), old_code.reads_candidate("max_items")) == (True, False)


def test_a_pushed_rollout_step_reaches_the_next_cached_read_of_this_environment(config):
    # Given a warm client whose cached reads (no subject) already resolved the stable value
    assert [config.get("max_items") for _ in range(3)] == [50, 50, 50]
    # When a step to 100 % is pushed, and then the rollout is rolled back
    config.apply_rollout(event_of(view(weight=100, value=61, value_inline=True)))
    # Then the very next cached read sees each, without waiting for the TTL
    assert config.get_int("max_items") == 61
    rolled_back = view(weight=0, sequence=2, status=RolloutStatus.ROLLED_BACK, value=61, value_inline=True)
    config.apply_rollout(event_of(rolled_back))
    assert config.get_int("max_items") == 50
