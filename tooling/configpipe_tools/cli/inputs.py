"""Turning what the user typed (or pointed at) into a JSON value, with errors that say which
input was wrong and how. Never echoes the value back: it may be a secret."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from configpipe.values import canonical_json
from configpipe_tools.cli.errors import CliError, ExitCode, invalid


def _no_constants(name: str) -> Any:
    # NaN / Infinity are not JSON; refusing them here keeps "try JSON, else string" honest.
    raise ValueError(f"{name} is not valid JSON")


def parse_value(text: str, strict_json: bool) -> Any:
    """``--json``: VALUE must be JSON. Otherwise JSON if it parses (``42``, ``true``,
    ``{"a":1}``), else the text as a string."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as error:
        if strict_json:
            raise invalid(
                f"VALUE is not valid JSON ({_json_position(error)})",
                code="INVALID_JSON",
                hint="Quote strings as JSON (e.g. '\"text\"'), or drop --json to send the text as a string.",
            ) from None
        return text


def read_value_file(path: str) -> Any:
    """A JSON or YAML file (``-`` for stdin). ``.json`` must be JSON; anything else is read as
    YAML, which also accepts JSON."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise invalid(f"file not found: {name}", code="FILE_NOT_FOUND") from None
    except IsADirectoryError:
        raise invalid(f"{name} is a directory, not a file", code="FILE_UNREADABLE") from None
    except PermissionError:
        raise invalid(f"no permission to read {name}", code="FILE_UNREADABLE") from None
    except UnicodeDecodeError:
        raise invalid(f"{name} is not UTF-8 text", code="FILE_UNREADABLE") from None
    except OSError as error:
        raise invalid(f"cannot read {name}: {error.strerror}", code="FILE_UNREADABLE") from None
    if not text.strip():
        raise invalid(
            f"{name} is empty", code="INVALID_FILE", hint="Put the value (JSON or YAML) in the file."
        )

    if path.lower().endswith(".json"):
        try:
            value = json.loads(text, parse_constant=_no_constants)
        except ValueError as error:
            raise invalid(
                f"{name} is not valid JSON ({_json_position(error)})", code="INVALID_FILE"
            ) from None
    else:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = (
                f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
            )
            raise invalid(f"{name} is not valid YAML or JSON ({where})", code="INVALID_FILE") from None
    return ensure_json(value, name)


def ensure_json(value: Any, name: str) -> Any:
    """YAML can hold what JSON cannot (dates, NaN, non-string keys); refuse those clearly."""
    try:
        return json.loads(canonical_json(value))
    except (TypeError, ValueError):
        raise invalid(
            f"{name} holds a value JSON cannot represent (a date, a NaN, or a non-text key)",
            code="INVALID_FILE",
            hint='Quote dates and times in YAML (e.g. "2024-01-01").',
        ) from None


def _json_position(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}"
    return str(error)


def resolve_put_value(value: str | None, file: str | None, strict_json: bool) -> Any:
    if value is not None and file is not None:
        raise invalid("give either VALUE or --file, not both", code="USAGE")
    if file is not None:
        return read_value_file(file)
    if value is None:
        raise CliError(
            "put needs a VALUE or --file",
            ExitCode.INVALID,
            "MISSING_VALUE",
            hint="e.g. `configpipe put checkout production max_items 50 --reason ...`, or --file value.yaml "
            "(use --file - to read a secret from stdin, so it stays out of your shell history).",
        )
    return parse_value(value, strict_json)
