"""``configpipe status`` (the delivery ledger joined with the change log and the registry) and the
cross-key audit export of ``configpipe history`` (issue 14)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from configpipe.contracts import AckOutcome, ConfigurationAcknowledged
from configpipe.ledger import DeliveryLedger
from tests.unit.cli.conftest import Validator, assert_clean_exit, parse_json, seed


def acknowledge(
    pipeline,
    target: str,
    version: int,
    key: str = "max_items",
    outcome: AckOutcome = AckOutcome.APPLIED,
    reason: str | None = None,
    service: str = "checkout",
    tenant: str | None = None,
) -> None:
    DeliveryLedger(pipeline.ledger_table_name).record(
        ConfigurationAcknowledged(
            tenant=tenant,
            change_id=f"c-{version}",
            target_service=target,
            service=service,
            environment="production",
            key=key,
            version=version,
            outcome=outcome,
            reason=reason,
            reported_at=datetime.now(UTC),
        )
    )


def test_status_is_converged_when_every_subscriber_applied_the_current_version(
    cli, pipeline, idle_validator: Validator
):
    seed(idle_validator, "max_items", 10, 20)
    acknowledge(pipeline, "checkout", 2)

    result = cli("status", "checkout", "production", "--require-converged", "-o", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["converged"] is True
    (row,) = body["keys"]
    assert (row["key"], row["currentVersion"], row["converged"]) == ("max_items", 2, True)
    assert [(s["targetService"], s["appliedVersion"], s["state"]) for s in row["services"]] == [
        ("checkout", 2, "converged")
    ]


def test_status_of_a_tenant_compares_its_own_values_with_what_services_applied_of_them(
    cli, pipeline, idle_validator: Validator
):
    # Given the service's value converged at v3, and tenant acme's own value at its v2, of which
    # checkout acknowledged only v1
    seed(idle_validator, "max_items", 10, 20, 30)
    acknowledge(pipeline, "checkout", 3)
    seed(idle_validator, "max_items", 100, 200, tenant="acme")
    acknowledge(pipeline, "checkout", 1, tenant="acme")

    tenant = cli("status", "checkout", "production", "--tenant", "acme", "--require-converged", "-o", "json")
    service = cli("status", "checkout", "production", "--require-converged", "-o", "json")

    # Then the tenant's view lags by one of its own versions; the service's is converged
    assert_clean_exit(tenant, 6)
    body = parse_json(tenant)
    assert body["tenant"] == "acme"
    (row,) = body["keys"]
    assert (
        row["currentVersion"],
        row["services"][0]["appliedVersion"],
        row["services"][0]["lagVersions"],
    ) == (
        2,
        1,
        1,
    )
    assert_clean_exit(service, 0)


def test_a_lagging_service_fails_the_gate_with_its_lag(cli, pipeline, idle_validator: Validator):
    seed(idle_validator, "max_items", 10, 20, 30)
    acknowledge(pipeline, "checkout", 1)

    gate = cli("status", "checkout", "production", "max_items", "--require-converged", "-o", "json")
    without_gate = cli("status", "checkout", "production", "max_items")

    assert_clean_exit(gate, 6)
    (service,) = parse_json(gate)["keys"][0]["services"]
    assert (service["state"], service["appliedVersion"], service["lagVersions"]) == ("pending", 1, 2)
    assert "lagSeconds" in parse_json(gate)["keys"][0]
    assert_clean_exit(without_gate, 0)  # only the gate turns a lag into a failure
    assert "not converged" in without_gate.stdout


def test_a_service_that_never_acknowledged_is_pending(cli, idle_validator: Validator):
    seed(idle_validator, "max_items", 10)

    body = parse_json(cli("status", "checkout", "production", "-o", "json"))

    (service,) = body["keys"][0]["services"]
    assert (service["state"], service["lagVersions"]) == ("pending", 1)
    assert "appliedVersion" not in service


def test_a_refusal_shows_the_failure_and_fails_the_gate(cli, pipeline, idle_validator: Validator):
    seed(idle_validator, "max_items", 10, 20)
    acknowledge(pipeline, "checkout", 1)
    acknowledge(pipeline, "checkout", 2, outcome=AckOutcome.REFUSED, reason="too many items for the cart")

    result = cli("status", "checkout", "production", "--require-converged", "-o", "json")
    table = cli("status", "checkout", "production")

    assert_clean_exit(result, 6)
    (service,) = parse_json(result)["keys"][0]["services"]
    assert service["state"] == "refused"
    assert (service["appliedVersion"], service["failedVersion"]) == (1, 2)
    assert service["failureReason"] == "too many items for the cart"
    assert "refused v2: too many items for the cart" in table.stdout


def test_a_global_key_is_expected_of_every_service_subscribed_in_that_environment(
    cli, pipeline, idle_validator: Validator
):
    seed(idle_validator, "feature.dark_mode", True, service="global")
    acknowledge(pipeline, "checkout", 1, key="feature.dark_mode", service="global")

    body = parse_json(cli("status", "global", "production", "-o", "json"))

    (row,) = body["keys"]
    # search runs only in development and staging; payments subscribes to feature. keys
    assert {s["targetService"]: s["state"] for s in row["services"]} == {
        "checkout": "converged",
        "payments": "pending",
    }
    assert body["converged"] is False


def test_a_key_nobody_receives_is_shown_without_receivers(cli, idle_validator: Validator):
    seed(idle_validator, "max_items", 5, service="payments")  # payments takes payments. and feature. only

    body = parse_json(cli("status", "payments", "production", "--require-converged", "-o", "json"))

    (row,) = body["keys"]
    assert row["receivers"] == [] and row["services"] == [] and row["converged"] is True


def test_status_of_a_missing_key_is_exit_2(cli, idle_validator: Validator):
    result = cli("status", "checkout", "production", "nope", "-o", "json")
    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["code"] == "KEY_NOT_FOUND"


# --- history: the audit export across keys ----------------------------------------------------


def test_history_exports_every_key_of_a_service_as_csv_oldest_first_without_values(
    cli, idle_validator: Validator
):
    seed(idle_validator, "a", "first-secret-ish", author="alice")
    seed(idle_validator, "b", 2, author="=HYPERLINK(evil)")
    seed(idle_validator, "a", "second")
    seed(idle_validator, "other", 1, env="staging")

    result = cli(
        "history", "--service", "checkout", "--env", "production", "--since", "1h", "--output", "csv"
    )

    assert_clean_exit(result, 0)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["key"], r["version"]) for r in rows] == [("a", "1"), ("b", "1"), ("a", "2")]
    assert rows[0]["author"] == "alice" and rows[0]["valueHash"].startswith("sha256:")
    assert rows[1]["author"] == "'=HYPERLINK(evil)"  # a spreadsheet does not run it
    assert "first-secret-ish" not in result.stdout  # an audit export carries hashes, not values


def test_history_since_leaves_out_older_versions_and_json_lists_them(cli, idle_validator: Validator):
    seed(idle_validator, "a", 1, 2)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    later = parse_json(
        cli("history", "--service", "checkout", "--env", "production", "--since", tomorrow, "-o", "json")
    )
    every = parse_json(cli("history", "checkout", "production", "-o", "json"))

    assert later["versions"] == []
    assert [(v["key"], v["version"]) for v in every["versions"]] == [("a", 1), ("a", 2)]


def test_history_of_one_key_is_unchanged(cli, idle_validator: Validator):
    seed(idle_validator, "a", 1, 2)
    body = parse_json(cli("history", "checkout", "production", "a", "-o", "json"))
    assert [v["version"] for v in body["versions"]] == [2, 1]  # newest first, as before


def test_history_refuses_a_bad_since_and_a_missing_scope(cli, idle_validator: Validator):
    bad = cli("history", "--service", "checkout", "--env", "production", "--since", "last tuesday")
    missing = cli("history", "--service", "checkout")
    assert_clean_exit(bad, 2)
    assert "INVALID_SINCE" in bad.output or "neither an ISO 8601 time" in bad.stderr
    assert_clean_exit(missing, 2)


# --- a key nobody receives (issue 14, item 7) ---------------------------------------------------


def test_put_of_a_key_no_service_subscribes_to_warns_and_says_so_in_the_outcome(cli, validator: Validator):
    # payments subscribes only to payments. and feature. keys
    result = cli(
        "put",
        "payments",
        "production",
        "max_items",
        "5",
        "--reason",
        "r",
        "-o",
        "json",
        source="configpipe.team.payments",
    )

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert (body["status"], body["receivers"]) == ("accepted", [])
    assert "no service receives payments/production/max_items" in result.stderr


def test_put_of_a_subscribed_key_names_its_receivers_without_a_warning(cli, validator: Validator):
    result = cli("put", "checkout", "production", "max_items", "5", "--reason", "r", "-o", "json")

    assert_clean_exit(result, 0)
    assert parse_json(result)["receivers"] == ["checkout"]
    assert "no service receives" not in result.stderr


# --- watch: applied versions rebuilt from the ledger after a disconnect ---------------------


def test_a_resumed_watch_knows_from_the_ledger_what_each_service_runs(
    cli, pipeline, idle_validator: Validator
):
    # Given checkout applied max_items v2 and refused v3 while no watch was connected
    seed(idle_validator, "max_items", 10, 20, 30)
    seed(idle_validator, "feature.x", True, service="global")
    acknowledge(pipeline, "checkout", 2)
    acknowledge(pipeline, "checkout", 3, outcome=AckOutcome.REFUSED, reason="too many")
    acknowledge(pipeline, "checkout", 1, key="feature.x", service="global")
    acknowledge(pipeline, "payments", 1, key="feature.x", service="global")  # another service: filtered out

    # When a watch resumes
    result = cli(
        "watch",
        "--service",
        "checkout",
        "--env",
        "production",
        "--since-version",
        "1",
        "--timeout",
        "0",
        "-o",
        "json",
    )

    # Then the summary has checkout's applied versions without any live delivery
    assert_clean_exit(result, 0)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    applied = [
        (e["key"], e["targetService"], e.get("appliedVersion")) for e in events if e["type"] == "applied"
    ]
    assert applied == [("max_items", "checkout", 2), ("feature.x", "checkout", 1)]
    rows = {r["key"]: r for r in events[-1]["services"]}
    assert (rows["max_items"]["appliedVersion"], rows["max_items"]["state"]) == (2, "failed")
    assert rows["max_items"]["error"] == "refused: too many"
    assert (rows["feature.x"]["appliedVersion"], rows["feature.x"]["state"]) == (1, "converged")
