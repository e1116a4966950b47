"""``configpipe versions prune`` and ``configpipe release compare`` (issue 16) against moto, with
releases made by the real release service in the release table."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

import boto3
import pytest

from configpipe.bus import ConfigBus
from configpipe.release.alias import LambdaAliases
from configpipe.release.contracts import ReleaseControl
from configpipe.release.health import AlarmHealth
from configpipe.release.hooks import HookRequest, HookResult, HookVerdict
from configpipe.release.service import ReleaseService
from configpipe.release.store import ReleaseStore
from configpipe.release.version_metrics import VersionMetrics
from configpipe_tools.harness.aws import REGION, Pipeline
from tests.integration.release.conftest import create_release_table
from tests.unit.cli.conftest import CHECKOUT, assert_clean_exit, parse_json

FUNCTION = "checkout-api"
TABLE = "ReleaseState"


class _NoHooks:
    def run(self, function: str, request: HookRequest, timeout_seconds: int) -> HookResult:
        return HookResult(verdict=HookVerdict.PASSED, message="")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def released(pipeline: Pipeline) -> ReleaseService:
    """``checkout-api`` v1-v7 with ``live`` on v1, the release table, and the release service."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="checkout-api", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
    )
    for n in range(1, 8):
        lam.update_function_configuration(FunctionName=FUNCTION, Description=f"v{n}")
        lam.publish_version(FunctionName=FUNCTION)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    ddb = boto3.client("dynamodb", region_name=REGION)
    create_release_table(ddb, TABLE)
    cw = boto3.client("cloudwatch", region_name=REGION)
    return ReleaseService(
        store=ReleaseStore(TABLE, ddb),
        aliases=LambdaAliases(lam),
        health=AlarmHealth(cw),
        hooks=_NoHooks(),
        bus=ConfigBus(pipeline.bus_name, boto3.client("events", region_name=REGION)),
        registry=pipeline.registry,
        version_metrics=VersionMetrics(cw),
    )


def _request(release_id: str, alias: str, version: str, **extra: Any) -> dict[str, Any]:
    return {
        "releaseId": release_id,
        "function": FUNCTION,
        "alias": alias,
        "targetVersion": version,
        "strategy": "Canary10Percent30Minutes",
        "author": "dev@example.com",
        "reason": "test",
        **extra,
    }


def _versions() -> list[str]:
    lam = boto3.client("lambda", region_name=REGION)
    return [v["Version"] for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]][1:]


# --- versions prune ---------------------------------------------------------------------------


@pytest.fixture
def references(released: ReleaseService) -> None:
    """Every kind of reference, each on another version:

    * live: an active canary 1 → 3 (10 %), its beta alias live-candidate → 3;
    * staging: → 4 with 20 % routed to 5;
    * qa: its last release (AllAtOnce 2 → 7, completed) leaves 2 as its rollback target.
    Unreferenced: 6 (not the newest: 7 is)."""
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_alias(
        FunctionName=FUNCTION,
        Name="staging",
        FunctionVersion="4",
        RoutingConfig={"AdditionalVersionWeights": {"5": 0.2}},
    )
    lam.create_alias(FunctionName=FUNCTION, Name="qa", FunctionVersion="2")
    assert released.handle_request(_request("rel-live", "live", "3"), CHECKOUT).outcome == "accepted"
    done = released.handle_request(
        _request("rel-qa", "qa", "7", strategy="AllAtOnce", betaAlias=False), CHECKOUT
    )
    assert done.state is not None
    assert done.state.status == "COMPLETED"


def test_dry_run_lists_what_would_go_and_why_the_rest_stays(references: None, cli: Any) -> None:
    result = cli(
        "versions", "--release-table", TABLE, "prune", FUNCTION, "--keep", "1", "--dry-run", "-o", "json"
    )

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["wouldDelete"] == ["6"]
    why = {v["version"]: v["reason"] for v in body["versions"]}
    assert why["7"] == "among the newest 1"
    assert "alias live-candidate" in why["3"] and "target of active release rel-live" in why["3"]
    assert "alias live" in why["1"] and "rollback state of active release rel-live" in why["1"]
    assert why["4"] == "alias staging"
    assert why["5"] == "alias staging (20 % routing)"
    assert "rollback target of qa's last release rel-qa" in why["2"]
    assert _versions() == ["1", "2", "3", "4", "5", "6", "7"]  # nothing deleted


def test_prune_deletes_only_unreferenced_versions_beyond_the_newest_n(references: None, cli: Any) -> None:
    result = cli("versions", "--release-table", TABLE, "prune", FUNCTION, "--keep", "1", "-o", "json")

    assert_clean_exit(result, 0)
    assert parse_json(result)["deleted"] == ["6"]
    assert _versions() == ["1", "2", "3", "4", "5", "7"]
    # the function itself and its aliases are untouched
    lam = boto3.client("lambda", region_name=REGION)
    assert sorted(a["Name"] for a in lam.list_aliases(FunctionName=FUNCTION)["Aliases"]) == [
        "live",
        "live-candidate",
        "qa",
        "staging",
    ]


