"""``--tenant`` on put, get, delete, list, history, diff and rollback (issue 17)."""

from __future__ import annotations

from tests.unit.cli.conftest import Validator, assert_clean_exit, change_log, parse_json, seed


def put(cli, value: str, tenant: str | None = None, *extra: str):  # type: ignore[no-untyped-def]
    args = ["put", "checkout", "production", "max_items", value, "--reason", "tenant tuning", "-o", "json"]
    return cli(*args, *(["--tenant", tenant] if tenant else []), *extra)


def test_put_and_get_a_tenant_value_leave_the_service_value_alone(cli, validator: Validator, pipeline):
    seed(validator, "max_items", 10)

    result = put(cli, "500", "acme")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert (body["status"], body["version"], body["tenant"]) == ("accepted", 1, "acme")
    # what crossed the bus names the tenant
    (event,) = validator.changes()
    assert event["detail"]["tenant"] == "acme"
    log = change_log(pipeline)
    assert log.current_record("checkout", "production", "max_items", "acme").value_json == "500"
    assert log.current_record("checkout", "production", "max_items").value_json == "10"

    acme = parse_json(cli("get", "checkout", "production", "max_items", "--tenant", "acme", "-o", "json"))
    other = parse_json(cli("get", "checkout", "production", "max_items", "--tenant", "globex", "-o", "json"))
    service = parse_json(cli("get", "checkout", "production", "max_items", "-o", "json"))
    table = cli("get", "checkout", "production", "max_items")

    assert (acme["value"], acme["resolvedFrom"]) == (500, "tenant")
    assert (other["value"], other["resolvedFrom"]) == (10, "service")  # no value of its own
    assert (service["value"], service["tenantOverrides"]) == (10, 1)
    assert "1 tenant override this value" in table.stdout


def test_list_history_and_diff_per_tenant(cli, idle_validator: Validator):
    seed(idle_validator, "max_items", 10)
    for value in (100, 200):
        outcome = idle_validator.handle(
            {
                "changeId": f"acme-{value}",
                "service": "checkout",
                "environment": "production",
                "key": "max_items",
                "operation": "put",
                "value": value,
                "tenant": "acme",
                "author": "alice",
                "reason": f"acme {value}",
            }
        )
        assert outcome.status == "accepted"

    listed = parse_json(cli("list", "checkout", "production", "--tenant", "acme", "-o", "json"))
    service_list = parse_json(cli("list", "checkout", "production", "-o", "json"))
    history = parse_json(
        cli("history", "checkout", "production", "max_items", "--tenant", "acme", "-o", "json")
    )
    versions = parse_json(
        cli("diff", "checkout", "production", "max_items", "1", "2", "--tenant", "acme", "-o", "json")
    )
    against_service = parse_json(
        cli("diff", "checkout", "production", "max_items", "--tenant", "acme", "-o", "json")
    )
    no_versions = cli("diff", "checkout", "production", "max_items", "-o", "json")

    assert listed["keys"] == [{"key": "max_items", "version": 2}] and listed["tenant"] == "acme"
    assert service_list["keys"] == [{"key": "max_items", "version": 1}]
    assert [(v["version"], v["value"]) for v in history["versions"]] == [(2, 200), (1, 100)]
    assert "-100" in versions["diff"] and "+200" in versions["diff"]
    assert "-10" in against_service["diff"] and "+200" in against_service["diff"]
    assert (against_service["from"], against_service["to"]) == ("service", "tenant")
    assert_clean_exit(no_versions, 2)


def test_rollback_and_delete_a_tenant_value(cli, validator: Validator, pipeline):
    seed(validator, "max_items", 10)
    for value in ("100", "200"):
        assert_clean_exit(put(cli, value, "acme"), 0)

    rolled = cli(
        "rollback", "checkout", "production", "max_items", "--to", "1", "--tenant", "acme", "--reason", "r"
    )
    deleted = cli("delete", "checkout", "production", "max_items", "--tenant", "acme", "--reason", "r")

    assert_clean_exit(rolled, 0)
    assert_clean_exit(deleted, 0)
    assert "(tenant acme) is now version 3" in rolled.stdout
    log = change_log(pipeline)
    history = list(log.history("checkout", "production", "max_items", tenant="acme", newest_first=False))
    assert [(r.operation, r.rolled_back_to, r.deleted) for r in history] == [
        ("put", None, False),
        ("put", None, False),
        ("rollback", 1, False),
        ("delete", None, True),
    ]
    # the tenant reads the service's value again
    acme = parse_json(cli("get", "checkout", "production", "max_items", "--tenant", "acme", "-o", "json"))
    assert (acme["value"], acme["resolvedFrom"]) == (10, "service")
    assert log.current("checkout", "production", "max_items").version == 1


def test_a_bad_tenant_is_refused_before_anything_is_sent(cli, validator: Validator):
    result = put(cli, "5", "Not_A_Tenant")

    assert_clean_exit(result, 2)
    assert "INVALID_TENANT" in result.stdout + result.stderr
    assert validator.changes() == []


def test_a_tenant_dry_run_diffs_against_the_tenant_value(cli, idle_validator: Validator):
    seed(idle_validator, "max_items", 10)

    first = parse_json(put(cli, "300", "acme", "--dry-run"))
    conflict = parse_json(put(cli, "300", "acme", "--dry-run", "--expected-version", "1"))

    assert first["status"] == "would-accept" and first["dryRun"]["nextVersion"] == 1
    assert "(tenant acme) (absent)" in first["dryRun"]["diff"]
    # compare-and-set is against the tenant's version (0), not the service's (1)
    assert [r["code"] for r in conflict["reasons"]] == ["VERSION_CONFLICT"]


def test_watch_follows_one_tenant_or_only_service_values() -> None:
    from configpipe_tools.cli.watching import WatchFilter, watch_pattern

    service_only, acme = WatchFilter(service="checkout"), WatchFilter(service="checkout", tenant="acme")

    # without --tenant: service (and global) values only, whose versions convergence tracks
    assert service_only.wants_scope("checkout", "production", "max_items")
    assert not service_only.wants_scope("checkout", "production", "max_items", "acme")
    # with --tenant: that tenant's values only, and the rule asks EventBridge for them alone
    assert acme.wants_scope("checkout", "production", "max_items", "acme")
    assert not acme.wants_scope("checkout", "production", "max_items", "globex")
    assert not acme.wants_scope("checkout", "production", "max_items")
    assert watch_pattern(acme)["detail"] == {"tenant": ["acme"]}
    assert "detail" not in watch_pattern(service_only)
