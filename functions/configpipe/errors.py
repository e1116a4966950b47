"""Domain errors. Adapters translate botocore errors into these, once; logic speaks only these."""

from __future__ import annotations

from typing import Any


class ConfigpipeError(Exception):
    """Base of every configpipe error."""


class VersionConflictError(ConfigpipeError):
    def __init__(self, expected: int | None, actual: int) -> None:
        super().__init__(f"expected version {expected}, current version is {actual}")
        self.expected = expected
        self.actual = actual


class DuplicateChangeError(ConfigpipeError):
    """The changeId was seen before: the change has already had its effect."""

    def __init__(self, change_id: str) -> None:
        super().__init__(f"change {change_id} was already processed")
        self.change_id = change_id


class EventPublishError(ConfigpipeError):
    """EventBridge refused some entries; raised so the caller's retry/DLQ path takes over."""

    def __init__(self, failed_entries: list[dict[str, Any]]) -> None:
        codes = sorted({str(e.get("ErrorCode")) for e in failed_entries})
        super().__init__(f"{len(failed_entries)} event(s) not published: {', '.join(codes)}")
        self.failed_entries = failed_entries


class RolloutConflictError(ConfigpipeError):
    """A key's rollout moved on since it was read (another reconcile or control won the
    conditional write); the caller re-reads and decides again."""
