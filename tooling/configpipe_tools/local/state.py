"""What ``up --keep-state`` keeps across restarts: the emulator's data, saved to
``<state-dir>/emulator-state.json`` when ``up`` stops and restored when it starts again, before
any function runs.

The moto server keeps everything in memory and (moto 5) has no persistence of its own, so the
data a user makes through the pipeline is saved here, by the stack's logical ids:

- every item of every DynamoDB table of the stack (the change log: history, current versions,
  releases, rollouts; the demo services' applied table). Restored with no stream records: a
  restart replays nothing, as a table that was never emptied would not;
- the stack's KMS keys, with their ids and key material (in the emulator's backend, this
  process): the change log's ciphertexts of secret values still decrypt, and the HMAC value
  hashes of secrets stay the same;
- SSM parameters the template did not create (the materialised values): current value;
- Secrets Manager secrets the template did not create, each version that holds a stage (the
  current one, a rollout's candidate) with its version id and stages: a secret version's id is
  derived from its config version, and readers ask for it by that id.

Not kept: resources made outside the stack (your queues, rules, alarms, the demo stand-ins and
their aliases), SSM parameter history, the function logs.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from configpipe_tools.local.provision import LocalStack
    from configpipe_tools.local.template import Template

STATE_FILE = "emulator-state.json"
_FORMAT = 1
_CURRENT, _PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
#: DynamoDB's BatchWriteItem limit
_BATCH = 25

Client = Callable[[str], Any]


class StateFileError(Exception):
    """The saved state cannot be read (not JSON, or another format)."""


@dataclass
class SavedState:
    """The emulator's data at the last stop of ``up --keep-state``."""

    saved_at: str = ""
    #: KMS key logical id → {"keyId", "material" (bytes)}
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: table logical id → items (DynamoDB JSON)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> SavedState | None:
        """The state saved in ``path``; ``None`` when there is none yet."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(), object_hook=_decode_bytes)
        except ValueError as error:
            raise StateFileError(
                f"{path} is not a saved state ({error}); move it away to start empty"
            ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise StateFileError(f"{path} has another format; move it away to start empty")
        return cls(
            saved_at=str(data.get("savedAt", "")),
            keys=data.get("keys", {}),
            tables=data.get("tables", {}),
            parameters=data.get("parameters", []),
            secrets=data.get("secrets", []),
        )

    def write(self, path: Path) -> None:
        """Write atomically: an interrupted save leaves the previous state whole."""
        body = {
            "format": _FORMAT,
            "savedAt": self.saved_at,
            "keys": self.keys,
            "tables": self.tables,
            "parameters": self.parameters,
            "secrets": self.secrets,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        # Secrets Manager's values are in it (as the emulator holds them): readable by the owner only.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(body, default=_encode_bytes, indent=1) + "\n")
        os.replace(partial, path)

    def summary(self) -> str:
        items = sum(len(rows) for rows in self.tables.values())
        return (
            f"{items} item(s) in {len(self.tables)} table(s), {len(self.parameters)} parameter(s), "
            f"{len(self.secrets)} secret(s), {len(self.keys)} KMS key(s)"
        )


def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot save {type(value).__name__}")


def _decode_bytes(value: dict[str, Any]) -> Any:
    if value.keys() == {"$base64"}:
        return base64.b64decode(value["$base64"])
    return value


# --- saving ------------------------------------------------------------------------------


def capture(stack: LocalStack, template: Template, client: Client) -> SavedState:
    """The emulator's data now (call it when no function runs any more)."""
    created = _created_by_template(stack, template)
    return SavedState(
        saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
        keys={lid: _key(stack.physical[lid]) for lid in _logical_ids(stack, template, "AWS::KMS::Key")},
        tables={
            lid: list(_items(client("dynamodb"), stack.physical[lid]))
            for lid in _logical_ids(stack, template, "AWS::DynamoDB::Table")
        },
        parameters=_parameters(client("ssm"), exclude=created),
        secrets=_secrets(client("secretsmanager"), exclude=created),
    )


def _logical_ids(stack: LocalStack, template: Template, resource_type: str) -> list[str]:
    return [
        r.logical_id
        for r in template.creation_order()
        if r.type == resource_type and r.logical_id in stack.physical
    ]


def _created_by_template(stack: LocalStack, template: Template) -> set[str]:
    kinds = ("AWS::SSM::Parameter", "AWS::SecretsManager::Secret")
    return {stack.physical[lid] for kind in kinds for lid in _logical_ids(stack, template, kind)}


def _kms_backend() -> Any:
    from moto.kms.models import kms_backends

    from configpipe_tools.local.provision import ACCOUNT, REGION

    return kms_backends[ACCOUNT][REGION]


def _key(arn: str) -> dict[str, Any]:
    key_id = arn.rsplit("/", 1)[-1]
    return {"keyId": key_id, "material": bytes(_kms_backend().keys[key_id].key_material)}


