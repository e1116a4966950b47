"""Writes from the CLI: build a ``ConfigurationChange``, check it locally, publish it on the
config bus like any other publisher, and optionally wait for the pipeline's verdict.

Division of labour, which the exit codes mirror:

* Stateless rules (the contract, and the registry rules when ``/configpipe/registry`` is
  readable) are checked here with the validator's own functions (``configpipe.validation``);
  a failure is exit 2 and nothing is sent.
* Rules that depend on the key's state (``expectedVersion``, a key to delete, a version to
  roll back to) are the pipeline's to decide: its rejection is exit 3. ``--dry-run``
  predicts them from the change log, without publishing.

A sensitive value is encrypted here with KMS (encryption context = the key's scope) and
travels as ``encryptedValue``; the clear value never reaches the bus or the terminal.
"""

from __future__ import annotations

import difflib
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from configpipe.changelog import ChangeLog, ChangeRecord, VersionRecord
from configpipe.contracts import (
    TEAM_SOURCE_PREFIX,
    ConfigurationChange,
    DetailType,
    Operation,
    Reason,
    ReasonCode,
)
from configpipe.crypto import encode_ciphertext
from configpipe.naming import scope_id
from configpipe.registry import Registry
from configpipe.validation import check_rules, check_value, parse_change
from configpipe.values import is_sensitive
from configpipe_tools.cli.common import poll_until
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import pretty_json, value_of

_NO_VALUE = object()
#: Stands in for the ciphertext and the author while the structure is checked, so a bad
#: key is reported before any AWS call (KMS, STS) is made.
_PLACEHOLDER = "pending"


@dataclass(frozen=True)
class WriteRequest:
    service: str
    environment: str
    key: str
    operation: Operation
    reason: str
    value: Any = _NO_VALUE
    to_version: int | None = None
    expected_version: int | None = None
    sensitive_flag: bool = False
    change_id: str | None = None
    #: The change's ``rollout`` (camelCase detail), checked by ``cli.rollout.rollout_request``.
    rollout: dict[str, Any] | None = None
    #: ``configpipe snapshot restore``: the id every change of one restore carries (and
    #: ``configpipe promote``'s promotion id).
    restore_id: str | None = None
    #: A secret's value already in KMS ciphertext form, bound to *this* key's scope
    #: (``configpipe promote`` re-encrypts the source key's inside KMS): sent as it is, never
    #: decrypted here, and its value rules are the validator's to check after decrypting.
    sealed: bytes | None = None
    #: ``--tenant``: the tenant whose own value of the key this changes.
    tenant: str | None = None

    @property
    def label(self) -> str:
        return tenant_label(self.service, self.environment, self.key, self.tenant)

    @property
    def sensitive(self) -> bool:
        return self.operation is Operation.PUT and is_sensitive(self.key, self.sensitive_flag)

    def detail(self, change_id: str, author: str, encrypted_value: str | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "changeId": change_id,
            "service": self.service,
            "environment": self.environment,
            "key": self.key,
            "operation": self.operation.value,
            "author": author,
            "reason": self.reason,
        }
        if self.operation is Operation.PUT:
            if self.sensitive:
                detail["encryptedValue"] = encrypted_value or _PLACEHOLDER
                detail["sensitive"] = True
            else:
                detail["value"] = self.value
        if self.to_version is not None:
            detail["toVersion"] = self.to_version
        if self.expected_version is not None:
            detail["expectedVersion"] = self.expected_version
        if self.rollout is not None:
            detail["rollout"] = self.rollout
        if self.restore_id is not None:
            detail["restoreId"] = self.restore_id
        if self.tenant is not None:
            detail["tenant"] = self.tenant
        return detail


@dataclass
class WriteResult:
    change_id: str
    status: str  # published | accepted | rejected | would-accept | would-reject
    change: dict[str, Any]
    version: int | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    dry_run: dict[str, Any] | None = None
    #: The rollout an accepted change started (``cli.rollout.rollout_view``).
    rollout: dict[str, Any] | None = None
    #: The services whose update handlers receive this key (issue 14); None: registry unreadable.
    receivers: list[str] | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.status in {"rejected", "would-reject"} else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"changeId": self.change_id, "status": self.status, **self.change}
        if self.version is not None:
            body["version"] = self.version
        if self.reasons:
            body["reasons"] = self.reasons
        if self.dry_run is not None:
            body["dryRun"] = self.dry_run
        if self.rollout is not None:
            body["rollout"] = self.rollout
        if self.receivers is not None:
            body["receivers"] = self.receivers
        return body


