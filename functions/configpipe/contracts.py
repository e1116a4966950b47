"""The public event contracts of configpipe: one definition each.

Every event that crosses the config bus is described here once, as a pydantic
model. The Lambdas, the CLI, the client helpers and the tests all import these
models; nothing else may describe an event's shape. JSON field names are
camelCase (the bus's convention); Python attributes are snake_case.

Two kinds, two rules about fields a model does not know:

* a :class:`Command` (``ConfigurationChange``, ``ConfigurationRolloutControl``,
  ``ReleaseRequested``, ``ReleaseControl``)
  comes *in* from a team and is checked by the pipeline: an unknown field is refused
  (``UNKNOWN_FIELD``), so a typo never passes silently;
* an :class:`Announcement` (``ConfigurationUpdated``, ``ConfigurationRejected``,
  ``ConfigurationDelivered`` / ``ConfigurationDeliveryFailed``, ``ConfigurationRollout*``,
  the release lifecycle events) goes *out* to consumers that deploy on their own schedule: an unknown field is
  ignored, so the pipeline can add a field without breaking a deployed update handler.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from configpipe.naming import TENANT_PATTERN
from configpipe.naming import parameter_name as key_parameter_name
from configpipe.untrusted import FIELD_LIMIT, MESSAGE_LIMIT, bounded

# --- sources and detail types -------------------------------------------------------------

#: Source of every event the pipeline itself emits. The bus policy lets only the
#: pipeline's own roles publish with it, so a team cannot forge an announcement.
PIPELINE_SOURCE = "configpipe.pipeline"
#: Each publishing team owns ``configpipe.team.<team>``.
TEAM_SOURCE_PREFIX = "configpipe.team."
#: Each service's update handler acknowledges as ``configpipe.consumer.<service>`` (issue 14); the
#: bus policy binds that source to principals tagged ``configpipe-consumer=<service>``.
CONSUMER_SOURCE_PREFIX = "configpipe.consumer."


def consumer_source(service: str) -> str:
    """The source ``service``'s update handler acknowledges with."""
    return f"{CONSUMER_SOURCE_PREFIX}{service}"


class DetailType(StrEnum):
    CONFIGURATION_CHANGE = "ConfigurationChange"
    CONFIGURATION_UPDATED = "ConfigurationUpdated"
    CONFIGURATION_REJECTED = "ConfigurationRejected"
    CONFIGURATION_DELIVERED = "ConfigurationDelivered"
    CONFIGURATION_DELIVERY_FAILED = "ConfigurationDeliveryFailed"
    CONFIGURATION_ROLLOUT_CONTROL = "ConfigurationRolloutControl"
    CONFIGURATION_ROLLOUT_STARTED = "ConfigurationRolloutStarted"
    CONFIGURATION_ROLLOUT_STEPPED = "ConfigurationRolloutStepped"
    CONFIGURATION_ROLLOUT_PAUSED = "ConfigurationRolloutPaused"
    CONFIGURATION_ROLLOUT_RESUMED = "ConfigurationRolloutResumed"
    CONFIGURATION_ROLLOUT_COMPLETED = "ConfigurationRolloutCompleted"
    CONFIGURATION_ROLLOUT_ROLLED_BACK = "ConfigurationRolloutRolledBack"
    CONFIGURATION_ROLLOUT_ABORTED = "ConfigurationRolloutAborted"
    #: issue 14: a key's store no longer held what the change log says (docs/operations.md)
    CONFIGURATION_DRIFT_DETECTED = "ConfigurationDriftDetected"
    #: A service's update handler reports what it did with a version (issue 14).
    CONFIGURATION_ACKNOWLEDGED = "ConfigurationAcknowledged"


#: The rollout lifecycle announcements (one model, :class:`ConfigurationRolloutEvent`).
ROLLOUT_EVENT_TYPES = (
    DetailType.CONFIGURATION_ROLLOUT_STARTED,
    DetailType.CONFIGURATION_ROLLOUT_STEPPED,
    DetailType.CONFIGURATION_ROLLOUT_PAUSED,
    DetailType.CONFIGURATION_ROLLOUT_RESUMED,
    DetailType.CONFIGURATION_ROLLOUT_COMPLETED,
    DetailType.CONFIGURATION_ROLLOUT_ROLLED_BACK,
    DetailType.CONFIGURATION_ROLLOUT_ABORTED,
)


