"""A changeId belongs to the source that sent it (docs/security.md, L): another team cannot take
an id first, a redelivery or re-run of the same change stays a duplicate, and reuse of an id for
a different change is refused with CHANGE_ID_REUSED, changes no state, and is announced as
ConfigurationRejected like every other refusal. Against moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from configpipe.bus import ConfigBus
from configpipe.changelog import REUSED_SK_PREFIX, ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.handlers import materialiser as materialiser_handler
from configpipe.materialise import Materialiser
from configpipe.registry_source import RegistrySource
from configpipe.stores import ParameterStore, SecretStore
from configpipe.streams import passes_materialiser_filter
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import Pipeline
from configpipe_tools.harness.events import change, eventbridge_event, sealed
from configpipe_tools.harness.lambda_context import LambdaContext

CHECKOUT = "configpipe.team.checkout"
PAYMENTS = "configpipe.team.payments"


@pytest.fixture
def write_path(pipeline: Pipeline) -> WritePath:
    return WritePath(
        change_log=ChangeLog(pipeline.table_name),
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
        secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
    )


@pytest.fixture
def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(pipeline.table_name)


def submit(write_path: WritePath, detail: dict[str, Any], source: str = CHECKOUT):
    return write_path.handle(eventbridge_event(detail, source=source))


def all_items(pipeline: Pipeline) -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(pipeline.table_name).scan(ConsistentRead=True)["Items"]


def state(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every item but the refusals of reused ids (written beside the record that stands)."""
    return [i for i in all_items(pipeline) if not str(i["sk"]).startswith(REUSED_SK_PREFIX)]


