"""Queue consumers against the local pipeline: the registry's ``checkout`` ``worker`` queue
exists (created from the synthesised template, like every other resource), the Node.js
example consumes it with the published JSON Schema, and the Python Subscription catches up
from the change log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.client import Subscription, SubscriptionScope
from configpipe.contracts import RolloutAction
from configpipe.stores import ParameterStore, SecretStore
from tests.e2e.conftest import REPO, LocalStack, eventually
from tests.e2e.test_rollouts import control

CHECKOUT = "configpipe.team.checkout"
EXAMPLE = REPO / "examples" / "node-consumer"
QUEUE = "configpipe-sub-checkout-worker"


@pytest.fixture(scope="module")
def node_example() -> Path:
    """The example with its locked dependencies installed, as its README says."""
    npm = shutil.which("npm")
    assert npm, "npm is needed for the Node.js example (CI installs Node.js)"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, check=True, capture_output=True, timeout=600
    )
    return EXAMPLE


def put_versions(local: LocalStack, key: str, *values: Any) -> None:
    """One version per value, each materialised before the next is published (so version n
    holds the n-th value)."""
    for value in values:
        local.put_change(CHECKOUT, service="checkout", key=key, value=value)
        eventually(
            lambda v=value: local.parameter("checkout", "development", key) == v, what=f"{key}={value}"
        )


@pytest.mark.long  # make test-long: the Node example run as written
def test_the_node_example_validates_with_the_schema_and_applies_by_version(
    local: LocalStack, unique: str, node_example: Path, tmp_path: Path
) -> None:
    # Given v1..v3 of a checkout key announced to the worker's queue, a replayed v2 and a forged update
    key = f"node-{unique}"
    put_versions(local, key, 1, 2, 3)
    sqs = local.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    announced = eventually(
        lambda: (
            len(local.bus.events("ConfigurationUpdated", key=key)) == 3
            and local.bus.events("ConfigurationUpdated", key=key)
        ),
        what="three announcements",
    )
    v2 = next(e for e in announced if e["detail"]["version"] == 2)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(v2))
    forged = {**v2, "detail": {**v2["detail"], "version": "99"}}
    forged_id = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(forged))["MessageId"]

    # When the example runs until the queue is idle
    state = tmp_path / "state.json"
    environment = {
        "PATH": os.environ["PATH"],
        "QUEUE_URL": queue_url,
        "STATE_FILE": str(state),
        "IDLE_EXIT_SECONDS": "5",
        "AWS_ENDPOINT_URL": local.url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    run = subprocess.run(
        ["node", "consumer.js"],
        cwd=node_example,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Then it applied the key's versions in increasing order up to v3, dropped what was not
    # newer, refused the forged update by the schema, and holds v3's value
    assert run.returncode == 0, run.stderr
    entries = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    scope = f"checkout/development/{key}"
    applied = [e["version"] for e in entries if e["outcome"] == "applied" and e["scope"] == scope]
    assert applied == sorted(applied) and applied[-1] == 3, entries
    dropped = [e for e in entries if e["outcome"] == "dropped" and e["scope"] == scope]
    assert len(applied) + len(dropped) == 4  # three versions and the replay, each seen once
    (refusal,) = [e for e in entries if e["messageId"] == forged_id]
    assert refusal["outcome"] == "refused" and refusal["errors"] == ["/version must be integer"]
    assert json.loads(state.read_text())[scope] == {
        "version": 3,
        "deleted": False,
        "valueInline": True,
        "value": 3,
    }


def run_node_example(local: LocalStack, example: Path, queue_url: str, state: Path) -> list[dict[str, Any]]:
    """Run the example until the queue is idle; its log entries."""
    environment = {
        "PATH": os.environ["PATH"],
        "QUEUE_URL": queue_url,
        "STATE_FILE": str(state),
        "IDLE_EXIT_SECONDS": "5",
        "AWS_ENDPOINT_URL": local.url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    run = subprocess.run(
        ["node", "consumer.js"], cwd=example, env=environment, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


@pytest.mark.long  # make test-long: the Node example run as written
def test_the_node_example_keeps_the_stable_value_through_a_rollout_and_takes_the_completed_one(
    local: LocalStack, unique: str, node_example: Path, tmp_path: Path
) -> None:
    # Given v1 of a checkout key applied by the example, then v2 started as a slow canary
    key = f"node-rollout-{unique}"
    scope = f"checkout/development/{key}"
    queue_url = local.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    state = tmp_path / "state.json"
    put_versions(local, key, "off")
    local.put_change(
        CHECKOUT,
        service="checkout",
        key=key,
        value="on",
        rollout={"strategy": "Linear10PercentEvery10Minutes"},
    )
    eventually(lambda: local.bus.events("ConfigurationRolloutStarted", key=key), what="rollout started")

    # When the example runs during the rollout
    during = run_node_example(local, node_example, queue_url, state)

    # Then it validated the start with its schema and acknowledged it, and keeps the stable v1
    started = [
        e for e in during if e.get("scope") == scope and e.get("detailType") == "ConfigurationRolloutStarted"
    ]
    assert [(e["outcome"], e["status"], e["candidateVersion"]) for e in started] == [
        ("ignored", "ROLLING_OUT", 2)
    ]
    assert not [
        e
        for e in during
        if e["outcome"] == "refused" and e.get("detailType", "").startswith("ConfigurationRollout")
    ]
    assert json.loads(state.read_text())[scope]["value"] == "off"

    # When the rollout is promoted and the example runs again
    control(local, CHECKOUT, key, RolloutAction.PROMOTE)
    eventually(
        lambda: [e for e in local.bus.events("ConfigurationUpdated", key=key) if e["detail"]["version"] == 2],
        what="the completion's ConfigurationUpdated",
    )
    after = run_node_example(local, node_example, queue_url, state)

    # Then it acknowledged the completion and applied v2 from its ConfigurationUpdated
    outcomes = [
        (e["outcome"], e.get("detailType"), e.get("version")) for e in after if e.get("scope") == scope
    ]
    assert ("ignored", "ConfigurationRolloutCompleted", None) in outcomes
    assert ("applied", None, 2) in outcomes
    assert json.loads(state.read_text())[scope] == {
        "version": 2,
        "deleted": False,
        "valueInline": True,
        "value": "on",
    }


def test_the_python_subscription_catches_up_from_the_local_change_log(local: LocalStack, unique: str) -> None:
    # Given a key at v2, its announcements drained from the queue by someone else
    key = f"sub-{unique}"
    put_versions(local, key, "a", "b")
    seen: list[tuple[int, Any]] = []
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=local.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    subscription = Subscription(
        SubscriptionScope("checkout", environments=("development",)),
        local.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"],
        lambda update, value: seen.append((update.version, value)) if update.key == key else None,
        change_log=ChangeLog(
            local.outputs["ChangeLogTableName"], table=dynamodb.Table(local.outputs["ChangeLogTableName"])
        ),
        sqs=local.client("sqs"),
        parameters=ParameterStore(client=local.client("ssm")),
        secrets=SecretStore(client=local.client("secretsmanager")),
        wait_seconds=1,
    )

    # When it starts (catch-up) and then follows the queue through v3
    subscription.catch_up()
    put_versions(local, key, "c")
    eventually(lambda: subscription.poll() >= 0 and len(seen) >= 3, what="v3 from the queue")

    # Then it saw v1..v3 once each, in order, with their values
    assert seen == [(1, "a"), (2, "b"), (3, "c")]