class EventBridgeEnvelope(BaseModel):
    """The EventBridge envelope every contract travels in, checked as Powertools'
    ``EventBridgeModel`` checks it (same fields, same aliases, unknown fields ignored). Here so
    that a function reads a contract from an event with this and the contract's own
    ``model_validate``: importing Powertools' parser loads a model of every AWS event source
    (about 4 MiB and a tenth of an update handler's cold start)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")


# --- shared field rules -------------------------------------------------------------------

GLOBAL_SERVICE = "global"
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9\-_.]+$")
#: Service names become Lambda function names (`<service>-config-update-handler`, at most
#: 64 characters) and SSM path segments, hence lower-case and at most 42 characters.
SERVICE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,41}$")
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
CHANGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_KEY_LENGTH = 200
MAX_VALUE_BYTES = 4096
MAX_VALUE_DEPTH = 32
MAX_ROLLOUT_ALARMS = 10
MAX_ROLLOUT_TARGETS = 100
MAX_SUBJECT_LENGTH = 128
MAX_BAKE_MINUTES = 24 * 60


def check_service(v: str) -> str:
    if v != GLOBAL_SERVICE and not SERVICE_PATTERN.fullmatch(v):
        raise ValueError("service must match ^[a-z][a-z0-9-]{0,41}$ or be 'global'")
    return v


def check_environment(v: str) -> str:
    if not ENVIRONMENT_PATTERN.fullmatch(v):
        raise ValueError("environment must match ^[a-z][a-z0-9-]{0,31}$")
    return v


def check_tenant(v: str | None) -> str | None:
    if v is not None and not TENANT_PATTERN.fullmatch(v):
        raise ValueError("tenant must match ^[a-z0-9][a-z0-9-]{0,62}$")
    return v


def _check_change_id(v: str) -> str:
    if not CHANGE_ID_PATTERN.fullmatch(v):
        raise ValueError("changeId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return v


def _check_restore_id(v: str | None) -> str | None:
    if v is not None and not CHANGE_ID_PATTERN.fullmatch(v):
        raise ValueError("restoreId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return v


def _check_scope(v: str, field_name: str | None) -> str:
    check = {"service": check_service, "environment": check_environment}.get(field_name or "", check_key)
    return check(v)


def check_key(v: str) -> str:
    if len(v) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(v) or set(v) == {"."}:
        raise ValueError(
            f"key must match ^[a-zA-Z0-9\\-_.]+$, be at most {MAX_KEY_LENGTH} characters "
            "and not consist of dots only"
        )
    return v


class ReasonCode(StrEnum):
    """Stable, machine-readable reasons for a rejected change. Never rename one."""

    MALFORMED_EVENT = "MALFORMED_EVENT"
    MISSING_FIELD = "MISSING_FIELD"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    INVALID_TYPE = "INVALID_TYPE"
    INVALID_CHANGE_ID = "INVALID_CHANGE_ID"
    INVALID_SERVICE = "INVALID_SERVICE"
    UNKNOWN_SERVICE = "UNKNOWN_SERVICE"
    INVALID_KEY = "INVALID_KEY"
    INVALID_ENVIRONMENT = "INVALID_ENVIRONMENT"
    ENVIRONMENT_NOT_ALLOWED = "ENVIRONMENT_NOT_ALLOWED"
    INVALID_OPERATION = "INVALID_OPERATION"
    MISSING_VALUE = "MISSING_VALUE"
    UNEXPECTED_FIELD = "UNEXPECTED_FIELD"
    MISSING_TO_VERSION = "MISSING_TO_VERSION"
    INVALID_ENCRYPTED_VALUE = "INVALID_ENCRYPTED_VALUE"
    VALUE_TOO_LARGE = "VALUE_TOO_LARGE"
    VALUE_TOO_DEEP = "VALUE_TOO_DEEP"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    SOURCE_NOT_AUTHORIZED = "SOURCE_NOT_AUTHORIZED"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    INVALID_ROLLOUT = "INVALID_ROLLOUT"
    ROLLOUT_NOT_ALLOWED = "ROLLOUT_NOT_ALLOWED"
    ROLLOUT_IN_PROGRESS = "ROLLOUT_IN_PROGRESS"
    NO_ACTIVE_ROLLOUT = "NO_ACTIVE_ROLLOUT"
    #: A key the registry marks as a feature-flags document got a value that breaks Powertools'
    #: feature-flag schema (or was sent as a secret, which service code could not read).
    INVALID_FEATURE_FLAGS = "INVALID_FEATURE_FLAGS"
    #: A value for a sensitive key sent in clear (it crossed the bus; docs/security.md, M3).
    SENSITIVE_VALUE_IN_CLEAR = "SENSITIVE_VALUE_IN_CLEAR"
    #: The source already used this changeId for a different change (docs/security.md, L).
    CHANGE_ID_REUSED = "CHANGE_ID_REUSED"
    #: A tenant id that breaks TENANT_PATTERN, or a tenant on a ``global`` key.
    INVALID_TENANT = "INVALID_TENANT"
    #: The source may change the service but the registry restricts this tenant's values to
    #: other publishers (``services.<s>.tenants.<t>.publishers``).
    TENANT_NOT_AUTHORIZED = "TENANT_NOT_AUTHORIZED"


class Operation(StrEnum):
    PUT = "put"
    DELETE = "delete"
    ROLLBACK = "rollback"


class Contract(BaseModel):
    """Base of every contract: camelCase on the wire, immutable. Subclass :class:`Command`
    or :class:`Announcement`, never this directly: they decide what an unknown field means."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        # Validators are built on a contract's first use, not at import: each function uses
        # a few of the contracts, and building all of them was most of its import time.
        defer_build=True,
    )

    def to_detail(self) -> dict[str, Any]:
        """The event's ``detail`` as it goes on the bus (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Command(Contract):
    """A request coming in from a team: unknown fields are refused (``UNKNOWN_FIELD``)."""

    model_config = ConfigDict(extra="forbid")


class Announcement(Contract):
    """An event going out from the pipeline: consumers ignore fields they do not know, so
    adding a field never breaks one that is already deployed."""

    model_config = ConfigDict(extra="ignore")


# --- ConfigurationChange (published by teams) ---------------------------------------------


class RolloutRelease(Command):
    """Ties a config rollout to a code release: invocations of ``function`` at
    ``targetVersion`` read the candidate, every other reader the stable value, and the
    rollout completes or rolls back with the release (docs/rollouts.md)."""

    release_id: str
    function: str = Field(min_length=1, max_length=140)
    target_version: str = Field(pattern=r"^[0-9]{1,10}$")

    @field_validator("release_id")
    @classmethod
    def _release_id(cls, v: str) -> str:
        if not CHANGE_ID_PATTERN.fullmatch(v):
            raise ValueError("releaseId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return v


class RolloutRequest(Command):
    """How a change goes out progressively (docs/rollouts.md): by a strategy, or with a code
    release. The strategy is checked by ``configpipe.release.strategies`` (one implementation
    for releases and rollouts), so a bad one is reported as ``INVALID_ROLLOUT`` with the
    strategy's own message."""

    strategy: str | dict[str, Any] | None = Field(
        default=None,
        description="A strategy name (Canary10Percent5Minutes, AppConfig.Linear20PercentEvery6Minutes, ...) "
        "or a custom strategy object; not with release",
    )
    release: RolloutRelease | None = Field(
        default=None, description="Go out with this code release instead of by a strategy"
    )
    alarms: list[str] = Field(default_factory=list, max_length=MAX_ROLLOUT_ALARMS)
    bake_minutes: int | None = Field(default=None, ge=0, le=MAX_BAKE_MINUTES)
    targets: list[str] = Field(default_factory=list, max_length=MAX_ROLLOUT_TARGETS)

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, v: list[str]) -> list[str]:
        if any(not 1 <= len(a) <= 255 for a in v) or len(set(v)) != len(v):
            raise ValueError("alarms must be distinct CloudWatch alarm names of 1-255 characters")
        return v

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if any(not 1 <= len(t) <= MAX_SUBJECT_LENGTH for t in v) or len(set(v)) != len(v):
            raise ValueError(f"targets must be distinct subjects of 1-{MAX_SUBJECT_LENGTH} characters")
        return v


