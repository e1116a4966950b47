"""Environment promotion (issue 14): make one environment of a service hold what another holds,
key by key, through ordinary changes.

:func:`plan` compares the version readers get in the source environment with the target's
(``snapshots.state_now``: a rolling-out key counts with its stable version) and makes one
``put`` per differing key, each with ``expectedVersion`` = the target's current version, so a
concurrent edit in the target is a ``VERSION_CONFLICT``, never overwritten. Keys only in the
target are listed and left alone (an environment's own keys, e.g. its endpoints, are not the
source's to remove); so are keys the source deleted.

Plain values compare by value hash (SHA-256 of the canonical JSON: the same in every
environment). A secret's hash is an HMAC bound to its key's scope (docs/security.md M2), so
two environments holding the same secret never hash alike: a secret counts as promoted when the
target's current version was written by the promotion of the source's current version —
recognised by its change id, derived from (source environment, key, source version, the target
version it replaced). A secret set to the same value by hand in both shows as differing.

Every change id is derived too (:func:`promotion_change_id`), so re-running a promotion that
timed out re-sends the same changes, which the validator takes as duplicates; and the promotion
id (carried as ``restoreId`` by every change, so history and ``ConfigurationUpdated`` tie them
together) is derived from the plan, so a re-run of the same plan has the same id.

A secret's value is read from the change log as KMS ciphertext and re-encrypted *inside KMS*
for the target key's scope (``SecretsKey.re_encrypt``): it is never in clear on the way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from configpipe.changelog import ChangeLog
from configpipe.contracts import CHANGE_ID_PATTERN
from configpipe_tools.snapshots import KeyState, state_now

SAME, DIFFERS, SOURCE_ONLY, TARGET_ONLY = "same", "differs", "source-only", "target-only"
#: A key named with ``--key`` that has a value in neither environment.
ABSENT = "absent"


@dataclass(frozen=True)
class PromotionEntry:
    key: str
    status: str
    source: KeyState | None
    target: KeyState | None
    #: The target's current version (0: the key never existed there): the change's expectedVersion.
    target_pointer: int
    change_id: str | None = None

    @property
    def secret(self) -> bool:
        return bool((self.source and self.source.sensitive) or (self.target and self.target.sensitive))

    @property
    def promotes(self) -> bool:
        return self.status in (DIFFERS, SOURCE_ONLY)


def promotion_change_id(source_env: str, key: str, source_version: int, replaces: int) -> str:
    """The change that promotes ``source_version`` of ``key`` from ``source_env`` onto the
    target's version ``replaces``: the same inputs always give the same id."""
    digest = hashlib.sha256(f"{source_env}\n{key}\n{source_version}\n{replaces}".encode()).hexdigest()
    change_id = f"promote.{digest[:32]}"
    assert CHANGE_ID_PATTERN.fullmatch(change_id), change_id
    return change_id


def promotion_id(service: str, source_env: str, target_env: str, entries: list[PromotionEntry]) -> str:
    """Derived from what is promoted, so a re-run of the same plan carries the same id."""
    steps = [e.change_id for e in entries if e.promotes]
    digest = hashlib.sha256(json.dumps([service, source_env, target_env, steps]).encode()).hexdigest()
    return f"promote-{source_env[:12]}-{target_env[:12]}-{digest[:12]}"


def plan(
    log: ChangeLog, service: str, source_env: str, target_env: str, keys: list[str] | None = None
) -> list[PromotionEntry]:
    source, _ = state_now(log, service, source_env)
    target, pointers = state_now(log, service, target_env)
    wanted = sorted(set(keys) if keys else set(source) | set(target))
    entries: list[PromotionEntry] = []
    for key in wanted:
        s, t = source.get(key), target.get(key)
        pointer = pointers.get(key, 0)
        change_id = promotion_change_id(source_env, key, s.version, pointer) if s is not None else None
        if s is None and t is None:
            status = ABSENT
        elif s is None:
            status = TARGET_ONLY
        elif t is None:
            status = SOURCE_ONLY
        elif s.sensitive or t.sensitive:
            status = (
                SAME
                if s.sensitive and t.sensitive and _promoted(log, service, source_env, target_env, key, s)
                else DIFFERS
            )
        else:
            status = SAME if s.value_hash == t.value_hash else DIFFERS
        entries.append(
            PromotionEntry(
                key, status, s, t, pointer, change_id if status in (DIFFERS, SOURCE_ONLY) else None
            )
        )
    return entries


def _promoted(
    log: ChangeLog, service: str, source_env: str, target_env: str, key: str, source: KeyState
) -> bool:
    """Is the target's current version the promotion of the source's current one?"""
    record = log.current_record(service, target_env, key)
    if record is None:
        return False
    return record.change_id == promotion_change_id(
        source_env, key, source.version, record.previous_version or 0
    )


def view(
    entry: PromotionEntry, log: ChangeLog, service: str, source_env: str, target_env: str
) -> dict[str, Any]:
    """One key of the diff as the CLI shows it: versions, and values only when neither side is a secret."""
    row: dict[str, Any] = {
        "key": entry.key,
        "status": entry.status,
        "sourceVersion": entry.source.version if entry.source else None,
        "targetVersion": entry.target.version if entry.target else None,
    }
    if entry.secret:
        row["secret"] = True
    elif entry.status != SAME:
        for side, env, state in (("source", source_env, entry.source), ("target", target_env, entry.target)):
            if state is not None:
                record = log.version(service, env, entry.key, state.version)
                if record is not None and record.value_json is not None:
                    row[f"{side}Value"] = json.loads(record.value_json)
    return row
