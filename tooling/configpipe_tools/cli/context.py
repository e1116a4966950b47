"""What every command shares: the global options, one boto3 session, the adapters.

Clients are created lazily, so a command that fails on its input (exit 2) never touches
AWS, and a bad ``--profile`` surfaces inside the command's error handling (exit 5).
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog
from configpipe.crypto import SecretsKey
from configpipe.registry import Registry

DEFAULT_BUS = "configpipe-config-bus"
DEFAULT_TABLE = "ChangeLog"
DEFAULT_SECRETS_KEY = "alias/configpipe-secrets"
DEFAULT_REGISTRY_PARAMETER = "/configpipe/registry"
#: The stack names its redrive function so (stacks/constructs/redrive.py).
DEFAULT_REDRIVE_FUNCTION = "configpipe-redrive"
DEFAULT_DRIFT_FUNCTION = "configpipe-drift"

#: botocore's own retries (standard mode) and short connect timeout: a down endpoint fails
#: in seconds, not minutes. ``AWS_MAX_ATTEMPTS`` still overrides the attempt count.
_BOTO_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)


class FunctionFailedError(Exception):
    """A function invoked by the CLI failed (its error, as Lambda reports it)."""

    def __init__(self, function: str, error: str) -> None:
        super().__init__(f"{function} failed: {error}")
        self.function = function


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@dataclass
class CliContext:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: Explicit names (option or environment); None means: the stack's output, else the default.
    bus_option: str | None = None
    table_option: str | None = None
    secrets_key_option: str | None = None
    registry_parameter_option: str | None = None
    #: ``configpipe release --release-table`` (the release commands' own option).
    release_table_option: str | None = None
    stack: str | None = None
    source: str | None = None
    output: OutputFormat = OutputFormat.TABLE
    author_override: str | None = None
    _session: Any = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _change_log: ChangeLog | None = field(default=None, repr=False)
    _stack_outputs: dict[str, str] | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    # --- resource names: explicit > stack output > default ----------------------------------

    @property
    def bus_name(self) -> str:
        return self.bus_option or self._stack_output("EventBusName") or DEFAULT_BUS

    @property
    def table_name(self) -> str:
        return self.table_option or self._stack_output("ChangeLogTableName") or DEFAULT_TABLE

    @property
    def secrets_key_id(self) -> str:
        return self.secrets_key_option or self._stack_output("SecretsKeyArn") or DEFAULT_SECRETS_KEY

    @property
    def registry_parameter(self) -> str:
        return (
            self.registry_parameter_option
            or self._stack_output("RegistryParameterName")
            or DEFAULT_REGISTRY_PARAMETER
        )

    @property
    def release_table_name(self) -> str | None:
        """Explicit > stack output; CloudFormation generates this name, so there is no default
        that could be right: None when neither says it."""
        return self.release_table_option or self._stack_output("ReleaseTableName")

    @property
    def redrive_function_name(self) -> str:
        return self._stack_output("RedriveFunctionName") or DEFAULT_REDRIVE_FUNCTION

    @property
    def drift_function_name(self) -> str:
        return self._stack_output("DriftFunctionName") or DEFAULT_DRIFT_FUNCTION

    def stack_output(self, name: str) -> str | None:
        """A named output of ``--stack`` (None without a stack, or if it has no such output)."""
        return self._stack_output(name)

    def _stack_output(self, name: str) -> str | None:
        """One DescribeStacks call, only when --stack is given and a name is not explicit."""
        if not self.stack:
            return None
        if self._stack_outputs is None:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
            outputs = stacks[0].get("Outputs", []) if stacks else []
            self._stack_outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        return self._stack_outputs.get(name)

    def resource_names(self) -> dict[str, str]:
        """Names for error messages, without any AWS call (they are used while reporting one)."""
        known = self._stack_outputs or {}
        return {
            "table": self.table_option or known.get("ChangeLogTableName") or DEFAULT_TABLE,
            "bus": self.bus_option or known.get("EventBusName") or DEFAULT_BUS,
            "secrets_key": self.secrets_key_option or known.get("SecretsKeyArn") or DEFAULT_SECRETS_KEY,
            "release_table": self.release_table_option or known.get("ReleaseTableName") or "",
            "stack": self.stack or "",
        }

    # --- AWS --------------------------------------------------------------------------

    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session().client(
                service,
                endpoint_url=self.endpoint_url,
                config=_BOTO_CONFIG,
            )
        return self._clients[service]

    def invoke(self, function: str, request: dict[str, Any]) -> dict[str, Any]:
        """Invoke a configpipe function synchronously with a JSON request; its JSON answer.
        A function error (an exception the function did not turn into an answer) is raised."""
        response = self.client("lambda").invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(request).encode("utf-8"),
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionFailedError(function, body.decode("utf-8", "replace")[:500])
        answer = json.loads(body or b"{}")
        return answer if isinstance(answer, dict) else {"answer": answer}

    def change_log(self) -> ChangeLog:
        if self._change_log is None:
            resource = self.session().resource(
                "dynamodb", endpoint_url=self.endpoint_url, config=_BOTO_CONFIG
            )
            self._change_log = ChangeLog(self.table_name, table=resource.Table(self.table_name))
        return self._change_log

    def bus(self, source: str) -> ConfigBus:
        return ConfigBus(self.bus_name, client=self.client("events"), source=source)

    def secrets(self) -> SecretsKey:
        return SecretsKey(self.secrets_key_id, client=self.client("kms"))

    def author(self) -> str:
        """--author, else who AWS says we are, else the local user name."""
        if self.author_override:
            return self.author_override
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except (BotoCoreError, ClientError):
            # The write itself will report the AWS problem; the author is best effort.
            return os.environ.get("USER") or _login_name()

    def registry(self) -> Registry | None:
        """The deployed service registry, or None when this identity cannot read it (the
        pipeline then remains the only judge of the registry rules)."""
        try:
            text = self.client("ssm").get_parameter(Name=self.registry_parameter)["Parameter"]["Value"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {
                "ParameterNotFound",
                "AccessDeniedException",
                "AccessDenied",
            }:
                return None
            raise
        try:
            return Registry.model_validate_json(text)
        except ValueError:
            return None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