def refused_reuses(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [i for i in all_items(pipeline) if str(i["sk"]).startswith(REUSED_SK_PREFIX)]


def materialise_stream(pipeline: Pipeline) -> None:
    """The records Lambda's filter hands the materialiser, through its handler."""
    batch = {"Records": [r for r in pipeline.stream_event()["Records"] if passes_materialiser_filter(r)]}
    materialiser = Materialiser(
        change_log=ChangeLog(pipeline.table_name),
        parameters=ParameterStore(boto3.client("ssm")),
        secrets=SecretStore(boto3.client("secretsmanager"), kms_key_id=pipeline.secrets_key_id),
        secrets_key=SecretsKey(pipeline.secrets_key_id),
        bus=ConfigBus(pipeline.bus_name, client=boto3.client("events")),
    )
    assert materialiser_handler.handler(batch, LambdaContext(), materialiser=materialiser) == {
        "batchItemFailures": []
    }


def test_another_team_taking_an_id_first_does_not_swallow_the_real_change(write_path, log):
    # Given payments published first with the id checkout is about to use
    squatted = submit(
        write_path, change("payments.retry", 1, service="payments", change_id="deploy-42"), PAYMENTS
    )

    # When checkout publishes its change under that id
    real = submit(write_path, change("max_items", 7, change_id="deploy-42"))

    # Then both are applied, each under its own source's record
    assert (squatted.status, real.status) == ("accepted", "accepted")
    assert log.current("checkout", "production", "max_items").version == 1  # type: ignore[union-attr]
    assert log.change("deploy-42", CHECKOUT).status == "accepted"  # type: ignore[union-attr]
    assert log.change("deploy-42", PAYMENTS).status == "accepted"  # type: ignore[union-attr]


def test_reusing_an_id_for_a_different_value_is_refused_and_changes_nothing(write_path, log, pipeline):
    submit(write_path, change(value=1, change_id="c-1"))
    before = state(pipeline)

    reused = submit(write_path, change(value=2, change_id="c-1"))

    assert reused.status == "rejected"
    assert reused.codes == ["CHANGE_ID_REUSED"]
    assert state(pipeline) == before  # no state written, the first record stands
    assert log.change("c-1", CHECKOUT).status == "accepted"  # type: ignore[union-attr]


def test_reusing_an_id_for_another_key_is_refused_too(write_path, pipeline):
    submit(write_path, change("max_items", 1, change_id="c-1"))
    before = state(pipeline)

    assert submit(write_path, change("timeout_ms", 1, change_id="c-1")).codes == ["CHANGE_ID_REUSED"]
    assert state(pipeline) == before


def test_reusing_a_rejected_changes_id_for_a_different_change_is_refused(write_path, pipeline):
    assert submit(write_path, change(value=3, expectedVersion=5, change_id="c-1")).codes == [
        "VERSION_CONFLICT"
    ]
    before = state(pipeline)

    assert submit(write_path, change(value=3, change_id="c-1")).codes == ["CHANGE_ID_REUSED"]
    assert state(pipeline) == before


def test_a_redelivery_that_would_now_be_rejected_is_still_a_duplicate(write_path, pipeline):
    # The first delivery is accepted; by the redelivery its expectedVersion is stale.
    first = change(value=1, expectedVersion=0, change_id="cas-1")
    submit(write_path, first)
    submit(write_path, change(value=2))
    before = state(pipeline)

    assert submit(write_path, first).status == "duplicate"
    assert state(pipeline) == before


def test_re_sending_a_secret_under_the_same_id_is_a_duplicate_although_the_ciphertext_differs(
    write_path, pipeline
):
    # `configpipe put --change-id X --sensitive` re-run: KMS gives new ciphertext each time.
    kms = boto3.client("kms")
    detail = change(key="db_password", value="s3cr3t-value", change_id="secret-1")
    submit(write_path, sealed(dict(detail), pipeline.secrets_key_id, kms))
    before = state(pipeline)

    again = submit(write_path, sealed(dict(detail), pipeline.secrets_key_id, kms))
    other = submit(write_path, sealed({**detail, "value": "another-secret"}, pipeline.secrets_key_id, kms))

    assert again.status == "duplicate"
    assert other.codes == ["CHANGE_ID_REUSED"]
    assert state(pipeline) == before


def test_a_reused_id_is_announced_as_rejected_once_and_the_first_change_stands(write_path, log, pipeline):
    # Given checkout's change c-1 accepted and announced
    submit(write_path, change(value=1, change_id="c-1"))
    materialise_stream(pipeline)
    pipeline.bus_events()

    # When another change is sent under c-1, and that event is delivered twice
    reused = change(value=2, change_id="c-1")
    outcomes = [submit(write_path, reused), submit(write_path, reused)]

    # Then both deliveries are refused, one refusal is recorded beside the record that stands
    assert [o.codes for o in outcomes] == [["CHANGE_ID_REUSED"], ["CHANGE_ID_REUSED"]]
    [refusal] = refused_reuses(pipeline)
    assert refusal["pk"] == f"CHANGE#{CHECKOUT}#c-1"
    assert log.change("c-1", CHECKOUT).status == "accepted"  # type: ignore[union-attr]
    assert log.current("checkout", "production", "max_items").version == 1  # type: ignore[union-attr]
    # And the materialiser announces it once, like any refusal, without the value
    materialise_stream(pipeline)
    [event] = pipeline.bus_events("ConfigurationRejected")
    assert event["source"] == "configpipe.pipeline"
    detail = event["detail"]
    assert (detail["changeId"], detail["source"], detail["key"], detail["operation"]) == (
        "c-1",
        CHECKOUT,
        "max_items",
        "put",
    )
    assert [r["code"] for r in detail["reasons"]] == ["CHANGE_ID_REUSED"]
    assert "value" not in detail
    assert pipeline.bus_events("ConfigurationUpdated") == []


def test_each_different_reuse_of_an_id_is_announced(write_path, pipeline):
    submit(write_path, change(value=1, change_id="c-1"))
    materialise_stream(pipeline)
    pipeline.bus_events()

    submit(write_path, change(value=2, change_id="c-1"))
    submit(write_path, change(value=3, change_id="c-1"))
    materialise_stream(pipeline)

    assert len(pipeline.bus_events("ConfigurationRejected")) == 2


def test_a_redelivered_change_is_a_duplicate_and_writes_no_refusal(write_path, pipeline):
    submit(write_path, change(value=1, change_id="c-1"))
    submit(write_path, change(value=1, change_id="c-1"))
    assert refused_reuses(pipeline) == []
