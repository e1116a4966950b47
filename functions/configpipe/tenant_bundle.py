"""A tenant's bundle: every parameter below the tenant's path in one parameter, so a client's
cold read of a tenant costs one GetParameter however many values the tenant overrides.

Reading the tenant's path itself (GetParametersByPath) costs one call per page of at most 10
parameters, plus one more when the last page is full (SSM returns a token then): a tenant with
20 values, or 9 values and one rollout (a rollout adds a view and a candidate), cost 3 calls
(issue 17 asks for at most 2). The materialiser keeps the bundle beside the tree it summarises:

* **name** ``/config/{service}/{environment}.tenants/{tenant}`` — the tenant's path without its
  trailing ``/``: not below the path (a recursive read of the tree never returns it), covered by
  the reader policy's ``{environment}.tenants/*`` and by docs/security.md's per-tenant template
  (which already names the path itself, GetParametersByPath's resource);
* **text** ``{"format": 1, "parameters": {"<key>": "<value JSON>", "<key>/rollout": …}}``: the
  tree exactly as a recursive read of the path returns it (names relative to the path). Values
  are those SSM already holds in clear: a sensitive value is never in SSM, so never here;
* **too large** for a standard parameter (4 KB): ``{"format": 1, "paged": true}``, and readers
  read the tree (one call per page, as before);
* **no bundle**: the tenant has no values of its own (the materialiser deletes the bundle when
  the tree empties), so a tenant without overrides costs one call, answered "not found".

Writers: the materialiser only, after every write below a tenant's path (a version, a rollout's
view or candidate, their removal); see :meth:`TenantBundles.publish` for why concurrent writers
converge. Readers: ``ConfigClient`` only (service code: so this module imports no Powertools);
the CLI, drift detection and the per-key reads keep reading the parameters themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from configpipe.naming import PARAMETER_ROOT, environment_segment, parameter_path
from configpipe.stores import ParameterStore

BUNDLE_FORMAT = 1
#: A standard SSM parameter holds at most 4 KB (advanced ones, 8 KB, are billed per parameter
#: per month: one per tenant would cost more than the calls they save).
BUNDLE_MAX_BYTES = 4096
#: Rounds of write-then-verify before leaving convergence to the concurrent writer (each writer
#: below the path publishes after its own write).
BUNDLE_MAX_ROUNDS = 5


def tenant_bundle_name(service: str, environment: str, tenant: str, root: str = PARAMETER_ROOT) -> str:
    return f"{root}/{service}/{environment_segment(environment, tenant)}"


def encode_bundle(tree: Mapping[str, str]) -> str:
    """The bundle's text for ``tree``; the paged marker when it does not fit one parameter."""
    text = json.dumps(
        {"format": BUNDLE_FORMAT, "parameters": dict(tree)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    if len(text.encode("utf-8")) <= BUNDLE_MAX_BYTES:
        return text
    return json.dumps({"format": BUNDLE_FORMAT, "paged": True}, sort_keys=True, separators=(",", ":"))


def decode_bundle(text: str) -> dict[str, str] | None:
    """The tree a bundle holds, or ``None`` when the reader must read the tree itself (a paged
    bundle, a format this code does not know, or text that is not a bundle)."""
    try:
        bundle = json.loads(text)
    except ValueError:
        return None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT or bundle.get("paged"):
        return None
    parameters = bundle.get("parameters")
    if not isinstance(parameters, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in parameters.items()
    ):
        return None
    return parameters


class TenantBundles:
    """Keeps each tenant's bundle equal to the tree below the tenant's path."""

    def __init__(
        self,
        parameters: ParameterStore,
        tags: Callable[[str, str, str], dict[str, str]],
        max_rounds: int = BUNDLE_MAX_ROUNDS,
    ) -> None:
        self._parameters = parameters
        self._tags = tags
        self._max_rounds = max_rounds

    def publish(self, service: str, environment: str, tenant: str) -> dict[str, Any]:
        """Make the bundle equal the tree, and check the tree did not move meanwhile.

        Two materialisations of one tenant's different keys run in parallel (their change-log
        partitions are on different stream shards), so a bundle built from a tree read just
        before another writer's put would go stale if written last. Each writer therefore
        reads the tree again *after* writing the bundle and writes again if it moved: the
        writer whose put lands last has read the tree after every earlier tree write (its
        own put followed theirs, and each wrote its parameter before publishing), so the
        last bundle written holds every write. Returns what it did (for logs and tests)."""
        path = parameter_path(service, environment, tenant=tenant)
        name = tenant_bundle_name(service, environment, tenant)
        tree = self._parameters.get_by_path(path, recursive=True)
        wanted = encode_bundle(tree) if tree else None
        writes = 0
        for _ in range(self._max_rounds):
            if wanted != self._parameters.get(name):
                if wanted is None:
                    self._parameters.delete(name)
                else:
                    self._parameters.put(name, wanted, self._tags(service, environment, tenant))
                writes += 1
            after = self._parameters.get_by_path(path, recursive=True)
            if after == tree:
                return {"bundle": name, "parameters": len(tree), "writes": writes, "converged": True}
            tree = after
            wanted = encode_bundle(tree) if tree else None
        # Still moving: every writer below the path publishes after its own write, so the
        # one that moved it last leaves the bundle right.
        return {"bundle": name, "parameters": len(tree), "writes": writes, "converged": False}
