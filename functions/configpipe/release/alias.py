"""Lambda alias adapter: read an alias, update it guarded by its RevisionId, read a version's
configuration. botocore errors become release domain errors here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from configpipe.release.errors import (
    AliasNotFoundError,
    AliasRevisionConflictError,
    AliasUpdateRefusedError,
    FunctionNotFoundError,
    VersionNotFoundError,
)
from configpipe.release.model import AliasState, AliasTarget, normalise_weights

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class VersionConfig(BaseModel):
    """The parts of a version's configuration Lambda compares before it accepts a weighted alias."""

    model_config = ConfigDict(frozen=True)

    version: str
    role: str
    dead_letter_target: str | None = None

    def routing_conflicts(self, other: VersionConfig) -> list[str]:
        """Fields that differ and make Lambda refuse routing between the two versions."""
        fields = []
        if self.role != other.role:
            fields.append("role")
        if self.dead_letter_target != other.dead_letter_target:
            fields.append("deadLetterConfig")
        return fields


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _alias_state(response: Any) -> AliasState:
    routing = response.get("RoutingConfig") or {}
    return AliasState(
        function_version=response["FunctionVersion"],
        weights=normalise_weights(routing.get("AdditionalVersionWeights")),
        revision_id=response.get("RevisionId", ""),
    )


class LambdaAliases:
    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client or boto3.client("lambda")

    def get(self, function: str, alias: str) -> AliasState:
        try:
            return _alias_state(self._client.get_alias(FunctionName=function, Name=alias))
        except ClientError as e:
            if _code(e) == "ResourceNotFoundException":
                raise AliasNotFoundError(function, alias) from e
            raise

    def update(self, function: str, alias: str, target: AliasTarget, revision_id: str) -> AliasState:
        """Point the alias at ``target``; refused with :class:`AliasRevisionConflictError` if the
        alias changed since ``revision_id`` was read. An empty weight map clears the routing."""
        kwargs: dict[str, Any] = {
            "FunctionName": function,
            "Name": alias,
            "FunctionVersion": target.function_version,
            "RoutingConfig": {"AdditionalVersionWeights": dict(target.weights)},
        }
        if revision_id:
            kwargs["RevisionId"] = revision_id
        try:
            return _alias_state(self._client.update_alias(**kwargs))
        except ClientError as e:
            code = _code(e)
            if code == "PreconditionFailedException":
                raise AliasRevisionConflictError(function, alias) from e
            if code == "ResourceNotFoundException":
                raise AliasNotFoundError(function, alias) from e
            if code == "InvalidParameterValueException":
                raise AliasUpdateRefusedError(str(e)) from e
            raise

    # --- the beta alias (issue 16): the release's own, written without a revision guard ----------

    def find(self, function: str, alias: str) -> AliasState | None:
        """The alias, or None when it does not exist."""
        try:
            return self.get(function, alias)
        except AliasNotFoundError:
            return None

    def point(self, function: str, alias: str, target: AliasTarget) -> None:
        """Create the alias or repoint it at ``target`` (idempotent: a retry writes the same)."""
        try:
            self._client.update_alias(
                FunctionName=function,
                Name=alias,
                FunctionVersion=target.function_version,
                RoutingConfig={"AdditionalVersionWeights": dict(target.weights)},
            )
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
            self._client.create_alias(
                FunctionName=function,
                Name=alias,
                FunctionVersion=target.function_version,
                RoutingConfig={"AdditionalVersionWeights": dict(target.weights)},
                Description="configpipe release beta alias",
            )

    def remove(self, function: str, alias: str) -> None:
        """Delete the alias; one that is already gone is fine (a retried restore)."""
        try:
            self._client.delete_alias(FunctionName=function, Name=alias)
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise

    def exists(self, function: str) -> bool:
        try:
            self._client.get_function_configuration(FunctionName=function)
        except ClientError as e:
            if _code(e) == "ResourceNotFoundException":
                return False
            raise
        return True

    def version_config(self, function: str, version: str) -> VersionConfig:
        try:
            config = self._client.get_function_configuration(FunctionName=function, Qualifier=version)
        except ClientError as e:
            if _code(e) == "ResourceNotFoundException":
                if not self.exists(function):
                    raise FunctionNotFoundError(function) from e
                raise VersionNotFoundError(function, version) from e
            raise
        return VersionConfig(
            version=version,
            role=config.get("Role", ""),
            dead_letter_target=(config.get("DeadLetterConfig") or {}).get("TargetArn"),
        )
