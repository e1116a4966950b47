"""Demo fixtures: stand-ins for the service teams' own functions, so a local release has an
alias to shift.

**Not part of the stack.** The registry lists, per service, the functions releases may shift
(``services[*].functions``: ``checkout-api``, ``payments-api``, ``search-api`` in the demo
registry). In AWS those are the teams' own functions, deployed by the teams, never by
configpipe's ``cdk deploy`` — so the synthesised template does not contain them and
:mod:`.provision` does not create them. Locally there is nobody else to deploy them, so this
module creates one stand-in per registered function, in the emulator, the way a team would:

* an execution role ``<function>-demo-role``;
* the function itself (a tiny zip; the emulator needs no container to create, publish or
  alias a function — only to invoke it, and a release never invokes the function it shifts);
* two published versions (``1`` and ``2``, different code, same role and no DLQ, so Lambda
  would accept weighted routing between them);
* the alias ``live`` → version ``1``, no routing config.

The function list is read from the synthesised template (the release function's
registry, ``ReleaseSettings.release_registry`` in its environment), so a service added to the
registry gets a stand-in too.
Idempotent: an existing stand-in is left exactly as it is (a release may have moved it).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from configpipe.release.settings import ReleaseSettings
from configpipe_tools.local.provision import LocalStack

LIVE_ALIAS = "live"
STANDIN_VERSIONS = 2
_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@dataclass(frozen=True)
class ReleaseTarget:
    """A stand-in function with its alias, as it is now in the emulator."""

    function: str
    service: str
    alias: str
    function_version: str
    weights: dict[str, float]
    versions: tuple[str, ...]

    def describe(self) -> str:
        routing = ", ".join(f"v{v} {w:.0%}" for v, w in sorted(self.weights.items())) or "no routing"
        return (
            f"{self.function}:{self.alias} → v{self.function_version} ({routing}); "
            f"published versions {', '.join(self.versions)}"
        )


def registered_functions(stack: LocalStack) -> dict[str, str]:
    """``{function: service}`` for every function the registry lets releases shift, read from
    the release function's environment in the synthesised template (empty if the stack has no
    release manager)."""
    release_function = str(stack.outputs.get("ReleaseFunctionName", ""))
    spec = stack.functions.get(release_function)
    registry_variable = ReleaseSettings.env_name("release_registry")
    if spec is None or registry_variable not in spec.environment:
        return {}
    registry = json.loads(spec.environment[registry_variable])
    return {
        function: service
        for service, entry in sorted(registry.get("services", {}).items())
        for function in entry.get("functions", [])
    }


def _code(function: str, version: int) -> bytes:
    source = (
        f'"""Demo stand-in for {function}, version {version} (configpipe local fixtures)."""\n\n\n'
        f"def handler(event, context):\n"
        f'    return {{"function": "{function}", "version": {version}}}\n'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", source)
    return buffer.getvalue()


def _exists(lambda_client: Any, function: str) -> bool:
    try:
        lambda_client.get_function(FunctionName=function)
    except lambda_client.exceptions.ResourceNotFoundException:
        return False
    return True


def _role_arn(iam: Any, function: str) -> str:
    name = f"{function}-demo-role"[:64]
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=_TRUST_POLICY,
                Description="configpipe local demo fixture: stand-in for a service team's function",
            )["Role"]["Arn"]
        )


def create_standin(client: Callable[[str], Any], function: str, service: str) -> None:
    """Create ``function`` with versions 1..N and ``live`` → 1 (assumes it does not exist)."""
    lam = client("lambda")
    lam.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=_role_arn(client("iam"), function),
        Handler="index.handler",
        Code={"ZipFile": _code(function, 1)},
        Description=f"demo stand-in for the {service} team's {function} (not part of the stack)",
        Tags={"configpipe:demo-fixture": "true", "configpipe:service": service},
    )
    for version in range(1, STANDIN_VERSIONS + 1):
        if version > 1:
            lam.update_function_code(FunctionName=function, ZipFile=_code(function, version))
        published = lam.publish_version(FunctionName=function, Description=f"demo v{version}")
        if published["Version"] != str(version):  # the emulator skips a publish with no change
            raise RuntimeError(f"{function}: expected version {version}, got {published['Version']}")
    lam.create_alias(
        FunctionName=function,
        Name=LIVE_ALIAS,
        FunctionVersion="1",
        Description="demo fixture: what the service serves",
    )


def read_target(client: Callable[[str], Any], function: str, service: str) -> ReleaseTarget:
    lam = client("lambda")
    alias = lam.get_alias(FunctionName=function, Name=LIVE_ALIAS)
    routing = alias.get("RoutingConfig") or {}
    versions = tuple(
        v["Version"]
        for v in lam.list_versions_by_function(FunctionName=function)["Versions"]
        if v["Version"] != "$LATEST"
    )
    return ReleaseTarget(
        function=function,
        service=service,
        alias=LIVE_ALIAS,
        function_version=str(alias["FunctionVersion"]),
        weights={k: float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()},
        versions=versions,
    )


def provision_release_targets(
    client: Callable[[str], Any], stack: LocalStack, only: Iterable[str] | None = None
) -> list[ReleaseTarget]:
    """Make sure every registered release function has its stand-in; return them as they are.

    ``client(service)`` returns a boto3 client on the emulator (``LocalPipeline.client``).
    """
    functions = registered_functions(stack)
    if only is not None:
        wanted = set(only)
        functions = {f: s for f, s in functions.items() if f in wanted}
    targets = []
    for function, service in functions.items():
        if function in stack.functions:  # a registered function the stack itself deploys: real
            continue
        if not _exists(client("lambda"), function):
            create_standin(client, function, service)
        targets.append(read_target(client, function, service))
    return targets
