"""``ConfigClient``: a service's view of its current configuration, cached in memory.

Reads every key of one service+environment (``/config/{service}/{environment}/``) plus
the environment's global keys (``/config/global/{environment}/``; a service key of the
same name wins) with one paginated, recursive GetParametersByPath each, keeps them for
``ttl_seconds``, and serves reads from memory: **a cache hit makes no AWS call**.
Secrets are read from Secrets Manager on demand and cached the same way.

Progressive rollouts (docs/rollouts.md): the same recursive read brings each key's
``<key>/rollout`` view and ``<key>/candidate`` value, so a cold instance that never heard an
announcement reads a consistent view. While a key rolls out, a read *for a subject* returns
the candidate when :func:`~configpipe.rollout.bucketing.receives_candidate` says so, else the
stable value (the main parameter); a reader that names no subject is bucketed per execution
environment. Pushed ``ConfigurationRollout*`` events (:meth:`ConfigClient.apply_rollout`)
are applied only when their (candidate version, sequence) is newer than the one held, and are
pinned for one TTL like pushed values. Views are kept as plain dicts (the camelCase wire
form), never parsed with pydantic, so the read path stays cheap.

When the store is unreachable the last good values keep being served (logged) and the
store is tried again after ``retry_after_failure_seconds``. Pushed updates
(:meth:`ConfigClient.apply_update`) are applied only when newer than the version held for
the key; a pushed value is pinned for one TTL, so a refresh that raced with the
materialiser cannot replace it with an older copy from the store.

Import cost matters for service cold starts: this module imports neither boto3 nor
pydantic nor Powertools (boto3 is imported on the first real read if no client is given).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from configpipe.errors import ConfigpipeError
from configpipe.naming import (
    TENANT_PATTERN,
    environment_segment,
    parameter_name,
    parameter_path,
    scope_id,
    secret_name,
)
from configpipe.rollout.bucketing import execution_environment_subject, receives_candidate
from configpipe.stores import ParameterStore, SecretStore, StoreUnavailableError, secret_version_token
from configpipe.tenant_bundle import decode_bundle, tenant_bundle_name
from configpipe.values import value_hash

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

    from configpipe.contracts import ConfigurationUpdated, RolloutView

log = logging.getLogger("configpipe.client")

#: Same as ``configpipe.contracts.GLOBAL_SERVICE`` (a test keeps them equal); not imported
#: from there because contracts pulls in pydantic, which service cold starts should not pay for.
GLOBAL_SERVICE = "global"
#: Same as ``RolloutStatus.ROLLING_OUT`` (a test keeps them equal), for the same reason.
ROLLING_OUT = "ROLLING_OUT"
COMPLETED = "COMPLETED"
#: The parameters a rollout adds one level below its key (keys never contain ``/``).
ROLLOUT_SUFFIX = "rollout"
CANDIDATE_SUFFIX = "candidate"

_MISSING: Any = object()
#: A key deleted by a pushed update: hidden from reads, remembered for its version.
_DELETED: Any = object()


class ConfigUnavailableError(ConfigpipeError):
    """The store could not be read and there is no last good value to serve."""


class ConfigTypeError(ConfigpipeError, TypeError):
    """The key's value cannot be read as the requested type."""


class SupersededValueError(ConfigpipeError):
    """The exact value of the announced version is no longer in the store (a newer version
    replaced it and the parameter's history no longer holds it)."""


@dataclass
class _Entry:
    value: Any
    #: Clock time a pushed update set this entry; ``None`` if it came from the store.
    pushed_at: float | None = None


_NO_VIEWS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class _TenantValues:
    """One tenant's own values of the service's keys (plain ones; secrets are not cached per
    tenant), read with one GetParameter of the tenant's bundle (configpipe/tenant_bundle.py),
    which also brings the active rollouts of the tenant's values (``<key>/rollout`` and
    ``<key>/candidate`` below the tenant's parameters): ``views`` is empty for a tenant with
    none."""

    values: dict[str, Any]
    loaded_at: float
    #: Shared and never written when the tenant has no rollout: an empty dict per held tenant
    #: cost about 10 % more memory for 10,000 tenants (scripts/bench_tenants.py).
    views: Mapping[str, _View] = field(default_factory=lambda: _NO_VIEWS)


#: Tenants whose values one client keeps (least recently read dropped first): 10,000 tenants
#: x 20 keys never sit in one execution environment (scripts/bench_tenants.py measures it).
DEFAULT_MAX_TENANTS = 1000


@dataclass
class _View:
    """A key's rollout as this client holds it.

    ``detail`` is the view's wire form (camelCase dict), or ``None`` for a rollout this client
    was told has ended: the tombstone hides a store copy the materialiser has not deleted yet.
    ``candidate`` is the candidate value when known (``_DELETED`` for a deleted candidate);
    ``_MISSING`` means it cannot be served (sensitive: read on demand by ``get_secret``;
    otherwise not readable yet), and then every subject reads the stable value, which is
    always safe."""

    detail: dict[str, Any] | None
    order: tuple[int, int]
    candidate: Any = _MISSING
    pushed_at: float | None = None
    targets: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        return self.detail is not None

    @property
    def sensitive(self) -> bool:
        return bool(self.detail and (self.detail.get("candidate") or {}).get("sensitive"))


