"""Shared test setup. AWS credentials are fake and the region fixed *before* any boto3
client exists, so no test can reach a real account."""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "configpipe",
        "POWERTOOLS_SERVICE_NAME": "configpipe-tests",
        "POWERTOOLS_DEV": "false",
        # botocore routes ARN-addressed DynamoDB Streams calls to account-id endpoints,
        # which moto does not recognise; the regional endpoint behaves the same.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        # The CLI's console width for every CliRunner, set once here: passing it per invoke
        # (``CliRunner.invoke(env=...)``) rewrites os.environ while background threads read it.
        "COLUMNS": "220",
    }
)
os.environ.pop("AWS_PROFILE", None)
# a developer's own default source must not leak into the CLI tests that expect none
os.environ.pop("CONFIGPIPE_SOURCE", None)
# jsii's Node-version banners, for the in-process synth of the cdk-nag test (set here, at import,
# before any thread exists; `make test` sets the same).
from configpipe_tools.local.template import jsii_quiet_environment

os.environ.update(jsii_quiet_environment())

import pytest
from moto import mock_aws

from configpipe_tools.harness.aws import Pipeline, provision, serialised_moto


@pytest.fixture(scope="session", autouse=True)
def one_moto_lock():
    """Every in-process moto request and every boto client creation, in every test, under the
    harness's one lock: tests with background threads never race moto's backends."""
    with serialised_moto():
        yield


@pytest.fixture
def aws():
    """An empty in-process AWS (moto) for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture
def pipeline(aws) -> Pipeline:
    """The pipeline's resources provisioned in moto, with the demo registry."""
    return provision()


@pytest.fixture
def logs():
    """Everything the Powertools logger writes during the test, as one string (the JSON
    lines a CloudWatch log group would receive)."""
    import io

    from configpipe.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