def _items(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from page.get("Items", [])


def _parameters(ssm: Any, *, exclude: set[str]) -> list[dict[str, Any]]:
    described = [
        p
        for page in ssm.get_paginator("describe_parameters").paginate()
        for p in page.get("Parameters", [])
        if p["Name"] not in exclude
    ]
    descriptions = {p["Name"]: p.get("Description") for p in described}
    saved = []
    for start in range(0, len(described), 10):
        names = [p["Name"] for p in described[start : start + 10]]
        for parameter in ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]:
            entry = {k: parameter[k] for k in ("Name", "Type", "Value")}
            if descriptions.get(parameter["Name"]):
                entry["Description"] = descriptions[parameter["Name"]]
            saved.append(entry)
    return saved


def _secrets(secretsmanager: Any, *, exclude: set[str]) -> list[dict[str, Any]]:
    saved = []
    pages = secretsmanager.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
    for secret in (s for page in pages for s in page.get("SecretList", [])):
        if secret["ARN"] in exclude:
            continue
        entry: dict[str, Any] = {"Name": secret["Name"], "Versions": _versions(secretsmanager, secret["ARN"])}
        for field_name in ("Description", "KmsKeyId", "Tags"):
            if secret.get(field_name):
                entry[field_name] = secret[field_name]
        entry["Deleted"] = bool(secret.get("DeletedDate"))
        saved.append(entry)
    return saved


def _versions(secretsmanager: Any, arn: str) -> list[dict[str, Any]]:
    """Versions holding a stage other than AWSPREVIOUS (which the emulator sets by itself),
    oldest first, the current one last: restoring them in this order ends in the same stages."""
    listed = secretsmanager.list_secret_version_ids(SecretId=arn, IncludeDeprecated=False)["Versions"]
    versions = []
    for version in sorted(
        listed, key=lambda v: (_CURRENT in v.get("VersionStages", []), v.get("CreatedDate", 0))
    ):
        stages = [s for s in version.get("VersionStages", []) if s != _PREVIOUS]
        if not stages:
            continue
        value = secretsmanager.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
        entry = {"VersionId": version["VersionId"], "VersionStages": stages}
        for kind in ("SecretString", "SecretBinary"):
            if kind in value:
                entry[kind] = value[kind]
        versions.append(entry)
    return versions


# --- restoring ----------------------------------------------------------------------------


def key_adopter(saved: SavedState | None) -> Callable[[str, str], str]:
    """For the provisioner: give the key it just created for a logical id the saved key's id and
    material (ids are random in the emulator; the change log's ciphertexts name the saved one)."""

    def adopt(logical_id: str, created_id: str) -> str:
        entry = (saved.keys if saved else {}).get(logical_id)
        backend = _kms_backend()
        if entry is None or entry["keyId"] in backend.keys:
            return created_id
        key = backend.keys.pop(created_id)
        key.id = entry["keyId"]
        key.arn = f"{key.arn.rsplit('/', 1)[0]}/{key.id}"
        key.key_material = entry["material"]
        backend.keys[key.id] = key
        return str(key.id)

    return adopt


def restore(saved: SavedState, stack: LocalStack, client: Client) -> list[str]:
    """Put the saved data back (call it before any function runs); returns what could not be."""
    problems: list[str] = []
    for logical_id, items in saved.tables.items():
        table = stack.physical.get(logical_id)
        if table is None:
            problems.append(f"table {logical_id} is no longer in the stack: {len(items)} item(s) dropped")
            continue
        try:
            _put_items(client("dynamodb"), table, items)
        except (ClientError, BotoCoreError) as error:
            problems.append(f"table {logical_id}: {error}")
        _forget_stream_records(table)
    for parameter in saved.parameters:
        try:
            client("ssm").put_parameter(**parameter, Overwrite=True)
        except (ClientError, BotoCoreError) as error:
            problems.append(f"parameter {parameter['Name']}: {error}")
    for secret in saved.secrets:
        try:
            _put_secret(client("secretsmanager"), secret)
        except (ClientError, BotoCoreError) as error:
            problems.append(f"secret {secret['Name']}: {error}")
    return problems


def _put_items(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), _BATCH):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]}
        while requests:
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def _forget_stream_records(table: str) -> None:
    """The restore's writes are not changes: drop their stream records before any poller reads
    (the emulator numbers records by their position, so an emptied shard is a fresh one)."""
    from moto.dynamodb.models import dynamodb_backends

    from configpipe_tools.local.provision import ACCOUNT, REGION

    found = dynamodb_backends[ACCOUNT][REGION].tables.get(table)
    if found is not None and found.stream_shard is not None:
        found.stream_shard.items.clear()


def _put_secret(secretsmanager: Any, secret: dict[str, Any]) -> None:
    create: dict[str, Any] = {"Name": secret["Name"]}
    for field_name in ("Description", "KmsKeyId", "Tags"):
        if field_name in secret:
            create[field_name] = secret[field_name]
    secretsmanager.create_secret(**create)
    for version in secret["Versions"]:
        put = {"SecretId": secret["Name"], "ClientRequestToken": version["VersionId"]}
        put["VersionStages"] = version["VersionStages"]
        for kind in ("SecretString", "SecretBinary"):
            if kind in version:
                put[kind] = version[kind]
        secretsmanager.put_secret_value(**put)
    if secret.get("Deleted"):
        secretsmanager.delete_secret(SecretId=secret["Name"], RecoveryWindowInDays=7)