def _order(detail: Mapping[str, Any]) -> tuple[int, int]:
    """Announcements of a key are ordered by (candidate version, sequence)."""
    return int(detail["candidateVersion"]), int(detail["sequence"])


def _detail_of(event: RolloutView | Mapping[str, Any]) -> dict[str, Any]:
    to_detail = getattr(event, "to_detail", None)
    if callable(to_detail):
        detail: dict[str, Any] = to_detail()
        return detail
    return dict(event)


def fetch_value(update: ConfigurationUpdated, parameters: ParameterStore, secrets: SecretStore) -> Any:
    """The value of exactly ``update.version``, read from where the update says it lives.

    Secrets: the Secrets Manager version whose id is derived from the config version.
    Parameters: the current value if its hash is the announced one, else the matching
    value from the parameter's history (the store may already hold a newer version, or,
    for a moment during a concurrent redrive, an older one). Raises
    :class:`SupersededValueError` if that value is gone."""
    scope = scope_id(update.service, update.environment, update.key, update.tenant)
    if update.deleted:
        return None
    if update.value_inline:
        return update.value
    if update.sensitive:
        secret_id = update.secret_arn or secret_name(
            update.service, update.environment, update.key, tenant=update.tenant
        )
        text = secrets.get_value(secret_id, version_id=secret_version_token(scope, update.version))
        if text is None:
            raise SupersededValueError(f"version {update.version} of secret {scope} is gone")
        return json.loads(text)
    name = update.parameter_name or parameter_name(
        update.service, update.environment, update.key, tenant=update.tenant
    )
    return _value_with_hash(
        parameters, [name], name, update.value_hash, f"version {update.version} of {scope}"
    )


def _value_with_hash(
    parameters: ParameterStore, names: list[str], history_of: str, wanted_hash: str | None, what: str
) -> Any:
    """The first of ``names`` whose value hashes to ``wanted_hash``, else the newest such value in
    ``history_of``'s history; hash-checked because the store may already hold another version."""
    for name in names:
        text = parameters.get(name)
        if text is not None and value_hash(json.loads(text)) == wanted_hash:
            return json.loads(text)
    for older in reversed(parameters.history(history_of)):
        candidate = json.loads(older)
        if value_hash(candidate) == wanted_hash:
            return candidate
    raise SupersededValueError(f"{what} is no longer in the parameter's history")


def candidate_secret_version(detail: Mapping[str, Any]) -> tuple[str, str]:
    """(secret id, version id) of a sensitive candidate: the key's secret, version id derived
    from the candidate version exactly as the materialiser stages it (``CONFIGPIPE_CANDIDATE``)."""
    service, environment, key = detail["service"], detail["environment"], detail["key"]
    tenant = detail.get("tenant")
    candidate = detail.get("candidate") or {}
    secret_id = candidate.get("secretArn") or secret_name(service, environment, key, tenant=tenant)
    version_id = candidate.get("secretVersionId") or secret_version_token(
        scope_id(service, environment, key, tenant), int(detail["candidateVersion"])
    )
    return secret_id, version_id


def fetch_candidate(
    rollout: RolloutView | Mapping[str, Any], parameters: ParameterStore, secrets: SecretStore
) -> Any:
    """The candidate value of a rollout (a ``RolloutView``/``ConfigurationRolloutEvent`` or its
    camelCase detail), exactly: inline; a sensitive candidate from its secret version; otherwise
    the ``<key>/candidate`` parameter checked against ``candidate.valueHash`` — or, once the
    rollout has completed, the main parameter or its history. Raises
    :class:`SupersededValueError` if that value is gone (the rollout ended and a newer version
    replaced it)."""
    detail = _detail_of(rollout)
    candidate = detail.get("candidate") or {}
    service, environment, key = detail["service"], detail["environment"], detail["key"]
    tenant = detail.get("tenant")
    what = f"candidate {detail['candidateVersion']} of {scope_id(service, environment, key, tenant)}"
    if candidate.get("deleted"):
        return None
    if candidate.get("valueInline"):
        return candidate.get("value")
    if candidate.get("sensitive"):
        secret_id, version_id = candidate_secret_version(detail)
        text = secrets.get_value(secret_id, version_id=version_id)
        if text is None:
            raise SupersededValueError(f"{what} is gone from its secret")
        return json.loads(text)
    main = parameter_name(service, environment, key, tenant=tenant)
    names = [f"{main}/{CANDIDATE_SUFFIX}", main]
    if candidate.get("parameterName") and candidate["parameterName"] not in names:
        names.insert(0, candidate["parameterName"])
    return _value_with_hash(parameters, names, main, candidate.get("valueHash"), what)


def fetch_stable(
    rollout: RolloutView | Mapping[str, Any], parameters: ParameterStore, secrets: SecretStore
) -> Any:
    """The stable value of a rollout: ``None`` when the key had none; a secret's exact stable
    version; otherwise the main parameter as it is now (during a rollout that is the stable
    value; after completion it may already be the candidate — the view carries no stable hash
    to check against)."""
    detail = _detail_of(rollout)
    stable_version = detail.get("stableVersion")
    if stable_version is None:
        return None
    service, environment, key = detail["service"], detail["environment"], detail["key"]
    tenant = detail.get("tenant")
    if (detail.get("candidate") or {}).get("sensitive"):
        text = secrets.get_value(
            secret_name(service, environment, key, tenant=tenant),
            version_id=secret_version_token(scope_id(service, environment, key, tenant), int(stable_version)),
        )
    else:
        text = parameters.get(parameter_name(service, environment, key, tenant=tenant))
    return None if text is None else json.loads(text)


