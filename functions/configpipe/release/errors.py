"""Release domain errors. The adapters translate botocore errors into these, once."""

from __future__ import annotations

from configpipe.errors import ConfigpipeError


class ReleaseError(ConfigpipeError):
    """Base of every release error."""


class FunctionNotFoundError(ReleaseError):
    def __init__(self, function: str) -> None:
        super().__init__(f"function {function} does not exist")
        self.function = function


class AliasNotFoundError(ReleaseError):
    def __init__(self, function: str, alias: str) -> None:
        super().__init__(f"alias {function}:{alias} does not exist")
        self.function = function
        self.alias = alias


class VersionNotFoundError(ReleaseError):
    def __init__(self, function: str, version: str) -> None:
        super().__init__(f"version {function}:{version} does not exist")
        self.function = function
        self.version = version


class AliasRevisionConflictError(ReleaseError):
    """UpdateAlias refused: the alias's RevisionId moved since we read it (a concurrent change)."""

    def __init__(self, function: str, alias: str) -> None:
        super().__init__(f"alias {function}:{alias} changed since it was read")
        self.function = function
        self.alias = alias


class AliasUpdateRefusedError(ReleaseError):
    """Lambda refused the routing we asked for (e.g. versions with different roles or DLQs)."""


class ReleaseExistsError(ReleaseError):
    def __init__(self, release_id: str) -> None:
        super().__init__(f"release {release_id} already exists")
        self.release_id = release_id


class AliasBusyError(ReleaseError):
    """Another release holds the alias: one active release per alias."""

    def __init__(self, function: str, alias: str, active_release_id: str | None) -> None:
        super().__init__(f"release {active_release_id} is already active on {function}:{alias}")
        self.function = function
        self.alias = alias
        self.active_release_id = active_release_id


class StaleReleaseStateError(ReleaseError):
    """The release changed since it was read (another reconcile or a control won the race)."""

    def __init__(self, release_id: str, expected_seq: int) -> None:
        super().__init__(f"release {release_id} is no longer at seq {expected_seq}")
        self.release_id = release_id
        self.expected_seq = expected_seq


class DuplicateControlError(ReleaseError):
    def __init__(self, release_id: str, control_id: str) -> None:
        super().__init__(f"control {control_id} was already applied to release {release_id}")
        self.release_id = release_id
        self.control_id = control_id
