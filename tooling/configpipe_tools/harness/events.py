"""Builders for events shaped exactly as EventBridge delivers them to a Lambda target."""

from __future__ import annotations

import uuid
from typing import Any


def eventbridge_event(
    detail: Any,
    detail_type: str = "ConfigurationChange",
    source: str = "configpipe.team.checkout",
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-25T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def change(
    key: str = "max_items",
    value: Any = 10,
    *,
    service: str = "checkout",
    environment: str = "production",
    operation: str = "put",
    change_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid ConfigurationChange detail; ``extra`` adds or overrides fields."""
    detail: dict[str, Any] = {
        "changeId": change_id or str(uuid.uuid4()),
        "service": service,
        "environment": environment,
        "key": key,
        "operation": operation,
        "author": "alice@example.com",
        "reason": "tune checkout",
    }
    if operation == "put":
        detail["value"] = value
    detail.update(extra)
    return detail


def sealed(detail: dict[str, Any], secrets_key_id: str, kms: Any) -> dict[str, Any]:
    """``detail`` with its ``value`` replaced by ``encryptedValue``, as a publisher (and
    ``configpipe put``) sends a sensitive key's value: KMS ciphertext of the canonical JSON under
    the pipeline's secrets key, bound to the key's scope."""
    from configpipe.crypto import SecretsKey, encode_ciphertext
    from configpipe.naming import scope_id

    sealed_detail = {k: v for k, v in detail.items() if k != "value"}
    scope = scope_id(detail["service"], detail["environment"], detail["key"], tenant=detail.get("tenant"))
    ciphertext = SecretsKey(secrets_key_id, client=kms).encrypt(scope, detail["value"])
    sealed_detail["encryptedValue"] = encode_ciphertext(ciphertext)
    return sealed_detail
