"""Issue 14: acknowledgements from the update handler, and the delivery ledger's promises —
a duplicate ack changes nothing, an older ack never overwrites a newer one, an ack lost to a
crash between applying and reporting is made good by the retry, and an ack is believed only
from its own service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configpipe.client import BusAcknowledgements, ConfigurationRefusedError, config_update_handler
from configpipe.contracts import AckOutcome, ConfigurationAcknowledged, ConfigurationUpdated
from configpipe.handlers import ledger as ledger_handler
from configpipe.ledger import DeliveryLedger
from configpipe.values import value_hash
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.hostile import WriteMeter
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app
from sample_service.settings import SampleServiceSettings
from tests.unit.hostile import any_text, broken_envelopes, mutated

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def updated(
    version: int, value: Any, key: str = "max_items", service: str = "checkout", tenant: str | None = None
) -> dict[str, Any]:
    detail = ConfigurationUpdated(
        tenant=tenant,
        change_id=f"c-{version}",
        service=service,
        environment="production",
        key=key,
        operation="put",
        version=version,
        value_hash=value_hash(value),
        value=value,
        value_inline=True,
        author="alice",
        reason="test",
        applied_at=T0,
    ).to_detail()
    return eventbridge_event(detail, detail_type="ConfigurationUpdated", source="configpipe.pipeline")


def ack(
    version: int,
    outcome: AckOutcome = AckOutcome.APPLIED,
    target: str = "checkout",
    reason: str | None = None,
    key: str = "max_items",
) -> ConfigurationAcknowledged:
    return ConfigurationAcknowledged(
        change_id=f"c-{version}",
        target_service=target,
        service="checkout",
        environment="production",
        key=key,
        version=version,
        outcome=outcome,
        reason=reason,
        reported_at=T0 + timedelta(seconds=version),
    )


def ack_event(a: ConfigurationAcknowledged, source: str | None = None) -> dict[str, Any]:
    return eventbridge_event(
        a.to_detail(),
        detail_type="ConfigurationAcknowledged",
        source=source or f"configpipe.consumer.{a.target_service}",
    )


def acks_on_bus(pipeline: Any) -> list[dict[str, Any]]:
    return pipeline.bus_events("ConfigurationAcknowledged")


@pytest.fixture
def ledger(pipeline: Any) -> DeliveryLedger:
    return DeliveryLedger(pipeline.ledger_table_name)


def only_entry(ledger: DeliveryLedger) -> Any:
    (entry,) = ledger.entries("checkout", "production")
    return entry


# --- the update handler reports what it did ------------------------------------------------


def test_an_applied_version_is_acknowledged_on_the_bus_as_the_service_without_its_value(pipeline):
    acks = BusAcknowledgements("checkout", pipeline.bus_name)
    handler = config_update_handler("checkout", on_update=lambda u, v: None, acknowledgements=acks)

    assert handler(updated(3, 300), None)["applied"] is True

    (event,) = acks_on_bus(pipeline)
    assert event["source"] == "configpipe.consumer.checkout"
    assert event["detail"]["targetService"] == "checkout"
    assert event["detail"]["version"] == 3
    assert event["detail"]["outcome"] == "applied"
    assert "value" not in event["detail"] and "300" not in json.dumps(event["detail"])


def test_a_value_the_services_check_refuses_keeps_the_last_good_one_and_is_acknowledged_as_refused(
    pipeline,
):
    applied: list[int] = []

    def on_update(update: Any, value: Any) -> None:
        if value < 0:
            raise ConfigurationRefusedError("max_items must not be negative")
        applied.append(update.version)

    acks = BusAcknowledgements("checkout", pipeline.bus_name)
    handler = config_update_handler("checkout", on_update=on_update, acknowledgements=acks)
    handler(updated(1, 10), None)

    # When the service's own check refuses v2, the invocation succeeds (a retry cannot help)
    assert handler(updated(2, -5), None) == {"applied": False, "reason": "refused", "version": 2}

    # Then v1 stays applied, and the refusal is reported with the service's reason, no value
    assert applied == [1]
    refused = [e["detail"] for e in acks_on_bus(pipeline) if e["detail"]["outcome"] == "refused"]
    assert refused == [
        {**refused[0], "version": 2, "reason": "max_items must not be negative", "outcome": "refused"}
    ]
    assert "-5" not in json.dumps(refused)
    # A later valid version is applied normally: the refusal did not stick
    assert handler(updated(3, 30), None)["applied"] is True


class _FailsOnce:
    """An acknowledgements port whose first report fails like a PutEvents outage would."""

    def __init__(self, inner: BusAcknowledgements) -> None:
        self.inner = inner
        self.failed = False

    def report(self, a: ConfigurationAcknowledged) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the bus is unreachable")
        self.inner.report(a)


def test_an_ack_lost_between_applying_and_reporting_is_sent_by_the_retry_without_applying_twice(pipeline):
    calls: list[int] = []
    acks = _FailsOnce(BusAcknowledgements("checkout", pipeline.bus_name))
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: calls.append(u.version), acknowledgements=acks
    )
    # When the report fails after the apply, the invocation fails (Lambda retries it)
    with pytest.raises(ConnectionError):
        handler(updated(4, 40), None)
    assert acks_on_bus(pipeline) == []

    # Then the redelivery acknowledges v4 without calling the service again
    assert handler(updated(4, 40), None)["reason"] == "duplicate"
    assert calls == [4]
    assert [e["detail"]["version"] for e in acks_on_bus(pipeline)] == [4]


def test_a_tenants_value_is_acknowledged_with_its_tenant(pipeline):
    # A tenant's versions are a sequence of their own: the ack names the tenant, so the ledger
    # never reads a tenant's version 1 as the service's version 1.
    acks = BusAcknowledgements("checkout", pipeline.bus_name)
    seen: list[tuple[str | None, int]] = []
    handler = config_update_handler(
        "checkout", on_update=lambda u, v: seen.append((u.tenant, u.version)), acknowledgements=acks
    )

    assert handler(updated(1, 500, tenant="acme"), None)["applied"] is True
    assert seen == [("acme", 1)]
    [event] = acks_on_bus(pipeline)
    assert (event["detail"]["tenant"], event["detail"]["version"]) == ("acme", 1)


def test_an_older_redelivery_is_not_acknowledged(pipeline):
    acks = BusAcknowledgements("checkout", pipeline.bus_name)
    handler = config_update_handler("checkout", on_update=lambda u, v: None, acknowledgements=acks)
    handler(updated(5, 50), None)
    acks_on_bus(pipeline)
    assert handler(updated(4, 40), None)["reason"] == "stale"
    assert acks_on_bus(pipeline) == []


def test_the_sample_service_refuses_an_unusable_timeout_and_acknowledges_it(pipeline):
    settings = SampleServiceSettings(
        service_name="checkout", applied_table=pipeline.applied_table_name, ack_bus_name=pipeline.bus_name
    )
    handler = app.build(settings)
    assert handler(updated(1, 250, key="timeout_ms"), None)["applied"] is True
    assert handler(updated(2, "soon", key="timeout_ms"), None)["reason"] == "refused"

    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    assert table.get_item(Key={"pk": "checkout", "sk": "production#timeout_ms"})["Item"]["version"] == 1
    outcomes = [(e["detail"]["version"], e["detail"]["outcome"]) for e in acks_on_bus(pipeline)]
    assert outcomes == [(1, "applied"), (2, "refused")]


# --- the ledger: idempotent, in version order ---------------------------------------------


def test_a_duplicate_ack_changes_nothing(ledger):
    assert ledger.record(ack(3)) is True
    first = only_entry(ledger)
    assert ledger.record(ack(3)) is False
    assert only_entry(ledger) == first
    assert (first.applied_version, first.applied_change_id) == (3, "c-3")


def test_an_older_ack_never_overwrites_a_newer_one(ledger):
    # When v5 is acknowledged before v4 (EventBridge does not order events)
    ledger.record(ack(5))
    assert ledger.record(ack(4)) is False
    # Then the ledger says v5, with v5's time
    entry = only_entry(ledger)
    assert entry.applied_version == 5
    assert entry.applied_at == (T0 + timedelta(seconds=5)).isoformat()
    # and an older refusal after a newer one is dropped too
    ledger.record(ack(7, AckOutcome.REFUSED, reason="seven"))
    assert ledger.record(ack(6, AckOutcome.REFUSED, reason="six")) is False
    assert (only_entry(ledger).failed_version, only_entry(ledger).failure_reason) == (7, "seven")


def test_a_late_applied_ack_after_a_newer_refusal_still_counts(ledger):
    # The service applied v3, then refused v4; the two acks arrive the other way round
    ledger.record(ack(4, AckOutcome.REFUSED, reason="bad"))
    assert ledger.record(ack(3)) is True
    entry = only_entry(ledger)
    assert (entry.applied_version, entry.failed_version, entry.failing) == (3, 4, True)
    # A newer applied version clears the failing state but keeps the last failure for the record
    ledger.record(ack(5))
    entry = only_entry(ledger)
    assert (entry.applied_version, entry.failing, entry.failure_reason) == (5, False, "bad")


def test_a_tenants_acks_have_their_own_entry_apart_from_the_services(ledger):
    ledger.record(ack(5))
    tenant_ack = ack(1).model_copy(update={"tenant": "acme", "change_id": "t-1"})

    assert ledger.record(tenant_ack) is True  # version 1 < 5, but another sequence: recorded

    assert only_entry(ledger).applied_version == 5  # the service's row is untouched
    [entry] = ledger.entries("checkout", "production", tenant="acme")
    assert (entry.tenant, entry.applied_version, entry.applied_change_id) == ("acme", 1, "t-1")
    assert ledger.entries("checkout", "production", tenant="globex") == []


def test_each_service_and_key_has_its_own_entry(ledger):
    ledger.record(ack(2, target="checkout"))
    ledger.record(ack(1, target="payments"))
    ledger.record(ack(9, key="max_items2"))
    entries = {(e.key, e.target_service): e.applied_version for e in ledger.entries("checkout", "production")}
    assert entries == {
        ("max_items", "checkout"): 2,
        ("max_items", "payments"): 1,
        ("max_items2", "checkout"): 9,
    }
    assert [e.key for e in ledger.entries("checkout", "production", "max_items")] == [
        "max_items",
        "max_items",
    ]


# --- the ledger function ----------------------------------------------------------------------


def test_the_function_records_an_ack_from_its_own_service(ledger):
    answer = ledger_handler.handler(ack_event(ack(2)), LambdaContext(), ledger=ledger)
    assert answer["recorded"] is True
    assert only_entry(ledger).applied_version == 2
    assert ledger_handler.handler(ack_event(ack(2)), LambdaContext(), ledger=ledger)["recorded"] is False


def test_an_ack_for_another_service_is_refused_and_writes_nothing(ledger):
    # payments' role may publish only as configpipe.consumer.payments (the bus binds it)
    forged = ack_event(ack(9, target="checkout"), source="configpipe.consumer.payments")
    answer = ledger_handler.handler(forged, LambdaContext(), ledger=ledger)
    assert (answer["recorded"], answer["code"]) == (False, "ACK_SOURCE_MISMATCH")
    assert ledger.entries("checkout", "production") == []


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "ConfigurationAcknowledged"},
        "not an event",
        eventbridge_event(
            {"targetService": "checkout"}, "ConfigurationAcknowledged", "configpipe.consumer.checkout"
        ),
        eventbridge_event(ack(1).to_detail(), "ConfigurationUpdated", "configpipe.consumer.checkout"),
        eventbridge_event(
            {**ack(1).to_detail(), "key": "../other"},
            "ConfigurationAcknowledged",
            "configpipe.consumer.checkout",
        ),
    ],
)
def test_a_malformed_ack_is_refused_not_raised_and_writes_nothing(ledger, event):
    answer = ledger_handler.handler(event, LambdaContext(), ledger=ledger)  # type: ignore[arg-type]
    assert (answer["recorded"], answer["code"]) == (False, "MALFORMED_ACK")
    assert ledger.entries("checkout", "production") == []


def test_a_refusal_reason_is_bounded(ledger):
    a = ack(1, AckOutcome.REFUSED, reason="x" * 5000)
    ledger_handler.handler(ack_event(a), LambdaContext(), ledger=ledger)
    assert len(only_entry(ledger).failure_reason) < 600


# --- hostile input: whatever arrives, an outcome; a write only for a valid ack from its source ----


@PROPERTY
@given(data=st.data())
def test_the_ledger_function_answers_anything_and_writes_only_a_valid_ack_from_its_own_service(
    pipeline, logs, data
):
    valid = ack_event(ack(data.draw(st.integers(1, 50)), data.draw(st.sampled_from(list(AckOutcome)))))
    event = data.draw(
        st.one_of(
            broken_envelopes(valid),
            st.builds(lambda d: {**valid, "detail": d}, mutated(valid["detail"])),
            st.builds(lambda s: {**valid, "source": s}, any_text),
        )
    )
    meter = WriteMeter()
    session = boto3.Session(region_name=REGION)
    session.events.register("after-call.*.*", meter)
    ledger = DeliveryLedger(
        pipeline.ledger_table_name, table=session.resource("dynamodb").Table(pipeline.ledger_table_name)
    )
    logs.seek(0)
    logs.truncate()

    result = ledger_handler.handler(event, LambdaContext(), ledger=ledger)

    assert isinstance(result["recorded"], bool)
    if "code" in result:
        assert result["code"] in {"MALFORMED_ACK", "ACK_SOURCE_MISMATCH"}
        assert meter.take() == []
        assert all(len(problem) <= 512 for problem in result["problems"])
    else:
        assert event["source"] == f"configpipe.consumer.{event['detail']['targetService']}"
    assert all(len(line.encode("utf-8", "replace")) < 4096 for line in logs.getvalue().splitlines())


def test_an_ack_with_a_field_the_ledger_does_not_know_is_recorded(ledger):
    # Announcements tolerate unknown fields: a newer client library must not break the ledger.
    event = ack_event(ack(4))
    event["detail"]["appliedBy"] = "a field from the future"
    assert ledger_handler.handler(event, LambdaContext(), ledger=ledger)["recorded"] is True
    assert only_entry(ledger).applied_version == 4
