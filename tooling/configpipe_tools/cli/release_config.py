"""``configpipe release start … --config SERVICE/ENV/KEY=VALUE``: configuration that goes out
with the release, as one release (docs/rollouts.md, "with a code release").

Each ``--config`` becomes a ``ConfigurationChange`` (a ``put``, built and checked by
:mod:`~configpipe_tools.cli.publishing` like ``configpipe put``: the value parsed the same way,
a secret encrypted client-side) whose ``rollout`` binds it to the release: only invocations
of the function at the target version read the new value, and the rollout function completes
it with the release or rolls it back with it.

Order is the point: every change is checked before anything is sent (exit 2), the changes
are published before the ``ReleaseRequested``, and with ``--wait`` each change's verdict is
awaited before the release is published — so no new-version invocation runs before its
configuration exists. One rejected change and the release is not published: the changes'
rollouts already started are aborted (``ConfigurationRolloutControl``, as ``configpipe rollout
abort`` sends) and the command exits 3 with the rejection's reasons.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

from configpipe.changelog import ChangeLog
from configpipe.contracts import DetailType, Operation, ReasonCode, RolloutStatus
from configpipe_tools.cli.common import poll_until
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.inputs import parse_value
from configpipe_tools.cli.output import Output, reason_text
from configpipe_tools.cli.publishing import (
    PreparedWrite,
    WriteRequest,
    WriteResult,
    prepare,
    publish,
    tenant_label,
    verdict,
)
from configpipe_tools.cli.rollout import abort_control, way_out

#: After the release ends, how long ``--follow`` waits for the rollout function's next tick to
#: end the configuration rollouts riding on it (it runs every minute).
SETTLE_SECONDS = 90.0

_CHANGE_ID_LIMIT = 128


@dataclass(frozen=True)
class ConfigSpec:
    service: str
    environment: str
    key: str
    value: Any
    #: ``KEY@TENANT``: that tenant's own value of the key.
    tenant: str | None = None

    @property
    def label(self) -> str:
        tenant = f"@{self.tenant}" if self.tenant is not None else ""
        return f"{self.service}/{self.environment}/{self.key}{tenant}"


def parse_config(spec: str) -> ConfigSpec:
    """``SERVICE/ENV/KEY[@TENANT]=VALUE``; VALUE is JSON if it parses, else text (as ``put``'s
    VALUE). ``@`` occurs in no key, so ``KEY@TENANT`` is one tenant's own value of KEY."""
    scope, sep, text = spec.partition("=")
    parts = scope.split("/")
    key_part = parts[-1] if parts else ""
    key, at, tenant = key_part.partition("@")
    if not sep or len(parts) != 3 or not all(p.strip() for p in parts) or (at and not tenant.strip()):
        # Never echo the spec: its value may be a secret.
        raise invalid(
            "--config must be SERVICE/ENV/KEY=VALUE (or SERVICE/ENV/KEY@TENANT=VALUE)",
            code="INVALID_CONFIG",
            hint="e.g. --config checkout/production/max-retries=5 (VALUE is JSON if it parses, else text).",
        )
    service, environment = (p.strip() for p in parts[:2])
    return ConfigSpec(
        service,
        environment,
        key.strip(),
        parse_value(text, strict_json=False),
        tenant.strip() if at else None,
    )


def config_change_id(release_id: str, spec: ConfigSpec) -> str:
    """Derived from the release id, so re-running ``release start`` with the same
    ``--release-id`` re-sends the same changes (duplicates are ignored by the validator)."""
    digest = hashlib.sha256(spec.label.encode()).hexdigest()
    change_id = f"{release_id}:config-{digest[:12]}"
    if len(change_id) <= _CHANGE_ID_LIMIT:
        return change_id
    return f"config-{hashlib.sha256(f'{release_id}|{spec.label}'.encode()).hexdigest()[:40]}"


def prepare_configs(
    cli: CliContext, specs: list[str], *, function: str, target_version: str, release_id: str, reason: str
) -> list[PreparedWrite]:
    """Every ``--config`` checked as the validator will check it (exit 2, nothing sent): the
    contract, the registry (the service must register ``function``: the validator's release
    binding rule), the value; then that no key is already rolling out."""
    parsed = [parse_config(spec) for spec in specs]
    labels = [p.label for p in parsed]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise invalid(f"--config names {', '.join(repeated)} more than once", code="INVALID_CONFIG")
    binding = {"release": {"releaseId": release_id, "function": function, "targetVersion": target_version}}
    prepared: list[PreparedWrite] = []
    for spec in parsed:
        request = WriteRequest(
            spec.service,
            spec.environment,
            spec.key,
            Operation.PUT,
            reason,
            value=spec.value,
            change_id=config_change_id(release_id, spec),
            rollout=binding,
            tenant=spec.tenant,
        )
        try:
            prepared.append(prepare(cli, request))
        except CliError as error:
            error.message = f"--config {spec.label}: {error.message}"
            raise
    if prepared:
        _refuse_rolling_out(cli.change_log(), prepared)
    return prepared


def _refuse_rolling_out(log: ChangeLog, prepared: list[PreparedWrite]) -> None:
    for write in prepared:
        request = write.request
        pointer = log.current(request.service, request.environment, request.key, request.tenant)
        # Our own change (a re-run with the same --release-id) is not a conflict.
        if pointer is not None and pointer.rollout_id not in (None, write.change_id):
            raise CliError(
                f"--config {request.label}: the key is rolling out "
                f"version {pointer.version} (rollout {pointer.rollout_id}); nothing was sent",
                ExitCode.INVALID,
                ReasonCode.ROLLOUT_IN_PROGRESS.value,
                hint=way_out(request.service, request.environment, request.key, request.tenant),
            )


