"""The OpenFeature layer: ``openfeature-sdk`` for service code that uses
``configpipe.client.openfeature`` (the Powertools layer brings the rest).

Built at synth by CDK *local* bundling: :class:`PipInstall` runs ``pip install --target`` from
the pinned ``layers/openfeature/requirements.txt`` for the Lambda runtime's platform (no Docker).
The asset is hashed on that file (``AssetHashType.SOURCE``), so the layer changes exactly when
the pin does, and the installed tree is kept in ``.local/layer-cache/<hash>`` so repeated synths
(the test suite's in-process synths, the CLI's) copy it instead of reaching PyPI again.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO = Path(__file__).resolve().parents[2]
LAYER_DIR = REPO / "layers" / "openfeature"
REQUIREMENTS = LAYER_DIR / "requirements.txt"
CACHE_DIR = REPO / ".local" / "layer-cache"
#: The platform the functions run on (``observed_function.RUNTIME`` / x86_64).
PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_x86_64"


def pip_install_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """Wheels only, for the Lambda runtime's Python and platform, whatever this machine is."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--platform",
        PLATFORM,
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


@jsii.implements(ILocalBundling)
class PipInstall:
    """Local bundling of the layer: ``python/`` holds what pip installed."""

    def __init__(self, requirements: Path = REQUIREMENTS, cache_dir: Path = CACHE_DIR) -> None:
        self.requirements = requirements
        self.cache_dir = cache_dir

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        digest = hashlib.sha256(self.requirements.read_bytes()).hexdigest()[:16]
        cached = self.cache_dir / f"openfeature-{digest}"
        if not (cached / "python").is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.cache_dir) as building:
                subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments, pinned file
                    pip_install_command(Path(building) / "python", self.requirements),
                    check=True,
                    capture_output=True,
                )
                shutil.rmtree(cached, ignore_errors=True)
                shutil.move(building, cached)
                Path(building).mkdir()  # TemporaryDirectory removes it on exit
        shutil.copytree(cached / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True


class OpenFeatureLayer(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, runtime: lambda_.Runtime) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="openfeature-sdk for configpipe.client.openfeature",
            compatible_runtimes=[runtime],
            compatible_architectures=[lambda_.Architecture.X86_64],
            code=lambda_.Code.from_asset(
                str(LAYER_DIR),
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    image=runtime.bundling_image,
                    # Used only where local bundling is refused (it never is here).
                    command=["bash", "-c", "pip install -r requirements.txt -t /asset-output/python"],
                    local=PipInstall(),
                ),
            ),
        )
