"""The validator Lambda entry point: wiring from environment, logs and metrics."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from configpipe.handlers import validator
from configpipe.settings import ValidatorSettings
from configpipe_tools.harness.events import change, eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext

SECRET = "s3cr3t-do-not-log"


@pytest.fixture
def handler(pipeline):
    """The Lambda entry point with its write path built as ``default()`` builds it, from the
    environment the stack gives the function (as a mapping: no test changes os.environ)."""
    write_path = validator.build(ValidatorSettings.from_environ(pipeline.env()))
    return lambda event, context: validator.handler(event, context, write_path=write_path)


def log_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_handler_accepts_logs_the_outcome_with_the_change_id_and_emits_a_metric(handler, capsys, logs):
    result = handler(eventbridge_event(change(value=3, change_id="chg-42")), LambdaContext())

    assert result["status"] == "accepted" and result["version"] == 1
    outcome = next(line for line in log_lines(logs.getvalue()) if line.get("message") == "change accepted")
    assert outcome["correlation_id"] == "chg-42"
    assert outcome["version"] == 1
    emf = [line for line in log_lines(capsys.readouterr().out) if "_aws" in line]
    assert emf[-1]["ChangesAccepted"] in (1.0, [1.0])


def test_handler_never_logs_a_secret_accepted_or_rejected(handler, capsys, logs):
    handler(eventbridge_event(change(key="db_password", value=SECRET)), LambdaContext())
    handler(eventbridge_event(change(key="db_password", value=SECRET, colour="red")), LambdaContext())
    handler(eventbridge_event(change(key="api_token", value=SECRET * 400)), LambdaContext())

    out = capsys.readouterr()
    assert "db_password" in logs.getvalue()  # the logs were captured
    assert SECRET not in logs.getvalue() + out.out + out.err


def test_handler_rejects_malformed_events_without_raising(handler):
    result = handler(eventbridge_event("just a string"), LambdaContext())

    assert result["status"] == "rejected"
    assert result["reasons"][0]["code"] == "MALFORMED_EVENT"


def test_missing_configuration_fails_loudly_naming_the_variable(pipeline):
    environ = {name: value for name, value in pipeline.env().items() if name != "CHANGE_LOG_TABLE"}

    with pytest.raises(ValidationError, match="CHANGE_LOG_TABLE"):
        validator.build(ValidatorSettings.from_environ(environ))
