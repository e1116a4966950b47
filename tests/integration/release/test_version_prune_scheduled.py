"""The scheduled version prune on moto (issue 16): the handler, built from its settings, deletes
only versions nothing needs beyond the newest N — never one an alias routes to (primary or
routing weight) or an active release needs — refuses functions it is not enabled for, and
counts and re-raises a failed run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from configpipe.handlers import version_prune
from configpipe.release.settings import VersionPruneSettings
from tests.integration.release.conftest import FUNCTION, TABLE, TEAM, Env, request


@dataclass
class Context:
    function_name: str = "version-prune"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:version-prune"
    aws_request_id: str = "req-1"


def _run(event: Any, *, table: str = TABLE, enabled: dict[str, int] | None = None) -> dict[str, Any]:
    settings = VersionPruneSettings(
        release_table=table, prune_functions=json.dumps(enabled if enabled is not None else {FUNCTION: 2})
    )
    answer: dict[str, Any] = version_prune.handler(
        event,
        Context(),  # type: ignore[arg-type]
        service=version_prune.build(settings),
    )
    return answer


def _published(env: Env) -> list[str]:
    versions = env.lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
    return sorted((v["Version"] for v in versions if v["Version"] != "$LATEST"), key=int)


def _emf_metrics(captured: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in captured.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


@pytest.fixture
def referenced(env: Env) -> Env:
    """Versions 1..8 of checkout-api: ``live`` → 1 with an active canary to 2 (2 weighted),
    ``qa`` → 4, ``ab`` → 5 with 6 weighted; 3 and 7 are referenced by nothing; 8 is newest."""
    for n in range(5, 9):
        env.lam.update_function_configuration(FunctionName=FUNCTION, Description=f"v{n}")
        env.lam.publish_version(FunctionName=FUNCTION)
    env.lam.create_alias(FunctionName=FUNCTION, Name="qa", FunctionVersion="4")
    env.lam.create_alias(
        FunctionName=FUNCTION,
        Name="ab",
        FunctionVersion="5",
        RoutingConfig={"AdditionalVersionWeights": {"6": 0.2}},
    )
    result = env.service().handle_request(request(strategy="Canary10Percent30Minutes"), TEAM)
    assert result.outcome == "accepted"
    assert env.alias().weights == {"2": 0.1}
    return env


def test_scheduled_prune_deletes_only_unreferenced_versions_beyond_the_newest_n(
    referenced: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 1 (live), 2 (canary target), 4 (qa), 5 and 6 (ab and its routing) are referenced, keep=2
    assert _published(referenced) == [str(n) for n in range(1, 9)]
    capsys.readouterr()
    # When the schedule fires for checkout-api
    answer = _run({"function": FUNCTION})
    # Then only 3 (nothing needs it, older than the newest 2) goes; 7 and 8 are the newest two
    assert answer["deleted"] == ["3"]
    assert _published(referenced) == ["1", "2", "4", "5", "6", "7", "8"]
    reasons = {row["version"]: row["reason"] for row in answer["versions"]}
    assert "active release rel-1" in reasons["2"]
    assert "alias qa" in reasons["4"]
    assert "routing" in reasons["6"]
    assert reasons["8"].startswith("among the newest 2")
    # And the outcome is counted
    assert _emf_metrics(capsys.readouterr().out)["VersionsPruned"] == 1.0


def test_a_second_run_deletes_nothing_more(referenced: Env) -> None:
    _run({"function": FUNCTION})
    assert _run({"function": FUNCTION})["deleted"] == []
    assert _published(referenced) == ["1", "2", "4", "5", "6", "7", "8"]


def test_a_function_the_prune_is_not_enabled_for_is_refused_and_nothing_is_deleted(
    referenced: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    answer = _run({"function": FUNCTION}, enabled={"payments-api": 3})
    assert answer["error"]["code"] == "PRUNE_NOT_ENABLED"
    assert _published(referenced) == [str(n) for n in range(1, 9)]
    assert _emf_metrics(capsys.readouterr().out)["VersionPrunesFailed"] == 1.0


@pytest.mark.parametrize(
    "event", [{"function": FUNCTION, "keep": 0}, {}, {"function": ""}, "checkout-api", None]
)
def test_a_malformed_request_is_refused_and_nothing_is_deleted(referenced: Env, event: Any) -> None:
    answer = _run(event)
    assert answer["error"]["code"] == "INVALID_PRUNE_REQUEST"
    assert _published(referenced) == [str(n) for n in range(1, 9)]


def test_a_failed_run_is_counted_and_re_raised_so_it_is_retried_and_alarmed(
    referenced: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the release table cannot be read (the references are unknown)
    capsys.readouterr()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        _run({"function": FUNCTION}, table="no-such-table")
    # Then nothing was deleted and the failure was counted
    assert _published(referenced) == [str(n) for n in range(1, 9)]
    assert _emf_metrics(capsys.readouterr().out)["VersionPrunesFailed"] == 1.0
