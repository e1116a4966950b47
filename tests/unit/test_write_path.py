"""The validator's logic against moto: versioning, compare-and-set, rollback, delete,
duplicates, concurrency and rejection of bad input (with nothing else written)."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import boto3
import pytest

from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey, encode_ciphertext
from configpipe.registry_source import RegistrySource
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import Pipeline
from configpipe_tools.harness.events import change, eventbridge_event, sealed


def make_write_path(pipeline: Pipeline, **options: Any) -> WritePath:
    return WritePath(
        change_log=ChangeLog(pipeline.table_name),
        registry=RegistrySource(pipeline.registry_parameter, client=boto3.client("ssm")),
        secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id),
        **options,
    )


@pytest.fixture
def write_path(pipeline: Pipeline) -> WritePath:
    return make_write_path(pipeline)


@pytest.fixture
def log(pipeline: Pipeline) -> ChangeLog:
    return ChangeLog(pipeline.table_name)


def all_items(pipeline: Pipeline) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(pipeline.table_name)
    return table.scan(ConsistentRead=True)["Items"]


def submit(write_path: WritePath, detail: Any, source: str = "configpipe.team.checkout"):
    return write_path.handle(eventbridge_event(detail, source=source))


# --- acceptance and versions ---------------------------------------------------------------


def test_put_creates_version_one_with_pointer_and_change_record(write_path, log):
    outcome = submit(write_path, change(value=10, change_id="c-1"))

    assert (outcome.status, outcome.version) == ("accepted", 1)
    record = log.version("checkout", "production", "max_items", 1)
    assert record is not None
    assert json.loads(record.value_json or "") == 10
    assert (record.author, record.reason, record.change_id, record.previous_version) == (
        "alice@example.com",
        "tune checkout",
        "c-1",
        None,
    )
    assert record.value_hash.startswith("sha256:")
    assert log.current("checkout", "production", "max_items").version == 1
    assert log.change("c-1", "configpipe.team.checkout").status == "accepted"


def test_versions_are_dense_and_link_to_their_predecessor(write_path, log):
    for value in (1, 2, 3):
        submit(write_path, change(value=value))

    history = list(log.history("checkout", "production", "max_items", newest_first=False))
    assert [r.version for r in history] == [1, 2, 3]
    assert [r.previous_version for r in history] == [None, 1, 2]
    assert log.current("checkout", "production", "max_items").version == 3


def test_stale_expected_version_is_rejected_with_version_conflict_and_writes_no_version(write_path, log):
    submit(write_path, change(value=1))
    submit(write_path, change(value=2))

    outcome = submit(write_path, change(value=99, expectedVersion=1, change_id="stale"))

    assert outcome.status == "rejected"
    assert outcome.codes == ["VERSION_CONFLICT"]
    assert log.current("checkout", "production", "max_items").version == 2
    assert log.change("stale", "configpipe.team.checkout").status == "rejected"


def test_expected_version_zero_means_create_only(write_path):
    assert submit(write_path, change(value=1, expectedVersion=0)).status == "accepted"
    assert submit(write_path, change(value=2, expectedVersion=0)).codes == ["VERSION_CONFLICT"]


def test_matching_expected_version_is_accepted(write_path):
    submit(write_path, change(value=1))
    assert submit(write_path, change(value=2, expectedVersion=1)).version == 2


# --- concurrency -----------------------------------------------------------------------------


def losing_the_race_to(pipeline: Pipeline, rival_detail: dict[str, Any]) -> WritePath:
    """A write path whose transaction is overtaken: just before it goes out, a rival writer
    commits ``rival_detail`` (injected at the AWS boundary through botocore's event hooks,
    on this write path's own client only)."""
    ours, rival = make_write_path(pipeline), make_write_path(pipeline)
    fired: list[str] = []

    def rival_commits_first(**_: Any) -> None:
        if not fired:
            fired.append(rival.handle(eventbridge_event(rival_detail)).status)

    ours._log._table.meta.client.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", rival_commits_first
    )
    return ours


