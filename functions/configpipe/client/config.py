"""``ConfigClient``: a service's view of its current configuration, cached in memory.

Reads every key of one service+environment (``/config/{service}/{environment}/``) plus
the environment's global keys (``/config/global/{environment}/``; a service key of the
same name wins) with one paginated GetParametersByPath each, keeps them for
``ttl_seconds``, and serves reads from memory: **a cache hit makes no AWS call**.
Secrets are read from Secrets Manager on demand and cached the same way.

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from configpipe.errors import ConfigpipeError
from configpipe.naming import parameter_name, parameter_path, scope_id, secret_name
from configpipe.stores import ParameterStore, SecretStore, StoreUnavailableError, secret_version_token
from configpipe.values import value_hash

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

    from configpipe.contracts import ConfigurationUpdated

log = logging.getLogger("configpipe.client")

#: Same as ``configpipe.contracts.GLOBAL_SERVICE`` (a test keeps them equal); not imported
#: from there because contracts pulls in pydantic, which service cold starts should not pay for.
GLOBAL_SERVICE = "global"

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


def fetch_value(update: ConfigurationUpdated, parameters: ParameterStore, secrets: SecretStore) -> Any:
    """The value of exactly ``update.version``, read from where the update says it lives.

    Secrets: the Secrets Manager version whose id is derived from the config version.
    Parameters: the current value if its hash is the announced one, else the matching
    value from the parameter's history (the store may already hold a newer version, or,
    for a moment during a concurrent redrive, an older one). Raises
    :class:`SupersededValueError` if that value is gone."""
    scope = scope_id(update.service, update.environment, update.key)
    if update.deleted:
        return None
    if update.value_inline:
        return update.value
    if update.sensitive:
        secret_id = update.secret_arn or secret_name(update.service, update.environment, update.key)
        text = secrets.get_value(secret_id, version_id=secret_version_token(scope, update.version))
        if text is None:
            raise SupersededValueError(f"version {update.version} of secret {scope} is gone")
        return json.loads(text)
    name = update.parameter_name or parameter_name(update.service, update.environment, update.key)
    text = parameters.get(name)
    if text is not None and value_hash(json.loads(text)) == update.value_hash:
        return json.loads(text)
    for older in reversed(parameters.history(name)):
        candidate = json.loads(older)
        if value_hash(candidate) == update.value_hash:
            return candidate
    raise SupersededValueError(f"version {update.version} of {scope} is no longer in the parameter's history")


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
    ) -> None:
        self.service = service
        self.environment = environment
        self.ttl = ttl_seconds
        self.parameters = ParameterStore(ssm_client)
        self.secrets = SecretStore(secrets_client)
        self._clock = clock
        self._retry_after_failure = retry_after_failure_seconds
        self._lock = threading.RLock()
        self._origins = [service] if service == GLOBAL_SERVICE else [service, GLOBAL_SERVICE]
        self._layers: dict[str, dict[str, _Entry]] = {origin: {} for origin in self._origins}
        self._loaded_at: float | None = None
        self._retry_at: float = float("-inf")
        self._versions: dict[tuple[str, str], int] = {}
        self._secret_cache: dict[str, tuple[Any, float]] = {}

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value (service key over global key), or ``default`` if it has none."""
        self._ensure_fresh()
        for origin in self._origins:
            entry = self._layers[origin].get(key)
            if entry is not None and entry.value is not _DELETED:
                return entry.value
        return default

    def get_all(self) -> dict[str, Any]:
        self._ensure_fresh()
        merged: dict[str, Any] = {}
        for origin in reversed(self._origins):  # global first, service keys override
            merged.update({k: e.value for k, e in self._layers[origin].items() if e.value is not _DELETED})
        return merged

    def get_json(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key, _MISSING)
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

    def get_int(self, key: str, default: int = 0) -> int:
        value = self.get(key, _MISSING)
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

    def get_float(self, key: str, default: float = 0.0) -> float:
        value = self.get(key, _MISSING)
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

    def get_str(self, key: str, default: str = "") -> str:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise ConfigTypeError(f"{key} is a JSON {type(value).__name__}, not a string")

    def get_secret(self, key: str, default: Any = None) -> Any:
        """A sensitive key's value from Secrets Manager (service secret over global one),
        cached for the TTL; the last good value is served while Secrets Manager is
        unreachable."""
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

    def version_of(self, key: str) -> int | None:
        """The highest version of ``key`` this client has been told about (by a push), if any;
        service key first."""
        for origin in self._origins:
            version = self._versions.get((origin, key))
            if version is not None:
                return version
        return None

    # --- freshness -------------------------------------------------------------------------

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

    def refresh(self) -> None:
        """Read every key from the store now. On failure keep the last good values (or raise
        :class:`ConfigUnavailableError` if there are none)."""
        with self._lock:
            started = self._clock()
            try:
                fetched = {
                    origin: self.parameters.get_by_path(parameter_path(origin, self.environment))
                    for origin in self._origins
                }
            except StoreUnavailableError as error:
                self._retry_at = started + self._retry_after_failure
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
            for origin, values in fetched.items():
                self._merge(self._layers[origin], values, started)
            self._loaded_at = started
            self._retry_at = float("-inf")

    def _merge(self, layer: dict[str, _Entry], values: dict[str, str], now: float) -> None:
        def pinned(entry: _Entry | None) -> bool:
            return entry is not None and entry.pushed_at is not None and now - entry.pushed_at < self.ttl

        for key in [k for k in layer if k not in values and not pinned(layer[k])]:
            del layer[key]
        for key, text in values.items():
            if not pinned(layer.get(key)):
                layer[key] = _Entry(json.loads(text))

    # --- pushed updates ----------------------------------------------------------------------

    def holds(self, update: ConfigurationUpdated) -> bool:
        """Whether this client already has ``update``'s version of its key, or a newer one."""
        return update.version <= self._versions.get((update.service, update.key), 0)

    def apply_update(self, update: ConfigurationUpdated, value: Any = _MISSING) -> bool:
        """Apply a pushed ``ConfigurationUpdated``. Returns ``False`` (and changes nothing) if
        the update is for another scope or not newer than the version held for its key.

        ``value`` is the update's value when the caller already fetched it; without it an
        inline value is used, or the value is fetched from its store (exactly that version)."""
        if update.environment != self.environment or update.service not in self._layers:
            return False
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
            return True
