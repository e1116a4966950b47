"""Issue 14 on the local pipeline, over HTTP, through the ``configpipe`` CLI: a parameter and a
secret edited by hand are found by ``configpipe drift`` (which invokes the stack's own drift
function), announced, and repaired with ``--repair``; a parameter configpipe never wrote is left
alone. ``configpipe promote`` then copies a service's staging configuration — a secret included,
as ciphertext — into development through the deployed validator and materialiser."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, as_json, eventually

pytestmark = pytest.mark.e2e

SEARCH = "configpipe.team.search"


def configpipe(local: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return local.configpipe(*args, source=SEARCH)


def put_secret(local: LocalStack, environment: str, key: str, secret: str) -> str:
    ciphertext = local.client("kms").encrypt(
        KeyId=local.outputs["SecretsKeyArn"],
        Plaintext=json.dumps(secret).encode(),
        EncryptionContext={"configpipe:scope": f"search/{environment}/{key}"},
    )["CiphertextBlob"]
    return local.put_change(
        SEARCH,
        service="search",
        environment=environment,
        key=key,
        sensitive=True,
        encryptedValue=base64.b64encode(ciphertext).decode(),
    )


def current_secret(local: LocalStack, environment: str, key: str) -> Any:
    sm = local.client("secretsmanager")
    try:
        value = sm.get_secret_value(
            SecretId=f"configpipe/search/{environment}/{key}", VersionStage="AWSCURRENT"
        )
    except (sm.exceptions.ResourceNotFoundException, sm.exceptions.InvalidRequestException):
        return None
    return json.loads(value["SecretString"])


def test_drift_is_found_announced_and_repaired_through_the_cli(local: LocalStack, unique: str) -> None:
    limit, token = f"drift-limit-{unique}", f"drift-api-token-{unique}"
    secret = f"s3cr3t-{unique}"
    local.put_change(SEARCH, service="search", environment="staging", key=limit, value=5)
    put_secret(local, "staging", token, secret)
    eventually(lambda: local.parameter("search", "staging", limit) == 5, what="parameter materialised")
    eventually(lambda: current_secret(local, "staging", token) == secret, what="secret materialised")

    # edited by hand, as with console access
    ssm = local.client("ssm")
    ssm.put_parameter(Name=f"/config/search/staging/{limit}", Value="50", Type="String", Overwrite=True)
    local.client("secretsmanager").put_secret_value(
        SecretId=f"configpipe/search/staging/{token}", SecretString=json.dumps(f"typed-{unique}")
    )
    foreign = f"/config/search/staging/handmade-{unique}"
    ssm.put_parameter(Name=foreign, Value="not configpipe's", Type="String")

    reported = as_json(configpipe(local, "drift", "search", "staging", "-o", "json"), code=3)
    found = {d["key"]: [(f["store"], f["problem"]) for f in d["findings"]] for d in reported["drifted"]}
    assert found[limit] == [("ssm", "changed")]
    assert found[token] == [("secretsmanager", "changed")]
    assert not any(k.startswith("handmade") for k in found)
    assert local.parameter("search", "staging", limit) == 50  # report only
    announced = eventually(
        lambda: local.bus.events("ConfigurationDriftDetected", key=limit), what="drift announced"
    )
    assert announced[0]["source"] == "configpipe.pipeline" and announced[0]["detail"]["repaired"] is False

    repaired = as_json(configpipe(local, "drift", "search", "staging", "--repair", "-o", "json"))
    assert {d["key"] for d in repaired["drifted"] if d["repaired"]} >= {limit, token}
    assert local.parameter("search", "staging", limit) == 5
    assert current_secret(local, "staging", token) == secret
    assert ssm.get_parameter(Name=foreign)["Parameter"]["Value"] == "not configpipe's"
    assert secret not in json.dumps(repaired) and f"typed-{unique}" not in local.logs()

    clean = configpipe(local, "drift", "search", "staging")
    assert clean.returncode == 0, clean.stderr + clean.stdout


def test_promote_staging_to_development_through_the_cli(local: LocalStack, unique: str) -> None:
    limit, token = f"promo-limit-{unique}", f"promo-api-token-{unique}"
    secret = f"promoted-{unique}"
    local.put_change(SEARCH, service="search", environment="staging", key=limit, value={"n": 7})
    local.put_change(SEARCH, service="search", environment="development", key=limit, value={"n": 1})
    put_secret(local, "staging", token, secret)
    eventually(lambda: local.parameter("search", "staging", limit) == {"n": 7}, what="staging value")
    eventually(lambda: local.parameter("search", "development", limit) == {"n": 1}, what="development value")
    eventually(lambda: current_secret(local, "staging", token) == secret, what="staging secret")

    args = ("promote", "search", "--from", "staging", "--to", "development", "--key", limit, "--key", token)
    planned = as_json(configpipe(local, *args, "--dry-run", "-o", "json"))
    assert {c["key"]: c["expectedVersion"] for c in planned["changes"]} == {limit: 1, token: 0}
    assert local.parameter("search", "development", limit) == {"n": 1}

    promoted = as_json(configpipe(local, *args, "--timeout", "90", "-o", "json"))
    assert {c["key"]: c["status"] for c in promoted["changes"]} == {limit: "accepted", token: "accepted"}
    eventually(lambda: local.parameter("search", "development", limit) == {"n": 7}, what="promoted value")
    eventually(lambda: current_secret(local, "development", token) == secret, what="promoted secret")
    updates = eventually(
        lambda: local.bus.events("ConfigurationUpdated", key=limit, environment="development", version=2),
        what="promotion announced",
    )
    assert updates[0]["detail"]["restoreId"] == promoted["promotionId"]
    assert secret not in json.dumps(local.bus.seen)

    again = as_json(configpipe(local, *args, "-o", "json"))
    assert again["changes"] == []
