"""Drift detection and repair (issue 14): does each key's store still hold what the change log
says readers get?

For every key of a (service, environment) the change log knows (``ChangeLog.keys``, deleted
ones included), the version readers keep (``CurrentPointer.version_for_readers``) is compared
with the key's stores:

* a plain value: the SSM parameter's text, hashed, must equal the version's ``valueHash`` (the
  materialiser writes the version's canonical JSON, whose SHA-256 *is* that hash);
* a secret: the secret's ``AWSCURRENT`` stage must be on the version id configpipe derives
  from the config version (``secret_version_token``). A hand edit (PutSecretValue, the console)
  always makes a new version id, so this sees it without reading the secret's value, and the
  value-hash HMAC needs no KMS call. A sensitive key must also have no parameter (a clear copy);
* no value (a deleted key, or a rollout of a key that had none): no parameter and no live
  secret (unless an active rollout keeps its candidate in the secret).

Only names built from keys in the change log are read, so a parameter or secret configpipe
never wrote — even under ``/config/`` — is never looked at, let alone changed. The rollout
view and candidate parameters below a key are the rollout function's and are not checked.

Repair is the materialiser's own ``materialise_current`` (idempotent, re-reads the pointer, so
it cannot put an older version over a newer one), then the key is checked again; ``repaired``
is true only if it is clean. Each drifted key is announced once per run as
``ConfigurationDriftDetected`` — names and the problem only, never a value or a hash of what
was found — and logged the same way.

A key whose pointer moves between the check and the announcement is left to the materialiser
(its stream record is in flight). A scheduled sweep also skips keys whose current version was
accepted less than :data:`SETTLE_SECONDS` ago, for the same reason; an on-demand run checks
everything (a false "changed" there is repaired with the version the materialiser is about to
write anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog, CurrentPointer, VersionRecord, utc_now
from configpipe.contracts import (
    GLOBAL_SERVICE,
    ConfigurationDriftDetected,
    DetailType,
    DriftFinding,
    DriftProblem,
    check_environment,
    check_service,
)
from configpipe.materialise import Materialiser, candidate_in_secret
from configpipe.naming import parameter_name, scope_id, secret_name
from configpipe.observability import logger
from configpipe.registry import Registry
from configpipe.stores import CURRENT_STAGE, ParameterStore, SecretStore, secret_version_token

#: A scheduled sweep leaves alone a key whose current version is younger than this: its stream
#: record is normally materialised within a second, and retried for minutes when it is not.
SETTLE_SECONDS = 300

REPAIR: Literal["repair"] = "repair"
REPORT: Literal["report"] = "report"

#: The refusal code of a request that is not one (the handler's answer, exit 2 in the CLI).
INVALID_DRIFT_REQUEST = "INVALID_DRIFT_REQUEST"


class DriftRequest(BaseModel):
    """What the drift function is invoked with: ``{}`` (its schedule: every registered scope,
    the configured mode) or ``{"service", "environment", "repair"}`` (``configpipe drift``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    service: str | None = None
    environment: str | None = None
    #: None: the configured mode (cdk.json ``drift.mode``).
    repair: bool | None = None

    @model_validator(mode="after")
    def _scope(self) -> DriftRequest:
        if (self.service is None) != (self.environment is None):
            raise ValueError("give both service and environment, or neither (every registered scope)")
        if self.service is not None:
            check_service(self.service)
        if self.environment is not None:
            check_environment(self.environment)
        return self

    @property
    def on_demand(self) -> bool:
        return self.service is not None


@dataclass(frozen=True)
class KeyDrift:
    service: str
    environment: str
    key: str
    version: int | None
    findings: list[DriftFinding]
    repaired: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "key": self.key,
            "version": self.version,
            "findings": [f.to_detail() for f in self.findings],
            "repaired": self.repaired,
        }


@dataclass
class DriftReport:
    mode: str
    scopes: list[str] = field(default_factory=list)
    checked: int = 0
    #: Keys left to the materialiser: their pointer moved, or (a sweep) their version is fresh.
    in_flight: list[str] = field(default_factory=list)
    drifted: list[KeyDrift] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "scopes": self.scopes,
            "checked": self.checked,
            "inFlight": self.in_flight,
            "drifted": [d.to_dict() for d in self.drifted],
            "repaired": sum(1 for d in self.drifted if d.repaired),
        }


