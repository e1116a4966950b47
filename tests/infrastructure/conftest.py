"""Synthesise the app once per session and share the template (synth costs seconds)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import STACK_NAME, build_app

REPO = Path(__file__).resolve().parents[2]


def cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return context


def synth_app(outdir: str, *, with_nag: bool, context: dict[str, Any] | None = None) -> cdk.App:
    app = cdk.App(context=context if context is not None else cdk_context(), outdir=outdir)
    return build_app(app, with_nag=with_nag)


@pytest.fixture(scope="session")
def synth_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="configpipe-synth-") as outdir:
        yield Path(outdir)


@pytest.fixture(scope="session")
def app(synth_dir: Path) -> cdk.App:
    return synth_app(str(synth_dir / "plain"), with_nag=False)


@pytest.fixture(scope="session")
def stack(app: cdk.App) -> cdk.Stack:
    found = app.node.find_child(STACK_NAME)
    assert isinstance(found, cdk.Stack)
    return found


@pytest.fixture(scope="session")
def template(stack: cdk.Stack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def template_json(template: Template) -> dict[str, Any]:
    as_json: dict[str, Any] = template.to_json()
    return as_json


@pytest.fixture(scope="session")
def template_file(template_json: dict[str, Any], synth_dir: Path) -> Path:
    path = synth_dir / "ConfigPipe.template.json"
    path.write_text(json.dumps(template_json, indent=1))
    return path


# --- helpers shared by the tests -----------------------------------------------------------


def resources(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == resource_type}


def function_by_handler(template_json: dict[str, Any], handler: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, fn)
        for logical_id, fn in resources(template_json, "AWS::Lambda::Function").items()
        if fn["Properties"]["Handler"] == handler
    ]


def the_function(template_json: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    found = function_by_handler(template_json, handler)
    assert len(found) == 1, f"expected one function with handler {handler}, found {len(found)}"
    return found[0]


def role_of(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]
    assert "Fn::GetAtt" in role, f"function role is not a role of this stack: {role}"
    logical_id: str = role["Fn::GetAtt"][0]
    return logical_id


def statements_of_role(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every Allow/Deny statement attached to the role: inline policies and AWS::IAM::Policy."""
    statements: list[dict[str, Any]] = []
    role = template_json["Resources"][role_id]["Properties"]
    for inline in role.get("Policies", []):
        statements.extend(_as_list(inline["PolicyDocument"]["Statement"]))
    for policy in resources(template_json, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements.extend(_as_list(policy["Properties"]["PolicyDocument"]["Statement"]))
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    return list(_as_list(statement["Action"]))


def resources_of(statement: dict[str, Any]) -> list[Any]:
    return list(_as_list(statement["Resource"]))


def rendered(value: Any) -> str:
    """A CloudFormation value flattened into a readable string (joins concatenated, refs as <id>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def ids(stack: Any) -> dict[str, str]:
    """Logical ids of the resources tests refer to, taken from the stack itself."""

    def logical_id(construct: Any) -> str:
        resolved: str = stack.resolve(stack.get_logical_id(construct.node.default_child))
        return resolved

    return {
        "change_log_table": logical_id(stack.change_log.table),
        "secrets_key": logical_id(stack.keys.secrets_key),
        "hash_key": logical_id(stack.keys.hash_key),
        "bus": logical_id(stack.config_bus.bus),
        "registry_parameter": logical_id(stack.registry.parameter),
        "materialiser_role": logical_id(stack.pipeline.materialiser.role),
        "propagator_role": logical_id(stack.pipeline.propagator.role),
    }