# --- sending ------------------------------------------------------------------------------------


@dataclass
class ConfigOutcome:
    """What became of the changes: all accepted (``ok``), or why the release must not go."""

    results: list[WriteResult]
    rejected: WriteResult | None = None
    no_verdict: list[str] | None = None
    aborted: list[str] | None = None

    @property
    def ok(self) -> bool:
        return self.rejected is None and not self.no_verdict


def send_configs(
    cli: CliContext, prepared: list[PreparedWrite], *, wait: bool, deadline: float, reason: str
) -> ConfigOutcome:
    """Publish every change; with ``wait``, their verdicts. When one is rejected (or has no
    verdict in time) the accepted ones are aborted: the release will not be published."""
    for write in prepared:
        publish(cli, write)
    if not wait:
        return ConfigOutcome(
            [WriteResult(change_id=w.change_id, status="published", change=w.summary) for w in prepared]
        )
    results: list[WriteResult] = []
    missing: list[str] = []
    for write in prepared:
        try:
            results.append(verdict(cli, write, max(0.0, deadline - time.monotonic())))
        except CliError as error:
            if error.exit_code is not ExitCode.TIMEOUT:
                raise
            missing.append(write.change_id)
    rejected = next((r for r in results if r.status == "rejected"), None)
    outcome = ConfigOutcome(results, rejected, missing)
    if not outcome.ok:
        outcome.aborted = _abort_accepted(cli, prepared, results, reason)
    return outcome


def _abort_accepted(
    cli: CliContext, prepared: list[PreparedWrite], results: list[WriteResult], reason: str
) -> list[str]:
    """Abort the rollouts the accepted changes started (their rollout id is the change id)."""
    accepted = {r.change_id for r in results if r.status == "accepted"}
    controls = [
        abort_control(
            cli,
            w.request.service,
            w.request.environment,
            w.request.key,
            w.change_id,
            f"release not published: another --config was not accepted ({reason})",
            tenant=w.request.tenant,
        )
        for w in prepared
        if w.change_id in accepted
    ]
    if controls:
        bus = cli.bus(prepared[0].source)
        bus.publish([bus.entry(DetailType.CONFIGURATION_ROLLOUT_CONTROL, c) for c in controls])
    return [tenant_label(c.service, c.environment, c.key, c.tenant) for c in controls]


# --- rendering ----------------------------------------------------------------------------------


def config_views(outcome: ConfigOutcome) -> list[dict[str, Any]]:
    return [r.to_dict() for r in outcome.results]


def render_configs(console: Console, outcome: ConfigOutcome) -> None:
    for result in outcome.results:
        change = result.change
        label = tenant_label(change["service"], change["environment"], change["key"], change.get("tenant"))
        version = f" v{result.version}" if result.version is not None else ""
        console.print(Text(f"  config {label}{version}: {result.status} (goes out with the release)"))


def rejected_configs_text(release_id: str, outcome: ConfigOutcome) -> Text:
    text = Text("✗ rejected: ", style="bold red")
    if outcome.rejected is not None:
        change = outcome.rejected.change
        text += Text(f"config {change['service']}/{change['environment']}/{change['key']}")
        for reason in outcome.rejected.reasons:
            text += Text("\n  - ") + reason_text(reason)
    else:
        text += Text(f"no verdict in time for config change(s) {', '.join(outcome.no_verdict or [])}")
    text += Text(f"\n  release {release_id} was not published")
    if outcome.aborted:
        text += Text(f"; aborted the rollouts of {', '.join(outcome.aborted)}")
    return text


def no_config_verdict(release_id: str, outcome: ConfigOutcome, timeout: float) -> CliError:
    return CliError(
        f"no verdict within {timeout:g}s for config change(s) {', '.join(outcome.no_verdict or [])}; "
        f"release {release_id} was not published",
        ExitCode.TIMEOUT,
        "TIMEOUT",
        hint="The accepted ones were aborted. A change still accepted later rolls back by itself when "
        "the release never starts (within 15 minutes). Re-run with --release-id "
        f"{release_id} once the validator is healthy.",
        details={"releaseId": release_id, "aborted": outcome.aborted or []},
    )


def report_settled(cli: CliContext, out: Output, prepared: list[PreparedWrite], deadline: float) -> None:
    """After ``--follow`` saw the release end: each key's rollout as the rollout function ended
    it (completed with the release, or rolled back with it), waiting for its next tick."""
    log = cli.change_log()

    def read() -> list[tuple[PreparedWrite, Any]]:
        return [(w, log.rollout(w.request.service, w.request.environment, w.request.key)) for w in prepared]

    def settled() -> list[tuple[PreparedWrite, Any]] | None:
        found = read()
        return found if all(r is None or not r.active for _, r in found) else None

    found = poll_until(min(deadline, time.monotonic() + SETTLE_SECONDS), settled) or read()
    for write, record in found:
        request = write.request
        label = f"{request.service}/{request.environment}/{request.key}"
        ours = record is not None and record.rollout_id == write.change_id
        status = record.status if ours else "UNKNOWN"
        if status == RolloutStatus.COMPLETED.value:
            words = "completed with the release"
        elif ours and not record.active:
            words = f"{status.lower().replace('_', ' ')} with the release"
        else:
            words = f"still {status} (the rollout function ends it within a minute)"
        out.event(
            {
                "type": "config",
                "service": request.service,
                "environment": request.environment,
                "key": request.key,
                "rolloutId": write.change_id,
                "status": status,
            },
            Text(f"config {label}: {words}"),
        )
