"""Where each piece of a key lives: SSM parameter names, Secrets Manager names, table keys.

A tenant's value of a key (``tenant`` set) lives under ``{environment}.tenants/{tenant}``
where the service's value lives under ``{environment}``: an environment name cannot hold a
``.`` (``ENVIRONMENT_PATTERN``) and a key cannot hold a ``/``, so no key, environment or
rollout view can produce a tenant's name, and a recursive read of the service's own path
(``/config/{service}/{environment}/``, what ``ConfigClient`` refreshes) never pays for the
tenants' values (docs/architecture.md, "Tenants").
"""

from __future__ import annotations

import re

#: Tenants become SSM / Secrets Manager path segments and KMS encryption context: lower-case,
#: digits and hyphens, so a tenant id cannot add a segment, a wildcard or a ``.``.
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PARAMETER_ROOT = "/config"
SECRET_ROOT = "configpipe"  # noqa: S105 - a name prefix, not a secret
TENANTS_SUFFIX = ".tenants"


def environment_segment(environment: str, tenant: str | None = None) -> str:
    """``environment`` for the service's values; ``{environment}.tenants/{tenant}`` for a tenant's."""
    return environment if tenant is None else f"{environment}{TENANTS_SUFFIX}/{tenant}"


def parameter_name(
    service: str, environment: str, key: str, root: str = PARAMETER_ROOT, tenant: str | None = None
) -> str:
    return f"{root}/{service}/{environment_segment(environment, tenant)}/{key}"


def rollout_parameter_name(
    service: str, environment: str, key: str, root: str = PARAMETER_ROOT, tenant: str | None = None
) -> str:
    """The view of the key's active rollout (JSON), one level below the key's own parameter:
    keys never contain ``/``, so no key can collide with it. A tenant's value rolls out on its
    own, so its view is below the tenant's parameter."""
    return f"{parameter_name(service, environment, key, root, tenant)}/rollout"


def candidate_parameter_name(
    service: str, environment: str, key: str, root: str = PARAMETER_ROOT, tenant: str | None = None
) -> str:
    """The candidate value (canonical JSON) of the key's active rollout, when not sensitive."""
    return f"{parameter_name(service, environment, key, root, tenant)}/candidate"


def parameter_path(
    service: str, environment: str, root: str = PARAMETER_ROOT, tenant: str | None = None
) -> str:
    return f"{root}/{service}/{environment_segment(environment, tenant)}/"


def tenants_parameter_path(service: str, environment: str, root: str = PARAMETER_ROOT) -> str:
    """The path under which every tenant of the service keeps its values in ``environment``."""
    return f"{root}/{service}/{environment}{TENANTS_SUFFIX}/"


def secret_name(
    service: str, environment: str, key: str, root: str = SECRET_ROOT, tenant: str | None = None
) -> str:
    return f"{root}/{service}/{environment_segment(environment, tenant)}/{key}"


def scope_id(service: str, environment: str, key: str, tenant: str | None = None) -> str:
    """The identity of one key (or one tenant's value of it), used as the KMS encryption
    context (so a tenant's ciphertext is bound to its tenant) and in logs."""
    return f"{service}/{environment_segment(environment, tenant)}/{key}"
