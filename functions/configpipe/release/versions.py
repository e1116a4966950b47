"""Version housekeeping (issue 16): which published versions of a function may be deleted.

:func:`plan_prune` is pure. A version is **kept** when it is among the newest ``keep``, when an
alias routes to it (primary version or routing config weight), when an active release needs it
(its target, or the alias state it would restore), or when it is the rollback target of an
alias's last release (the state that release restored or would restore) — in that order of
reasons. Every other version is deleted. ``$LATEST`` is never a candidate.

:class:`LambdaVersions` is the Lambda adapter: list versions and aliases, delete one version
(``DeleteFunction`` with a ``Qualifier``: only that version; never the function).

:func:`prune` is the one deletion procedure, shared by ``configpipe versions prune`` and the
scheduled prune function (configpipe.handlers.version_prune): plan, read the references again
right before deleting, keep whatever became referenced in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from configpipe.release.model import AliasTarget, ReleaseState, normalise_weights

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

    from configpipe.release.store import ReleaseStore

LATEST = "$LATEST"


@dataclass(frozen=True)
class NamedAlias:
    name: str
    target: AliasTarget


@dataclass(frozen=True)
class PruneDecision:
    version: str
    action: Literal["delete", "keep"]
    reason: str


def references(aliases: Iterable[NamedAlias], releases: Iterable[ReleaseState]) -> dict[str, list[str]]:
    """``{version: [why it is needed, …]}`` for every version something still points at."""
    found: dict[str, list[str]] = {}

    def add(version: str, why: str) -> None:
        found.setdefault(version, []).append(why)

    def routed(target: AliasTarget, where: str) -> None:
        add(target.function_version, where)
        for version, weight in sorted(target.weights.items()):
            add(version, f"{where} ({round(100 * weight, 2):g} % routing)")

    for alias in aliases:
        routed(alias.target, f"alias {alias.name}")
    last_per_alias: dict[str, ReleaseState] = {}
    for release in releases:
        if not release.status.terminal:
            add(release.target_version, f"target of active release {release.release_id}")
            routed(release.previous, f"rollback state of active release {release.release_id}")
        latest = last_per_alias.get(release.alias)
        if latest is None or release.requested_at > latest.requested_at:
            last_per_alias[release.alias] = release
    for alias_name, release in sorted(last_per_alias.items()):
        if release.status.terminal:
            routed(release.previous, f"rollback target of {alias_name}'s last release {release.release_id}")
    return found


def plan_prune(versions: Sequence[str], referenced: dict[str, list[str]], keep: int) -> list[PruneDecision]:
    """A decision for every published version, newest first."""
    published = sorted((v for v in versions if v != LATEST), key=int, reverse=True)
    decisions = []
    for rank, version in enumerate(published):
        if rank < keep:
            decisions.append(PruneDecision(version, "keep", f"among the newest {keep}"))
        elif version in referenced:
            decisions.append(PruneDecision(version, "keep", "; ".join(referenced[version])))
        else:
            decisions.append(
                PruneDecision(
                    version, "delete", f"no alias or release needs it; older than the newest {keep}"
                )
            )
    return decisions


class LambdaVersions:
    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client or boto3.client("lambda")

    def published(self, function: str) -> list[str]:
        versions: list[str] = []
        for page in self._client.get_paginator("list_versions_by_function").paginate(FunctionName=function):
            versions.extend(v["Version"] for v in page.get("Versions", []) if v["Version"] != LATEST)
        return versions

    def aliases(self, function: str) -> list[NamedAlias]:
        found = []
        for page in self._client.get_paginator("list_aliases").paginate(FunctionName=function):
            for alias in page.get("Aliases", []):
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
                found.append(
                    NamedAlias(
                        alias["Name"],
                        AliasTarget(
                            function_version=alias["FunctionVersion"], weights=normalise_weights(weights)
                        ),
                    )
                )
        return found

    def delete(self, function: str, version: str) -> bool:
        """Delete one published version; False when it was already gone."""
        if version == LATEST or not version.isdigit():
            raise ValueError(f"refusing to delete {function}:{version}: only a published version number")
        try:
            self._client.delete_function(FunctionName=function, Qualifier=version)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True


def needed_versions(lam: LambdaVersions, store: ReleaseStore, function: str) -> dict[str, list[str]]:
    """What still references ``function``'s versions: its aliases and their releases."""
    aliases = lam.aliases(function)
    releases = [r for alias in aliases for r in store.releases_for_alias(function, alias.name)]
    return references(aliases, releases)


def prune(
    lam: LambdaVersions,
    needed: Callable[[], dict[str, list[str]]],
    function: str,
    keep: int,
    *,
    dry_run: bool = False,
) -> list[PruneDecision]:
    """Plan, then (unless ``dry_run``) delete. ``needed`` is called again right before the
    deletions: an alias or release that appeared since the plan keeps its version."""
    decisions = plan_prune(lam.published(function), needed(), keep)
    if dry_run or not any(d.action == "delete" for d in decisions):
        return decisions
    fresh = needed()
    final = []
    for d in decisions:
        if d.action == "delete" and d.version in fresh:
            final.append(PruneDecision(d.version, "keep", "; ".join(fresh[d.version])))
        elif d.action == "delete" and not lam.delete(function, d.version):
            final.append(PruneDecision(d.version, "delete", "already gone"))
        else:
            final.append(d)
    return final


# --- the scheduled prune (configpipe.handlers.version_prune) -----------------------------------

INVALID_PRUNE_REQUEST = "INVALID_PRUNE_REQUEST"
PRUNE_NOT_ENABLED = "PRUNE_NOT_ENABLED"


class VersionPruneRequest(BaseModel):
    """What a prune schedule sends (a rule's fixed input). A command: unknown fields are refused,
    and ``keep`` is not part of it — it comes from the function's settings, like the list of
    functions it may prune, so an invocation cannot widen what is deleted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str = Field(min_length=1, max_length=140)


def prune_refusal(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def prune_outcome(function: str, keep: int, decisions: Sequence[PruneDecision]) -> dict[str, Any]:
    """What the scheduled prune logs and returns (the CLI's ``--output json`` has the same
    ``versions`` rows)."""
    return {
        "function": function,
        "keep": keep,
        "deleted": [d.version for d in decisions if d.action == "delete"],
        "versions": [{"version": d.version, "action": d.action, "reason": d.reason} for d in decisions],
    }


class ScheduledPrune:
    """Prunes only the functions its settings enable, each with its own ``keep``."""

    def __init__(self, keep_per_function: dict[str, int], lam: LambdaVersions, store: ReleaseStore) -> None:
        self._keep = keep_per_function
        self._lam = lam
        self._store = store

    def handle(self, request: VersionPruneRequest) -> dict[str, Any]:
        keep = self._keep.get(request.function)
        if keep is None:
            return prune_refusal(
                PRUNE_NOT_ENABLED,
                f"the scheduled prune is not enabled for {request.function} "
                f"(enabled: {', '.join(sorted(self._keep)) or 'none'})",
            )
        decisions = prune(
            self._lam,
            lambda: needed_versions(self._lam, self._store, request.function),
            request.function,
            keep,
        )
        return prune_outcome(request.function, keep, decisions)
