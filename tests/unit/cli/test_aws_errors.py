"""AWS problems end in exit 5 with a message that says what to do next, never a traceback.

These tests run without moto where the failure happens before any request (credentials,
profiles) or against a closed local port (endpoint down), so nothing can reach AWS; what depends
on the environment runs the CLI as its own process (no test changes os.environ)."""

from __future__ import annotations

import pytest

from tests.unit.cli.conftest import CHECKOUT, assert_clean_exit, parse_json

CLOSED_PORT = "http://127.0.0.1:9"


#: a fake key pair: the CLI gets as far as calling the (closed) endpoint
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def invoke(cli_process, *args, env=None):
    """``configpipe`` as a process with no credentials unless ``env`` gives some, one attempt per call."""
    return cli_process(
        "--endpoint-url",
        CLOSED_PORT,
        "--source",
        CHECKOUT,
        *args,
        env={"AWS_MAX_ATTEMPTS": "1", **(env or {})},
    )


@pytest.mark.parametrize(
    "args",
    [
        ["get", "checkout", "production", "k"],
        ["put", "checkout", "production", "k", "1", "-r", "r"],
        ["history", "checkout", "production", "k"],
    ],
)
def test_no_credentials_is_exit_5_with_what_to_do(cli_process, args):
    result = invoke(cli_process, *args)

    assert_clean_exit(result, 5)
    assert "no usable AWS credentials" in result.stderr
    assert "--profile" in result.stderr


def test_no_credentials_json_error_parses(cli_process):
    result = invoke(cli_process, "list", "checkout", "production", "-o", "json")

    assert_clean_exit(result, 5)
    body = parse_json(result)
    assert body["error"]["code"] == "NO_CREDENTIALS"
    assert body["exitCode"] == 5


def test_bad_input_is_reported_before_credentials_are_needed(cli_process):
    result = invoke(cli_process, "put", "checkout", "production", "bad key", "1", "-r", "r")

    assert_clean_exit(result, 2)


def test_endpoint_down_is_exit_5_with_what_to_do(cli_process):
    result = invoke(cli_process, "get", "checkout", "production", "k", env=CREDENTIALS)

    assert_clean_exit(result, 5)
    assert "could not reach AWS" in result.stderr
    assert "--endpoint-url" in result.stderr


def test_unknown_profile_is_exit_5(runner):
    from configpipe_tools.cli.main import app

    result = runner.invoke(app, ["--profile", "no-such-profile", "get", "checkout", "production", "k"])

    assert_clean_exit(result, 5)
    assert "no-such-profile" in result.stderr
    assert "aws configure" in result.stderr


def test_missing_table_says_which_option_to_check(cli):
    result = cli("--table", "NoSuchTable", "get", "checkout", "production", "k")

    assert_clean_exit(result, 5)
    assert "NoSuchTable" in result.stderr and "--table" in result.stderr


def test_missing_bus_says_which_option_to_check(cli):
    result = cli("--bus", "no-such-bus", "put", "checkout", "production", "k", "1", "-r", "r")

    assert_clean_exit(result, 5)
    assert "no-such-bus" in result.stderr and "--bus" in result.stderr


def test_invalid_output_format_is_a_usage_error(cli):
    result = cli("get", "checkout", "production", "k", "-o", "yaml")

    assert_clean_exit(result, 2)


@pytest.mark.usefixtures("aws")
def test_missing_table_without_a_stack_says_to_pass_the_stack(runner):
    from configpipe_tools.cli.main import app

    # Given an account where the pipeline's table is not called by the CLI's default name
    # When a command runs without --stack (nor CONFIGPIPE_STACK) or --table
    result = runner.invoke(app, ["get", "checkout", "production", "k"])

    # Then the error says the default table was not found, and how to name the stack
    assert_clean_exit(result, 5)
    assert "'ChangeLog'" in result.stderr
    assert "--stack" in result.stderr and "CONFIGPIPE_STACK" in result.stderr
