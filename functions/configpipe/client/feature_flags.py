"""``ConfigPipeStore``: a Powertools for AWS Lambda ``FeatureFlags`` store that reads a flags
document held under one configpipe key, pushed rather than polled.

The document is read through a :class:`~configpipe.client.config.ConfigClient`, so it is the
client's cached copy (a cache hit makes no AWS call) and a push applied by the service's
``config_update_handler`` (built with the same client) changes what ``FeatureFlags.evaluate``
returns at once, without waiting for any ``max_age``. The document is validated with
Powertools' own ``SchemaValidator`` — the same rules the validator Lambda applied when it was
published (docs/feature-flags.md) — once per document object, and an invalid or missing
document never replaces the last good one:

* store unreachable: the client serves its last good values (``stale`` is then true);
* the key holds something that is not a flags document (a key the registry does not mark):
  the last good document is served and a warning logged;
* nothing good ever read: :class:`ConfigurationStoreError`, which ``FeatureFlags.evaluate``
  turns into the caller's default.

During a progressive rollout of the document (docs/rollouts.md) :meth:`features_for` takes a
subject and returns the stable or the candidate document for it; ``get_configuration`` (what
``FeatureFlags`` calls) has no subject, so this execution environment is the subject, as for
``ConfigClient.get``. The OpenFeature provider passes the targeting key.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities import jmespath_utils
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import (
    ConfigurationStoreError,
)
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

from configpipe.client.config import ConfigUnavailableError

if TYPE_CHECKING:
    from configpipe.client.config import ConfigClient

log = logging.getLogger("configpipe.client")

#: Validated documents remembered by identity. Two are live during a rollout (stable and
#: candidate); a few more cover a push landing between reads.
_VALIDATED_KEPT = 4


class FlagsDocumentInvalidError(ConfigurationStoreError):
    """The key holds something that is not a valid flags document and no good one was read
    before (the OpenFeature provider reports it as ``PARSE_ERROR``)."""


class ConfigPipeStore(StoreProvider):
    def __init__(
        self,
        client: ConfigClient,
        key: str,
        envelope: str | None = None,
        jmespath_options: dict[str, Any] | None = None,
    ) -> None:
        """``client``: the service's config client (share it with the update handler so pushes
        reach this store); ``key``: the configpipe key holding the flags document (a service
        key, or a global one when the service has none of that name); ``envelope``: a JMESPath
        expression selecting the flags inside a larger document, as for ``AppConfigStore``."""
        super().__init__()
        self.client = client
        self.key = key
        self.envelope = envelope
        self.jmespath_options = jmespath_options
        self._lock = threading.Lock()
        #: id(raw document) -> (raw document, validated features). Holding the raw document
        #: keeps its id from being reused by another object.
        self._validated: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._last_good: dict[str, Any] | None = None

    @property
    def stale(self) -> bool:
        """Whether the configuration store was unreachable at the last refresh (the document
        served is the last good one)."""
        return self.client.stale

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        """The document under the key, as the client holds it (before the envelope)."""
        return self._raw(None)

    def get_configuration(self) -> dict[str, Any]:
        """The flags (the envelope applied), validated; the last good flags when the key holds
        none or an invalid document."""
        return self.features_for(None)

    def features_for(self, subject: str | None) -> dict[str, Any]:
        """The validated flags ``subject`` reads (the candidate document of a rollout for the
        subjects it has reached). Raises :class:`ConfigurationStoreError` when no good document
        was ever read."""
        try:
            raw = self._raw(subject)
        except ConfigurationStoreError:
            if self._last_good is None:
                raise
            log.warning("flags document unreadable; serving the last good one", extra={"key": self.key})
            return self._last_good
        held = self._validated.get(id(raw))
        if held is not None and held[0] is raw:
            return held[1]
        try:
            features = self._extract(raw)
            SchemaValidator(schema=features, logger=log).validate()
        except Exception as error:  # Powertools' validators raise TypeError on some shapes too
            if self._last_good is None:
                raise FlagsDocumentInvalidError(f"{self.key} is not a valid flags document") from error
            # The message may quote the document; the key and the kind of error are enough.
            log.warning(
                "invalid flags document; serving the last good one",
                extra={"key": self.key, "error": type(error).__name__},
            )
            return self._last_good
        with self._lock:
            if len(self._validated) >= _VALIDATED_KEPT:
                self._validated.pop(next(iter(self._validated)))
            self._validated[id(raw)] = (raw, features)
            self._last_good = features
        return features

    def _raw(self, subject: str | None) -> dict[str, Any]:
        try:
            document = self.client.get(self.key, subject=subject)
        except ConfigUnavailableError as error:
            raise ConfigurationStoreError(f"{self.key} cannot be read: {error}") from error
        if document is None:
            raise ConfigurationStoreError(f"{self.key} holds no flags document")
        if not isinstance(document, dict):
            raise ConfigurationStoreError(
                f"{self.key} holds a JSON {type(document).__name__}, not a document"
            )
        return document

    def _extract(self, raw: dict[str, Any]) -> dict[str, Any]:
        if not self.envelope:
            return raw
        extracted = jmespath_utils.query(
            data=raw, envelope=self.envelope, jmespath_options=self.jmespath_options
        )
        if not isinstance(extracted, dict):
            raise FlagsDocumentInvalidError(f"the envelope of {self.key} selects no document")
        return extracted
