"""``configpipe flag``: read and edit a service's feature-flags document (docs/feature-flags.md).

Every edit is a normal change of the document's key: the current document is read from the
change log, the flag edited, and the whole document put back with ``expectedVersion`` = the
version read, so two people editing flags at once never overwrite each other (the second gets
``VERSION_CONFLICT`` and re-runs). ``--dry-run`` shows the diff and publishes nothing; the
validator checks the result with Powertools' feature-flag schema like any publisher's.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from configpipe.contracts import Operation
from configpipe_tools.cli.common import OutputOpt, SourceOpt, guarded
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import invalid
from configpipe_tools.cli.output import Output, pretty_json, value_of
from configpipe_tools.cli.publishing import WriteRequest

app = typer.Typer(
    name="flag",
    help="Read and edit a feature-flags document (Powertools FeatureFlags / OpenFeature).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

#: The key the registry marks as the flags document, unless --key says otherwise.
DEFAULT_KEY = "flags"
#: Rules the CLI manages for ``enable/disable --for ATTRIBUTE=VALUE``: one per attribute.
RULE_PREFIX = "configpipe: "

ServiceArg = Annotated[str, typer.Argument(metavar="SERVICE", help="Service name, or 'global'.")]
EnvArg = Annotated[str, typer.Argument(metavar="ENV", help="Environment, e.g. production.")]
FlagArg = Annotated[str, typer.Argument(metavar="FLAG", help="The flag's name in the document.")]
KeyOpt = Annotated[str, typer.Option("--key", help="The key holding the flags document.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (required; kept in the change log).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the diff; publish nothing.")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the pipeline's verdict.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait for the verdict.")]
ExpectedOpt = Annotated[
    int | None,
    typer.Option(
        "--expected-version",
        min=0,
        help="Edit only if the document is at this version (default: the version just read).",
        show_default=False,
    ),
]
ForOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--for",
        metavar="ATTRIBUTE=VALUE",
        help="Only for evaluation contexts whose ATTRIBUTE is VALUE (repeatable), e.g. --for tenant=t-7.",
        show_default=False,
    ),
]


def read_document(cli: CliContext, service: str, environment: str, key: str) -> tuple[dict[str, Any], int]:
    """The current flags document and its version (``{}`` and 0 when the key has none)."""
    record = cli.change_log().current_record(service, environment, key)
    if record is None or record.deleted:
        return {}, record.version if record else 0
    if record.sensitive:
        raise invalid(f"{service}/{environment}/{key} is a secret, not a flags document", code="NOT_FLAGS")
    document = value_of(record)
    if not isinstance(document, dict):
        raise invalid(
            f"{service}/{environment}/{key} holds a JSON {type(document).__name__}, not a flags document",
            code="NOT_FLAGS",
            hint="Use --key to name the key that holds the document.",
        )
    return document, record.version


def _flag(document: dict[str, Any], label: str, flag: str) -> dict[str, Any]:
    found = document.get(flag)
    if not isinstance(found, dict):
        raise invalid(
            f"{label} has no flag {flag!r}",
            code="FLAG_NOT_FOUND",
            hint=f"`configpipe flag list {label.replace('/', ' ', 2).rsplit(' ', 1)[0]}` lists the flags.",
        )
    return found


def _targets(pairs: list[str] | None) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for pair in pairs or []:
        attribute, sep, value = pair.partition("=")
        if not sep or not attribute.strip() or not value:
            raise invalid(f"--for {pair!r} must be ATTRIBUTE=VALUE", code="INVALID_FOR")
        targets.setdefault(attribute.strip(), []).append(value)
    return targets


def enable_for(feature: dict[str, Any], targets: dict[str, list[str]], enabled: bool) -> None:
    """Add (enable) or remove (disable) values of the CLI's rule per attribute: ``ATTRIBUTE IN
    [values]`` → true. A rule left without values is removed; other rules are never touched."""
    rules: dict[str, Any] = feature.setdefault("rules", {})
    for attribute, values in targets.items():
        name = f"{RULE_PREFIX}{attribute} in list"
        rule = rules.get(name)
        current: list[Any] = list(rule["conditions"][0]["value"]) if isinstance(rule, dict) else []
        if enabled:
            current += [v for v in values if v not in current]
        else:
            current = [v for v in current if v not in values]
        if current:
            rules[name] = {
                "when_match": True,
                "conditions": [{"action": "IN", "key": attribute, "value": current}],
            }
        else:
            rules.pop(name, None)
    if not rules:
        feature.pop("rules")


def _edit(
    ctx: typer.Context,
    service: str,
    environment: str,
    key: str,
    reason: str,
    edit: Any,
    *,
    expected_version: int | None,
    dry_run: bool,
    wait: bool,
    timeout: float,
) -> int:
    from configpipe_tools.cli.main import _write  # the shared rendering of a write's result

    cli: CliContext = ctx.obj
    document, version = read_document(cli, service, environment, key)
    edited = copy.deepcopy(document)
    edit(edited)
    request = WriteRequest(
        service,
        environment,
        key,
        Operation.PUT,
        reason,
        value=edited,
        expected_version=version if expected_version is None else expected_version,
    )
    return int(_write(ctx, request, dry_run, wait, timeout))


@app.command("list")
@guarded
def list_flags(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    key: KeyOpt = DEFAULT_KEY,
    output: OutputOpt = None,
) -> None:
    """The flags of the document: default, type, rules."""
    cli: CliContext = ctx.obj
    document, version = read_document(cli, service, environment, key)
    rows = [
        {
            "flag": name,
            "default": feature.get("default"),
            "booleanType": feature.get("boolean_type", True),
            "rules": sorted((feature.get("rules") or {}).keys()),
        }
        for name, feature in sorted(document.items())
        if isinstance(feature, dict)
    ]
    body = {"service": service, "environment": environment, "key": key, "version": version, "flags": rows}

    def render(console: Console) -> None:
        table = Table(title=f"{service}/{environment}/{key} (version {version})")
        for column in ("flag", "default", "rules"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["flag"], pretty_json(row["default"]), Text(", ".join(row["rules"]) or "-"))
        console.print(table)

    Output(cli.json).result(body, render)


@app.command("get")
@guarded
def get_flag(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    flag: FlagArg,
    key: KeyOpt = DEFAULT_KEY,
    output: OutputOpt = None,
) -> None:
    """One flag's definition, as the document holds it."""
    cli: CliContext = ctx.obj
    document, version = read_document(cli, service, environment, key)
    feature = _flag(document, f"{service}/{environment}/{key}", flag)
    body = {"flag": flag, "version": version, "definition": feature}
    Output(cli.json).result(body, lambda console: console.print(Text(pretty_json(feature))))