def test_a_writer_that_loses_the_race_gets_version_conflict(pipeline, write_path, log):
    submit(write_path, change(value=1))
    ours = losing_the_race_to(pipeline, change(value=2, expectedVersion=1))

    outcome = ours.handle(eventbridge_event(change(value=3, expectedVersion=1)))

    assert outcome.codes == ["VERSION_CONFLICT"]
    assert [r.version for r in log.history("checkout", "production", "max_items")] == [2, 1]
    assert json.loads(log.current_record("checkout", "production", "max_items").value_json) == 2


def test_a_writer_without_expected_version_that_loses_the_race_takes_the_next_version(pipeline, log):
    submit(make_write_path(pipeline), change(value=1))
    ours = losing_the_race_to(pipeline, change(value=2))

    outcome = ours.handle(eventbridge_event(change(value=3)))

    assert (outcome.status, outcome.version) == ("accepted", 3)
    history = list(log.history("checkout", "production", "max_items", newest_first=False))
    assert [(r.version, json.loads(r.value_json)) for r in history] == [(1, 1), (2, 2), (3, 3)]


def test_concurrent_writers_with_the_same_expected_version_one_wins(pipeline, log):
    submit(make_write_path(pipeline), change(key="rate_limit", value=0))
    writers = 8
    outcomes: list[Any] = [None] * writers
    barrier = threading.Barrier(writers)

    def write(i: int) -> None:
        path = make_write_path(pipeline)
        event = eventbridge_event(change(key="rate_limit", value=i, expectedVersion=1))
        barrier.wait()
        outcomes[i] = path.handle(event)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("accepted") == 1
    assert all(o.codes == ["VERSION_CONFLICT"] for o in outcomes if o.status == "rejected")
    assert [r.version for r in log.history("checkout", "production", "rate_limit")] == [2, 1]


def test_concurrent_writers_without_expected_version_all_land_on_distinct_dense_versions(pipeline, log):
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[Any] = [None] * writers

    def write(i: int) -> None:
        path = make_write_path(pipeline)
        event = eventbridge_event(change(key="rate_limit", value=i))
        barrier.wait()
        outcomes[i] = path.handle(event)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(o.version for o in outcomes) == list(range(1, writers + 1))
    values = sorted(json.loads(r.value_json) for r in log.history("checkout", "production", "rate_limit"))
    assert values == list(range(writers))


# --- duplicates --------------------------------------------------------------------------------


def test_same_change_id_twice_has_one_effect(write_path, pipeline, log):
    detail = change(value=5, change_id="dup-1")

    first = submit(write_path, detail)
    second = submit(write_path, detail)

    assert (first.status, second.status) == ("accepted", "duplicate")
    assert [r.version for r in log.history("checkout", "production", "max_items")] == [1]


def test_the_same_eventbridge_event_delivered_twice_has_one_effect(write_path, log):
    event = eventbridge_event(change(value=5))

    write_path.handle(event)
    outcome = write_path.handle(event)

    assert outcome.status == "duplicate"
    assert [r.version for r in log.history("checkout", "production", "max_items")] == [1]


def test_a_redelivered_rejection_writes_nothing_more(write_path, pipeline):
    event = eventbridge_event(change(key="bad/key"))

    assert write_path.handle(event).status == "rejected"
    assert write_path.handle(event).status == "duplicate"
    assert len(all_items(pipeline)) == 1


def test_a_duplicate_of_an_accepted_change_is_still_a_duplicate_after_the_key_moved_on(write_path, log):
    first = change(value=1, expectedVersion=0, change_id="first")
    submit(write_path, first)
    submit(write_path, change(value=2))

    assert submit(write_path, first).status == "duplicate"
    assert log.change("first", "configpipe.team.checkout").status == "accepted"


# --- rollback and delete ----------------------------------------------------------------------


