"""KMS adapter: encrypting secret values for the change log and hashing them.

Ciphertexts are bound to one key by the encryption context
``{"configpipe:scope": "service/environment/key"}``: a ciphertext copied onto another
key fails to decrypt. Hashes of secrets are HMACs computed inside KMS, so the change log's
``valueHash`` cannot be brute-forced back into a low-entropy secret.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from configpipe.errors import ConfigpipeError
from configpipe.values import canonical_json

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

SCOPE_CONTEXT_KEY = "configpipe:scope"


class UndecryptableValueError(ConfigpipeError):
    """The ciphertext is not valid for this key's scope (or not base64, or not JSON)."""


class SecretsKey:
    def __init__(self, key_id: str, hash_key_id: str | None = None, client: KMSClient | None = None) -> None:
        self._key_id = key_id
        self._hash_key_id = hash_key_id
        self._client = client or boto3.client("kms")

    def encrypt(self, scope: str, value: Any) -> bytes:
        return self._client.encrypt(
            KeyId=self._key_id,
            Plaintext=canonical_json(value).encode("utf-8"),
            EncryptionContext={SCOPE_CONTEXT_KEY: scope},
        )["CiphertextBlob"]

    def decrypt(self, scope: str, ciphertext: bytes) -> str:
        """The canonical JSON text of the value (callers decide whether to parse it)."""
        try:
            plaintext = self._client.decrypt(
                KeyId=self._key_id, CiphertextBlob=ciphertext, EncryptionContext={SCOPE_CONTEXT_KEY: scope}
            )["Plaintext"]
        except ClientError as error:
            if error.response["Error"]["Code"] in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise UndecryptableValueError(f"ciphertext is not valid for {scope}") from error
            raise
        return plaintext.decode("utf-8")

    def re_encrypt(self, from_scope: str, to_scope: str, ciphertext: bytes) -> bytes:
        """``ciphertext`` of ``from_scope`` as a ciphertext of ``to_scope``, under the same key:
        KMS decrypts and encrypts inside the service, so the value never exists in clear here
        (``configpipe promote``; the publisher policy allows it on the same key only)."""
        try:
            return self._client.re_encrypt(
                CiphertextBlob=ciphertext,
                SourceEncryptionContext={SCOPE_CONTEXT_KEY: from_scope},
                SourceKeyId=self._key_id,
                DestinationKeyId=self._key_id,
                DestinationEncryptionContext={SCOPE_CONTEXT_KEY: to_scope},
            )["CiphertextBlob"]
        except ClientError as error:
            if error.response["Error"]["Code"] in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise UndecryptableValueError(f"ciphertext is not valid for {from_scope}") from error
            raise

    def decrypt_b64(self, scope: str, encoded: str) -> tuple[bytes, str]:
        """(ciphertext, canonical JSON) from the base64 ``encryptedValue`` of a change."""
        try:
            ciphertext = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise UndecryptableValueError("encryptedValue is not base64") from error
        return ciphertext, self.decrypt(scope, ciphertext)

    def hmac(self, scope: str, value: Any) -> str:
        """The value's HMAC *for one key*: the scope (service/environment/key, which cannot hold
        a newline) is part of the message, so the same secret hashes differently on every key
        and a team cannot test a guess of another team's secret through a key of its own
        (docs/security.md, M2)."""
        if not self._hash_key_id:
            raise ConfigpipeError("no HMAC key configured for hashing secrets")
        mac = self._client.generate_mac(
            KeyId=self._hash_key_id,
            MacAlgorithm="HMAC_SHA_256",
            Message=scope.encode("utf-8") + b"\n" + canonical_json(value).encode("utf-8"),
        )["Mac"]
        return "hmac-sha256:" + mac.hex()


def encode_ciphertext(ciphertext: bytes) -> str:
    return base64.b64encode(ciphertext).decode("ascii")