@dataclass(frozen=True)
class PreparedWrite:
    """A write that passed the local checks and may be sent (:func:`prepare`, :func:`send`)."""

    request: WriteRequest
    change_id: str
    source: str
    summary: dict[str, Any]
    registry_checked: bool
    #: ``Registry.affected_services`` of the key (the propagator's rule); None without a registry.
    receivers: list[str] | None = None


def submit(
    ctx: CliContext, request: WriteRequest, *, dry_run: bool, wait: bool, timeout: float
) -> WriteResult:
    prepared = prepare(ctx, request)
    result = _submit(ctx, prepared, request, dry_run=dry_run, wait=wait, timeout=timeout)
    result.receivers = prepared.receivers
    return result


def _submit(
    ctx: CliContext,
    prepared: PreparedWrite,
    request: WriteRequest,
    *,
    dry_run: bool,
    wait: bool,
    timeout: float,
) -> WriteResult:
    if dry_run:
        return _dry_run(
            ctx.change_log(),
            request,
            prepared.change_id,
            prepared.summary,
            registry_checked=prepared.registry_checked,
        )
    return send(ctx, prepared, wait=wait, timeout=timeout)


def prepare(ctx: CliContext, request: WriteRequest) -> PreparedWrite:
    """The local checks (exit 2, nothing sent): the contract, then the registry and value rules
    with the validator's own functions. No AWS call but reading the registry."""
    source = require_source(ctx)
    change_id = request.change_id or str(uuid.uuid4())
    if not request.reason.strip():
        raise invalid("--reason must say why (it is kept in the change log forever)", code="MISSING_REASON")

    # 1. Structure, with placeholders: no AWS call yet.
    change = _parse(request.detail(change_id, author=ctx.author_override or _PLACEHOLDER))

    # 2. Registry rules and value rules, with the validator's own functions.
    registry = ctx.registry()
    if (
        registry is not None
        and request.operation is Operation.PUT
        and not request.sensitive
        and registry.is_sensitive(request.key, False)
    ):
        # Named like a secret by the platform's own list (registry sensitiveKeyNames): encrypt
        # it, as for --sensitive; the validator would refuse it in clear.
        request = replace(request, sensitive_flag=True)
    reasons: list[Reason] = []
    schema = None
    if registry is not None:
        reasons.extend(check_rules(change, source, registry))
        schema = _schema(registry, request)
    if request.operation is Operation.PUT and request.sealed is None:
        flags = registry is not None and registry.is_feature_flags(request.service, request.key)
        reasons.extend(check_value(request.value, schema, feature_flags=flags))
    if reasons:
        raise CliError(
            "the change is invalid; nothing was sent",
            ExitCode.INVALID,
            "INVALID_CHANGE",
            hint=_hint_for(reasons),
            details={"reasons": [r.to_detail() for r in reasons], "changeId": change_id},
        )
    receivers = (
        registry.affected_services(request.service, request.environment, request.key)
        if registry is not None
        else None
    )
    return PreparedWrite(request, change_id, source, _identity(request), registry is not None, receivers)


def publish(ctx: CliContext, prepared: PreparedWrite) -> None:
    """Encrypt a secret client-side, fill in the real author, publish."""
    request, change_id = prepared.request, prepared.change_id
    encrypted = None
    if request.sensitive and request.sealed is not None:
        encrypted = encode_ciphertext(request.sealed)
    elif request.sensitive:
        scope = scope_id(request.service, request.environment, request.key, tenant=request.tenant)
        encrypted = encode_ciphertext(ctx.secrets().encrypt(scope, request.value))
    change = _parse(request.detail(change_id, author=ctx.author(), encrypted_value=encrypted))
    bus = ctx.bus(prepared.source)
    bus.publish([bus.entry(DetailType.CONFIGURATION_CHANGE, change)])


