"""Forward compatibility of the event contracts: commands coming in refuse unknown fields;
announcements going out are parsed by every consumer (update handlers, the sample service,
the CLI) ignoring fields it has never heard of, so the pipeline can add a field without
breaking a consumer that is already deployed."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from configpipe import contracts
from configpipe.client import config_update_handler
from configpipe.contracts import Announcement, Command, ConfigurationUpdated, Contract
from configpipe.release import contracts as release_contracts
from configpipe.release.contracts import ReleaseReasonCode, ReleaseRequested, ReleaseStarted
from configpipe.release.service import reasons_from_validation_error
from configpipe.validation import parse_change
from configpipe.values import value_hash
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.release_progress import rejection_reasons
from configpipe_tools.cli.watching import Watch, WatchFilter
from configpipe_tools.harness.aws import REGION
from configpipe_tools.harness.events import change, eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service import app as sample_service
from sample_service.settings import SampleServiceSettings

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
#: A field no consumer has heard of, as a future pipeline might add one.
FUTURE = {"rolloutWave": 3, "tags": {"origin": "a newer pipeline"}}


def checkout_settings(pipeline: Any, **extra: Any) -> SampleServiceSettings:
    """The sample service's settings as the stack gives them to checkout's handler."""
    return SampleServiceSettings(service_name="checkout", applied_table=pipeline.applied_table_name, **extra)


def _models(module: Any) -> set[type[Contract]]:
    return {
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Contract) and obj not in (Contract, Command, Announcement)
    }


def updated_detail(version: int = 3, value: Any = 30, **extra: Any) -> dict[str, Any]:
    """A ``ConfigurationUpdated`` detail as the pipeline publishes it, plus ``extra``."""
    detail = ConfigurationUpdated(
        change_id=f"c-{version}",
        service="checkout",
        environment="production",
        key="max_items",
        operation="put",
        version=version,
        value_hash=value_hash(value),
        value=value,
        value_inline=True,
        author="alice",
        reason="test",
        applied_at=NOW,
    ).to_detail()
    return {**detail, **extra}


def as_event(detail: dict[str, Any]) -> dict[str, Any]:
    return eventbridge_event(detail, detail_type="ConfigurationUpdated", source=contracts.PIPELINE_SOURCE)


# --- the rule, in one place -------------------------------------------------------------------


def test_every_contract_is_either_a_command_or_an_announcement():
    models = _models(contracts) | _models(release_contracts)
    commands = {m.__name__ for m in models if issubclass(m, Command)}
    # CustomStrategy and ReleaseAnalysis/AnalysisGate are part of ReleaseRequested,
    # RolloutRequest/RolloutRelease of ConfigurationChange, so they follow the command's rule.
    assert commands == {
        "ConfigurationChange",
        "ConfigurationRolloutControl",
        "RolloutRequest",
        "RolloutRelease",
        "ReleaseRequested",
        "ReleaseControl",
        "CustomStrategy",
        "ReleaseAnalysis",
        "AnalysisGate",
    }
    assert all(issubclass(m, Announcement) for m in models if m.__name__ not in commands)
    assert {m.model_config["extra"] for m in models if issubclass(m, Command)} == {"forbid"}
    assert {m.model_config["extra"] for m in models if issubclass(m, Announcement)} == {"ignore"}


def test_an_announcement_ignores_an_unknown_field():
    update = ConfigurationUpdated.model_validate(updated_detail(**FUTURE))
    assert update.version == 3
    assert "rolloutWave" not in update.to_detail()  # not carried along when it is re-published


def test_a_release_announcement_ignores_an_unknown_field():
    detail = {
        "releaseId": "r-1",
        "seq": 1,
        "function": "checkout-api",
        "alias": "live",
        "targetVersion": "2",
        "previousVersion": "1",
        "strategy": "AllAtOnce",
        "status": "SHIFTING",
        "percent": 0,
        "at": NOW.isoformat(),
        "previousWeights": {},
        "schedule": [[0, 100.0]],
        "alarms": [],
        "author": "alice",
        "reason": "ship",
        "source": "configpipe.team.checkout",
        **FUTURE,
    }
    assert ReleaseStarted.model_validate(detail).release_id == "r-1"


# --- commands keep refusing ---------------------------------------------------------------------


def test_a_configuration_change_with_an_unknown_field_is_still_refused():
    parsed, reasons = parse_change(change(colour="blue"))
    assert parsed is None
    assert [(r.code.value, r.field) for r in reasons] == [("UNKNOWN_FIELD", "colour")]


@pytest.mark.parametrize("model", [ReleaseRequested, release_contracts.ReleaseControl])
def test_a_release_command_with_an_unknown_field_is_still_refused(model):
    fields = {
        ReleaseRequested: {
            "releaseId": "r-1",
            "function": "checkout-api",
            "alias": "live",
            "targetVersion": "2",
            "strategy": "AllAtOnce",
            "author": "alice",
            "reason": "ship",
        },
        release_contracts.ReleaseControl: {
            "releaseId": "r-1",
            "controlId": "c-1",
            "action": "pause",
            "author": "alice",
        },
    }[model]
    model.model_validate(fields)  # valid as it is
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**fields, "colour": "blue"})
    assert [r.code for r in reasons_from_validation_error(refused.value)] == [
        ReleaseReasonCode.MALFORMED_EVENT
    ]


# --- consumers accept an announcement with a field they have never heard of --------------------


def test_the_update_handler_applies_an_update_with_an_unknown_field(aws):
    # Given an update handler deployed before the pipeline added a field
    seen: list[tuple[int, Any]] = []
    handler = config_update_handler("checkout", on_update=lambda u, v: seen.append((u.version, v)))

    # When an update with that field arrives
    result = handler(as_event(updated_detail(version=3, value=30, **FUTURE)), LambdaContext())

    # Then it is applied, not failed (a failure would be retried into the DLQ)
    assert result == {"applied": True, "version": 3}
    assert seen == [(3, 30)]


def test_the_sample_service_applies_an_update_with_an_unknown_field(pipeline):
    handler = sample_service.build(checkout_settings(pipeline))

    assert (
        handler(as_event(updated_detail(version=4, value=40, **FUTURE)), LambdaContext())["applied"] is True
    )

    table = boto3.resource("dynamodb", region_name=REGION).Table(pipeline.applied_table_name)
    row = table.get_item(Key={"pk": "checkout", "sk": "production#max_items"})["Item"]
    assert row["version"] == 4
    assert row["valueHash"] == value_hash(40)


class _NoRegistry:
    """The part of the CLI context ``Watch`` reads up front: no readable registry."""

    def registry(self) -> None:
        return None


def test_watch_shows_an_update_with_an_unknown_field(capsys):
    watch = Watch(_NoRegistry(), Output(as_json=True), WatchFilter(service="checkout"))  # type: ignore[arg-type]
    event = as_event(updated_detail(version=5, value=50, **FUTURE))

    assert watch.handle(event) is True

    shown = capsys.readouterr()
    assert '"type": "updated"' in shown.out and '"version": 5' in shown.out
    assert "malformed" not in shown.err
    assert watch.state.latest[("checkout", "production", "max_items")] == 5


class _Received:
    def __init__(self, *events: dict[str, Any]) -> None:
        self._events = list(events)

    def receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events


def test_the_release_cli_reads_a_rejection_with_an_unknown_field():
    reason = {"code": "RELEASE_IN_PROGRESS", "message": "another release holds the alias"}
    detail = {
        "releaseId": "r-1",
        "action": "request",
        "source": "configpipe.team.checkout",
        "reasons": [{**reason, "severity": "high"}],
        "rejectedAt": NOW.isoformat(),
        **FUTURE,
    }
    event = eventbridge_event(detail, detail_type="ReleaseRejected", source=contracts.PIPELINE_SOURCE)

    assert rejection_reasons(_Received(event)) == [reason]  # type: ignore[arg-type]


def test_a_rollout_announcement_ignores_an_unknown_field_and_a_rollout_command_refuses_one():
    detail = {
        "rolloutId": "c-9",
        "service": "checkout",
        "environment": "production",
        "key": "max_items",
        "status": "ROLLING_OUT",
        "sequence": 1,
        "candidateVersion": 2,
        "weight": 10,
        "strategy": "Canary10Percent5Minutes",
        "startedAt": "2026-12-01T12:00:00+00:00",
        "candidate": {"valueHash": "sha256:x", "futureField": 1},
        "release": {"releaseId": "r", "function": "f", "targetVersion": "1", "futureField": "y"},
        "eventAt": "2026-12-01T12:01:00+00:00",
        "author": "configpipe",
        "reason": "schedule",
        **FUTURE,
    }
    assert contracts.ConfigurationRolloutEvent.model_validate(detail).weight == 10
    control = {
        "controlId": "c",
        "service": "checkout",
        "environment": "production",
        "key": "k",
        "action": "pause",
        "author": "a",
        "reason": "r",
    }
    with pytest.raises(ValidationError):
        contracts.ConfigurationRolloutControl.model_validate({**control, **FUTURE})
