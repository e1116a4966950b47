"""The OpenFeature layer: built by local bundling (pip --target, no Docker) from the pinned
requirements, for the functions' runtime, used by the demo handlers, exported for services."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from stacks.constructs.openfeature_layer import REQUIREMENTS, PipInstall, pip_install_command
from tests.infrastructure.conftest import resources

pytestmark = pytest.mark.infrastructure


def the_layer(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(logical_id, layer)] = resources(template_json, "AWS::Lambda::LayerVersion").items()
    return logical_id, layer


def test_the_layer_holds_the_pinned_sdk_for_the_functions_runtime(template_json, synth_dir: Path) -> None:
    _, layer = the_layer(template_json)
    props = layer["Properties"]
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == ["x86_64"]
    asset = synth_dir / f"asset.{props['Content']['S3Key'].removesuffix('.zip')}"
    pinned = next(
        line for line in REQUIREMENTS.read_text().splitlines() if line.startswith("openfeature-sdk==")
    )
    version = pinned.split("==")[1]
    assert (asset / "python" / "openfeature" / "provider" / "__init__.py").is_file()
    assert (asset / "python" / f"openfeature_sdk-{version}.dist-info").is_dir()


def test_the_demo_handlers_use_it_and_the_stack_exports_it(template_json) -> None:
    logical_id, _ = the_layer(template_json)
    functions = resources(template_json, "AWS::Lambda::Function").values()
    users = [f for f in functions if {"Ref": logical_id} in f["Properties"]["Layers"]]
    assert {f["Properties"]["Handler"] for f in users} == {"sample_service.app.handler"}
    assert len(users) == 3
    assert template_json["Outputs"]["OpenFeatureLayerArn"]["Value"] == {"Ref": logical_id}


def test_pip_targets_the_lambda_platform_not_this_machine() -> None:
    command = pip_install_command(Path("/out/python"))
    assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in command
    assert command[command.index("-r") + 1] == str(REQUIREMENTS)


def test_a_second_bundle_copies_the_cached_install(tmp_path: Path) -> None:
    # Given a cache already holding the install for these requirements (a synth ran before)
    bundler = PipInstall(cache_dir=tmp_path / "cache")
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    marker = tmp_path / "cache" / f"openfeature-{digest}" / "python" / "marker.txt"
    marker.parent.mkdir(parents=True)
    marker.write_text("from the cache")
    # When it bundles, then the output is the cached tree (pip did not run: it has no such file)
    assert bundler.try_bundle(str(tmp_path / "out")) is True
    assert (tmp_path / "out" / "python" / "marker.txt").read_text() == "from the cache"