@app.command("set")
@guarded
def set_flag(
    ctx: typer.Context,
    service: ServiceArg,
    environment: EnvArg,
    flag: FlagArg,
    value: Annotated[
        str, typer.Argument(metavar="DEFAULT", help="The default: JSON if it parses, else text.")
    ],
    reason: ReasonOpt,
    key: KeyOpt = DEFAULT_KEY,
    expected_version: ExpectedOpt = None,
    dry_run: DryRunOpt = False,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 30.0,
    source: SourceOpt = None,
    output: OutputOpt = None,
) -> int:
    """Set FLAG's default (creating the flag); a non-boolean default makes it a value flag."""
    from configpipe_tools.cli.inputs import resolve_put_value

    default = resolve_put_value(value, None, False)

    def edit(document: dict[str, Any]) -> None:
        feature = document.setdefault(flag, {})
        feature["default"] = default
        if isinstance(default, bool):
            feature.pop("boolean_type", None)
        else:
            feature["boolean_type"] = False

    return _edit(
        ctx, service, environment, key, reason, edit,
        expected_version=expected_version, dry_run=dry_run, wait=wait, timeout=timeout,
    )  # fmt: skip


def _switch(enabled: bool) -> Any:
    def command(
        ctx: typer.Context,
        service: ServiceArg,
        environment: EnvArg,
        flag: FlagArg,
        reason: ReasonOpt,
        for_: ForOpt = None,
        key: KeyOpt = DEFAULT_KEY,
        expected_version: ExpectedOpt = None,
        dry_run: DryRunOpt = False,
        wait: WaitOpt = True,
        timeout: TimeoutOpt = 30.0,
        source: SourceOpt = None,
        output: OutputOpt = None,
    ) -> int:
        targets = _targets(for_)

        def edit(document: dict[str, Any]) -> None:
            feature = document.setdefault(flag, {"default": False})
            if feature.get("boolean_type", True) is False:
                raise invalid(f"{flag!r} is a value flag: use `configpipe flag set`", code="NOT_BOOLEAN_FLAG")
            if targets:
                feature.setdefault("default", False)
                enable_for(feature, targets, enabled)
            else:
                feature["default"] = enabled

        return _edit(
            ctx, service, environment, key, reason, edit,
            expected_version=expected_version, dry_run=dry_run, wait=wait, timeout=timeout,
        )  # fmt: skip

    verb = "Enable" if enabled else "Disable"
    command.__doc__ = (
        f"{verb} FLAG: its default, or with --for ATTRIBUTE=VALUE only for those contexts "
        "(a rule ATTRIBUTE IN [values] the CLI keeps per attribute)."
    )
    return command


app.command("enable")(guarded(_switch(True)))
app.command("disable")(guarded(_switch(False)))
