"""``configpipe status`` and the cross-key audit export of ``configpipe history`` (issue 14).

``status SERVICE ENV [KEY]`` joins three sources, each the truth about one thing:

* the change log — each key's current version, and the version readers outside an active rollout
  keep (the stable one), which is what every subscribed service must apply to be converged;
* the registry — which services subscribe to the key (``Registry.affected_services``, the
  propagator's own rule);
* the delivery ledger — what each service acknowledged: the version it applied, when, and its
  last refusal.

A service is *converged* on a key when it applied at least the version readers hold, *refused*
when its own check refused a newer version than it runs, else *pending* (no acknowledgement yet,
or behind). ``--require-converged`` exits 6 unless every row is converged (a CI/CD gate).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.changelog import ChangeLog, VersionRecord
from configpipe.ledger import DeliveryLedger, LedgerEntry
from configpipe.registry import Registry
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import invalid
from configpipe_tools.cli.publishing import tenant_label

#: ``status --require-converged`` when a subscribed service lags or refused (issue 14).
NOT_CONVERGED_EXIT = 6
#: When neither --ledger-table, CONFIGPIPE_LEDGER_TABLE nor the stack names the table.
DEFAULT_LEDGER_TABLE = "DeliveryLedger"

LedgerTableOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger-table",
        envvar="CONFIGPIPE_LEDGER_TABLE",
        help="Delivery ledger table [default: the stack's DeliveryLedgerTableName output].",
        show_default=False,
    ),
]


def delivery_ledger(cli: CliContext, table_option: str | None) -> DeliveryLedger:
    name = table_option or cli.stack_output("DeliveryLedgerTableName") or DEFAULT_LEDGER_TABLE
    resource = cli.session().resource("dynamodb", endpoint_url=cli.endpoint_url)
    return DeliveryLedger(name, table=resource.Table(name))


# --- status ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceState:
    target_service: str
    state: str  # converged | pending | refused
    entry: LedgerEntry | None
    lag_versions: int

    def to_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "targetService": self.target_service,
            "state": self.state,
            "lagVersions": self.lag_versions,
        }
        if self.entry is not None:
            view.update({k: v for k, v in self.entry.to_view().items() if k != "targetService"})
        return view


def service_state(target: str, expected: int | None, entry: LedgerEntry | None) -> ServiceState:
    applied = entry.applied_version if entry else None
    lag = max(0, (expected or 0) - (applied or 0))
    if lag == 0:
        state = "converged"
    elif entry is not None and entry.failing and (entry.failed_version or 0) <= (expected or 0):
        state = "refused"
    else:
        state = "pending"
    return ServiceState(target, state, entry, lag)


def key_status(
    log: ChangeLog,
    registry: Registry | None,
    entries: list[LedgerEntry],
    service: str,
    environment: str,
    key: str,
    now: datetime,
    tenant: str | None = None,
) -> dict[str, Any] | None:
    """One key's row of ``status`` (of one tenant's own value of it); None if it does not exist."""
    pointer = log.current(service, environment, key, tenant)
    if pointer is None:
        return None
    expected = pointer.version_for_readers()
    by_target = {e.target_service: e for e in entries if e.key == key}
    subscribers = (
        registry.affected_services(service, environment, key)
        if registry is not None and registry.is_known(service)
        else sorted(by_target)  # the registry is not readable: what acknowledged is all we know
    )
    services = [service_state(t, expected, by_target.get(t)) for t in subscribers]
    row: dict[str, Any] = {
        "key": key,
        "currentVersion": pointer.version,
        "expectedVersion": expected,
        "deleted": pointer.deleted,
        "converged": all(s.state == "converged" for s in services),
        "services": [s.to_view() for s in services],
    }
    if not subscribers:
        row["receivers"] = []  # nobody subscribes: nothing to converge (issue 14, item 7)
    if any(s.lag_versions for s in services):
        record = log.version(service, environment, key, expected, tenant) if expected else None
        if record is not None:
            row["lagSeconds"] = max(0, int((now - datetime.fromisoformat(record.applied_at)).total_seconds()))
    if pointer.rollout_id is not None:
        rollout = log.rollout(service, environment, key, tenant)
        if rollout is not None:
            row["rollout"] = {
                "rolloutId": rollout.rollout_id,
                "status": str(rollout.status),
                "stableVersion": rollout.stable_version,
                "candidateVersion": rollout.candidate_version,
                "weight": float(rollout.weight),
            }
    return row


def status_payload(
    log: ChangeLog,
    ledger: DeliveryLedger,
    registry: Registry | None,
    service: str,
    environment: str,
    key: str | None,
    now: datetime | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """``tenant``: the tenant's own values, each against what the subscribed services
    acknowledged of that tenant's value (a sequence of its own)."""
    now = now or datetime.now(UTC)
    listed = log.keys(service, environment, include_deleted=True, tenant=tenant)
    keys = [key] if key else sorted(k for k, _ in listed)
    entries = ledger.entries(service, environment, key, tenant)
    rows = [
        r for k in keys if (r := key_status(log, registry, entries, service, environment, k, now, tenant))
    ]
    if key and not rows:
        raise invalid(
            f"{tenant_label(service, environment, key, tenant)} does not exist",
            code="KEY_NOT_FOUND",
            hint=f"`configpipe list {service} {environment}` lists the keys that exist.",
        )
    return {
        "service": service,
        "environment": environment,
        **({"tenant": tenant} if tenant is not None else {}),
        "converged": all(r["converged"] for r in rows),
        "registryChecked": registry is not None,
        "keys": rows,
    }