def verdict(ctx: CliContext, prepared: PreparedWrite, timeout: float) -> WriteResult:
    """Wait for the pipeline's verdict on a published change (exit 4 without one)."""
    request, change_id = prepared.request, prepared.change_id
    record = wait_for_outcome(ctx.change_log(), change_id, prepared.source, timeout)
    if record is None:
        raise CliError(
            f"published change {change_id}, but the pipeline gave no verdict within {timeout:g}s",
            ExitCode.TIMEOUT,
            "TIMEOUT",
            hint=f"It may still be processed: `configpipe history {request.service} {request.environment} "
            f"{request.key}` shows it once accepted. Re-running with --change-id {change_id} is safe "
            "(duplicates are ignored). If it never lands, check the validator's DLQ and your --source.",
            details={"changeId": change_id},
        )
    return WriteResult(
        change_id=change_id,
        status=record.status,
        change=prepared.summary,
        version=record.version,
        reasons=[dict(r) for r in record.reasons],
    )


def send(ctx: CliContext, prepared: PreparedWrite, *, wait: bool, timeout: float) -> WriteResult:
    publish(ctx, prepared)
    if not wait:
        return WriteResult(change_id=prepared.change_id, status="published", change=prepared.summary)
    return verdict(ctx, prepared, timeout)


def send_all(
    ctx: CliContext,
    prepared: list[PreparedWrite],
    changes: list[dict[str, Any]],
    *,
    wait: bool,
    timeout: float,
) -> ExitCode:
    """Publish every prepared write (all of them passed :func:`prepare` first: a batch is sent
    whole or not at all), then record each one's verdict in its ``changes`` entry: ``status``,
    ``version``, ``reasons``. Exit 3 if any was rejected, 4 if any had no verdict in time.
    Shared by ``snapshot restore`` / ``import`` and ``promote``."""
    for write in prepared:
        publish(ctx, write)
    if not wait:
        for change in changes:
            change["status"] = "published"
        return ExitCode.OK
    deadline = time.monotonic() + timeout
    code = ExitCode.OK
    for write, change in zip(prepared, changes, strict=True):
        record = wait_for_outcome(
            ctx.change_log(), write.change_id, write.source, max(deadline - time.monotonic(), 0.0)
        )
        if record is None:
            change["status"] = "timeout"
            code = max(code, ExitCode.TIMEOUT)
            continue
        change["status"] = record.status
        if record.version is not None:
            change["version"] = record.version
        if record.reasons:
            change["reasons"] = [dict(r) for r in record.reasons]
            code = max(code, ExitCode.REJECTED)
    return ExitCode(code)


def wait_for_outcome(
    change_log: ChangeLog, change_id: str, source: str, timeout: float
) -> ChangeRecord | None:
    """Poll the source's change record until it exists or the deadline passes (backing off to 2 s)."""
    return poll_until(time.monotonic() + max(timeout, 0.0), lambda: change_log.change(change_id, source))


# --- helpers --------------------------------------------------------------------------------


def require_source(ctx: CliContext) -> str:
    """The team source a publish goes out with (configuration writes and release commands alike)."""
    source = (ctx.source or "").strip()
    if not source:
        raise invalid(
            "no event source: writes are published as your team",
            code="MISSING_SOURCE",
            hint="Pass --source configpipe.team.<team> or set CONFIGPIPE_SOURCE.",
        )
    if not source.startswith(TEAM_SOURCE_PREFIX) or source == TEAM_SOURCE_PREFIX:
        raise invalid(
            f"--source must look like {TEAM_SOURCE_PREFIX}<team>",
            code="INVALID_SOURCE",
            hint="Only team sources reach the validator; others would be silently dropped by the bus rule.",
        )
    return source


def _parse(detail: dict[str, Any]) -> ConfigurationChange:
    change, reasons = parse_change(detail)
    if change is None:
        raise CliError(
            "the change is invalid; nothing was sent",
            ExitCode.INVALID,
            "INVALID_CHANGE",
            hint=_hint_for(reasons),
            details={"reasons": [r.to_detail() for r in reasons]},
        )
    return change


def _schema(registry: Registry, request: WriteRequest) -> dict[str, Any] | None:
    return registry.schema_for(request.service, request.key) if registry.is_known(request.service) else None


