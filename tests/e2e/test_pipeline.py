"""The whole pipeline on the local emulator, driven over HTTP as a team drives it in AWS."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from configpipe_tools.harness.events import eventbridge_event
from tests.e2e.conftest import REPO, LocalStack, eventually

pytestmark = pytest.mark.e2e

CHECKOUT = "configpipe.team.checkout"
PAYMENTS = "configpipe.team.payments"
PLATFORM = "configpipe.team.platform"


def test_a_change_reaches_the_handler_of_its_service(local: LocalStack, unique: str) -> None:
    # Given a checkout key nobody has set
    key = f"limit-{unique}"

    # When the checkout team publishes a change
    change_id = local.put_change(CHECKOUT, service="checkout", key=key, value={"per_minute": 120})

    # Then checkout's handler applies version 1, the value is in SSM, and the bus tells the story
    applied = eventually(lambda: local.applied("checkout", "development", key), what="checkout applied")
    assert int(applied["version"]) == 1
    assert applied["changeId"] == change_id
    assert local.parameter("checkout", "development", key) == {"per_minute": 120}
    updated = eventually(
        lambda: local.bus.events("ConfigurationUpdated", changeId=change_id), what="announcement"
    )
    assert updated[0]["source"] == "configpipe.pipeline"
    assert updated[0]["detail"]["version"] == 1
    delivered = eventually(
        lambda: local.bus.events("ConfigurationDelivered", changeId=change_id), what="delivery"
    )
    assert {e["detail"]["targetService"] for e in delivered} == {"checkout"}
    assert local.applied("payments", "development", key) is None


def test_a_global_change_reaches_every_subscribed_service(local: LocalStack, unique: str) -> None:
    key = f"feature.e2e-{unique}"

    # When the platform team flips a global flag in development and in production
    local.put_change(PLATFORM, service="global", key=key, value=True)
    production = local.put_change(PLATFORM, service="global", key=key, value=True, environment="production")

    # Then every service applies it in development ...
    for service in ("checkout", "payments", "search"):
        applied = eventually(
            lambda s=service: local.applied(s, "development", key), what=f"{service} applied"
        )
        assert int(applied["version"]) == 1
    # ... and in production every service but search, which the registry keeps out of production
    delivered = eventually(
        lambda: (
            len(local.bus.events("ConfigurationDelivered", changeId=production)) >= 2
            and local.bus.events("ConfigurationDelivered", changeId=production)
        ),
        what="production deliveries",
    )
    assert {e["detail"]["targetService"] for e in delivered} == {"checkout", "payments"}
    assert local.applied("search", "production", key) is None
    assert local.parameter("global", "production", key) is True


def test_history_and_rollback(local: LocalStack, unique: str) -> None:
    key = f"timeout-{unique}"
    for value in ("1s", "5s"):
        local.put_change(CHECKOUT, service="checkout", key=key, value=value)
        eventually(
            lambda v=value: local.parameter("checkout", "development", key) == v, what=f"value {value}"
        )

    # When the team rolls back to version 1
    rollback = local.put_change(CHECKOUT, service="checkout", key=key, operation="rollback", toVersion=1)

    # Then version 3 carries version 1's value everywhere, and the history keeps all three
    applied = eventually(
        lambda: (a := local.applied("checkout", "development", key)) and int(a["version"]) == 3 and a,
        what="version 3 applied",
    )
    assert applied["changeId"] == rollback
    assert local.parameter("checkout", "development", key) == "1s"
    versions = sorted(
        (
            i
            for i in local.change_log_items(f"KEY#checkout#development#{key}")
            if i["sk"]["S"].startswith("V#")
        ),
        key=lambda i: i["sk"]["S"],
    )
    assert [int(i["version"]["N"]) for i in versions] == [1, 2, 3]
    assert [json.loads(i["valueJson"]["S"]) for i in versions] == ["1s", "5s", "1s"]
    assert int(versions[2]["rolledBackTo"]["N"]) == 1


def test_a_rejected_change_is_announced_with_its_reason_and_writes_nothing_else(
    local: LocalStack, unique: str
) -> None:
    key = f"limit-{unique}"

    # When the payments team tries to change a checkout key, and checkout breaks its own schema
    foreign = local.put_change(PAYMENTS, service="checkout", key=key, value=1)
    invalid = local.put_change(CHECKOUT, service="checkout", key="max_items", value=5000)

    # Then both are rejected on the bus with stable reason codes
    for change_id, code in ((foreign, "SOURCE_NOT_AUTHORIZED"), (invalid, "SCHEMA_VIOLATION")):
        rejected = eventually(
            lambda c=change_id: local.bus.events("ConfigurationRejected", changeId=c), what=code
        )
        assert code in {r["code"] for r in rejected[0]["detail"]["reasons"]}
        assert "value" not in rejected[0]["detail"]
    # And nothing was materialised, versioned, announced or delivered for them
    assert local.parameter("checkout", "development", key) is None
    assert local.change_log_items(f"KEY#checkout#development#{key}") == []
    assert not local.bus.events("ConfigurationUpdated", changeId=foreign)
    assert not local.bus.events("ConfigurationUpdated", changeId=invalid)
    assert local.applied("checkout", "development", key) is None


def test_a_secret_goes_only_to_secrets_manager(local: LocalStack, unique: str) -> None:
    key = f"db-password-{unique}"
    secret = f"hunter2-{unique}"
    scope = f"checkout/development/{key}"
    # Given a value encrypted client-side, as the CLI does for --sensitive
    ciphertext = local.client("kms").encrypt(
        KeyId=local.outputs["SecretsKeyArn"],
        Plaintext=json.dumps(secret).encode(),
        EncryptionContext={"configpipe:scope": scope},
    )["CiphertextBlob"]

    change_id = local.put_change(
        CHECKOUT,
        service="checkout",
        key=key,
        sensitive=True,
        encryptedValue=base64.b64encode(ciphertext).decode(),
    )

    # Then the handler applies it, reading it from Secrets Manager
    applied = eventually(lambda: local.applied("checkout", "development", key), what="secret applied")
    assert applied["valueHash"].startswith("hmac-sha256:")
    stored = local.client("secretsmanager").get_secret_value(
        SecretId=f"configpipe/checkout/development/{key}"
    )
    assert json.loads(stored["SecretString"]) == secret
    # And it is nowhere else: not in SSM, not on the bus, not in the change log, not in any log line
    assert local.parameter("checkout", "development", key) is None
    updated = eventually(
        lambda: local.bus.events("ConfigurationUpdated", changeId=change_id), what="announcement"
    )
    assert "value" not in updated[0]["detail"]
    assert secret not in json.dumps(local.bus.drain())
    versions = local.change_log_items(f"KEY#checkout#development#{key}")
    assert any("secretCiphertext" in item for item in versions)
    assert secret not in repr(versions)
    assert secret not in local.logs()


def test_the_same_change_twice_has_one_effect(local: LocalStack, unique: str) -> None:
    key = f"dup-{unique}"
    detail = {"changeId": f"dup-{unique}", "service": "checkout", "key": key, "value": 7}

    # When a team's client retries the same change
    local.put_change(CHECKOUT, **detail)
    local.put_change(CHECKOUT, **detail)
    # and EventBridge delivers one envelope twice (at-least-once) to the validator
    envelope = {
        "version": "0",
        "id": f"event-{unique}",
        "detail-type": "ConfigurationChange",
        "source": CHECKOUT,
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            **detail,
            "environment": "development",
            "operation": "put",
            "author": "e2e",
            # the very request put_change sent: the same changeId with another payload would be
            # CHANGE_ID_REUSED, not a duplicate
            "reason": "end-to-end test",
        },
    }
    for _ in range(2):
        response = local.client("lambda").invoke(
            FunctionName=local.outputs["ValidatorFunctionName"],
            InvocationType="Event",
            Payload=json.dumps(envelope).encode(),
        )
        assert response["StatusCode"] == 202

    # Then the validator saw four deliveries, accepted one, and there is exactly one version
    def outcomes() -> list[str]:
        lines = [
            json.loads(line) for line in local.logs().splitlines() if line.startswith("{") and unique in line
        ]
        return [
            line["message"]
            for line in lines
            if line.get("changeId") == detail["changeId"] and str(line.get("message")).startswith("change ")
        ]

    def four_outcomes() -> list[str] | None:
        found = outcomes()
        return found if len(found) >= 4 else None

    seen = eventually(four_outcomes, what="four validator outcomes")
    assert sorted(seen) == ["change accepted", "change duplicate", "change duplicate", "change duplicate"]
    versions = [
        i for i in local.change_log_items(f"KEY#checkout#development#{key}") if i["sk"]["S"].startswith("V#")
    ]
    assert len(versions) == 1
    applied = eventually(lambda: local.applied("checkout", "development", key), what="applied")
    assert int(applied["version"]) == 1
    assert len(local.bus.events("ConfigurationUpdated", changeId=detail["changeId"])) == 1


def test_a_failing_async_invocation_is_retried_then_parked_in_the_dlq(local: LocalStack, unique: str) -> None:
    handler = "checkout-config-update-handler"
    # The function's on-failure destination, as the template configured it
    config = local.client("lambda").get_function_event_invoke_config(FunctionName=handler)
    assert config["MaximumRetryAttempts"] == 2
    dlq_arn = config["DestinationConfig"]["OnFailure"]["Destination"]
    dlq_url = local.client("sqs").get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]

    # When the handler is invoked asynchronously with an update it cannot apply: a version
    # beyond DynamoDB's 38 digits makes the sample service's durable guard fail on every try.
    # (An event it cannot parse no longer does: it is refused without a retry, issue 9.)
    bad = {
        **eventbridge_event(
            {
                "changeId": f"dlq-{unique}",
                "service": "checkout",
                "environment": "production",
                "key": f"dlq-{unique}",
                "operation": "put",
                "version": 10**40,
                "valueHash": "sha256:0",
                "valueInline": True,
                "value": 1,
                "author": "e2e",
                "reason": "poison",
                "appliedAt": "2026-12-02T10:00:00+00:00",
            },
            detail_type="ConfigurationUpdated",
            source="configpipe.pipeline",
        ),
        "marker": unique,
    }
    local.client("lambda").invoke(
        FunctionName=handler, InvocationType="Event", Payload=json.dumps(bad).encode()
    )

    # Then, after 1 + 2 attempts, Lambda's invocation record lands in the DLQ
    def parked() -> dict[str, object] | None:
        for message in (
            local.client("sqs").receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        ):
            record = json.loads(message["Body"])
            if record.get("requestPayload", {}).get("marker") == unique:
                return record
        return None

    record = eventually(parked, timeout=180, what="DLQ record")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"


def test_the_aws_cli_drives_the_pipeline(local: LocalStack, unique: str, tmp_path: Path) -> None:
    aws = Path(sys.executable).with_name("aws")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PAGER": "",
    }
    key = f"payments.retries-{unique}"
    entries = [
        {
            "EventBusName": local.bus_name,
            "Source": PAYMENTS,
            "DetailType": "ConfigurationChange",
            "Detail": json.dumps(
                {
                    "changeId": f"cli-{unique}",
                    "service": "payments",
                    "environment": "staging",
                    "key": key,
                    "operation": "put",
                    "value": 3,
                    "author": "cli",
                    "reason": "from the AWS CLI",
                }
            ),
        }
    ]
    (tmp_path / "entries.json").write_text(json.dumps(entries))

    def aws_cli(*args: str) -> dict[str, object]:
        result = subprocess.run(
            [str(aws), "--endpoint-url", local.url, "--output", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    put = aws_cli("events", "put-events", "--entries", f"file://{tmp_path / 'entries.json'}")
    assert put["FailedEntryCount"] == 0

    def read() -> str | None:
        result = subprocess.run(
            [
                str(aws),
                "--endpoint-url",
                local.url,
                "--output",
                "json",
                "ssm",
                "get-parameter",
                "--name",
                f"/config/payments/staging/{key}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return result.stdout if result.returncode == 0 else None

    parameter = json.loads(eventually(read, interval=0.5, what="parameter via the AWS CLI"))
    assert parameter["Parameter"]["Value"] == "3"
    applied = eventually(lambda: local.applied("payments", "staging", key), what="payments applied")
    assert int(applied["version"]) == 1


def test_a_taken_port_gets_a_clear_message(local: LocalStack) -> None:
    port = local.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "configpipe_tools.local",
            "up",
            "--port",
            port,
            "--state-dir",
            str(local.state_dir / "x"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 3
    # Only the project's message: not the web server's own "Address already in use / Port N is in
    # use by another program" before it.
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another emulator or `configpipe local up`?). "
        "Stop it, or choose another port with --port N (--port 0 picks a free one)."
    ]
