"""Drift detection and repair on moto (issue 14): the whole pipeline runs in one process
(:class:`Chain`), then a store is edited *by hand* — as an operator with console access would —
and the drift function's handler, built from its settings like Lambda builds it, must see it,
announce it (names only, never a value), count it, and repair it from the change log, or in
report mode change nothing. A parameter under ``/config/`` that configpipe never wrote is left
alone."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from configpipe.changelog import utc_now
from configpipe.handlers import drift as drift_handler
from configpipe.settings import DriftSettings
from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.chain import Chain
from configpipe_tools.harness.events import change
from configpipe_tools.harness.lambda_context import LambdaContext

CHECKOUT = "configpipe.team.checkout"
SECRET = "s3cr3t-value-never-logged"
PARAM = "/config/checkout/production/max_items"
SECRET_NAME = "configpipe/checkout/production/api_token"


@pytest.fixture
def chain(pipeline: Pipeline) -> Chain:
    chain = Chain(pipeline)
    chain.publish(change("max_items", 10), CHECKOUT)
    chain.publish(chain.sealed(change("api_token", SECRET, sensitive=True)), CHECKOUT)
    chain.publish(change("banner", "bye"), CHECKOUT)
    chain.run()
    chain.publish(change("banner", operation="delete"), CHECKOUT)
    chain.run()
    pipeline.bus_events()  # drop what the changes announced
    return chain


def run(pipeline: Pipeline, event: dict[str, Any], mode: str = "repair", later: float = 0) -> dict[str, Any]:
    settings = DriftSettings.model_validate({**pipeline.env(), "DRIFT_MODE": mode})
    reconciler = drift_handler.build(settings, now=lambda: utc_now() + timedelta(seconds=later))
    answer: dict[str, Any] = drift_handler.handler(event, LambdaContext(), reconciler=reconciler)
    return answer


def on_demand(repair: bool) -> dict[str, Any]:
    return {"service": "checkout", "environment": "production", "repair": repair}


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


def sm() -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def parameter(name: str = PARAM) -> Any:
    try:
        return json.loads(ssm().get_parameter(Name=name)["Parameter"]["Value"])
    except ssm().exceptions.ParameterNotFound:
        return None


def secret() -> Any:
    # by stage: moto's UpdateSecretVersionStage does not move its default version, AWS's does
    return json.loads(sm().get_secret_value(SecretId=SECRET_NAME, VersionStage="AWSCURRENT")["SecretString"])


def drifted(answer: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {d["key"]: [(f["store"], f["problem"]) for f in d["findings"]] for d in answer["drifted"]}


def announced(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e["detail"] for e in pipeline.bus_events("ConfigurationDriftDetected")]


def test_no_drift_right_after_the_pipeline_materialised(pipeline: Pipeline, chain: Chain):
    answer = run(pipeline, on_demand(repair=True))
    assert answer["checked"] == 3 and answer["drifted"] == []
    assert announced(pipeline) == []


def emf(captured: str) -> dict[str, float]:
    """The EMF metrics the handler printed (what CloudWatch would count)."""
    found: dict[str, float] = {}
    for line in captured.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_a_parameter_changed_by_hand_is_detected_announced_and_repaired(
    pipeline: Pipeline, chain: Chain, logs: Any, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    ssm().put_parameter(Name=PARAM, Value='"hand-edited"', Type="String", Overwrite=True)

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"max_items": [("ssm", "changed")]}
    assert answer["drifted"][0]["repaired"] is True and answer["drifted"][0]["version"] == 1
    assert parameter() == 10
    [event] = announced(pipeline)
    assert event["key"] == "max_items" and event["repaired"] is True and event["mode"] == "repair"
    assert event["findings"] == [{"store": "ssm", "name": PARAM, "problem": "changed"}]
    # names and problems only, never the hand-written value
    assert "hand-edited" not in json.dumps(event) + logs.getvalue()
    assert emf(capsys.readouterr().out) == {"KeysReconciled": 3, "DriftDetected": 1, "DriftRepaired": 1}
    # a second run finds nothing left to repair
    assert run(pipeline, on_demand(repair=True))["drifted"] == []


def test_a_parameter_deleted_by_hand_is_detected_and_repaired(pipeline: Pipeline, chain: Chain):
    ssm().delete_parameter(Name=PARAM)

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"max_items": [("ssm", "missing")]}
    assert parameter() == 10


def test_a_secret_changed_by_hand_is_detected_and_repaired_without_reading_or_logging_it(
    pipeline: Pipeline, chain: Chain, logs: Any
):
    sm().put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps("typed-in-the-console"))
    assert secret() == "typed-in-the-console"

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"api_token": [("secretsmanager", "changed")]}
    assert answer["drifted"][0]["repaired"] is True
    assert secret() == SECRET
    [event] = announced(pipeline)
    text = json.dumps(event) + json.dumps(answer) + logs.getvalue()
    assert SECRET not in text and "typed-in-the-console" not in text


def test_a_secret_deleted_by_hand_is_restored(pipeline: Pipeline, chain: Chain):
    sm().delete_secret(SecretId=SECRET_NAME, RecoveryWindowInDays=7)

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"api_token": [("secretsmanager", "missing")]}
    assert secret() == SECRET


def test_a_deleted_keys_parameter_put_back_by_hand_is_removed(pipeline: Pipeline, chain: Chain):
    name = "/config/checkout/production/banner"
    ssm().put_parameter(Name=name, Value='"hello"', Type="String")

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"banner": [("ssm", "unexpected")]}
    assert answer["drifted"][0]["version"] == 2  # the tombstone: readers get no value
    assert parameter(name) is None


def test_a_clear_copy_of_a_secret_in_ssm_is_drift_and_is_removed(pipeline: Pipeline, chain: Chain):
    name = "/config/checkout/production/api_token"
    ssm().put_parameter(Name=name, Value=json.dumps(SECRET), Type="String")

    answer = run(pipeline, on_demand(repair=True))

    assert drifted(answer) == {"api_token": [("ssm", "unexpected")]}
    assert parameter(name) is None and secret() == SECRET


def test_a_parameter_configpipe_never_managed_is_left_alone(pipeline: Pipeline, chain: Chain):
    foreign = "/config/checkout/production/handmade"
    ssm().put_parameter(Name=foreign, Value="not JSON at all", Type="String")

    answer = run(pipeline, on_demand(repair=True))

    assert answer["drifted"] == [] and answer["checked"] == 3
    assert ssm().get_parameter(Name=foreign)["Parameter"]["Value"] == "not JSON at all"
    assert announced(pipeline) == []


def test_report_only_announces_and_changes_nothing(pipeline: Pipeline, chain: Chain):
    ssm().put_parameter(Name=PARAM, Value="999", Type="String", Overwrite=True)
    sm().put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps("by-hand"))

    answer = run(pipeline, on_demand(repair=False))

    assert drifted(answer) == {
        "api_token": [("secretsmanager", "changed")],
        "max_items": [("ssm", "changed")],
    }
    assert answer["mode"] == "report" and answer["repaired"] == 0
    assert parameter() == 999 and secret() == "by-hand"
    assert sorted((e["key"], e["repaired"], e["mode"]) for e in announced(pipeline)) == [
        ("api_token", False, "report"),
        ("max_items", False, "report"),
    ]


def test_the_schedule_sweeps_every_registered_scope_in_the_configured_mode(pipeline: Pipeline, chain: Chain):
    ssm().put_parameter(Name=PARAM, Value="999", Type="String", Overwrite=True)

    # just accepted: the sweep leaves the keys to the materialiser (their records may be in flight)
    fresh = run(pipeline, {}, mode="report")
    assert fresh["drifted"] == [] and "checkout/production/max_items" in fresh["inFlight"]
    assert "checkout/production" in fresh["scopes"] and "global/production" in fresh["scopes"]
    assert "search/production" not in fresh["scopes"]  # search runs in development and staging only

    reported = run(pipeline, {}, mode="report", later=3600)
    assert drifted(reported) == {"max_items": [("ssm", "changed")]} and parameter() == 999

    repaired = run(pipeline, {}, mode="repair", later=3600)
    assert repaired["mode"] == "repair" and repaired["repaired"] == 1 and parameter() == 10


def test_a_bad_request_is_refused_and_changes_nothing(pipeline: Pipeline, chain: Chain):
    ssm().put_parameter(Name=PARAM, Value="999", Type="String", Overwrite=True)
    for event in ({"service": "checkout"}, {"service": "Bad Name", "environment": "production"}, {"x": 1}):
        answer = run(pipeline, event)
        assert answer["error"]["code"] == "INVALID_DRIFT_REQUEST"
    assert parameter() == 999 and announced(pipeline) == []


# --- `configpipe drift` -----------------------------------------------------------------------


@pytest.fixture
def drift_function(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> list[tuple[str, Any]]:
    """Lambda's synchronous Invoke of the drift function, in process: the real handler, built
    from the settings the stack gives it (report mode, as a scheduled run would not repair)."""
    from configpipe_tools.cli.context import CliContext

    calls: list[tuple[str, Any]] = []

    def invoke(self: CliContext, function: str, request: dict[str, Any]) -> dict[str, Any]:
        calls.append((function, request))
        return dict(json.loads(json.dumps(run(pipeline, json.loads(json.dumps(request)), mode="report"))))

    monkeypatch.setattr(CliContext, "invoke", invoke)
    return calls


def report(result: Any) -> Any:
    """The command's JSON (the in-process handler's EMF lines share its stdout)."""
    return json.loads(
        "\n".join(line for line in result.stdout.splitlines() if not line.startswith('{"_aws"'))
    )


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from configpipe_tools.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_cli_reports_drift_with_exit_3_and_repairs_it_with_exit_0(
    pipeline: Pipeline, chain: Chain, drift_function: list[tuple[str, Any]]
):
    ssm().put_parameter(Name=PARAM, Value='"hand-edited"', Type="String", Overwrite=True)

    reported = cli("drift", "checkout", "production", "-o", "json")
    assert reported.exit_code == 3, reported.output
    body = report(reported)
    assert drifted(body) == {"max_items": [("ssm", "changed")]} and body["mode"] == "report"
    assert parameter() == "hand-edited"

    text = cli("drift", "checkout", "production")
    assert text.exit_code == 3 and "drift max_items (should be v1): not repaired" in text.stdout
    assert f"ssm {PARAM}: changed" in text.stdout and "hand-edited" not in text.stdout

    repaired = cli("drift", "checkout", "production", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired" in repaired.stdout and parameter() == 10
    assert drift_function[-1] == (
        "configpipe-drift",
        {"service": "checkout", "environment": "production", "repair": True},
    )

    clean = cli("drift", "checkout", "production")
    assert clean.exit_code == 0 and "3 key(s) match the change log" in clean.stdout


def test_cli_refuses_a_bad_scope_without_invoking(
    pipeline: Pipeline, chain: Chain, drift_function: list[tuple[str, Any]]
):
    result = cli("drift", "Checkout!", "production", "-o", "json")
    assert result.exit_code == 2
    assert report(result)["error"]["code"] == "INVALID_SCOPE"
    assert drift_function == []