_HINTS = {
    ReasonCode.INVALID_KEY: "Keys may use letters, digits, '-', '_' and '.'.",
    ReasonCode.INVALID_SERVICE: "Service names are lower-case, start with a letter, or are 'global'.",
    ReasonCode.INVALID_ENVIRONMENT: "Environments are lower-case names: development, staging, production.",
    ReasonCode.ENVIRONMENT_NOT_ALLOWED: "Use one of the environments the registry allows for this service.",
    ReasonCode.UNKNOWN_SERVICE: "Ask the platform team to register it (cdk.json configpipe.registry).",
    ReasonCode.SOURCE_NOT_AUTHORIZED: "Publish as the service owner team (--source or CONFIGPIPE_SOURCE).",
    ReasonCode.SCHEMA_VIOLATION: "The registry holds a JSON Schema for this key; send a matching value.",
    ReasonCode.VALUE_TOO_LARGE: "Keep values small (≤ 4096 bytes); store large documents elsewhere and "
    "configure a pointer to them.",
}


def _hint_for(reasons: list[Reason]) -> str | None:
    return next((_HINTS[r.code] for r in reasons if r.code in _HINTS), None)


def tenant_label(service: str, environment: str, key: str, tenant: str | None = None) -> str:
    """How the CLI names a key, or one tenant's value of it."""
    return f"{service}/{environment}/{key}" + ("" if tenant is None else f" (tenant {tenant})")


def _identity(request: WriteRequest) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "service": request.service,
        "environment": request.environment,
        "key": request.key,
        "operation": request.operation.value,
    }
    if request.tenant is not None:
        summary["tenant"] = request.tenant
    if request.sensitive:
        summary["sensitive"] = True
    if request.rollout is not None:
        summary["rolloutRequest"] = request.rollout
    return summary


def _dry_run(
    change_log: ChangeLog,
    request: WriteRequest,
    change_id: str,
    summary: dict[str, Any],
    registry_checked: bool,
) -> WriteResult:
    """Predict the pipeline's state-dependent verdict and show the diff; publish nothing."""
    current = change_log.current_record(request.service, request.environment, request.key, request.tenant)
    current_version = current.version if current else 0
    reasons: list[Reason] = []
    pointer = change_log.current(request.service, request.environment, request.key, request.tenant)
    if pointer is not None and pointer.rollout_id is not None:
        reasons.append(
            Reason(
                code=ReasonCode.ROLLOUT_IN_PROGRESS,
                message=f"the key is rolling out version {pointer.version} (rollout {pointer.rollout_id})",
                field="key",
            )
        )
    if request.expected_version is not None and request.expected_version != current_version:
        reasons.append(
            Reason(
                code=ReasonCode.VERSION_CONFLICT,
                message=f"expectedVersion {request.expected_version} but the key is at version "
                f"{current_version}",
                field="expectedVersion",
            )
        )
    target: VersionRecord | None = None
    if request.operation is Operation.DELETE and (current is None or current.deleted):
        reasons.append(Reason(code=ReasonCode.KEY_NOT_FOUND, message="key has no value to delete"))
    if request.operation is Operation.ROLLBACK and request.to_version is not None:
        if request.to_version <= current_version:
            target = change_log.version(
                request.service, request.environment, request.key, request.to_version, request.tenant
            )
        if target is None:
            reasons.append(
                Reason(
                    code=ReasonCode.UNKNOWN_VERSION,
                    message=f"version {request.to_version} does not exist for this key",
                    field="toVersion",
                )
            )

    before_secret = current is not None and current.sensitive and not current.deleted
    if request.operation is Operation.PUT:
        after_secret, after_text = request.sensitive, pretty_json(request.value) + "\n"
    elif request.operation is Operation.ROLLBACK and target is not None:
        after_secret = target.sensitive and not target.deleted
        after_text = "" if target.deleted or after_secret else pretty_json(value_of(target)) + "\n"
    else:
        after_secret, after_text = False, ""
    before_text = (
        "" if current is None or current.deleted or before_secret else pretty_json(value_of(current)) + "\n"
    )

    label = request.label
    if before_secret or after_secret:
        diff = None  # a secret is never shown, not even as a diff
    else:
        diff = "".join(
            difflib.unified_diff(
                before_text.splitlines(keepends=True),
                after_text.splitlines(keepends=True),
                fromfile=f"{label} (current, v{current_version})" if current else f"{label} (absent)",
                tofile=f"{label} (after {request.operation.value})",
            )
        )
    return WriteResult(
        change_id=change_id,
        status="would-reject" if reasons else "would-accept",
        change=summary,
        reasons=[r.to_detail() for r in reasons],
        dry_run={
            "currentVersion": current_version,
            "nextVersion": None if reasons else current_version + 1,
            "registryChecked": registry_checked,
            "diff": diff,
            "secret": before_secret or after_secret,
        },
    )
