"""A changeId belongs to the source that sent it (docs/security.md, L): another team cannot take
an id first, a redelivery or re-run of the same change stays a duplicate, and reuse of an id for
a different change is refused with CHANGE_ID_REUSED and changes nothing. Against moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.registry_source import RegistrySource
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import Pipeline
from configpipe_tools.harness.events import change, eventbridge_event, sealed

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
    before = all_items(pipeline)

    reused = submit(write_path, change(value=2, change_id="c-1"))

    assert reused.status == "rejected"
    assert reused.codes == ["CHANGE_ID_REUSED"]
    assert all_items(pipeline) == before  # nothing written, the first record stands
    assert log.change("c-1", CHECKOUT).status == "accepted"  # type: ignore[union-attr]


def test_reusing_an_id_for_another_key_is_refused_too(write_path, pipeline):
    submit(write_path, change("max_items", 1, change_id="c-1"))
    before = all_items(pipeline)

    assert submit(write_path, change("timeout_ms", 1, change_id="c-1")).codes == ["CHANGE_ID_REUSED"]
    assert all_items(pipeline) == before


def test_reusing_a_rejected_changes_id_for_a_different_change_is_refused(write_path, pipeline):
    assert submit(write_path, change(value=3, expectedVersion=5, change_id="c-1")).codes == [
        "VERSION_CONFLICT"
    ]
    before = all_items(pipeline)

    assert submit(write_path, change(value=3, change_id="c-1")).codes == ["CHANGE_ID_REUSED"]
    assert all_items(pipeline) == before


def test_a_redelivery_that_would_now_be_rejected_is_still_a_duplicate(write_path, pipeline):
    # The first delivery is accepted; by the redelivery its expectedVersion is stale.
    first = change(value=1, expectedVersion=0, change_id="cas-1")
    submit(write_path, first)
    submit(write_path, change(value=2))
    before = all_items(pipeline)

    assert submit(write_path, first).status == "duplicate"
    assert all_items(pipeline) == before


def test_re_sending_a_secret_under_the_same_id_is_a_duplicate_although_the_ciphertext_differs(
    write_path, pipeline
):
    # `configpipe put --change-id X --sensitive` re-run: KMS gives new ciphertext each time.
    kms = boto3.client("kms")
    detail = change(key="db_password", value="s3cr3t-value", change_id="secret-1")
    submit(write_path, sealed(dict(detail), pipeline.secrets_key_id, kms))
    before = all_items(pipeline)

    again = submit(write_path, sealed(dict(detail), pipeline.secrets_key_id, kms))
    other = submit(write_path, sealed({**detail, "value": "another-secret"}, pipeline.secrets_key_id, kms))

    assert again.status == "duplicate"
    assert other.codes == ["CHANGE_ID_REUSED"]
    assert all_items(pipeline) == before
