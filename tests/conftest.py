"""Shared test setup. AWS credentials are fake and the region fixed *before* any boto3
client exists, so no test can reach a real account."""

from __future__ import annotations

import functools
import os
from collections import Counter

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

import botocore.loaders
import botocore.session
import hypothesis
import moto.kms.models
import pytest
import typer
import typer.testing
from moto import mock_aws
from moto.kms.utils import generate_private_key

from configpipe_tools.harness.aws import Pipeline, provision, serialised_moto

# Speed only, never behaviour: two costs every moto test paid again, found with cProfile on
# tests/unit/rollout (together about 60 % of the time of a test that provisions the pipeline).
#
# 1. moto resets boto3's default session for each test, and each new botocore session makes a
#    new data loader, so every test re-read and re-parsed each service model and endpoints.json
#    from disk. One loader for the process keeps botocore's own cache of the parsed files (as
#    one long-lived session does); the data is the same files.
_LOADER = botocore.loaders.create_loader()


def _process_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return _LOADER if not search_path_string else botocore.loaders.create_loader(search_path_string)


botocore.session.create_loader = _process_loader  # type: ignore[attr-defined]


# 2. moto gives every KMS key an RSA-2048 key pair (a fresh one, ~0.1-0.2 s each), used only by
#    asymmetric Sign/Verify. A symmetric or HMAC key (all configpipe uses) gets one pair made
#    once; asymmetric keys still get their own.
_SHARED_PAIR: list[object] = []


def _private_key(key_spec: str) -> object:
    if key_spec != "SYMMETRIC_DEFAULT" and not key_spec.startswith("HMAC_"):
        return generate_private_key(key_spec)
    if not _SHARED_PAIR:
        _SHARED_PAIR.append(generate_private_key("RSA_2048"))
    return _SHARED_PAIR[0]


moto.kms.models.generate_private_key = _private_key  # type: ignore[assignment]

# 3. typer's CliRunner turns the Typer app into a click command on every invoke (~65 ms for
#    configpipe's app, a third of a typical CLI test's own time, found with cProfile on
#    tests/unit/cli/test_release.py). The command built from one app is the same every time (no
#    test adds commands), so it is built once per app, as the installed `configpipe` script
#    builds it once per process.
typer.testing._get_command = functools.cache(typer.testing._get_command)

# Property tests run the same examples on every machine and every run: a CI run is judged on
# the code, not on what a random search happened to try (or on a local .hypothesis/ example
# database a fresh clone does not have), and a busy machine is not a failure (no deadline).
# For a wider random search locally, load hypothesis's "default" profile instead.
hypothesis.settings.register_profile("configpipe", derandomize=True, database=None, deadline=None)
hypothesis.settings.load_profile("configpipe")


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


# Longest files first. Under `make test` (pytest-xdist, --dist loadfile --no-loadscope-reorder)
# a worker takes the next file in collection order as it runs low. xdist's own order (most tests
# first) left the end-to-end files, few tests each but the longest, for last: the run ended with
# one worker finishing them while the other sat idle. Group by kind (end-to-end, integration,
# infrastructure, unit), then most tests first within a kind; a file keeps its own order.
_LONGEST_KINDS_FIRST = ("tests/e2e/", "tests/integration/", "tests/infrastructure/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    per_file = Counter(item.location[0] for item in items)

    def rank(item: pytest.Item) -> tuple[int, int, str]:
        path = item.location[0]
        kind = next(
            (i for i, prefix in enumerate(_LONGEST_KINDS_FIRST) if path.startswith(prefix)),
            len(_LONGEST_KINDS_FIRST),
        )
        return kind, -per_file[path], path

    items.sort(key=rank)