def drift_refusal(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def stored_text_hash(text: str) -> str:
    """The ``valueHash`` of a plain version whose canonical JSON is ``text``
    (``configpipe.values.value_hash`` hashes exactly those bytes)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class Reconciler:
    def __init__(
        self,
        change_log: ChangeLog,
        parameters: ParameterStore,
        secrets: SecretStore,
        materialiser: Materialiser,
        bus: ConfigBus,
        registry: Callable[[], Registry],
        mode: Literal["repair", "report"] = REPAIR,
        now: Callable[[], datetime] = utc_now,
        settle: timedelta = timedelta(seconds=SETTLE_SECONDS),
    ) -> None:
        self._log = change_log
        self._parameters = parameters
        self._secrets = secrets
        self._materialiser = materialiser
        self._bus = bus
        self._registry = registry
        self._mode = mode
        self._now = now
        self._settle = settle

    def handle(self, request: DriftRequest) -> DriftReport:
        repair = request.repair if request.repair is not None else self._mode == REPAIR
        report = DriftReport(mode=REPAIR if repair else REPORT)
        if request.service is not None and request.environment is not None:
            scopes = [(request.service, request.environment)]
        else:
            scopes = self.registered_scopes()
        for service, environment in scopes:
            report.scopes.append(f"{service}/{environment}")
            self.reconcile(service, environment, repair, report, settle=not request.on_demand)
        return report

    def registered_scopes(self) -> list[tuple[str, str]]:
        """Every (service, environment) the registry allows a change for, ``global`` included."""
        registry = self._registry()
        scopes = [(GLOBAL_SERVICE, env) for env in registry.environments]
        for service, entry in sorted(registry.services.items()):
            scopes.extend((service, env) for env in (entry.environments or registry.environments))
        return scopes

    def reconcile(
        self, service: str, environment: str, repair: bool, report: DriftReport, settle: bool = False
    ) -> None:
        for key, _ in self._log.keys(service, environment, include_deleted=True):
            pointer = self._log.current(service, environment, key)
            if pointer is None:
                continue
            report.checked += 1
            record = self._readers_record(service, environment, key, pointer)
            if settle and self._fresh(service, environment, key, pointer, record):
                report.in_flight.append(scope_id(service, environment, key))
                continue
            findings = self.findings(service, environment, key, pointer, record)
            if not findings:
                continue
            moved = self._log.current(service, environment, key)
            if moved is None or moved.version != pointer.version:
                report.in_flight.append(scope_id(service, environment, key))
                continue
            repaired = False
            if repair:
                # A copy in the store the key does not use is cleaned only when one was found
                # (each clean is one more call per key otherwise).
                stray = any(f.problem is DriftProblem.UNEXPECTED for f in findings)
                self._materialiser.materialise_current(service, environment, key, sensitivity_flipped=stray)
                after = self._log.current(service, environment, key)
                if after is not None:
                    again = self.findings(
                        service,
                        environment,
                        key,
                        after,
                        self._readers_record(service, environment, key, after),
                    )
                    repaired = not again
            drift = KeyDrift(service, environment, key, pointer.version_for_readers(), findings, repaired)
            report.drifted.append(drift)
            self._announce(drift, report.mode)

    def findings(
        self,
        service: str,
        environment: str,
        key: str,
        pointer: CurrentPointer,
        record: VersionRecord | None,
    ) -> list[DriftFinding]:
        """What the key's stores hold that they should not (empty: no drift)."""
        name = parameter_name(service, environment, key)
        secret = secret_name(service, environment, key)
        found: list[DriftFinding] = []
        parameter = self._parameters.get(name)
        has_value = record is not None and not record.deleted
        if has_value and record is not None and not record.sensitive:
            if parameter is None:
                found.append(DriftFinding(store="ssm", name=name, problem=DriftProblem.MISSING))
            elif stored_text_hash(parameter) != record.value_hash:
                found.append(DriftFinding(store="ssm", name=name, problem=DriftProblem.CHANGED))
            return found
        if parameter is not None:
            # no value, or a secret: a parameter here is a stale or clear copy
            found.append(DriftFinding(store="ssm", name=name, problem=DriftProblem.UNEXPECTED))
        live, current_version = self._secret_state(secret)
        if has_value and record is not None:
            expected = secret_version_token(scope_id(service, environment, key), record.version)
            if not live:
                found.append(DriftFinding(store="secretsmanager", name=secret, problem=DriftProblem.MISSING))
            elif current_version != expected:
                found.append(DriftFinding(store="secretsmanager", name=secret, problem=DriftProblem.CHANGED))
        elif live and not candidate_in_secret(pointer):
            found.append(DriftFinding(store="secretsmanager", name=secret, problem=DriftProblem.UNEXPECTED))
        return found

    def _secret_state(self, name: str) -> tuple[bool, str | None]:
        """(exists and not scheduled for deletion, the version id holding AWSCURRENT)."""
        described = self._secrets.describe(name)
        if described is None or described.get("DeletedDate"):
            return False, None
        stages: dict[str, list[str]] = described.get("VersionIdsToStages", {}) or {}
        holder = next((v for v, held in stages.items() if CURRENT_STAGE in held), None)
        return True, holder

    def _readers_record(
        self, service: str, environment: str, key: str, pointer: CurrentPointer
    ) -> VersionRecord | None:
        version = pointer.version_for_readers()
        return None if version is None else self._log.version(service, environment, key, version)

    def _fresh(
        self,
        service: str,
        environment: str,
        key: str,
        pointer: CurrentPointer,
        readers: VersionRecord | None,
    ) -> bool:
        latest = (
            readers
            if readers is not None and readers.version == pointer.version
            else self._log.version(service, environment, key, pointer.version)
        )
        if latest is None:
            return False
        return self._now() - datetime.fromisoformat(latest.applied_at) < self._settle

    def _announce(self, drift: KeyDrift, mode: str) -> None:
        event = ConfigurationDriftDetected(
            service=drift.service,
            environment=drift.environment,
            key=drift.key,
            version=drift.version,
            findings=drift.findings,
            repaired=drift.repaired,
            mode=mode,
            detected_at=self._now(),
        )
        self._bus.publish([self._bus.entry(DetailType.CONFIGURATION_DRIFT_DETECTED, event)])
        logger.warning(
            "configuration drift",
            extra={
                "configService": drift.service,
                "environment": drift.environment,
                "key": drift.key,
                "version": drift.version,
                "findings": [f"{f.store}:{f.problem.value}" for f in drift.findings],
                "repaired": drift.repaired,
                "mode": mode,
            },
        )