class ConfigurationChange(Command):
    """A request to change one key. Structure only; the rules that need the service
    registry (allow-lists, schemas, authorisation) live in ``configpipe.validation``."""

    change_id: str = Field(description="Client idempotency key")
    service: str
    environment: str
    key: str
    operation: Operation
    value: Any = Field(default=None, description="Any JSON, for put")
    encrypted_value: str | None = Field(
        default=None,
        description=(
            "For a sensitive put, instead of value: base64 KMS ciphertext of the value's canonical JSON, "
            "encrypted with the pipeline's secrets key and encryption context "
            "{'configpipe:scope': 'service/environment/key'}, so the secret never crosses the bus in clear"
        ),
    )
    to_version: int | None = Field(default=None, ge=1, description="For rollback")
    expected_version: int | None = Field(
        default=None, ge=0, description="Compare-and-set: 0 means the key must not exist yet"
    )
    sensitive: bool | None = None
    rollout: RolloutRequest | None = Field(
        default=None, description="For put and rollback: go out progressively (docs/rollouts.md)"
    )
    restore_id: str | None = Field(
        default=None,
        description="Set by `configpipe snapshot restore`: the one id shared by every change of a restore, "
        "kept in the change log and announced, so history and events tie them together",
    )
    tenant: str | None = Field(
        default=None,
        description="The tenant whose value this is: overrides the service's value for that tenant only "
        "(not for global keys)",
    )
    author: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)

    _restore_id = field_validator("restore_id")(lambda v: _check_restore_id(v))
    _tenant = field_validator("tenant")(lambda v: check_tenant(v))

    @field_validator("change_id")
    @classmethod
    def _change_id(cls, v: str) -> str:
        if not CHANGE_ID_PATTERN.fullmatch(v):
            raise ValueError("changeId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return v

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        return check_service(v)

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        return check_environment(v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_key(v)


# --- events emitted by the pipeline -------------------------------------------------------


class ConfigurationUpdated(Announcement):
    """Announced after a version is materialised. Carries the value only when it is not
    sensitive and small; otherwise readers follow ``parameterName`` / ``secretArn``."""

    change_id: str
    service: str
    environment: str
    key: str
    operation: Operation
    version: int = Field(ge=1)
    previous_version: int | None = None
    value_hash: str
    deleted: bool = False
    sensitive: bool = False
    parameter_name: str | None = None
    secret_arn: str | None = None
    value_inline: bool = False
    value: Any = None
    rolled_back_to: int | None = None
    #: The snapshot restore this version was part of (``ConfigurationChange.restoreId``).
    restore_id: str | None = None
    #: Set when this is one tenant's value of the key (it overrides the service's for that tenant).
    tenant: str | None = None
    author: str = Field(max_length=256)
    reason: str = Field(max_length=1024)
    applied_at: datetime

    # The pipeline announces only what a change could name; anything else was forged or
    # corrupted, and a consumer refuses it rather than acting on (or logging) it.
    _change_id = field_validator("change_id")(lambda v: _check_change_id(v))
    _restore_id = field_validator("restore_id")(lambda v: _check_restore_id(v))
    _tenant = field_validator("tenant")(lambda v: check_tenant(v))
    _scope = field_validator("service", "environment", "key")(
        lambda v, info: _check_scope(v, info.field_name)
    )

    @model_validator(mode="after")
    def _reads_its_own_parameter(self) -> ConfigurationUpdated:
        # Consumers read a non-inline value from parameterName: a forged one would point them
        # at another key's parameter (or at a name SSM refuses, failing every retry).
        if self.parameter_name is not None and self.parameter_name != key_parameter_name(
            self.service, self.environment, self.key, tenant=self.tenant
        ):
            raise ValueError("parameterName must be the key's own parameter")
        return self


class Reason(Announcement):
    """One problem with a change. Messages and field paths may name what the caller sent
    (an unknown field's name, a source), so both are bounded and made valid UTF-8 here,
    whoever builds the reason: a rejection record and its announcement stay small."""

    code: ReasonCode
    message: str
    field: str | None = None

    @field_validator("message")
    @classmethod
    def _bounded_message(cls, value: str) -> str:
        return bounded(value, MESSAGE_LIMIT)

    @field_validator("field")
    @classmethod
    def _bounded_field(cls, value: str | None) -> str | None:
        return None if value is None else bounded(value, FIELD_LIMIT)


class ConfigurationRejected(Announcement):
    """Why a change was refused. Never carries the value."""

    change_id: str
    service: str | None = None
    environment: str | None = None
    key: str | None = None
    operation: str | None = None
    tenant: str | None = None
    source: str
    reasons: list[Reason] = Field(min_length=1)
    rejected_at: datetime


class _DeliveryOutcome(Announcement):
    """What happened to one affected service's copy of an update."""

    change_id: str
    target_service: str
    service: str
    environment: str
    key: str
    version: int
    function_name: str
    tenant: str | None = None


class ConfigurationDelivered(_DeliveryOutcome):
    """The service's update handler accepted the update for async processing."""

    delivered_at: datetime


class ConfigurationDeliveryFailed(_DeliveryOutcome):
    """Lambda refused the invocation (after botocore's retries)."""

    error_code: str
    error_message: str
    failed_at: datetime


ChangeOutcome = Literal["accepted", "rejected", "duplicate"]


# --- drift (issue 14): a store changed outside configpipe -------------------------------------


class DriftProblem(StrEnum):
    #: The store holds another value than the change log's version (edited by hand).
    CHANGED = "changed"
    #: The key has a value, but its parameter / secret is gone (deleted by hand).
    MISSING = "missing"
    #: The store holds something where the key has no value there: a deleted key's parameter
    #: or live secret, or a clear copy in SSM of a sensitive key.
    UNEXPECTED = "unexpected"


class DriftFinding(Announcement):
    """One store of one key that does not hold what the change log says. Names the parameter
    or secret; never its value, nor a hash of what was found."""

    store: Literal["ssm", "secretsmanager"]
    name: str
    problem: DriftProblem


class ConfigurationDriftDetected(Announcement):
    """A reconcile found a key's stores differing from the change log (issue 14). ``version``
    is what readers should get (None: no value); ``repaired`` says whether the key was
    re-materialised from the change log and then checked clean."""

    service: str
    environment: str
    key: str
    version: int | None = None
    findings: list[DriftFinding] = Field(min_length=1)
    repaired: bool
    #: "repair" or "report": what this reconcile was asked to do.
    mode: str
    detected_at: datetime

    _scope = field_validator("service", "environment", "key")(
        lambda v, info: _check_scope(v, info.field_name)
    )


# --- progressive rollouts (docs/rollouts.md) ------------------------------------------------


class RolloutAction(StrEnum):
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"


class RolloutStatus(StrEnum):
    ROLLING_OUT = "ROLLING_OUT"
    COMPLETED = "COMPLETED"
    ROLLED_BACK = "ROLLED_BACK"
    ABORTED = "ABORTED"

    @property
    def terminal(self) -> bool:
        return self is not RolloutStatus.ROLLING_OUT


class ConfigurationRolloutControl(Command):
    """A person's control of a key's active rollout (published by teams, like a change)."""

    control_id: str = Field(description="Client idempotency key, like changeId")
    service: str
    environment: str
    key: str
    action: RolloutAction
    rollout_id: str | None = Field(
        default=None, description="Act only if this is still the key's active rollout"
    )
    tenant: str | None = Field(
        default=None, description="Control the rollout of this tenant's own value of the key"
    )
    author: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)

    _tenant = field_validator("tenant")(lambda v: check_tenant(v))

    @field_validator("control_id")
    @classmethod
    def _control_id(cls, v: str) -> str:
        if not CHANGE_ID_PATTERN.fullmatch(v):
            raise ValueError("controlId must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        return v

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        return check_service(v)

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        return check_environment(v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_key(v)


class RolloutCandidate(Announcement):
    """Where a rollout's candidate value is, and its hash. The value itself only when it is
    not sensitive and small (``valueInline``)."""

    value_hash: str
    sensitive: bool = False
    deleted: bool = False
    parameter_name: str | None = None
    secret_arn: str | None = None
    secret_version_id: str | None = None
    value_inline: bool = False
    value: Any = None


class RolloutOutcome(Announcement):
    code: str
    message: str
    alarms: list[str] = Field(default_factory=list)


class RolloutView(Announcement):
    """A key's rollout as readers see it: materialised at ``/config/{service}/{environment}/{key}/rollout``
    and carried by every rollout announcement. Enough to decide, for any subject, whether it
    reads the stable or the candidate version."""

    rollout_id: str = Field(max_length=128)
    service: str
    environment: str
    key: str
    status: RolloutStatus
    sequence: int = Field(ge=0, description="Increases with every state change of the rollout")
    stable_version: int | None = Field(default=None, description="None: the key had no value before")
    candidate_version: int = Field(ge=1)
    weight: float = Field(ge=0, le=100, description="Percent of subjects that read the candidate")
    targets: list[str] = Field(default_factory=list)
    strategy: str
    paused: bool = False
    alarms: list[str] = Field(default_factory=list)
    started_at: datetime
    candidate: RolloutCandidate
    #: {releaseId, function, targetVersion} of the code release the rollout rides on (the
    #: request's RolloutRelease; a plain mapping here, so a field added to it later is tolerated).
    release: dict[str, str] | None = Field(
        default=None, description="Bound to a code release: only that function version reads the candidate"
    )
    #: Set when one tenant's value of the key rolls out (views under the tenant's path).
    tenant: str | None = Field(default=None, description="The tenant whose own value rolls out")

    _tenant = field_validator("tenant")(lambda v: check_tenant(v))
    _scope = field_validator("service", "environment", "key")(
        lambda v, info: _check_scope(v, info.field_name)
    )


class ConfigurationRolloutEvent(RolloutView):
    """Every ``ConfigurationRollout*`` announcement: the view after the event, the event's
    time, and for a rollback or abort why."""

    event_at: datetime
    author: str
    reason: str
    outcome: RolloutOutcome | None = None


# --- acknowledgements (issue 14, docs/architecture.md "Delivery ledger") --------------------


class AckOutcome(StrEnum):
    #: The service's callback took the version: it runs it now.
    APPLIED = "applied"
    #: The service's own check refused the value; it keeps the last good one.
    REFUSED = "refused"


#: A refusal's reason is the service's own words about a value: bounded, and never the value.
ACK_REASON_LIMIT = 512


class ConfigurationAcknowledged(Announcement):
    """What one service's update handler did with one version of one key. Published by the
    service (source ``configpipe.consumer.<targetService>``), recorded in the delivery ledger.
    Carries no value and no hash of one: the ledger is about versions."""

    change_id: str
    target_service: str = Field(description="The service that applied or refused the version")
    service: str = Field(description="The configuration's service (or 'global')")
    environment: str
    key: str
    version: int = Field(ge=1)
    outcome: AckOutcome
    reason: str | None = Field(default=None, description="Why the service refused it (refused only)")
    reported_at: datetime
    tenant: str | None = Field(
        default=None,
        description="Set when the version is one tenant's own value of the key (its own sequence)",
    )

    _change_id = field_validator("change_id")(lambda v: _check_change_id(v))
    _tenant = field_validator("tenant")(lambda v: check_tenant(v))
    _scope = field_validator("service", "environment", "key")(
        lambda v, info: _check_scope(v, info.field_name)
    )

    @field_validator("target_service")
    @classmethod
    def _target_service(cls, v: str) -> str:
        if not SERVICE_PATTERN.fullmatch(v):
            raise ValueError("targetService must match ^[a-z][a-z0-9-]{0,41}$")
        return v

    @field_validator("reason")
    @classmethod
    def _bounded_reason(cls, v: str | None) -> str | None:
        return None if v is None else bounded(v, ACK_REASON_LIMIT)
