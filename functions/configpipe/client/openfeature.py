"""``ConfigPipeProvider``: an OpenFeature provider (``openfeature-sdk``) over a configpipe flags
document, pushed rather than polled.

It reads through a :class:`~configpipe.client.feature_flags.ConfigPipeStore` (so the document,
its validation, the last good copy and pushes are the store's) and evaluates with Powertools'
``FeatureFlags`` rule engine, so a flag means the same to both integrations. What OpenFeature
adds is *why* a value was returned:

* ``STATIC`` — the flag has no rules; ``DEFAULT`` — it has rules and none matched (variant
  ``default``); ``TARGETING_MATCH`` — a rule matched (variant = the rule's name);
* ``ERROR`` with ``FLAG_NOT_FOUND`` (no such flag), ``TYPE_MISMATCH`` (the flag's value is not
  the type asked for; the caller's default is returned), ``PARSE_ERROR`` (the key never held a
  valid flags document), ``GENERAL`` (the store was never readable).

The evaluation context's attributes are the rule context; its targeting key is there too as
``targetingKey`` and is the subject of a progressive rollout of the document
(docs/rollouts.md): a targeting key the rollout has reached reads the candidate document.

Events: the SDK emits ``PROVIDER_READY`` after :meth:`initialize` (``PROVIDER_ERROR`` if it
raises); a push of the document applied by the update handler emits
``PROVIDER_CONFIGURATION_CHANGED`` at once, with the flags whose definitions changed (a
document refreshed after its TTL is noticed at the next evaluation); ``PROVIDER_STALE`` while
the store is unreachable and the last good document is served, ``PROVIDER_READY`` when it is
readable again; ``PROVIDER_ERROR`` when there is no document to serve at all.

Powertools has no public call that says *which* rule matched; this module uses
``FeatureFlags._evaluate_conditions`` (Powertools 3.37.0, pinned in requirements.txt), and a
test checks every answer against the public ``FeatureFlags.evaluate``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, GeneralError, ParseError
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from configpipe.client.feature_flags import FlagsDocumentInvalidError

if TYPE_CHECKING:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import FlagValueType

    from configpipe.client.feature_flags import ConfigPipeStore

log = logging.getLogger("configpipe.client")

PROVIDER_NAME = "configpipe"
#: The rule-context key the targeting key is given under.
TARGETING_KEY = "targetingKey"
DEFAULT_VARIANT = "default"

_READY, _STALE, _ERROR = "ready", "stale", "error"


class ConfigPipeProvider(AbstractProvider):
    def __init__(self, store: ConfigPipeStore) -> None:
        """``store``: the flags document's store; its client should be the one the service's
        update handler applies pushes to, so pushes reach this provider at once."""
        super().__init__()
        self.store = store
        self._engine = FeatureFlags(store=store, logger=log)
        self._lock = threading.Lock()
        self._seen: dict[str, Any] | None = None
        self._state = _READY
        self._listening = False

    # --- lifecycle ------------------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Read the document once so the first evaluation is a cache hit; a store that cannot be
        read makes the SDK report ``PROVIDER_ERROR`` (evaluations still run and recover)."""
        if not self._listening:
            self.store.client.on_change(self._on_push)
            self._listening = True
        try:
            self._seen = self.store.features_for(None)
        except FlagsDocumentInvalidError as error:
            self._state = _ERROR
            raise ParseError(str(error)) from error
        except ConfigurationStoreError as error:
            self._state = _ERROR
            raise GeneralError(str(error)) from error
        self._state = _STALE if self.store.stale else _READY

    def _on_push(self, origin: str, key: str) -> None:
        if key == self.store.key:
            self._notice_change(pushed=True)

    def _notice_change(self, pushed: bool = False) -> None:
        """Emit ``PROVIDER_CONFIGURATION_CHANGED`` when the document differs from the one last
        seen. A push always emits (a rollout step changes the document for some targeting keys
        only, so its ``flags_changed`` may be empty)."""
        try:
            current = self.store.features_for(None)
        except ConfigurationStoreError:
            return  # reported by the evaluation that needs the document
        with self._lock:
            previous, self._seen = self._seen, current
        changed = [] if previous is current else _changed_flags(previous or {}, current)
        if changed or pushed:
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=changed, metadata={"configKey": self.store.key})
            )

    def _settle(self, error: ConfigurationStoreError | None = None) -> None:
        """Emit the event of a state change: stale, ready again, or unusable."""
        state = _ERROR if error is not None else (_STALE if self.store.stale else _READY)
        with self._lock:
            previous, self._state = self._state, state
        if state == previous:
            return
        if state == _STALE:
            self.emit_provider_stale(
                ProviderEventDetails(message="store unreachable; serving the last good flags")
            )
        elif state == _READY:
            self.emit_provider_ready(ProviderEventDetails())
        else:
            code = (
                ErrorCode.PARSE_ERROR if isinstance(error, FlagsDocumentInvalidError) else ErrorCode.GENERAL
            )
            self.emit_provider_error(ProviderEventDetails(message=str(error), error_code=code))

    # --- resolution -----------------------------------------------------------------------

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_bool, lambda v: v)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_str, lambda v: v)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_int, lambda v: v)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        # JSON does not tell 2 from 2.0: an integer is a valid float flag value.
        return self._resolve(flag_key, default_value, evaluation_context, _is_number, float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, _is_object, lambda v: v)

    def _resolve(
        self,
        flag_key: str,
        default: Any,
        context: EvaluationContext | None,
        accepts: Any,
        convert: Any,
    ) -> FlagResolutionDetails[Any]:
        subject = context.targeting_key if context is not None else None
        try:
            features = self.store.features_for(subject)
        except ConfigurationStoreError as error:
            self._settle(error)
            code = (
                ErrorCode.PARSE_ERROR if isinstance(error, FlagsDocumentInvalidError) else ErrorCode.GENERAL
            )
            return FlagResolutionDetails(
                value=default, reason=Reason.ERROR, error_code=code, error_message=str(error)
            )
        self._settle()
        if features is not self._seen:
            self._notice_change()  # a refresh after the TTL brought a new document (or a candidate)
        feature = features.get(flag_key)
        if not isinstance(feature, dict):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"flag {flag_key!r} is not in {self.store.key}",
            )
        value, reason, variant = self._evaluate(flag_key, feature, _rule_context(context))
        if not accepts(value):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {flag_key!r} is a JSON {type(value).__name__}",
                variant=variant,
            )
        return FlagResolutionDetails(
            value=convert(value), reason=reason, variant=variant, flag_metadata=self._metadata(subject)
        )

    def _evaluate(
        self, name: str, feature: dict[str, Any], context: dict[str, Any]
    ) -> tuple[Any, Reason, str]:
        """Powertools' evaluation (``FeatureFlags.evaluate``), step by step, to know the reason."""
        boolean = feature.get("boolean_type", True)
        default = feature.get("default")
        rules = feature.get("rules")
        if not rules:
            return (bool(default) if boolean else default), Reason.STATIC, DEFAULT_VARIANT
        for rule_name, rule in rules.items():
            if self._engine._evaluate_conditions(
                rule_name=rule_name, feature_name=name, rule=rule, context=context
            ):
                matched = rule.get("when_match")
                return (bool(matched) if boolean else matched), Reason.TARGETING_MATCH, rule_name
        return default, Reason.DEFAULT, DEFAULT_VARIANT

    def _metadata(self, subject: str | None) -> dict[str, bool | int | float | str]:
        metadata: dict[str, bool | int | float | str] = {"configKey": self.store.key}
        rollout = self.store.client.rollout(self.store.key)
        if rollout is not None:
            metadata["rolloutId"] = str(rollout.get("rolloutId"))
            metadata["readsCandidate"] = self.store.client.reads_candidate(self.store.key, subject=subject)
        if self.store.stale:
            metadata["stale"] = True
        return metadata


def _rule_context(context: EvaluationContext | None) -> dict[str, Any]:
    if context is None:
        return {}
    rule_context = dict(context.attributes)
    if context.targeting_key is not None:
        rule_context[TARGETING_KEY] = context.targeting_key
    return rule_context


def _changed_flags(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict | list)
