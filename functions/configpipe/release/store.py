"""Release table data access (DynamoDB): durable release state, its history (which is also
the announcement outbox), the one-active-release-per-alias lock and applied controls.

Items (table keys ``pk`` / ``sk``, all strings):

* state — ``RELEASE#{id}`` / ``STATE``: ``doc`` (JSON of :class:`ReleaseState`), ``seq``;
  ``gsi1pk=ACTIVE`` while active (index ``queue``); ``gsi2pk=ALIAS#{fn}:{alias}`` (``byAlias``).
* history — ``RELEASE#{id}`` / ``H#{seq:06d}``: ``detailType``, ``detail``;
  ``gsi1pk=UNANNOUNCED`` until published (index ``queue``).
* lock — ``ALIAS#{fn}:{alias}`` / ``LOCK``: ``releaseId``; exists while a release is active.
* control — ``RELEASE#{id}`` / ``CONTROL#{controlId}``: ``action``; makes a control idempotent
  (and tells a repeat from another action reusing the id).

Every change is ONE ``TransactWriteItems``: state (conditional on the seq read) + its history
entries + lock/control items, so state and history never disagree. Conditional failures are
turned into domain errors here, once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from configpipe.release.errors import (
    AliasBusyError,
    DuplicateControlError,
    ReleaseExistsError,
    StaleReleaseStateError,
)
from configpipe.release.model import HistoryEntry, ReleaseState
from configpipe.values import canonical_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

QUEUE_INDEX = "queue"
ALIAS_INDEX = "byAlias"
ACTIVE = "ACTIVE"
UNANNOUNCED = "UNANNOUNCED"


def release_pk(release_id: str) -> str:
    return f"RELEASE#{release_id}"


def alias_key(function: str, alias: str) -> str:
    return f"ALIAS#{function}:{alias}"


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _cancel_codes(error: ClientError) -> list[str]:
    return [str(r.get("Code") or "None") for r in error.response.get("CancellationReasons", [])]


class ReleaseStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client or boto3.client("dynamodb")

    # --- items ----------------------------------------------------------------------------

    def _state_item(self, state: ReleaseState) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": _s(release_pk(state.release_id)),
            "sk": _s("STATE"),
            "kind": _s("state"),
            "doc": _s(state.model_dump_json()),
            "seq": _n(state.seq),
            "status": _s(state.status.value),
            "function": _s(state.function),
            "alias": _s(state.alias),
            "targetVersion": _s(state.target_version),
            "updatedAt": _s(state.updated_at.isoformat()),
            "gsi2pk": _s(alias_key(state.function, state.alias)),
            "gsi2sk": _s(f"{state.requested_at.isoformat()}#{state.release_id}"),
        }
        if not state.status.terminal:
            item["gsi1pk"] = _s(ACTIVE)
            item["gsi1sk"] = _s(state.release_id)
        return item

    def _history_item(self, entry: HistoryEntry) -> dict[str, Any]:
        return {
            "pk": _s(release_pk(entry.release_id)),
            "sk": _s(f"H#{entry.seq:06d}"),
            "kind": _s("history"),
            "releaseId": _s(entry.release_id),
            "seq": _n(entry.seq),
            "at": _s(entry.at.isoformat()),
            "detailType": _s(entry.detail_type.value),
            "detail": _s(canonical_json(entry.detail)),
            "gsi1pk": _s(UNANNOUNCED),
            "gsi1sk": _s(f"{entry.at.isoformat()}#{entry.release_id}#{entry.seq:06d}"),
        }

    def _put_history(self, entries: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._history_item(e),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for e in entries
        ]

    # --- writes ---------------------------------------------------------------------------

    def create(self, state: ReleaseState, history: Sequence[HistoryEntry]) -> None:
        """Create a release and take its alias's lock, atomically.

        :raises ReleaseExistsError: the release id is taken.
        :raises AliasBusyError: another release is active on the alias."""
        lock = {
            "pk": _s(alias_key(state.function, state.alias)),
            "sk": _s("LOCK"),
            "kind": _s("lock"),
            "releaseId": _s(state.release_id),
            "since": _s(state.requested_at.isoformat()),
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._state_item(state),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": lock,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *self._put_history(history),
        ]
        try:
            self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancel_codes(e)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ReleaseExistsError(state.release_id) from e
            raise AliasBusyError(
                state.function, state.alias, self.lock_holder(state.function, state.alias)
            ) from e

    def save(
        self,
        state: ReleaseState,
        expected_seq: int,
        history: Sequence[HistoryEntry] = (),
        *,
        release_lock: bool = False,
        control: tuple[str, str] | None = None,
    ) -> None:
        """Replace the release's state if it is still at ``expected_seq``, append ``history``,
        release the alias lock (terminal states) and record a ``(control_id, action)``.

        :raises StaleReleaseStateError: somebody else saved first.
        :raises DuplicateControlError: the control was applied before."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._state_item(state),
                    "ConditionExpression": "seq = :expected",
                    "ExpressionAttributeValues": {":expected": _n(expected_seq)},
                }
            },
            *self._put_history(history),
        ]
        if release_lock:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {"pk": _s(alias_key(state.function, state.alias)), "sk": _s("LOCK")},
                        "ConditionExpression": "attribute_not_exists(pk) OR releaseId = :id",
                        "ExpressionAttributeValues": {":id": _s(state.release_id)},
                    }
                }
            )
        control_index = None
        if control is not None:
            control_index = len(items)
            control_id, action = control
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": _s(release_pk(state.release_id)),
                            "sk": _s(f"CONTROL#{control_id}"),
                            "kind": _s("control"),
                            "action": _s(action),
                            "at": _s(state.updated_at.isoformat()),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancel_codes(e)
            if (
                control is not None
                and control_index is not None
                and len(codes) > control_index
                and codes[control_index] == "ConditionalCheckFailed"
            ):
                raise DuplicateControlError(state.release_id, control[0]) from e
            raise StaleReleaseStateError(state.release_id, expected_seq) from e

    def mark_announced(self, release_id: str, seq: int, at: datetime) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": _s(release_pk(release_id)), "sk": _s(f"H#{seq:06d}")},
            UpdateExpression="REMOVE gsi1pk, gsi1sk SET announcedAt = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":now": _s(at.isoformat())},
        )

    # --- reads ----------------------------------------------------------------------------

    def get(self, release_id: str) -> ReleaseState | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": _s(release_pk(release_id)), "sk": _s("STATE")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return ReleaseState.model_validate_json(item["doc"]["S"]) if item else None

    def status(self, release_id: str) -> str | None:
        """The release's status, None if it does not exist (what a config rollout riding on the
        release follows; see configpipe.rollout.engine.decide_with_release)."""
        state = self.get(release_id)
        return state.status.value if state else None

    def control_action(self, release_id: str, control_id: str) -> str | None:
        """The action recorded under ``control_id`` (None if that id was never applied): a
        repeat of the same action is a duplicate, another action under it a conflict."""
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": _s(release_pk(release_id)), "sk": _s(f"CONTROL#{control_id}")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item["action"]["S"] if item else None

    def history(self, release_id: str) -> list[HistoryEntry]:
        entries: list[HistoryEntry] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
            ExpressionAttributeValues={":pk": _s(release_pk(release_id)), ":h": _s("H#")},
            ConsistentRead=True,
        ):
            entries.extend(self._entry(item) for item in page.get("Items", []))
        return entries

    def lock_holder(self, function: str, alias: str) -> str | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": _s(alias_key(function, alias)), "sk": _s("LOCK")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item["releaseId"]["S"] if item else None

    def _query_index(
        self, index: str, pk_name: str, pk_value: str, forward: bool = True
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=index,
            KeyConditionExpression=f"{pk_name} = :v",
            ExpressionAttributeValues={":v": _s(pk_value)},
            ScanIndexForward=forward,
        ):
            items.extend(page.get("Items", []))
        return items

    def active_release_ids(self) -> list[str]:
        return [item["gsi1sk"]["S"] for item in self._query_index(QUEUE_INDEX, "gsi1pk", ACTIVE)]

    def unannounced(self) -> list[HistoryEntry]:
        """History entries not yet published (oldest first); the index is eventually consistent,
        which only delays a repair to the next reconcile."""
        return [self._entry(item) for item in self._query_index(QUEUE_INDEX, "gsi1pk", UNANNOUNCED)]

    def releases_for_alias(self, function: str, alias: str) -> list[ReleaseState]:
        """Every release of ``function:alias``, newest first (from the index: may lag a second)."""
        items = self._query_index(ALIAS_INDEX, "gsi2pk", alias_key(function, alias), forward=False)
        return [ReleaseState.model_validate_json(item["doc"]["S"]) for item in items if "doc" in item]

    @staticmethod
    def _entry(item: dict[str, Any]) -> HistoryEntry:
        return HistoryEntry(
            release_id=item["releaseId"]["S"],
            seq=int(item["seq"]["N"]),
            at=datetime.fromisoformat(item["at"]["S"]),
            detail_type=item["detailType"]["S"],
            detail=json.loads(item["detail"]["S"]),
        )
