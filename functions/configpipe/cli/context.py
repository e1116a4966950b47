"""What every command shares: the global options, one boto3 session, the adapters.

Clients are created lazily, so a command that fails on its input (exit 2) never touches
AWS, and a bad ``--profile`` surfaces inside the command's error handling (exit 5).
"""

from __future__ import annotations

import getpass
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

#: botocore's own retries (standard mode) and short connect timeout: a down endpoint fails
#: in seconds, not minutes. ``AWS_MAX_ATTEMPTS`` still overrides the attempt count.
_BOTO_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@dataclass
class CliContext:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    bus_name: str = DEFAULT_BUS
    table_name: str = DEFAULT_TABLE
    source: str | None = None
    secrets_key_id: str = DEFAULT_SECRETS_KEY
    registry_parameter: str = DEFAULT_REGISTRY_PARAMETER
    output: OutputFormat = OutputFormat.TABLE
    author_override: str | None = None
    _session: Any = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _change_log: ChangeLog | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    def resource_names(self) -> dict[str, str]:
        return {"table": self.table_name, "bus": self.bus_name, "secrets_key": self.secrets_key_id}

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
