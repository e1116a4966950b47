"""Adapters for the stores configuration is materialised into and read from: SSM Parameter
Store (ordinary values) and Secrets Manager (sensitive values).

Used by the materialiser (writes) and by the client helpers (reads). Every botocore error
is translated here, once: "not found" becomes ``None`` / ``False`` where the caller can act
on it, anything else becomes :class:`StoreUnavailableError`. Messages name the operation,
the parameter or secret and the AWS error code; never a value.

boto3 is imported lazily (only when no client is injected) so that service code importing
the client helpers does not pay for it at import time.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from configpipe.errors import ConfigpipeError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

#: Namespace of the ``ClientRequestToken`` of each secret version: uuid5(namespace, "scope#version").
#: Fixed forever: changing it would make retries of old versions create duplicate versions.
SECRET_TOKEN_NAMESPACE = uuid.UUID("6f1c2d0e-6a43-5c1e-9d7b-2f2b8c0c0f1a")
SECRET_RECOVERY_DAYS = 7
CURRENT_STAGE = "AWSCURRENT"
#: The stage of a rollout's sensitive candidate: readable by version id or stage, never current.
CANDIDATE_STAGE = "CONFIGPIPE_CANDIDATE"


class StoreUnavailableError(ConfigpipeError):
    """The store could not be reached or refused the call (throttling, permissions, network)."""

    def __init__(self, operation: str, target: str, code: str) -> None:
        super().__init__(f"{operation} {target} failed: {code}")
        self.operation = operation
        self.target = target
        self.code = code


def secret_version_token(scope: str, version: int) -> str:
    """The Secrets Manager version id of config version ``version`` of ``scope``: deterministic,
    so a retried PutSecretValue is a no-op and a reader can ask for exactly that version."""
    return str(uuid.uuid5(SECRET_TOKEN_NAMESPACE, f"{scope}#{version}"))


def _holder(stages: Any, stage: str) -> str | None:
    return next((version for version, held in stages.items() if stage in held), None)


def _tag_list(tags: dict[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _missing_tags(described: Any, tags: dict[str, str]) -> dict[str, str]:
    """The tags of ``tags`` a described secret lacks or holds with another value."""
    held = {t.get("Key"): t.get("Value") for t in described.get("Tags", []) or []}
    return {k: v for k, v in tags.items() if held.get(k) != v}


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


class ParameterStore:
    """SSM Parameter Store, ``String`` parameters holding canonical JSON."""

    def __init__(self, client: SSMClient | None = None) -> None:
        self._injected = client

    @property
    def client(self) -> SSMClient:
        if self._injected is None:
            import boto3

            self._injected = boto3.client("ssm")
        return self._injected

    def put(self, name: str, value: str, tags: dict[str, str] | None = None) -> int:
        """Write ``value`` (overwriting), then set ``tags``; returns SSM's own version number.

        PutParameter refuses ``Tags`` with ``Overwrite``, so the tags are a second call, made
        on every write: AddTagsToResource is idempotent, and a crash between the two calls is
        repaired by the replay that re-runs both (a "tag only when created" rule would not be:
        the replayed put is no longer the creation)."""
        try:
            version = int(
                self.client.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)["Version"]
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("PutParameter", name, _code(error)) from error
        if tags:
            try:
                self.client.add_tags_to_resource(
                    ResourceType="Parameter", ResourceId=name, Tags=_tag_list(tags)
                )
            except (ClientError, BotoCoreError) as error:
                raise StoreUnavailableError("AddTagsToResource", name, _code(error)) from error
        return version

    def delete(self, name: str) -> bool:
        """Delete the parameter; ``False`` if it did not exist (a retried delete)."""
        try:
            self.client.delete_parameter(Name=name)
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return False
            raise StoreUnavailableError("DeleteParameter", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("DeleteParameter", name, _code(error)) from error
        return True

    def get(self, name: str) -> str | None:
        try:
            return self.client.get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return None
            raise StoreUnavailableError("GetParameter", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("GetParameter", name, _code(error)) from error

    def get_by_path(self, path: str, recursive: bool = False) -> dict[str, str]:
        """Every parameter directly under ``path`` (at any depth when ``recursive``) as
        {name relative to path: value}."""
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"Path": path, "Recursive": recursive, "MaxResults": 10}
        try:
            while True:
                page = self.client.get_parameters_by_path(**kwargs)
                for parameter in page.get("Parameters", []):
                    found[parameter["Name"][len(path) :]] = parameter["Value"]
                token = page.get("NextToken")
                if not token:
                    return found
                kwargs["NextToken"] = token
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("GetParametersByPath", path, _code(error)) from error

    def history(self, name: str) -> list[str]:
        """Every value the parameter still has in its history, oldest first (SSM keeps 100)."""
        values: list[str] = []
        kwargs: dict[str, Any] = {"Name": name, "MaxResults": 50}
        try:
            while True:
                page = self.client.get_parameter_history(**kwargs)
                values.extend(p["Value"] for p in page.get("Parameters", []))
                token = page.get("NextToken")
                if not token:
                    return values
                kwargs["NextToken"] = token
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return values
            raise StoreUnavailableError("GetParameterHistory", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("GetParameterHistory", name, _code(error)) from error


class SecretStore:
    """Secrets Manager, one secret per sensitive key, one secret version per config version."""

    def __init__(self, client: SecretsManagerClient | None = None, kms_key_id: str | None = None) -> None:
        self._injected = client
        self._kms_key_id = kms_key_id

    @property
    def client(self) -> SecretsManagerClient:
        if self._injected is None:
            import boto3

            self._injected = boto3.client("secretsmanager")
        return self._injected

    def put_version(self, name: str, secret_string: str, token: str, tags: dict[str, str]) -> str:
        """Make ``secret_string`` the current value under version id ``token``; returns the ARN.

        Creates the secret if missing and restores it if it is scheduled for deletion (checked
        with DescribeSecret first: PutSecretValue on a deleted secret is refused by AWS and
        silently accepted by some emulators). A retry with the same token and value is a
        no-op in Secrets Manager, so this is idempotent."""
        try:
            try:
                described = self.client.describe_secret(SecretId=name)
            except ClientError as error:
                if _code(error) != "ResourceNotFoundException":
                    raise
                return self._create(name, secret_string, token, tags)
            if described.get("DeletedDate"):
                # Scheduled for deletion by an earlier tombstone; the key was put again.
                self.client.restore_secret(SecretId=name)
            self._retag(name, described, tags)
            stages = described.get("VersionIdsToStages", {})
            if token in stages:
                # The version exists already (a retry, or a rollout's candidate that is now
                # complete). PutSecretValue with an existing token changes nothing, so it
                # would never become AWSCURRENT: move the stage to it explicitly.
                if CURRENT_STAGE not in stages[token]:
                    self._move_stage(name, CURRENT_STAGE, token, stages)
                return described["ARN"]
            return self._put(name, secret_string, token)
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("PutSecretValue", name, _code(error)) from error

    def put_staged_version(
        self, name: str, secret_string: str, token: str, stages: list[str], tags: dict[str, str]
    ) -> str:
        """Add ``secret_string`` under version id ``token`` with exactly ``stages`` (never
        ``AWSCURRENT`` unless asked): the current value stays what it was. A secret that does
        not exist is created empty first (creating it with a value would make that value
        current); one scheduled for deletion is restored. Idempotent like :meth:`put_version`."""
        try:
            described: dict[str, Any]
            try:
                described = dict(self.client.describe_secret(SecretId=name))
            except ClientError as error:
                if _code(error) != "ResourceNotFoundException":
                    raise
                described = self._create_empty(name, tags)
            if described.get("DeletedDate"):
                self.client.restore_secret(SecretId=name)
            self._retag(name, described, tags)
            existing = described.get("VersionIdsToStages", {})
            if token in existing:
                for stage in stages:
                    if stage not in existing[token]:
                        self._move_stage(name, stage, token, existing)
                return str(described["ARN"])
            response = self.client.put_secret_value(
                SecretId=name, SecretString=secret_string, ClientRequestToken=token, VersionStages=stages
            )
            return response["ARN"]
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("PutSecretValue", name, _code(error)) from error

    def remove_stage(self, name: str, stage: str) -> bool:
        """Take ``stage`` off whichever version holds it; ``False`` if none does, or the secret
        is missing or scheduled for deletion (nothing can read the stage then)."""
        try:
            described = self.client.describe_secret(SecretId=name)
            if described.get("DeletedDate"):
                return False
            holder = _holder(described.get("VersionIdsToStages", {}), stage)
            if holder is None:
                return False
            self.client.update_secret_version_stage(
                SecretId=name, VersionStage=stage, RemoveFromVersionId=holder
            )
        except ClientError as error:
            if _code(error) in {"ResourceNotFoundException", "InvalidRequestException"}:
                return False
            raise StoreUnavailableError("UpdateSecretVersionStage", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("UpdateSecretVersionStage", name, _code(error)) from error
        return True

    def _retag(self, name: str, described: Any, tags: dict[str, str]) -> None:
        """Bring an existing secret's tags up to date (a secret made before a tag existed, or
        an Owner that changed in the registry). DescribeSecret already returned its tags, so
        the steady state costs no extra call."""
        missing = _missing_tags(described, tags)
        if missing:
            self.client.tag_resource(SecretId=name, Tags=_tag_list(missing))

    def _move_stage(self, name: str, stage: str, token: str, stages: dict[str, list[str]]) -> None:
        holder = _holder(stages, stage)
        kwargs: dict[str, Any] = {"SecretId": name, "VersionStage": stage, "MoveToVersionId": token}
        if holder is not None:
            kwargs["RemoveFromVersionId"] = holder
        self.client.update_secret_version_stage(**kwargs)

    def _create_empty(self, name: str, tags: dict[str, str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "Name": name,
            "Tags": _tag_list(tags),
        }
        if self._kms_key_id:
            kwargs["KmsKeyId"] = self._kms_key_id
        try:
            self.client.create_secret(**kwargs)
        except ClientError as error:
            if _code(error) != "ResourceExistsException":
                raise
        return dict(self.client.describe_secret(SecretId=name))

    def _put(self, name: str, secret_string: str, token: str) -> str:
        response = self.client.put_secret_value(
            SecretId=name, SecretString=secret_string, ClientRequestToken=token
        )
        return response["ARN"]

    def _create(self, name: str, secret_string: str, token: str, tags: dict[str, str]) -> str:
        kwargs: dict[str, Any] = {
            "Name": name,
            "SecretString": secret_string,
            "ClientRequestToken": token,
            "Tags": _tag_list(tags),
        }
        if self._kms_key_id:
            kwargs["KmsKeyId"] = self._kms_key_id
        try:
            return self.client.create_secret(**kwargs)["ARN"]
        except ClientError as error:
            if _code(error) != "ResourceExistsException":
                raise
            # Lost a race with a concurrent creator: the secret exists now, so put the value.
            return self._put(name, secret_string, token)

    def schedule_deletion(self, name: str, recovery_days: int = SECRET_RECOVERY_DAYS) -> bool:
        """Schedule the secret's deletion; ``False`` if it does not exist or is already scheduled."""
        try:
            self.client.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        except ClientError as error:
            # InvalidRequestException: already scheduled for deletion (a retried delete).
            if _code(error) in {"ResourceNotFoundException", "InvalidRequestException"}:
                return False
            raise StoreUnavailableError("DeleteSecret", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("DeleteSecret", name, _code(error)) from error
        return True

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeSecret (metadata and version stages, never the value); ``None`` if missing."""
        try:
            return dict(self.client.describe_secret(SecretId=name))
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return None
            raise StoreUnavailableError("DescribeSecret", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("DescribeSecret", name, _code(error)) from error

    def arn(self, name: str) -> str | None:
        try:
            return self.client.describe_secret(SecretId=name)["ARN"]
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return None
            raise StoreUnavailableError("DescribeSecret", name, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("DescribeSecret", name, _code(error)) from error

    def get_value(self, secret_id: str, version_id: str | None = None) -> str | None:
        """The secret's string (``version_id``: exactly that version; else the current one);
        ``None`` if the secret or that version does not exist, or the secret is deleted."""
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            return self.client.get_secret_value(**kwargs).get("SecretString")
        except ClientError as error:
            if _code(error) in {"ResourceNotFoundException", "InvalidRequestException"}:
                return None
            raise StoreUnavailableError("GetSecretValue", secret_id, _code(error)) from error
        except BotoCoreError as error:
            raise StoreUnavailableError("GetSecretValue", secret_id, _code(error)) from error