def test_rollback_reapplies_an_old_value_as_a_new_version(write_path, log):
    submit(write_path, change(key="limits", value={"limit": 1}))
    submit(write_path, change(key="limits", value={"limit": 2}))

    outcome = submit(write_path, change(key="limits", operation="rollback", toVersion=1))

    assert outcome.version == 3
    record = log.version("checkout", "production", "limits", 3)
    assert json.loads(record.value_json) == {"limit": 1}
    assert (record.operation, record.rolled_back_to) == ("rollback", 1)
    assert record.value_hash == log.version("checkout", "production", "limits", 1).value_hash


@pytest.mark.parametrize("to_version", [3, 99])
def test_rollback_to_a_version_that_does_not_exist_is_rejected(write_path, log, to_version):
    submit(write_path, change(value=1))
    submit(write_path, change(value=2))

    outcome = submit(write_path, change(operation="rollback", toVersion=to_version))

    assert outcome.codes == ["UNKNOWN_VERSION"]
    assert log.current("checkout", "production", "max_items").version == 2


def test_delete_is_a_versioned_tombstone_and_a_later_put_continues_the_versions(write_path, log):
    submit(write_path, change(value=1))

    deleted = submit(write_path, change(operation="delete"))
    again = submit(write_path, change(value=7))

    assert (deleted.version, again.version) == (2, 3)
    tombstone = log.version("checkout", "production", "max_items", 2)
    assert tombstone.deleted and tombstone.value_json is None
    assert not log.current("checkout", "production", "max_items").deleted


def test_deleting_a_missing_or_deleted_key_is_rejected(write_path):
    assert submit(write_path, change(operation="delete")).codes == ["KEY_NOT_FOUND"]
    submit(write_path, change(value=1))
    submit(write_path, change(operation="delete"))
    assert submit(write_path, change(operation="delete")).codes == ["KEY_NOT_FOUND"]


def test_rollback_to_a_tombstone_deletes_again(write_path, log):
    submit(write_path, change(value=1))
    submit(write_path, change(operation="delete"))
    submit(write_path, change(value=2))

    submit(write_path, change(operation="rollback", toVersion=2))

    assert log.current("checkout", "production", "max_items").deleted


# --- bad input: a clear code, nothing written but the rejection record ------------------------

DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]

BAD_INPUT = [
    ("detail is a string", "not an object", "MALFORMED_EVENT"),
    ("detail is a list", [1, 2], "MALFORMED_EVENT"),
    ("missing key", {k: v for k, v in change().items() if k != "key"}, "MISSING_FIELD"),
    ("missing author", {k: v for k, v in change().items() if k != "author"}, "MISSING_FIELD"),
    ("unknown field", change(colour="blue"), "UNKNOWN_FIELD"),
    ("key with ../", change(key="../etc"), "INVALID_KEY"),
    ("key with /", change(key="a/b"), "INVALID_KEY"),
    ("key of dots", change(key=".."), "INVALID_KEY"),
    ("key too long", change(key="k" * 201), "INVALID_KEY"),
    ("key wrong type", change(key=5), "INVALID_KEY"),
    ("unknown environment", change(environment="qa"), "ENVIRONMENT_NOT_ALLOWED"),
    ("malformed environment", change(environment="Prod!"), "INVALID_ENVIRONMENT"),
    ("malformed service", change(service="Checkout_Svc"), "INVALID_SERVICE"),
    ("unknown service", change(service="billing"), "UNKNOWN_SERVICE"),
    ("unknown operation", change(operation="upsert"), "INVALID_OPERATION"),
    ("version as string", change(expectedVersion="one"), "INVALID_TYPE"),
    ("negative version", change(expectedVersion=-1), "INVALID_TYPE"),
    ("bad change id", change(change_id="has space"), "INVALID_CHANGE_ID"),
    ("value too large", change(key="blob", value="x" * 5000), "VALUE_TOO_LARGE"),
    ("value too deep", change(key="nested", value=DEEP), "VALUE_TOO_DEEP"),
    ("schema violation", change(key="max_items", value=5000), "SCHEMA_VIOLATION"),
    ("schema type", change(key="max_items", value="ten"), "SCHEMA_VIOLATION"),
    ("put without value", {k: v for k, v in change().items() if k != "value"}, "MISSING_VALUE"),
    ("delete with value", change(operation="delete") | {"value": 1}, "UNEXPECTED_FIELD"),
    ("rollback without version", change(operation="rollback"), "MISSING_TO_VERSION"),
    ("put with toVersion", change(toVersion=1), "UNEXPECTED_FIELD"),
    (
        "service outside its environments",
        change(service="search", environment="production"),
        "ENVIRONMENT_NOT_ALLOWED",
    ),
]