def _read_tenant_tree(
    parameters: ParameterStore, service: str, environment: str, tenant: str
) -> dict[str, str]:
    """A tenant's tree from its bundle (one GetParameter; configpipe/tenant_bundle.py), or read
    page by page when the bundle says it does not fit one parameter. No bundle: the tenant has
    no values of its own."""
    text = parameters.get(tenant_bundle_name(service, environment, tenant))
    if text is None:
        return {}
    tree = decode_bundle(text)
    if tree is None:
        return parameters.get_by_path(parameter_path(service, environment, tenant=tenant), recursive=True)
    return tree


class ConfigClient:
    def __init__(
        self,
        service: str,
        environment: str,
        ttl_seconds: float = 60.0,
        ssm_client: SSMClient | None = None,
        secrets_client: SecretsManagerClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_after_failure_seconds: float = 5.0,
        function_name: str | None = None,
        function_version: str | None = None,
        max_tenants: int = DEFAULT_MAX_TENANTS,
    ) -> None:
        self.service = service
        #: Which function version this code is: a rollout that rides on a code release gives its
        #: candidate to exactly the release's target version (Lambda sets both variables).
        self.function_name = function_name or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = function_version or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.environment = environment
        self.ttl = ttl_seconds
        self.parameters = ParameterStore(ssm_client)
        self.secrets = SecretStore(secrets_client)
        self._clock = clock
        self._retry_after_failure = retry_after_failure_seconds
        self._lock = threading.RLock()
        self._origins = [service] if service == GLOBAL_SERVICE else [service, GLOBAL_SERVICE]
        self._layers: dict[str, dict[str, _Entry]] = {origin: {} for origin in self._origins}
        self._views: dict[str, dict[str, _View]] = {origin: {} for origin in self._origins}
        self._loaded_at: float | None = None
        self._retry_at: float = float("-inf")
        self._versions: dict[tuple[str, str], int] = {}
        #: Highest (candidate version, sequence) seen per (origin, key), pushed or read.
        self._rollout_orders: dict[tuple[str, str], tuple[int, int]] = {}
        self._secret_cache: dict[str, tuple[Any, float]] = {}
        #: Sensitive candidates by (origin, key, candidate version): a version never changes.
        self._candidate_secrets: dict[tuple[str, str, int], Any] = {}
        #: Whether the last refresh failed and the values served are the last good ones.
        self._stale = False
        #: Called with (origin, key) after a pushed update or rollout event changed a key.
        self._listeners: list[Callable[[str, str], None]] = []
        #: Every key's value for this execution environment (``subject=None``), resolved once
        #: after each change of what the client holds: a cached ``get`` is then one dict
        #: lookup. Replaced (under the lock) by every writer; readers take it without the lock.
        self._resolved: dict[str, Any] | None = None
        #: Tenants' own values, least recently read first (bounded by ``max_tenants``).
        self._tenants: OrderedDict[str, _TenantValues] = OrderedDict()
        self.max_tenants = max_tenants

    # --- reads -----------------------------------------------------------------------------

    def get_for_tenant(self, tenant: str, key: str, default: Any = None, subject: str | None = None) -> Any:
        """The key's value for ``tenant``: the tenant's own value if it has one, else the
        service's, else the global one (tenant → service → global), else ``default``.

        A tenant's values are read on its first read (one GetParameter of the tenant's bundle,
        ``/config/{service}/{environment}.tenants/{tenant}``, found or not; page by page only
        when they do not fit one parameter: configpipe/tenant_bundle.py) and kept for
        ``ttl_seconds``;
        the ``max_tenants`` most recently read tenants are kept. While the tenant's own value
        rolls out (docs/rollouts.md), the same read brought its view and candidate: ``subject``
        reads the candidate or the tenant's stable value exactly as :meth:`get` decides for the
        service's value (no subject: this execution environment; a rollout riding on a code
        release: the release's target version); a tenant with no stable value of its own
        reads the service's. A sensitive key is read with :meth:`get_secret` (service values)."""
        # The hot path (a held tenant): no lock, no validation (a held tenant was valid), two
        # dict lookups; a cold or expired tenant is read by _tenant_values.
        held = self._tenants.get(tenant)
        if held is not None and self._clock() - held.loaded_at < self.ttl:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the read itself
                self._tenants.move_to_end(tenant)
            except KeyError:  # evicted by another thread just now
                pass
        else:
            held = self._tenant_held(tenant)
        if held.views:
            view = held.views.get(key)
            if (
                view is not None
                and view.candidate is not _MISSING
                and self._receives_tenant(tenant, key, view, subject)
            ):
                if view.candidate is _DELETED:
                    return self.get(key, default, subject=subject)
                return view.candidate
        value = held.values.get(key, _MISSING)
        if value is _MISSING:
            return self.get(key, default, subject=subject)
        return value

    def tenant_overrides(self, tenant: str) -> dict[str, Any]:
        """The tenant's own (stable) values (only the keys it overrides), read like
        :meth:`get_for_tenant`."""
        return dict(self._tenant_values(tenant))

    def tenant_rollout(self, tenant: str, key: str) -> dict[str, Any] | None:
        """The active rollout view of ``tenant``'s own value of ``key`` (camelCase, as
        ``RolloutView.to_detail()``), or ``None``."""
        view = self._tenant_held(tenant).views.get(key)
        return dict(view.detail) if view is not None and view.detail is not None else None

    def reads_tenant_candidate(self, tenant: str, key: str, subject: str | None = None) -> bool:
        """Whether ``subject`` currently reads the candidate of the rollout of ``tenant``'s own
        value of ``key`` (False when that value is not rolling out)."""
        view = self._tenant_held(tenant).views.get(key)
        return (
            view is not None
            and view.candidate is not _MISSING
            and self._receives_tenant(tenant, key, view, subject)
        )

    def _tenant_values(self, tenant: str) -> dict[str, Any]:
        return self._tenant_held(tenant).values

    def _tenant_held(self, tenant: str) -> _TenantValues:
        if not TENANT_PATTERN.fullmatch(tenant):
            raise ValueError("tenant must match ^[a-z0-9][a-z0-9-]{0,62}$")
        now = self._clock()
        held = self._tenants.get(tenant)
        if held is not None and now - held.loaded_at < self.ttl:
            return held
        with self._lock:
            tree = _read_tenant_tree(self.parameters, self.service, self.environment, tenant)
            values: dict[str, Any] = {}
            view_texts: dict[str, str] = {}
            candidates: dict[str, str] = {}
            for name, text in tree.items():
                key, _, suffix = name.partition("/")
                if not suffix:
                    values[key] = json.loads(text)
                elif suffix == ROLLOUT_SUFFIX:
                    view_texts[key] = text
                elif suffix == CANDIDATE_SUFFIX:
                    candidates[key] = text
            views = {
                key: view
                for key, text in view_texts.items()
                if (view := self._stored_tenant_view(tenant, key, text, candidates.get(key))) is not None
            }
            held = _TenantValues(values, now, views or _NO_VIEWS)
            self._tenants[tenant] = held
            self._tenants.move_to_end(tenant)
            while len(self._tenants) > self.max_tenants:
                self._tenants.popitem(last=False)
            return held

    def _stored_tenant_view(self, tenant: str, key: str, text: str, candidate: str | None) -> _View | None:
        """A tenant's rollout view as read from the store (an unreadable or ended one: None,
        so every subject reads the tenant's stable value, which is always safe)."""
        try:
            detail = json.loads(text)
            view = _View(detail, _order(detail), targets=frozenset(detail.get("targets") or ()))
        except (ValueError, KeyError, TypeError):
            log.warning(
                "unreadable rollout view ignored",
                extra={"configService": self.service, "key": key, "tenant": tenant},
            )
            return None
        if detail.get("status") != ROLLING_OUT or detail.get("tenant") != tenant:
            return None
        view.candidate = self._stored_candidate(self.service, key, detail, candidate)
        return view

    def _receives_tenant(self, tenant: str, key: str, view: _View, subject: str | None) -> bool:
        """:meth:`_receives` for a tenant's rollout. The bucket hashes the tenant's scope (its
        environment segment), so a tenant's candidate reshuffles subjects independently of the
        service's candidate of the same version number."""
        return self._receives(
            self.service, key, view, subject, environment=environment_segment(self.environment, tenant)
        )

    @property
    def tenants_held(self) -> int:
        """How many tenants' values this client holds now (at most ``max_tenants``)."""
        return len(self._tenants)

    def get(self, key: str, default: Any = None, subject: str | None = None) -> Any:
        """The key's value for ``subject`` (service key over global key), or ``default`` if it
        has none. During a rollout the subject reads the candidate or the stable value; without
        a subject this execution environment is the subject, so the answer is the same on every
        call in this process."""
        if subject is None:
            # The hot path (a cached read): no lock, no resolution, one dict lookup.
            resolved = self._resolved  # set only once loaded, so _loaded_at is a number
            if resolved is not None and self._clock() - self._loaded_at < self.ttl:  # type: ignore[operator]
                return resolved.get(key, default)
            self._ensure_fresh()
            return (self._resolved or self._resolve_all()).get(key, default)
        self._ensure_fresh()
        value = self._resolve(key, subject)
        return default if value is _MISSING else value

    def get_all(self, subject: str | None = None) -> dict[str, Any]:
        """Every key's value for ``subject`` (see :meth:`get`)."""
        self._ensure_fresh()
        keys: set[str] = set()
        for origin in self._origins:
            keys.update(self._layers[origin])
            keys.update(k for k, v in self._views[origin].items() if v.active)
        merged: dict[str, Any] = {}
        for key in sorted(keys):
            value = self._resolve(key, subject)
            if value is not _MISSING:
                merged[key] = value
        return merged

    def get_json(self, key: str, default: Any = None, subject: str | None = None) -> Any:
        return self.get(key, default, subject=subject)

    def get_bool(self, key: str, default: bool = False, subject: str | None = None) -> bool:
        value = self.get(key, _MISSING, subject=subject)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigTypeError(f"{key} is not a boolean")

    def get_int(self, key: str, default: int = 0, subject: str | None = None) -> int:
        value = self.get(key, _MISSING, subject)
        if type(value) is int:  # the common case first (bool is a subclass of int, not int itself)
            return value
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            raise ConfigTypeError(f"{key} is a boolean, not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigTypeError(f"{key} is not an integer")

    def get_float(self, key: str, default: float = 0.0, subject: str | None = None) -> float:
        value = self.get(key, _MISSING, subject=subject)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            raise ConfigTypeError(f"{key} is a boolean, not a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigTypeError(f"{key} is not a number")

    def get_str(self, key: str, default: str = "", subject: str | None = None) -> str:
        value = self.get(key, _MISSING, subject=subject)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise ConfigTypeError(f"{key} is a JSON {type(value).__name__}, not a string")

    def get_secret(self, key: str, default: Any = None, subject: str | None = None) -> Any:
        """A sensitive key's value from Secrets Manager (service secret over global one),
        cached for the TTL; the last good value is served while Secrets Manager is
        unreachable. During a rollout of the secret a subject that receives the candidate
        reads exactly the candidate's secret version (staged ``CONFIGPIPE_CANDIDATE``)."""
        self._views_best_effort()
        for origin in self._origins:
            view = self._views[origin].get(key)
            if view is None or not view.active or not view.sensitive:
                continue
            if self._receives(origin, key, view, subject):
                candidate = self._candidate_secret(origin, key, view)
                if candidate is not _MISSING:
                    return default if candidate is _DELETED else candidate
            break  # the service's rollout decides; a global one only when the service has none
        return self._stable_secret(key, default)

    def _stable_secret(self, key: str, default: Any) -> Any:
        now = self._clock()
        cached = self._secret_cache.get(key)
        if cached is not None and now - cached[1] < self.ttl:
            return default if cached[0] is _DELETED else cached[0]
        with self._lock:
            try:
                text = None
                for origin in self._origins:
                    text = self.secrets.get_value(secret_name(origin, self.environment, key))
                    if text is not None:
                        break
            except StoreUnavailableError as error:
                if cached is None:
                    raise ConfigUnavailableError(f"secret {key} cannot be read: {error.code}") from error
                log.warning(
                    "secret store unreachable; serving the last good value",
                    extra={
                        "configService": self.service,
                        "environment": self.environment,
                        "key": key,
                        "code": error.code,
                    },
                )
                self._secret_cache[key] = (cached[0], now - self.ttl + self._retry_after_failure)
                return default if cached[0] is _DELETED else cached[0]
            value = _DELETED if text is None else json.loads(text)
            self._secret_cache[key] = (value, now)
            return default if value is _DELETED else value

    def _candidate_secret(self, origin: str, key: str, view: _View) -> Any:
        """The sensitive candidate, read once per candidate version (a version's value never
        changes); ``_MISSING`` if it cannot be read, and then the stable secret is served."""
        assert view.detail is not None
        cache_key = (origin, key, view.order[0])
        if cache_key in self._candidate_secrets:
            return self._candidate_secrets[cache_key]
        if (view.detail.get("candidate") or {}).get("deleted"):
            return _DELETED
        secret_id, version_id = candidate_secret_version(view.detail)
        identity = {"configService": origin, "environment": self.environment, "key": key}
        try:
            text = self.secrets.get_value(secret_id, version_id=version_id)
        except StoreUnavailableError as error:
            log.warning(
                "candidate secret unreadable; serving the stable value",
                extra={**identity, "code": error.code},
            )
            return _MISSING
        if text is None:
            log.info("candidate secret version is gone; serving the stable value", extra=identity)
            return _MISSING
        value = json.loads(text)
        self._candidate_secrets[cache_key] = value
        return value

    def rollout(self, key: str) -> dict[str, Any] | None:
        """The key's active rollout view (camelCase, as ``RolloutView.to_detail()``), service key
        over global key, or ``None``."""
        self._ensure_fresh()
        for origin in self._origins:
            view = self._views[origin].get(key)
            if view is not None and view.detail is not None:
                return dict(view.detail)
        return None

    def reads_candidate(self, key: str, subject: str | None = None) -> bool:
        """Whether ``subject`` currently reads the candidate of the key's active rollout."""
        self._ensure_fresh()
        for origin in self._origins:
            view = self._views[origin].get(key)
            if view is not None and view.active:
                return self._receives(origin, key, view, subject)
            if key in self._layers[origin]:
                return False
        return False

    def version_of(self, key: str) -> int | None:
        """The highest version of ``key`` this client has been told about (by a push), if any;
        service key first."""
        for origin in self._origins:
            version = self._versions.get((origin, key))
            if version is not None:
                return version
        return None

    def _receives(
        self, origin: str, key: str, view: _View, subject: str | None, environment: str | None = None
    ) -> bool:
        assert view.detail is not None
        release = view.detail.get("release")
        if isinstance(release, dict):
            # Code and the config it was written for never mix: only the release's target
            # version reads the candidate, every other version (and every other reader) the stable.
            return (release.get("function"), release.get("targetVersion")) == (
                self.function_name,
                self.function_version,
            )
        return receives_candidate(
            service=origin,
            environment=self.environment if environment is None else environment,
            key=key,
            candidate_version=view.order[0],
            subject=execution_environment_subject() if subject is None else subject,
            weight_percent=float(view.detail.get("weight", 0)),
            targets=view.targets,
        )

    def _resolve(self, key: str, subject: str | None) -> Any:
        """Service layer over global layer; within a layer, an active rollout's candidate for
        the subjects that receive it, else the stable value. A deleted candidate (or a stable
        value that does not exist) lets the global key show through, as a delete would."""
        for origin in self._origins:
            view = self._views[origin].get(key)
            if (
                view is not None
                and view.active
                and view.candidate is not _MISSING
                and self._receives(origin, key, view, subject)
            ):
                if view.candidate is _DELETED:
                    continue
                return view.candidate
            entry = self._layers[origin].get(key)
            if entry is not None and entry.value is not _DELETED:
                return entry.value
        return _MISSING

    def _resolve_all(self) -> dict[str, Any]:
        """Resolve every key for this execution environment and keep the result until the
        next change (built under the lock, so no writer is half-way through)."""
        with self._lock:
            keys: set[str] = set()
            for origin in self._origins:
                keys.update(self._layers[origin])
                keys.update(k for k, v in self._views[origin].items() if v.active)
            resolved = {key: value for key in keys if (value := self._resolve(key, None)) is not _MISSING}
            if self._loaded_at is not None:  # kept only once loaded: the hot path relies on it
                self._resolved = resolved
            return resolved

    # --- freshness -------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """Whether the store could not be read at the last refresh and the values served are
        the last good ones (feature-flag integrations report it as staleness)."""
        return self._stale

    def on_change(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(origin, key)`` after a pushed update or rollout event is applied, so
        readers that derive state from a key (feature flags) hear of a push at once, not at
        their next read."""
        self._listeners.append(listener)

    def _changed(self, origin: str, key: str) -> None:
        for listener in list(self._listeners):
            listener(origin, key)

    def _ensure_fresh(self) -> None:
        now = self._clock()
        loaded_at = self._loaded_at
        if loaded_at is not None and now - loaded_at < self.ttl:
            return  # cache hit: no lock, no AWS call
        if now < self._retry_at:
            return  # the store failed a moment ago: keep serving the last good values
        with self._lock:
            if self._loaded_at is not None and self._clock() - self._loaded_at < self.ttl:
                return
            self.refresh()

    def _views_best_effort(self) -> None:
        """Secrets live in Secrets Manager but their rollout views in SSM: a secret reader
        refreshes the views when due, and without them serves the stable secret rather than
        failing (a rollout never makes a secret unreadable)."""
        try:
            self._ensure_fresh()
        except ConfigUnavailableError as error:
            log.warning(
                "rollout views unreadable; serving stable secrets",
                extra={"configService": self.service, "environment": self.environment, "error": str(error)},
            )

    def refresh(self) -> None:
        """Read every key, rollout view and candidate from the store now. On failure keep the
        last good values (or raise :class:`ConfigUnavailableError` if there are none)."""
        with self._lock:
            started = self._clock()
            try:
                # one paginated read per origin: rollout views and candidates come with it
                read = self.parameters.get_by_path
                fetched = {
                    origin: read(parameter_path(origin, self.environment), recursive=True)
                    for origin in self._origins
                }
            except StoreUnavailableError as error:
                self._retry_at = started + self._retry_after_failure
                self._stale = self._loaded_at is not None
                if self._loaded_at is None:
                    raise ConfigUnavailableError(
                        f"configuration of {self.service}/{self.environment} cannot be read: {error.code}"
                    ) from error
                log.warning(
                    "config store unreachable; serving the last good values",
                    extra={
                        "configService": self.service,
                        "environment": self.environment,
                        "code": error.code,
                    },
                )
                return
            for origin, tree in fetched.items():
                values: dict[str, str] = {}
                views: dict[str, str] = {}
                candidates: dict[str, str] = {}
                for name, text in tree.items():
                    key, _, suffix = name.partition("/")
                    if not suffix:
                        values[key] = text
                    elif suffix == ROLLOUT_SUFFIX:
                        views[key] = text
                    elif suffix == CANDIDATE_SUFFIX:
                        candidates[key] = text
                self._merge(self._layers[origin], values, started)
                self._merge_views(origin, views, candidates, started)
            self._resolved = None
            self._loaded_at = started
            self._retry_at = float("-inf")
            self._stale = False

    def _pinned(self, pushed_at: float | None, now: float) -> bool:
        return pushed_at is not None and now - pushed_at < self.ttl

    def _merge(self, layer: dict[str, _Entry], values: dict[str, str], now: float) -> None:
        for key in [k for k in layer if k not in values and not self._pinned(layer[k].pushed_at, now)]:
            del layer[key]
        for key, text in values.items():
            held = layer.get(key)
            if held is None or not self._pinned(held.pushed_at, now):
                layer[key] = _Entry(json.loads(text))

    def _merge_views(
        self, origin: str, views: dict[str, str], candidates: dict[str, str], now: float
    ) -> None:
        """Store views replace held ones unless a push pinned them; a pinned view gives way
        only to a strictly newer store view (a later step the push has not reached yet)."""
        layer = self._views[origin]
        stored: dict[str, _View] = {}
        for key, text in views.items():
            try:
                detail = json.loads(text)
                view = _View(detail, _order(detail), targets=frozenset(detail.get("targets") or ()))
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable rollout view ignored", extra={"configService": origin, "key": key})
                continue
            if detail.get("status") != ROLLING_OUT:
                continue  # a terminal view left behind is not a rollout
            held = layer.get(key)
            if held is not None and held.order == view.order and held.candidate is not _MISSING:
                view.candidate = held.candidate  # same step: keep the value already read
            else:
                view.candidate = self._stored_candidate(origin, key, detail, candidates.get(key))
            stored[key] = view
        for key in [k for k in layer if k not in stored and not self._pinned(layer[k].pushed_at, now)]:
            del layer[key]
        for key, view in stored.items():
            held = layer.get(key)
            if held is None or not self._pinned(held.pushed_at, now) or view.order > held.order:
                layer[key] = view
                seen = self._rollout_orders.get((origin, key))
                self._rollout_orders[(origin, key)] = view.order if seen is None else max(seen, view.order)

    def _stored_candidate(self, origin: str, key: str, detail: dict[str, Any], text: str | None) -> Any:
        candidate = detail.get("candidate") or {}
        if candidate.get("deleted"):
            return _DELETED
        if candidate.get("sensitive"):
            return _MISSING  # read on demand by get_secret, never into this cache
        if candidate.get("valueInline"):
            return candidate.get("value")
        if text is not None:
            value = json.loads(text)
            if value_hash(value) == candidate.get("valueHash"):
                return value
        # The view and its candidate are written separately; until both agree nobody gets
        # the candidate, which is the safe half of the race.
        log.info(
            "rollout candidate not readable yet; serving the stable value",
            extra={"configService": origin, "key": key, "candidateVersion": detail.get("candidateVersion")},
        )
        return _MISSING

    # --- pushed updates ----------------------------------------------------------------------

    def holds(self, update: ConfigurationUpdated) -> bool:
        """Whether this client already has ``update``'s version of its key, or a newer one."""
        return update.version <= self._versions.get((update.service, update.key), 0)

    def apply_update(self, update: ConfigurationUpdated, value: Any = _MISSING) -> bool:
        """See :meth:`_apply_update`; listeners hear of an applied update."""
        applied = self._apply_update(update, value)
        if applied:
            self._changed(update.service, update.key)
        return applied

    def _apply_update(self, update: ConfigurationUpdated, value: Any = _MISSING) -> bool:
        """Apply a pushed ``ConfigurationUpdated``. Returns ``False`` (and changes nothing) if
        the update is for another scope or not newer than the version held for its key.

        ``value`` is the update's value when the caller already fetched it; without it an
        inline value is used, or the value is fetched from its store (exactly that version).
        A version at least as new as a held rollout's candidate ends that rollout here (the
        completion or rollback it follows may have been lost)."""
        if update.environment != self.environment or update.service not in self._layers:
            return False
        if update.tenant is not None:
            return self._apply_tenant_update(update)
        with self._lock:
            if self.holds(update):
                log.info(
                    "stale update ignored",
                    extra={"changeId": update.change_id, "key": update.key, "version": update.version},
                )
                return False
            now = self._clock()
            if update.sensitive:
                if update.deleted:
                    self._secret_cache[update.key] = (_DELETED, now)
                elif value is not _MISSING:
                    self._secret_cache[update.key] = (value, now)
                else:
                    self._secret_cache.pop(update.key, None)  # read afresh on next get_secret
                self._layers[update.service].pop(update.key, None)
            elif update.deleted:
                self._layers[update.service][update.key] = _Entry(_DELETED, pushed_at=now)
            else:
                if value is _MISSING:
                    value = fetch_value(update, self.parameters, self.secrets)
                self._layers[update.service][update.key] = _Entry(value, pushed_at=now)
            self._versions[(update.service, update.key)] = update.version
            view = self._views[update.service].get(update.key)
            if view is not None and view.active and view.order[0] <= update.version:
                self._end_view(update.service, update.key, view.order, now)
            self._resolved = None
            return True

    def _apply_tenant_update(self, update: ConfigurationUpdated) -> bool:
        """A pushed update of one tenant's value: the tenant's values are dropped, so its next
        read takes them from the store, which the materialiser wrote before announcing (so it
        holds this version or a newer one; a late, older push cannot bring an old value back,
        which applying the push's own value could). Ordering per tenant's key is the update
        handler's (``config_update_handler``). Returns whether the tenant was held."""
        assert update.tenant is not None
        with self._lock:
            return self._tenants.pop(update.tenant, None) is not None

    def _apply_tenant_rollout(self, tenant: str) -> bool:
        """A pushed step of one tenant's rollout: like a tenant's update, the tenant's values
        (and views) are dropped and its next read takes the view, candidate and stable value
        from the store, which the materialiser wrote before announcing; ordering per tenant's
        key is the consumer's (``AppliedRollouts``). Returns whether the tenant was held."""
        with self._lock:
            return self._tenants.pop(tenant, None) is not None

    def apply_rollout(self, event: RolloutView | Mapping[str, Any], candidate_value: Any = _MISSING) -> bool:
        """See :meth:`_apply_rollout`; listeners hear of an applied rollout event."""
        applied = self._apply_rollout(event, candidate_value)
        if applied:
            detail = _detail_of(event)
            self._changed(str(detail["service"]), str(detail["key"]))
        return applied

    def _apply_rollout(self, event: RolloutView | Mapping[str, Any], candidate_value: Any = _MISSING) -> bool:
        """Apply a pushed ``ConfigurationRollout*`` event (the model or its camelCase detail).
        Returns ``False`` (and changes nothing) if it is for another scope or its (candidate
        version, sequence) is not newer than the one held for the key, so duplicated and
        reordered announcements have one effect.

        An active rollout replaces the key's view (pinned for one TTL); ``candidate_value`` is
        the candidate when the caller already fetched it, else it is inline or read from the
        ``<key>/candidate`` parameter (a sensitive one is read on demand by :meth:`get_secret`).
        An ended rollout removes the view; a completed one also makes a known candidate the
        key's value at once, so readers that had it do not flip back to the stable value while
        the following ``ConfigurationUpdated`` is on its way."""
        detail = _detail_of(event)
        origin, key = detail.get("service"), detail.get("key")
        if detail.get("environment") != self.environment or origin not in self._views or not key:
            return False
        if detail.get("tenant") is not None:
            return self._apply_tenant_rollout(str(detail["tenant"]))
        order = _order(detail)
        identity = {"configService": origin, "key": key, "candidateVersion": order[0], "sequence": order[1]}
        with self._lock:
            seen = self._rollout_orders.get((origin, key))
            if seen is not None and order <= seen:
                log.info(
                    "stale or duplicate rollout event ignored", extra={**identity, "heldOrder": list(seen)}
                )
                return False
            now = self._clock()
            held = self._views[origin].get(key)
            if detail.get("status") == ROLLING_OUT:
                candidate = candidate_value
                if candidate is _MISSING:
                    candidate = self._pushed_candidate(origin, key, detail, held)
                elif (detail.get("candidate") or {}).get("deleted"):
                    candidate = _DELETED
                view = _View(
                    detail, order, candidate, pushed_at=now, targets=frozenset(detail.get("targets") or ())
                )
                if view.sensitive:
                    if candidate_value is not _MISSING:
                        self._candidate_secrets[(origin, key, order[0])] = candidate_value
                    view.candidate = _MISSING
                self._views[origin][key] = view
            else:
                if detail.get("status") == COMPLETED:
                    self._promote(origin, key, detail, candidate_value, held, now)
                self._end_view(origin, key, order, now)
            self._rollout_orders[(origin, key)] = order
            self._resolved = None
            log.info("rollout event applied", extra={**identity, "status": detail.get("status")})
            return True

    def _pushed_candidate(self, origin: str, key: str, detail: dict[str, Any], held: _View | None) -> Any:
        candidate = detail.get("candidate") or {}
        if candidate.get("deleted"):
            return _DELETED
        if candidate.get("sensitive"):
            return _MISSING
        if candidate.get("valueInline"):
            return candidate.get("value")
        if (
            held is not None
            and held.order[0] == int(detail["candidateVersion"])
            and held.candidate is not _MISSING
        ):
            return held.candidate  # a later step of the same candidate: the value has not changed
        try:
            return fetch_candidate(detail, self.parameters, self.secrets)
        except (SupersededValueError, StoreUnavailableError) as error:
            log.warning(
                "rollout candidate unreadable; serving the stable value",
                extra={"configService": origin, "key": key, "error": type(error).__name__},
            )
            return _MISSING

    def _promote(
        self,
        origin: str,
        key: str,
        detail: dict[str, Any],
        candidate_value: Any,
        held: _View | None,
        now: float,
    ) -> None:
        version = int(detail["candidateVersion"])
        if version <= self._versions.get((origin, key), 0):
            return
        candidate = detail.get("candidate") or {}
        if candidate.get("sensitive"):
            value = self._candidate_secrets.get((origin, key, version), candidate_value)
            if candidate.get("deleted"):
                value = _DELETED
            if value is _MISSING:
                self._secret_cache.pop(key, None)  # read the new current version on next get
                return
            self._secret_cache[key] = (value, now)
        else:
            value = candidate_value
            if value is _MISSING and candidate.get("valueInline"):
                value = candidate.get("value")
            if value is _MISSING and held is not None and held.order[0] == version:
                value = held.candidate
            if candidate.get("deleted"):
                value = _DELETED
            if value is _MISSING:
                return  # the following ConfigurationUpdated brings it
            self._layers[origin][key] = _Entry(value, pushed_at=now)
        self._versions[(origin, key)] = version

    def _end_view(self, origin: str, key: str, order: tuple[int, int], now: float) -> None:
        """Leave a pinned tombstone: a refresh racing with the materialiser's delete of the view
        must not bring the ended rollout back for one TTL."""
        self._views[origin][key] = _View(None, order, pushed_at=now)
        for cached in [c for c in self._candidate_secrets if c[:2] == (origin, key)]:
            del self._candidate_secrets[cached]