_STATE_STYLE = {"converged": "green", "pending": "yellow", "refused": "red"}


def render_status(console: Console, payload: dict[str, Any]) -> None:
    label = f"{payload['service']}/{payload['environment']}"
    if "tenant" in payload:
        label += f" (tenant {payload['tenant']})"
    if not payload["keys"]:
        console.print(Text(f"no keys for {label}"))
        return
    table = Table(title=label, title_justify="left")
    for column in ("key", "version", "service", "applied", "lag", "state"):
        table.add_column(column, overflow="fold")
    for row in payload["keys"]:
        version = f"v{row['currentVersion']}"
        if "rollout" in row:
            r = row["rollout"]
            version += (
                f" (rolling out v{r['candidateVersion']} at {r['weight']:g}%, stable v{r['stableVersion']})"
            )
        if not row["services"]:
            table.add_row(
                Text(row["key"]),
                Text(version),
                Text("—"),
                Text(""),
                Text(""),
                Text("no receivers", style="dim"),
            )
        for s in row["services"]:
            state = Text(s["state"], style=_STATE_STYLE[s["state"]])
            if s["state"] == "refused":
                state += Text(f" v{s['failedVersion']}: {s.get('failureReason', '')}")
            lag = f"{s['lagVersions']} version(s)" if s["lagVersions"] else ""
            if lag and "lagSeconds" in row:
                lag += f", {row['lagSeconds']}s"
            applied = f"v{s['appliedVersion']}" if "appliedVersion" in s else "—"
            table.add_row(
                Text(row["key"]), Text(version), Text(s["targetService"]), Text(applied), Text(lag), state
            )
    console.print(table)
    if not payload["registryChecked"]:
        console.print(
            Text(
                "note: the registry was not readable; only services that acknowledged are shown",
                style="yellow",
            )
        )
    console.print(
        Text("✓ converged", style="green") if payload["converged"] else Text("✗ not converged", style="red")
    )


# --- the cross-key audit export of `history` --------------------------------------------------


class HistoryFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


#: The export's columns, in order (no values: hashes only, as everywhere in history).
AUDIT_COLUMNS = (
    "appliedAt",
    "service",
    "environment",
    "key",
    "version",
    "operation",
    "author",
    "reason",
    "source",
    "changeId",
    "valueHash",
    "sensitive",
    "deleted",
    "rolledBackTo",
    "restoreId",
)
_RELATIVE = re.compile(r"^(\d{1,6})([smhd])$")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 date or time (UTC if it names no zone), or a duration back from
    now: ``30m``, ``24h``, ``7d``."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise invalid(
            f"--since {text!r} is neither an ISO 8601 time nor a duration",
            code="INVALID_SINCE",
            hint="e.g. --since 2026-12-01, --since 2026-12-01T08:00:00Z or --since 7d",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit_rows(
    log: ChangeLog, service: str, environment: str, since: datetime | None
) -> list[dict[str, Any]]:
    """Every version of every key of ``service`` in ``environment`` (deleted keys too) applied at
    or after ``since``, oldest first."""
    rows: list[tuple[datetime, dict[str, Any]]] = []
    for key, _ in log.keys(service, environment, include_deleted=True):
        for record in log.history(service, environment, key, newest_first=False):
            when = datetime.fromisoformat(record.applied_at)
            if since is None or when >= since:
                rows.append((when, audit_row(record)))
    rows.sort(key=lambda pair: (pair[0], pair[1]["key"], pair[1]["version"]))
    return [row for _, row in rows]


def audit_row(record: VersionRecord) -> dict[str, Any]:
    return {
        "appliedAt": record.applied_at,
        "service": record.service,
        "environment": record.environment,
        "key": record.key,
        "version": record.version,
        "operation": record.operation,
        "author": record.author,
        "reason": record.reason,
        "source": record.source,
        "changeId": record.change_id,
        "valueHash": record.value_hash,
        "sensitive": record.sensitive,
        "deleted": record.deleted,
        "rolledBackTo": record.rolled_back_to,
        "restoreId": record.restore_id,
    }


def audit_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row[k]) for k in AUDIT_COLUMNS})
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell a spreadsheet would run as a formula (author and reason are free text).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def render_audit(console: Console, payload: dict[str, Any]) -> None:
    table = Table(
        title=f"{payload['service']}/{payload['environment']} since {payload['since']}", title_justify="left"
    )
    for column in ("when", "key", "version", "operation", "who", "why"):
        table.add_column(column, overflow="fold")
    for r in payload["versions"]:
        table.add_row(
            Text(r["appliedAt"]),
            Text(r["key"]),
            Text(str(r["version"])),
            Text(r["operation"]),
            Text(r["author"]),
            Text(r["reason"]),
        )
    console.print(table)
