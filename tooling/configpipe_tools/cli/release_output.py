"""How ``configpipe release …`` shows a release: the JSON view scripts read, and the Rich
summary, history and live panel people read.

Everything here is a pure function of a :class:`ReleaseState`, its history and its alarms'
states; reading them is :mod:`configpipe_tools.cli.release_progress`'s job. User data is
printed as :class:`rich.text.Text`, never as markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from configpipe.release import engine
from configpipe.release.contracts import ControlAction, ReleaseDetailType
from configpipe.release.model import HistoryEntry, ReleaseState
from configpipe_tools.cli.output import reason_text

_STATUS_STYLE = {
    "COMPLETED": "green",
    "ROLLED_BACK": "bold red",
    "ABORTED": "bold red",
    "ROLLING_BACK": "red",
    "SHIFTING": "cyan",
    "BAKING": "cyan",
}
_ALARM_STYLE = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}


# --- the JSON view --------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {"type": entry.detail_type.value, **entry.detail}


def release_view(state: ReleaseState, history: list[HistoryEntry], alarms: dict[str, str]) -> dict[str, Any]:
    """The release as ``-o json`` prints it (and as the Rich renderers read it)."""
    now = datetime.now(UTC)
    last_step = next(
        (e for e in reversed(history) if e.detail_type is ReleaseDetailType.RELEASE_STEPPED), None
    )
    return {
        "releaseId": state.release_id,
        "service": state.service,
        "function": state.function,
        "alias": state.alias,
        "targetVersion": state.target_version,
        "previousVersion": state.previous.function_version,
        "previousWeights": state.previous.weights,
        "strategy": state.strategy.name,
        "schedule": [list(step) for step in state.strategy.schedule()],
        "status": state.status.value,
        "paused": state.paused,
        "promoted": state.promoted,
        "percent": state.percent,
        "nextStepAt": _iso(engine.next_step_at(state, now)),
        "lastStepAt": _iso(last_step.at) if last_step else None,
        "alarms": [{"name": name, "state": value} for name, value in alarms.items()],
        "preTrafficHook": state.hooks.pre_traffic,
        "postTrafficHook": state.hooks.post_traffic,
        "author": state.author,
        "reason": state.reason,
        "source": state.source,
        "requestedAt": _iso(state.requested_at),
        "endedAt": _iso(state.ended_at),
        "outcome": {"code": state.outcome.code.value, "message": state.outcome.message}
        if state.outcome
        else None,
        "analysis": current_verdict(state, history),
        "history": [history_view(e) for e in history],
    }


def current_verdict(state: ReleaseState, history: list[HistoryEntry]) -> dict[str, Any] | None:
    """The newest analysis verdict and its figures (issue 16), from what is already read: the
    verdict that ended the release, else the current step's passing verdict (announced only when
    the step is left), else the newest one announced (a hold, or the step just left). None for a
    release without analysis or before its first verdict."""
    verdict = (state.outcome.analysis if state.outcome else None) or state.step_verdict
    if verdict is not None:
        dumped: dict[str, Any] = verdict.model_dump(mode="json", by_alias=True)
        return dumped
    for entry in reversed(history):
        analysis = entry.detail.get("analysis")
        # ReleaseStarted's "analysis" is the configuration, not a verdict
        if isinstance(analysis, dict) and "verdict" in analysis:
            return analysis
    return None


# --- Rich -----------------------------------------------------------------------------------


def _weight_bar(view: dict[str, Any], width: int = 30) -> Text:
    percent = float(view["percent"])
    filled = round(width * percent / 100)
    return (
        Text("█" * filled, style="green")
        + Text("░" * (width - filled), style="dim")
        + Text(f" {percent:g}% on v{view['targetVersion']}, {100 - percent:g}% on v{view['previousVersion']}")
    )


def _status_text(view: dict[str, Any]) -> Text:
    status = Text(view["status"], style=_STATUS_STYLE.get(view["status"], ""))
    if view["paused"]:
        status += Text(" (paused)", style="yellow")
    return status


def _alarms_text(alarms: list[dict[str, str]]) -> Text:
    text = Text()
    for i, alarm in enumerate(alarms):
        text += Text(", " if i else "") + Text(alarm["name"]) + Text(" ")
        text += Text(alarm["state"], style=_ALARM_STYLE.get(alarm["state"], "dim"))
    return text


def _summary_grid(view: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("release", Text(view["releaseId"]))
    grid.add_row(
        "alias",
        Text(f"{view['function']}:{view['alias']}  v{view['previousVersion']} → v{view['targetVersion']}"),
    )
    grid.add_row("strategy", Text(view["strategy"]))
    grid.add_row("status", _status_text(view))
    grid.add_row("weight", _weight_bar(view))
    if view["nextStepAt"]:
        grid.add_row("next step", Text(view["nextStepAt"]))
    if view["lastStepAt"]:
        grid.add_row("last step", Text(view["lastStepAt"]))
    if view["alarms"]:
        grid.add_row("alarms", _alarms_text(view["alarms"]))
    hooks = [
        f"{k}: {view[f]}" for k, f in (("pre", "preTrafficHook"), ("post", "postTrafficHook")) if view[f]
    ]
    if hooks:
        grid.add_row("hooks", Text(", ".join(hooks)))
    if view.get("analysis"):
        grid.add_row("analysis", _analysis_text(view["analysis"]))
    if view["outcome"]:
        grid.add_row("outcome", Text(f"{view['outcome']['code']}: {view['outcome']['message']}", style="red"))
    grid.add_row("by", Text(f"{view['author']} ({view['source']}): {view['reason']}"))
    return grid


_VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _figure(value: Any) -> str:
    return "-" if value is None else f"{float(value):g}"


def _analysis_text(verdict: dict[str, Any]) -> Text:
    text = Text(str(verdict.get("verdict")), style=_VERDICT_STYLE.get(str(verdict.get("verdict")), ""))
    text += Text(
        f" at {_figure(verdict.get('stepPercent'))}%: v{verdict.get('candidateVersion')} "
        f"{_figure(verdict.get('candidateInvocations'))} invocations, v{verdict.get('baselineVersion')} "
        f"{_figure(verdict.get('baselineInvocations'))}"
    )
    for gate in verdict.get("gates", []):
        text += Text(f"\n  {gate.get('gate')}: ")
        text += Text(str(gate.get("verdict")), style=_VERDICT_STYLE.get(str(gate.get("verdict")), ""))
        text += Text(
            f" (candidate {_figure(gate.get('candidate'))}, baseline {_figure(gate.get('baseline'))}, "
            f"limit {_figure(gate.get('limit'))})"
        )
    return text


def panel(view: dict[str, Any]) -> Panel:
    """The live view of ``--follow``."""
    return Panel(_summary_grid(view), title=Text(f"release {view['releaseId']}"), title_align="left")


def _history_note(detail: dict[str, Any]) -> str:
    for key in ("cause", "code", "phase"):
        if key in detail:
            note = str(detail[key])
            if key == "phase":
                note += f" hook {detail.get('hook')} {'passed' if detail.get('passed') else 'failed'}"
            if detail.get("message") and key != "cause":
                note += f": {detail['message']}"
            return note
    return ""


def history_line(entry: HistoryEntry) -> Text:
    """One history entry as ``--follow`` prints it when it appears."""
    detail = entry.detail
    return (
        Text(f"#{entry.seq} ", style="dim")
        + Text(f"{entry.at.isoformat()}  ")
        + Text(entry.detail_type.value, style="bold")
        + Text(
            f"  {detail.get('percent', 0):g}%  {detail.get('status', '')}  {_history_note(detail)}".rstrip()
        )
    )


def _history_table(view: dict[str, Any]) -> Table:
    table = Table(title="history", title_justify="left")
    for column in ("#", "when", "event", "status", "weight", "note"):
        table.add_column(column, overflow="fold")
    for entry in view["history"]:
        table.add_row(
            Text(str(entry["seq"])),
            Text(str(entry["at"])),
            Text(entry["type"]),
            Text(str(entry.get("status", ""))),
            Text(f"{entry.get('percent', 0):g}%"),
            Text(_history_note(entry)),
        )
    return table


def render_status(console: Console, view: dict[str, Any]) -> None:
    console.print(Group(_summary_grid(view), Text(""), _history_table(view)))


def render_started(console: Console, view: dict[str, Any]) -> None:
    console.print(
        Text("✓ started: ", style="green")
        + Text(
            f"release {view['releaseId']} of {view['function']}:{view['alias']} → v{view['targetVersion']}"
        )
    )
    console.print(_summary_grid(view))


def render_published(console: Console, summary: dict[str, Any]) -> None:
    console.print(
        Text(
            f"published release {summary['releaseId']} of {summary['function']}:{summary['alias']} → "
            f"v{summary['targetVersion']} (not waiting for the outcome)"
        )
    )


def render_applied(console: Console, action: ControlAction, view: dict[str, Any]) -> None:
    console.print(Text(f"✓ {action.value} applied: ", style="green") + Text(f"release {view['releaseId']}"))
    console.print(_summary_grid(view))


def rejected_text(what: str, reasons: list[dict[str, Any]]) -> Text:
    text = Text("✗ rejected: ", style="bold red") + Text(what)
    for reason in reasons:
        text += Text("\n  - ") + reason_text(reason)
    return text
