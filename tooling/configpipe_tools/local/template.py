"""The synthesised CloudFormation template: produced by the real CDK CLI, read as data.

The local pipeline's wiring comes only from here, so a change to ``stacks/`` changes what runs
locally. Synthesis is cached under ``.local/cdk.out`` keyed by a hash of everything the CDK app reads
(:data:`SYNTH_INPUTS`: ``app.py``, ``cdk.json``, ``stacks/``, the runtime under ``functions/``
that the stack imports and packages as its asset, and the pinned dependencies); ``--resynth``
forces it. The test suite reads its template from the same cache, so a run synthesises once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_NAME = "ConfigPipe"
_STAMP = ".configpipe-local-stamp"


class TemplateError(Exception):
    """The template could not be produced or read."""


def jsii_quiet_environment() -> dict[str, str]:
    """The variables that silence jsii's Node-version banners. The end-of-life one takes the
    Node *major versions* to stay quiet about (a comma list), not a flag."""
    node = shutil.which("node")
    major = ""
    if node is not None:
        result = subprocess.run(  # noqa: S603 - the machine's own node, fixed arguments
            [node, "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True, check=False
        )
        major = result.stdout.strip()
    return {
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": major,
    }


def repo_root() -> Path:
    """The checkout this package lives in (``tooling/configpipe_tools/local`` → three levels up)."""
    configured = os.environ.get("CONFIGPIPE_REPO")
    return Path(configured).resolve() if configured else Path(__file__).resolve().parents[3]


#: Files and folders (relative to the checkout) whose content the synthesised output depends
#: on: the app, its context, the stacks, the runtime the stacks import and ship as the Lambda
#: asset, and the pinned Python and CDK CLI versions.
SYNTH_INPUTS = (
    "app.py",
    "cdk.json",
    "stacks",
    "functions",
    "layers",
    "requirements.txt",
    "package.json",
    "package-lock.json",
)
_IGNORED = ("__pycache__", ".pyc", ".pyo", ".mypy_cache", ".pytest_cache", ".ruff_cache")


def _input_files(repo: Path) -> Iterator[Path]:
    for name in SYNTH_INPUTS:
        path = repo / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for candidate in candidates:
            if candidate.is_file() and not any(part.endswith(_IGNORED) for part in candidate.parts):
                yield candidate


def _inputs_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for path in _input_files(repo):
        digest.update(str(path.relative_to(repo)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def synthesise(repo: Path | None = None, out_dir: Path | None = None, *, force: bool = False) -> Path:
    """Run ``npx cdk synth`` (the real CLI, as a deploy would) unless the cached output was
    synthesised from the same inputs; return the stack's template path."""
    repo = repo or repo_root()
    out_dir = out_dir or repo / ".local" / "cdk.out"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # One synth at a time per cache (a test run, its e2e pipeline and `make up` share it): the
    # second waits, then finds the first one's output current.
    with (out_dir.parent / f".{out_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _synthesise_locked(repo, out_dir, force=force)


def cached_template(repo: Path | None = None, out_dir: Path | None = None) -> Path | None:
    """The cached template when it was synthesised from the current inputs (no synth needed)."""
    repo = repo or repo_root()
    out_dir = out_dir or repo / ".local" / "cdk.out"
    stamp = out_dir / _STAMP
    if not (stamp.is_file() and stamp.read_text() == _inputs_digest(repo)):
        return None
    try:
        return template_path(out_dir)
    except TemplateError:
        return None


def _synthesise_locked(repo: Path, out_dir: Path, *, force: bool) -> Path:
    digest = _inputs_digest(repo)
    stamp = out_dir / _STAMP
    if not force and stamp.is_file() and stamp.read_text() == digest:
        return template_path(out_dir)
    npx = shutil.which("npx")
    if npx is None:
        raise TemplateError("npx (Node.js) is needed to synthesise the stack; or pass --template PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    # A failed synth must not leave the old stamp over half-new output, and assets of earlier
    # inputs would pile up (the CLI adds, never removes).
    stamp.unlink(missing_ok=True)
    for stale in out_dir.glob("asset.*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    env = {**os.environ, **jsii_quiet_environment()}
    result = subprocess.run(  # noqa: S603 - the project's own CDK CLI, fixed arguments
        [npx, "--no-install", "cdk", "synth", "--quiet", "-o", str(out_dir)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        hint = ""
        if (out_dir / "manifest.json").is_file():
            hint = f"\n(to run the last template synthesised instead: --template {out_dir})"
        raise TemplateError(f"cdk synth failed (exit {result.returncode}):\n{result.stderr[-3000:]}{hint}")
    stamp.write_text(digest)
    return template_path(out_dir)


def template_path(cdk_out: Path, stack: str = STACK_NAME) -> Path:
    """The template file of ``stack`` in a cloud assembly (per its ``manifest.json``)."""
    manifest_file = cdk_out / "manifest.json"
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
        for name, artifact in manifest.get("artifacts", {}).items():
            if artifact.get("type") == "aws:cloudformation:stack" and name == stack:
                return cdk_out / artifact["properties"]["templateFile"]
    candidate = cdk_out / f"{stack}.template.json"
    if candidate.is_file():
        return candidate
    raise TemplateError(f"no template for stack {stack} in {cdk_out}")


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    depends_on: tuple[str, ...] = ()


@dataclass
class Template:
    """A CloudFormation template with the queries the local pipeline needs."""

    body: dict[str, Any]
    path: Path | None = None
    resources: dict[str, Resource] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = {}
        for logical_id, raw in self.body.get("Resources", {}).items():
            depends = raw.get("DependsOn", [])
            self.resources[logical_id] = Resource(
                logical_id=logical_id,
                type=raw["Type"],
                properties=raw.get("Properties", {}) or {},
                depends_on=tuple([depends] if isinstance(depends, str) else depends),
            )

    @classmethod
    def load(cls, path: Path) -> Template:
        if path.is_dir():
            path = template_path(path)
        try:
            return cls(json.loads(path.read_text()), path)
        except (OSError, ValueError) as error:
            raise TemplateError(f"cannot read template {path}: {error}") from error

    def references(self, resource: Resource) -> set[str]:
        """Logical ids ``resource`` refers to (Ref, GetAtt, Sub, DependsOn)."""
        found = set(resource.depends_on)
        found.update(_referenced_ids(resource.properties))
        return {r for r in found if r in self.resources}

    def creation_order(self) -> list[Resource]:
        """Resources ordered so that everything a resource refers to comes before it."""
        ordered: list[Resource] = []
        state: dict[str, int] = {}

        def visit(logical_id: str) -> None:
            if state.get(logical_id) == 2:
                return
            if state.get(logical_id) == 1:
                return  # a cycle (e.g. a policy naming its own role): creation order is moot
            state[logical_id] = 1
            for ref in sorted(self.references(self.resources[logical_id])):
                visit(ref)
            state[logical_id] = 2
            ordered.append(self.resources[logical_id])

        for logical_id in self.resources:
            visit(logical_id)
        return ordered

    def outputs(self) -> dict[str, Any]:
        return {name: o.get("Value") for name, o in self.body.get("Outputs", {}).items()}


def _referenced_ids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield (target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
            for name in _sub_names(str(text)):
                yield name.split(".")[0]
        for item in value.values():
            yield from _referenced_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_ids(item)


def _sub_names(text: str) -> Iterable[str]:
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            return
        name = text[start + 2 : end]
        if not name.startswith("!"):
            yield name
        start = text.find("${", end)


class UnresolvedError(TemplateError):
    """An intrinsic refers to something the local pipeline did not create."""


class Resolver:
    """Resolves CloudFormation intrinsics against what was created in the emulator.

    ``refs[logical_id]`` is what ``Ref`` returns; ``attrs[logical_id][name]`` what ``GetAtt``
    returns."""

    def __init__(self, *, region: str, account: str, stack_name: str = STACK_NAME) -> None:
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local",
            "AWS::NoValue": None,
        }
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}

    def register(self, logical_id: str, ref: Any, **attrs: Any) -> None:
        self.refs[logical_id] = ref
        self.attrs.setdefault(logical_id, {}).update(attrs)

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise UnresolvedError(f"Ref {name}: not created locally")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self.attrs[logical_id][attribute]
        except KeyError:
            raise UnresolvedError(f"GetAtt {logical_id}.{attribute}: not available locally") from None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self.resolve(items))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::If":
                raise UnresolvedError("Fn::If: conditions are not evaluated locally")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg[0], self.resolve(arg[1])) if isinstance(arg, list) else (arg, {})
        out = str(text)
        for name in set(_sub_names(out)):
            if name in variables:
                replacement = variables[name]
            elif "." in name:
                logical_id, attribute = name.split(".", 1)
                replacement = self.get_att(logical_id, attribute)
            else:
                replacement = self.ref(name)
            out = out.replace("${" + name + "}", str(replacement))
        return out.replace("${!", "${")

    def try_resolve(self, value: Any, default: Any = None) -> Any:
        try:
            return self.resolve(value)
        except UnresolvedError:
            return default