@pytest.mark.parametrize(
    ("detail", "code"), [(d, c) for _, d, c in BAD_INPUT], ids=[n for n, _, _ in BAD_INPUT]
)
def test_bad_input_is_rejected_with_a_clear_code_and_only_the_rejection_is_written(
    write_path, pipeline, detail, code
):
    source = (
        "configpipe.team.search"
        if isinstance(detail, dict) and detail.get("service") == "search"
        else ("configpipe.team.checkout")
    )

    outcome = submit(write_path, detail, source=source)

    assert outcome.status == "rejected"
    assert code in outcome.codes
    assert all(r.message for r in outcome.reasons)
    items = all_items(pipeline)
    assert [(i["kind"], i["status"]) for i in items] == [("change", "rejected")]
    assert items[0]["reasons"][0]["code"] in outcome.codes


def test_a_source_may_only_change_its_own_services(write_path, pipeline):
    outcome = submit(write_path, change(service="checkout"), source="configpipe.team.payments")

    assert outcome.codes == ["SOURCE_NOT_AUTHORIZED"]
    assert not [i for i in all_items(pipeline) if i["kind"] != "change"]


def test_global_keys_need_a_global_publisher(write_path):
    detail = change(service="global", key="feature.dark_mode", value=True)
    assert submit(write_path, detail, source="configpipe.team.checkout").codes == ["SOURCE_NOT_AUTHORIZED"]
    assert (
        submit(
            write_path,
            change(service="global", key="feature.dark_mode", value=True),
            source="configpipe.team.platform",
        ).status
        == "accepted"
    )


@pytest.mark.parametrize("event", [{}, "junk", None, {"detail": {}}, {"id": "x", "source": "s"}])
def test_an_event_that_is_not_an_eventbridge_envelope_is_rejected_not_raised(write_path, pipeline, event):
    outcome = write_path.handle(event)

    assert outcome.codes == ["MALFORMED_EVENT"]
    assert [i["status"] for i in all_items(pipeline)] == ["rejected"]


def test_json_null_is_a_value(write_path, log):
    assert submit(write_path, change(key="endpoint", value=None)).status == "accepted"
    assert log.current_record("checkout", "production", "endpoint").value_json == "null"


# --- secrets ------------------------------------------------------------------------------------

SECRET = "hunter2-correct-horse"


@pytest.mark.parametrize(
    "detail",
    [change(key="stripe", value=SECRET, sensitive=True), change(key="db_password", value=SECRET)],
    ids=["flagged", "named-like-a-secret"],
)
def test_a_sensitive_value_sent_in_clear_is_rejected_and_nothing_but_the_rejection_is_written(
    write_path, pipeline, detail
):
    # M3 (docs/security.md): the value has crossed the bus in clear; refuse it by default.
    outcome = submit(write_path, detail)

    assert outcome.codes == ["SENSITIVE_VALUE_IN_CLEAR"]
    assert "encryptedValue" in outcome.reasons[0].message and outcome.reasons[0].field == "value"
    assert [i["kind"] for i in all_items(pipeline)] == ["change"]
    assert SECRET not in json.dumps(all_items(pipeline), default=repr)
    assert SECRET not in json.dumps(outcome.to_dict())


def test_a_flagged_secret_is_stored_encrypted_and_hashed_with_the_kms_hmac_key(pipeline, log):
    # With the migration setting on (cdk.json allowSensitiveValuesInClear), a clear value is
    # still encrypted before it reaches the change log.
    write_path = make_write_path(pipeline, sensitive_values_in_clear=True)
    outcome = submit(write_path, change(key="stripe", value=SECRET, sensitive=True))

    assert outcome.status == "accepted"
    assert SECRET not in json.dumps(all_items(pipeline), default=repr)
    record = log.current_record("checkout", "production", "stripe")
    assert record.sensitive and record.value_json is None
    assert record.value_hash.startswith("hmac-sha256:")
    key = SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id)
    assert json.loads(key.decrypt("checkout/production/stripe", record.secret_ciphertext)) == SECRET


