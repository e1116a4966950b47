"""Where output goes: Rich tables for people, exact JSON on stdout for scripts.

With ``--output json`` stdout carries only JSON (one document per command, or one JSON
object per line for ``watch``); human notes and errors go to stderr. User data is always
printed as :class:`rich.text.Text`, never as markup, so a value like ``[red]`` prints as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from configpipe.changelog import VersionRecord
from configpipe_tools.cli.errors import CliError

SECRET_MASK = "•••••• (secret)"  # noqa: S105 - a mask, not a password


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # Created per invocation so they bind to the current sys.stdout/sys.stderr.
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def result(self, payload: dict[str, Any], render: Callable[[Console], None]) -> None:
        """The command's result: JSON document, or whatever ``render`` prints."""
        if self.as_json:
            typer.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
        else:
            render(self.out)

    def event(self, payload: dict[str, Any], text: Text) -> None:
        """One item of a stream (``watch``): a JSON line, or a line of text."""
        if self.as_json:
            typer.echo(json.dumps(payload, ensure_ascii=False, default=str))
        else:
            self.out.print(text, soft_wrap=True)

    def note(self, message: str) -> None:
        """Progress for people; never on stdout in JSON mode."""
        (self.err if self.as_json else self.out).print(Text(message), soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(Text("warning: ", style="yellow") + Text(message), soft_wrap=True)

    def error(self, error: CliError) -> None:
        if self.as_json:
            typer.echo(json.dumps(error.to_dict(), indent=2, ensure_ascii=False, default=str))
        line = Text("error: ", style="bold red") + Text(error.message)
        self.err.print(line, soft_wrap=True)
        for reason in error.details.get("reasons", []):
            self.err.print(Text("  - ") + reason_text(reason), soft_wrap=True)
        if error.hint:
            self.err.print(Text("hint: ", style="cyan") + Text(error.hint), soft_wrap=True)


def reason_text(reason: dict[str, Any]) -> Text:
    field = f" ({reason['field']})" if reason.get("field") else ""
    return Text(f"{reason.get('code', '?')}{field}: {reason.get('message', '')}")


# --- views of change-log records (secrets masked) -------------------------------------------


def value_of(record: VersionRecord) -> Any:
    """The stored value of a non-sensitive, non-deleted version."""
    return json.loads(record.value_json) if record.value_json is not None else None


def value_text(record: VersionRecord) -> Text:
    if record.deleted:
        return Text("(deleted)", style="dim")
    if record.sensitive:
        return Text(SECRET_MASK, style="magenta")
    return Text(pretty_json(value_of(record)))


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def record_fields(record: VersionRecord) -> dict[str, Any]:
    """Which version, what and who, without the value: what every view of a version shows."""
    return {
        "service": record.service,
        "environment": record.environment,
        "key": record.key,
        "version": record.version,
        "operation": record.operation,
        "deleted": record.deleted,
        "sensitive": record.sensitive,
        "valueHash": record.value_hash,
        "author": record.author,
        "reason": record.reason,
        "appliedAt": record.applied_at,
        "changeId": record.change_id,
    }


def version_view(record: VersionRecord) -> dict[str, Any]:
    """A version as the CLI shows it: never the secret, never its ciphertext."""
    view: dict[str, Any] = {
        **record_fields(record),
        "previousVersion": record.previous_version,
        "source": record.source,
    }
    if record.rolled_back_to is not None:
        view["rolledBackTo"] = record.rolled_back_to
    if record.restore_id is not None:
        view["restoreId"] = record.restore_id
    if not record.sensitive and not record.deleted:
        view["value"] = value_of(record)
    return view


def operation_text(record: VersionRecord) -> str:
    if record.rolled_back_to is not None:
        return f"rollback→v{record.rolled_back_to}"
    return record.operation


def print_change_line(console: Console, what: str, change: dict[str, Any]) -> None:
    """One change of a multi-change command (snapshot restore/import, promote): what it does,
    then — once sent — its status, new version and the pipeline's reasons."""
    line = Text(what)
    if "status" in change:
        style = {"accepted": "green", "rejected": "bold red"}.get(change["status"], "yellow")
        line += Text(f"  {change['status']}", style=style)
        if change.get("version"):
            line += Text(f" → v{change['version']}")
    console.print(line, soft_wrap=True)
    for reason in change.get("reasons", []):
        console.print(Text("      - ") + reason_text(reason), soft_wrap=True)