def test_keep_n_keeps_the_newest_even_when_unreferenced(released: ReleaseService, cli: Any) -> None:
    result = cli("versions", "--release-table", TABLE, "prune", FUNCTION, "--keep", "3", "-o", "json")

    assert_clean_exit(result, 0)
    assert parse_json(result)["deleted"] == ["4", "3", "2"]  # 1 is live's; 5-7 the newest 3
    assert _versions() == ["1", "5", "6", "7"]


# --- release compare --------------------------------------------------------------------------


def _traffic(version: str, at: datetime, invocations: int, errors: int) -> None:
    dims = [
        {"Name": "FunctionName", "Value": FUNCTION},
        {"Name": "Resource", "Value": f"{FUNCTION}:live"},
        {"Name": "ExecutedVersion", "Value": version},
    ]
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors},
            {"MetricName": "Duration", "Dimensions": dims, "Timestamp": at, "Value": 50.0},
        ],
    )


def test_compare_shows_both_versions_and_the_verdict_per_gate(released: ReleaseService, cli: Any) -> None:
    analysis = {"gates": [{"metric": "errorRate", "maxValue": 1}], "minInvocations": 100}
    result = released.handle_request(_request("rel-1", "live", "2", analysis=analysis), CHECKOUT)
    assert result.state is not None and result.state.step_started_at is not None
    _traffic("2", result.state.step_started_at, invocations=100, errors=5)
    _traffic("1", result.state.step_started_at, invocations=900, errors=0)

    as_json = cli("release", "--release-table", TABLE, "compare", FUNCTION, "-o", "json")

    assert_clean_exit(as_json, 0)
    body = parse_json(as_json)
    assert body["releaseId"] == "rel-1"
    assert body["percent"] == 10
    assert body["candidate"]["version"] == "2"
    assert body["candidate"]["invocations"] == 100
    assert body["candidate"]["errorRate"] == 5.0
    assert body["baseline"]["invocations"] == 900
    assert body["baseline"]["errorRate"] == 0.0
    assert body["analysis"]["verdict"] == "fail"
    assert body["analysis"]["gates"][0]["limit"] == 1.0

    table = cli("release", "--release-table", TABLE, "compare", FUNCTION)
    assert_clean_exit(table, 0)
    assert "error rate %" in table.stdout
    assert "candidate v2" in table.stdout
    assert "fail" in table.stdout


def test_compare_follow_on_an_ended_release_prints_once_and_ends(released: ReleaseService, cli: Any) -> None:
    released.handle_request(_request("rel-1", "live", "2"), CHECKOUT)
    control = {"releaseId": "rel-1", "controlId": "c-1", "action": "abort", "author": "a@example.com"}
    released.control(ReleaseControl.model_validate(control), CHECKOUT)

    result = cli("release", "--release-table", TABLE, "compare", FUNCTION, "--follow", "-o", "json")

    assert_clean_exit(result, 0)
    [line] = [line for line in result.stdout.splitlines() if line.strip()]
    assert '"status": "ABORTED"' in line
    assert '"analysis": null' in line


def test_compare_without_a_release_is_a_clear_error(released: ReleaseService, cli: Any) -> None:
    result = cli("release", "--release-table", TABLE, "compare", FUNCTION, "-o", "json")

    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["code"] == "RELEASE_NOT_FOUND"


# --- release start --analysis / --beta-alias ----------------------------------------------------


def test_start_sends_the_analysis_and_beta_alias_options(
    released: ReleaseService, pipeline: Pipeline, cli: Any
) -> None:
    analysis = '{"gates": [{"metric": "errorRate", "maxIncreasePercent": 50}], "minInvocations": 20}'
    result = cli(
        "release", "--release-table", TABLE, "start", FUNCTION, "--to-version", "2",
        "--strategy", "Canary10Percent5Minutes", "--reason", "r", "--release-id", "rel-cli",
        "--analysis", analysis, "--no-beta-alias", "--no-wait",
    )  # fmt: skip

    assert_clean_exit(result, 0)
    [sent] = [e for e in pipeline.bus_events() if e["detail-type"] == "ReleaseRequested"]
    assert sent["detail"]["analysis"] == {
        "gates": [
            {
                "metric": "errorRate",
                "maxIncreasePercent": 50.0,
                "dimensions": {},
                "versionDimension": "ExecutedVersion",
            }
        ],
        "minInvocations": 20,
        "inconclusiveLimitMinutes": 10,
    }
    assert sent["detail"]["betaAlias"] is False


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (
            ["--strategy", "AllAtOnce", "--analysis", '{"gates": [{"metric": "errors", "maxValue": 0}]}'],
            "ANALYSIS_NOT_APPLICABLE",
        ),
        (["--strategy", "AllAtOnce", "--analysis", "{not json"], "INVALID_ANALYSIS"),
    ],
)
def test_start_refuses_a_bad_analysis_before_sending_anything(
    released: ReleaseService, pipeline: Pipeline, cli: Any, options: list[str], code: str
) -> None:
    result = cli(
        "release", "--release-table", TABLE, "start", FUNCTION, "--to-version", "2", "--reason", "r",
        "--no-wait", "-o", "json", *options,
    )  # fmt: skip

    assert_clean_exit(result, 2)
    assert code in result.stdout
    assert not [e for e in pipeline.bus_events() if e["detail-type"] == "ReleaseRequested"]