def test_a_key_named_like_a_secret_is_sensitive_even_unflagged(pipeline, log):
    write_path = make_write_path(pipeline, sensitive_values_in_clear=True)
    submit(write_path, change(key="db_password", value=SECRET))

    assert log.current_record("checkout", "production", "db_password").sensitive
    assert SECRET not in json.dumps(all_items(pipeline), default=repr)


def test_an_encrypted_value_is_stored_as_sent(write_path, pipeline, log):
    key = SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id)
    ciphertext = key.encrypt("checkout/production/stripe", SECRET)

    detail = {
        k: v
        for k, v in change(key="stripe", encryptedValue=encode_ciphertext(ciphertext)).items()
        if k != "value"
    }

    outcome = submit(write_path, detail)

    assert outcome.status == "accepted"
    assert log.current_record("checkout", "production", "stripe").secret_ciphertext == ciphertext


def test_an_encrypted_value_for_another_key_or_not_ciphertext_is_rejected(write_path, pipeline):
    key = SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id)
    foreign = encode_ciphertext(key.encrypt("payments/production/stripe", SECRET))

    for encrypted in (foreign, "not base64 !!", base64.b64encode(b"garbage").decode()):
        detail = {k: v for k, v in change(key="stripe", encryptedValue=encrypted).items() if k != "value"}
        assert submit(write_path, detail).codes == ["INVALID_ENCRYPTED_VALUE"]
    assert [i["kind"] for i in all_items(pipeline)] == ["change"] * 3


def test_a_secret_schema_or_size_rejection_never_quotes_the_value(pipeline):
    write_path = make_write_path(pipeline, sensitive_values_in_clear=True)
    outcome = submit(write_path, change(key="api_token", value="x" * 5000 + SECRET))

    assert outcome.codes == ["VALUE_TOO_LARGE"]
    assert SECRET not in json.dumps(outcome.to_dict())


def test_the_same_secret_hashes_differently_on_every_key(write_path, log, pipeline):
    # M2: a team cannot learn whether another key holds a secret it guessed by comparing hashes.
    kms = boto3.client("kms")
    for service, key, source in (
        ("checkout", "stripe", "configpipe.team.checkout"),
        ("checkout", "db_password", "configpipe.team.checkout"),
        ("payments", "payments.api_token", "configpipe.team.payments"),
    ):
        detail = sealed(
            change(key=key, value=SECRET, service=service, sensitive=True), pipeline.secrets_key_id, kms
        )
        assert submit(write_path, detail, source=source).status == "accepted"
    hashes = {
        log.current_record(service, "production", key).value_hash
        for service, key in (
            ("checkout", "stripe"),
            ("checkout", "db_password"),
            ("payments", "payments.api_token"),
        )
    }
    assert len(hashes) == 3 and all(h.startswith("hmac-sha256:") for h in hashes)


def test_rollback_of_a_secret_copies_the_ciphertext_not_a_clear_value(write_path, pipeline, log):
    kms = boto3.client("kms")
    submit(
        write_path, sealed(change(key="db_password", value="first-" + SECRET), pipeline.secrets_key_id, kms)
    )
    submit(
        write_path, sealed(change(key="db_password", value="second-" + SECRET), pipeline.secrets_key_id, kms)
    )

    submit(write_path, change(key="db_password", operation="rollback", toVersion=1))

    v1 = log.version("checkout", "production", "db_password", 1)
    v3 = log.version("checkout", "production", "db_password", 3)
    assert (v3.secret_ciphertext, v3.value_hash, v3.sensitive) == (v1.secret_ciphertext, v1.value_hash, True)
    assert SECRET not in json.dumps(all_items(pipeline), default=repr)
