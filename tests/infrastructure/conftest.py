"""The app is synthesised once per test run, by the real CDK CLI with cdk-nag attached (a
finding fails it), into the content-addressed cache the local pipeline and the e2e suite use
(``configpipe_tools.local.template.synthesise``: unchanged inputs, no synth at all). The
tests read that template as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from configpipe_tools.local.template import synthesise

REPO = Path(__file__).resolve().parents[2]


def cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return context


def synth_app(outdir: str, *, with_nag: bool, context: dict[str, Any] | None = None) -> cdk.App:
    """An in-process synth, for the few tests that must change what is synthesised."""
    app = cdk.App(context=context if context is not None else cdk_context(), outdir=outdir)
    return build_app(app, with_nag=with_nag)


@pytest.fixture(scope="session")
def template_file() -> Path:
    """The stack's template in the shared synth cache (synthesised now if its inputs changed)."""
    return synthesise(REPO)


@pytest.fixture(scope="session")
def synth_dir(template_file: Path) -> Path:
    """The cloud assembly the template is part of (assets, nag report)."""
    return template_file.parent


@pytest.fixture(scope="session")
def template_json(template_file: Path) -> dict[str, Any]:
    as_json: dict[str, Any] = json.loads(template_file.read_text())
    return as_json


@pytest.fixture(scope="session")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)


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


#: Construct paths (``aws:cdk:path``, which the CDK CLI writes into the template's metadata)
#: of the resources tests refer to by logical id.
PATHS = {
    "change_log_table": "ConfigPipe/ChangeLog/Table/Resource",
    "secrets_key": "ConfigPipe/Keys/SecretsKey/Resource",
    "hash_key": "ConfigPipe/Keys/HashKey/Resource",
    "bus": "ConfigPipe/ConfigBus/Bus/Resource",
    "registry_parameter": "ConfigPipe/Registry/Parameter/Resource",
    "materialiser_role": "ConfigPipe/Pipeline/Materialiser/Role/Resource",
    "propagator_role": "ConfigPipe/Pipeline/Propagator/Role/Resource",
}


@pytest.fixture(scope="session")
def ids(template_json: dict[str, Any]) -> dict[str, str]:
    """Logical ids of the resources tests refer to, found by their construct path."""
    by_path = {
        resource.get("Metadata", {}).get("aws:cdk:path"): logical_id
        for logical_id, resource in template_json["Resources"].items()
    }
    missing = [path for path in PATHS.values() if path not in by_path]
    assert not missing, f"no resource at {missing} (construct moved? update PATHS)"
    return {name: by_path[path] for name, path in PATHS.items()}
