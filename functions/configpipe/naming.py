"""Where each piece of a key lives: SSM parameter names, Secrets Manager names, table keys."""

from __future__ import annotations

PARAMETER_ROOT = "/config"
SECRET_ROOT = "configpipe"  # noqa: S105 - a name prefix, not a secret


def parameter_name(service: str, environment: str, key: str, root: str = PARAMETER_ROOT) -> str:
    return f"{root}/{service}/{environment}/{key}"


def rollout_parameter_name(service: str, environment: str, key: str, root: str = PARAMETER_ROOT) -> str:
    """The view of the key's active rollout (JSON), one level below the key's own parameter:
    keys never contain ``/``, so no key can collide with it."""
    return f"{parameter_name(service, environment, key, root)}/rollout"


def candidate_parameter_name(service: str, environment: str, key: str, root: str = PARAMETER_ROOT) -> str:
    """The candidate value (canonical JSON) of the key's active rollout, when not sensitive."""
    return f"{parameter_name(service, environment, key, root)}/candidate"


def parameter_path(service: str, environment: str, root: str = PARAMETER_ROOT) -> str:
    return f"{root}/{service}/{environment}/"


def secret_name(service: str, environment: str, key: str, root: str = SECRET_ROOT) -> str:
    return f"{root}/{service}/{environment}/{key}"


def scope_id(service: str, environment: str, key: str) -> str:
    """The identity of one key, used as encryption context and in logs."""
    return f"{service}/{environment}/{key}"
