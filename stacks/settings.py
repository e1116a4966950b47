"""The deploy-time settings of the pipeline, read from the ``configpipe`` cdk.json context.

Everything a platform engineer may change without touching code lives here, parsed and
checked once, so a bad context stops ``cdk synth`` with a message naming the bad field
instead of producing a template that fails at deploy time or, worse, at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import ValidationError

from configpipe.contracts import GLOBAL_SERVICE, SERVICE_PATTERN
from configpipe.registry import Registry

CONTEXT_KEY = "configpipe"
DEFAULT_BUS_NAME = "configpipe-config-bus"
DEFAULT_POWERTOOLS_LAYER_VERSION = 27
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_INLINE_VALUE_MAX_BYTES = 1024
#: EventBridge's own limit on one event is 256 KB; an inline value must leave room for the
#: rest of ConfigurationUpdated, and the change contract caps a value at 4096 bytes anyway.
MAX_INLINE_VALUE_BYTES = 4096

_ACCOUNT = re.compile(r"^\d{12}$")
_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,256}$")

#: CloudWatch Logs only accepts these retention periods.
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

_KNOWN_KEYS = {
    "registry",
    "busName",
    "powertoolsLayerVersion",
    "logRetentionDays",
    "publisherAccounts",
    "inlineValueMaxBytes",
    "retainData",
    "rolloutInsufficientData",
    "allowSensitiveValuesInClear",
    "versionPrune",
    "reservedConcurrency",
    "drift",
}

#: Reserved concurrency per function (docs/security.md, L): a flood of events cannot take the
#: account's whole concurrency, nor starve one pipeline function for another. Throttling is safe
#: for each: EventBridge and async invokes retry (hours), the stream waits, the tick comes back.
#: ``reservedConcurrency`` in cdk.json overrides any of them; ``null`` leaves one unreserved.
#: The release manager is reserved at 1: it is one state machine per release, fed by the
#: team's requests and controls and by its own ticks; run one invocation at a time, a tick and
#: a control never act on the same release at once (a second one waits in Lambda's async
#: queue, as a throttled event does, and is retried).
#: Together they take 37 plus 5 per registered demo service (plus 1 with a version prune) of
#: the account's concurrency (100 must stay unreserved): an account at the default limit of
#: 1,000 is fine; a new account limited to 10 needs them set to null.
DEFAULT_RESERVED_CONCURRENCY: dict[str, int | None] = {
    "validator": 10,
    "materialiser": 10,
    "propagator": 10,
    "release": 1,
    "rollout": 2,
    "redrive": 1,
    #: One reconcile at a time: a scheduled sweep and `configpipe drift` never announce one key twice.
    "drift": 1,
    #: The delivery ledger (issue 14): one conditional write per acknowledgement.
    "ledger": 2,
    #: Each service's demo update handler.
    "updateHandler": 5,
    #: The scheduled version prune (only deployed when ``versionPrune`` names a function): a
    #: small batch per schedule; a run that overlaps another waits in Lambda's async queue.
    "versionPrune": 1,
}
MAX_RESERVED_CONCURRENCY = 1000


@dataclass(frozen=True)
class VersionPruneSchedule:
    """``versionPrune.<function>``: keep the newest ``keep`` versions, prune on ``schedule``
    (an EventBridge ``rate(…)`` or ``cron(…)`` expression)."""

    keep: int
    schedule: str = "rate(1 day)"


@dataclass(frozen=True)
class DriftSchedule:
    """``drift``: reconcile every registered scope on ``schedule`` (issue 14); ``mode`` is what
    a scheduled run does with drift: ``repair`` (re-materialise from the change log) or
    ``report`` (announce and alarm only)."""

    schedule: str = "rate(1 hour)"
    mode: str = "repair"


class SettingsError(ValueError):
    """The ``configpipe`` context is missing, malformed or inconsistent."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"cdk.json context '{CONTEXT_KEY}.{field}': {problem}")
        self.field = field


@dataclass(frozen=True)
class PipelineSettings:
    registry: Registry
    bus_name: str = DEFAULT_BUS_NAME
    powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    #: Accounts allowed to publish team events; empty means the deploying account only.
    publisher_accounts: tuple[str, ...] = ()
    inline_value_max_bytes: int = DEFAULT_INLINE_VALUE_MAX_BYTES
    #: Keep the change log (and applied-state table) when the stack is deleted.
    retain_data: bool = True
    #: What a rollout does when a watched alarm has no data (or does not exist): "rollback"
    #: (AWS AppConfig's default) or "ignore" (docs/rollouts.md).
    rollout_insufficient_data: str = "rollback"
    #: Accept a sensitive key's value sent in clear (a migration aid, off by default:
    #: such a value crosses the bus and may sit in a DLQ; docs/security.md M3).
    allow_sensitive_values_in_clear: bool = False
    #: The scheduled version prune (issue 16), per registered release function; empty (the
    #: default) means no prune function, no schedule and no lambda:DeleteFunction anywhere.
    version_prune: dict[str, VersionPruneSchedule] = dataclass_field(default_factory=dict)
    #: The scheduled drift reconcile (issue 14): hourly, repairing, unless cdk.json says otherwise.
    drift: DriftSchedule = dataclass_field(default_factory=DriftSchedule)
    #: Reserved concurrency by function (keys of DEFAULT_RESERVED_CONCURRENCY); None: unreserved.
    reserved_concurrency: Mapping[str, int | None] = dataclass_field(
        default_factory=lambda: dict(DEFAULT_RESERVED_CONCURRENCY)
    )

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def demo_services(self) -> list[str]:
        return sorted(name for name, entry in self.registry.services.items() if entry.demo)

    @classmethod
    def from_node(cls, node: Node) -> PipelineSettings:
        return cls.from_context(node.try_get_context(CONTEXT_KEY))

    @classmethod
    def from_context(cls, raw: Any) -> PipelineSettings:
        if raw is None:
            raise SettingsError("registry", "missing; cdk.json must define the 'configpipe' context")
        if not isinstance(raw, dict):
            raise SettingsError("", f"must be an object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        if unknown:
            raise SettingsError(unknown[0], f"unknown setting (known: {', '.join(sorted(_KNOWN_KEYS))})")
        registry = _registry(raw.get("registry"))
        return cls(
            registry=registry,
            bus_name=_bus_name(raw.get("busName", DEFAULT_BUS_NAME)),
            powertools_layer_version=_positive_int(
                "powertoolsLayerVersion", raw.get("powertoolsLayerVersion", DEFAULT_POWERTOOLS_LAYER_VERSION)
            ),
            log_retention_days=_retention_days(raw.get("logRetentionDays", DEFAULT_LOG_RETENTION_DAYS)),
            publisher_accounts=_accounts(raw.get("publisherAccounts", [])),
            inline_value_max_bytes=_inline_max(
                raw.get("inlineValueMaxBytes", DEFAULT_INLINE_VALUE_MAX_BYTES)
            ),
            retain_data=_flag("retainData", raw.get("retainData", True)),
            rollout_insufficient_data=_choice(
                "rolloutInsufficientData",
                raw.get("rolloutInsufficientData", "rollback"),
                ("rollback", "ignore"),
            ),
            allow_sensitive_values_in_clear=_flag(
                "allowSensitiveValuesInClear", raw.get("allowSensitiveValuesInClear", False)
            ),
            version_prune=_version_prune(raw.get("versionPrune", {}), registry),
            reserved_concurrency=_reserved_concurrency(raw.get("reservedConcurrency", {})),
            drift=_drift(raw.get("drift", {})),
        )


def _choice(field: str, raw: Any, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise SettingsError(field, f"must be one of {', '.join(allowed)}")
    return str(raw)


def _registry(raw: Any) -> Registry:
    if raw is None:
        raise SettingsError("registry", "missing; describe the services (see configpipe.registry.Registry)")
    try:
        # `cdk synth -c configpipe=...` passes context as a string; accept a JSON document.
        registry = Registry.model_validate_json(raw) if isinstance(raw, str) else Registry.model_validate(raw)
    except ValidationError as error:
        raise SettingsError("registry", _describe(error)) from error
    for name, entry in registry.services.items():
        if name == GLOBAL_SERVICE:
            raise SettingsError(f"registry.services.{name}", "'global' is reserved for shared keys")
        if not SERVICE_PATTERN.fullmatch(name):
            # The name becomes `<service>-config-update-handler` and an SSM path segment.
            raise SettingsError(f"registry.services.{name}", f"does not match {SERVICE_PATTERN.pattern}")
        unknown_envs = sorted(set(entry.environments) - set(registry.environments))
        if unknown_envs:
            raise SettingsError(
                f"registry.services.{name}.environments",
                f"{unknown_envs} not in the registry's environments {registry.environments}",
            )
        _check_tag_fields(f"registry.services.{name}", entry.owner, entry.cost_center)
    if registry.global_.publishers:
        _check_tag_fields("registry.global", registry.global_.owner, registry.global_.cost_center)
    _check_sensitive_key_names(registry)
    return registry


def _check_sensitive_key_names(registry: Registry) -> None:
    """``registry.sensitiveKeyNames`` adds to the built-in list (its form is the registry
    model's): no name twice, and none that would make a feature-flags key a secret (such a
    key is read from Parameter Store; every write to it would be refused)."""
    names = registry.sensitive_key_names
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SettingsError("registry.sensitiveKeyNames", f"{repeated} listed more than once")
    flag_keys = [(GLOBAL_SERVICE, k) for k in registry.global_.feature_flags] + [
        (name, k) for name, entry in registry.services.items() for k in entry.feature_flags
    ]
    for service, key in flag_keys:
        if registry.is_sensitive(key, False):
            raise SettingsError(
                "registry.sensitiveKeyNames",
                f"makes feature-flags key {key!r} of {service!r} a secret; feature flags cannot be "
                "sensitive (rename the key or the name)",
            )


#: What both SSM and Secrets Manager accept as a tag value (the narrower of the two).
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}$")


def _check_tag_fields(where: str, owner: str, cost_center: str) -> None:
    """Every parameter and secret is tagged Owner and CostCenter from here (issue 19): a service
    without them would be materialised untagged, so synth refuses it."""
    for field, value in (("owner", owner), ("costCenter", cost_center)):
        if not value:
            raise SettingsError(
                f"{where}.{field}", "required: it becomes the tag of every parameter and secret"
            )
        if not _TAG_VALUE.fullmatch(value):
            raise SettingsError(
                f"{where}.{field}", "must be 1-256 letters, digits, spaces or _ . : / = + - @"
            )


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return f"invalid at {where}: {first['msg']} ({error.error_count()} problem(s) in total)"


def _bus_name(raw: Any) -> str:
    if not isinstance(raw, str) or not _BUS_NAME.fullmatch(raw) or raw == "default":
        raise SettingsError("busName", f"{raw!r} is not a custom event bus name")
    return raw


def _positive_int(field: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise SettingsError(field, f"{raw!r} is not a positive integer")
    return raw


def _retention_days(raw: Any) -> int:
    days = _positive_int("logRetentionDays", raw)
    if days not in _RETENTION:
        raise SettingsError(
            "logRetentionDays", f"{days} is not one of CloudWatch's periods {sorted(_RETENTION)}"
        )
    return days


def _accounts(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(a, str) and _ACCOUNT.fullmatch(a) for a in raw):
        raise SettingsError("publisherAccounts", f"{raw!r} is not a list of 12-digit account ids")
    return tuple(dict.fromkeys(raw))


def _inline_max(raw: Any) -> int:
    value = _positive_int("inlineValueMaxBytes", raw)
    if value > MAX_INLINE_VALUE_BYTES:
        raise SettingsError("inlineValueMaxBytes", f"{value} exceeds {MAX_INLINE_VALUE_BYTES}")
    return value


def _reserved_concurrency(raw: Any) -> dict[str, int | None]:
    if not isinstance(raw, dict):
        raise SettingsError("reservedConcurrency", f"{raw!r} is not an object of function name to number")
    settled = dict(DEFAULT_RESERVED_CONCURRENCY)
    for name, value in raw.items():
        where = f"reservedConcurrency.{name}"
        if name not in DEFAULT_RESERVED_CONCURRENCY:
            raise SettingsError(where, f"unknown function (known: {', '.join(DEFAULT_RESERVED_CONCURRENCY)})")
        # 0 would stop the function altogether: that is not a limit, it is an outage.
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_RESERVED_CONCURRENCY
        ):
            raise SettingsError(
                where, f"{value!r} is not null or a whole number 1..{MAX_RESERVED_CONCURRENCY}"
            )
        settled[name] = value
    return settled


def _flag(field: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise SettingsError(field, f"{raw!r} is not true/false")
    return raw


#: EventBridge schedule expressions (a sanity check at synth; EventBridge has the last word).
_SCHEDULE = re.compile(r"^(rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
_PRUNE_FIELDS = {"keep", "schedule"}


def _version_prune(raw: Any, registry: Registry) -> dict[str, VersionPruneSchedule]:
    """Only functions a service registered for releases (the release manager's IAM scope)."""
    if not isinstance(raw, dict):
        raise SettingsError("versionPrune", "must be an object {function: {keep, schedule}}")
    registered = {fn for entry in registry.services.values() for fn in entry.functions}
    parsed: dict[str, VersionPruneSchedule] = {}
    for function, entry in raw.items():
        where = f"versionPrune.{function}"
        if function not in registered:
            raise SettingsError(
                where, f"not a registered release function (registered: {', '.join(sorted(registered))})"
            )
        if not isinstance(entry, dict):
            raise SettingsError(where, "must be an object {keep, schedule}")
        unknown = sorted(set(entry) - _PRUNE_FIELDS)
        if unknown:
            raise SettingsError(f"{where}.{unknown[0]}", "unknown setting (known: keep, schedule)")
        keep = entry.get("keep")
        # At least one: a schedule deleting down to referenced versions only leaves nothing to
        # release back to once an alias moves on; the CLI allows --keep 0 for a person to choose.
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise SettingsError(f"{where}.keep", f"{keep!r} is not an integer >= 1")
        schedule = entry.get("schedule", VersionPruneSchedule.schedule)
        if not isinstance(schedule, str) or not _SCHEDULE.fullmatch(schedule):
            raise SettingsError(
                f"{where}.schedule", f"{schedule!r} is not a rate(...) or cron(...) expression"
            )
        parsed[function] = VersionPruneSchedule(keep=keep, schedule=schedule)
    return parsed


_DRIFT_FIELDS = {"schedule", "mode"}


def _drift(raw: Any) -> DriftSchedule:
    if not isinstance(raw, dict):
        raise SettingsError("drift", "must be an object {schedule, mode}")
    unknown = sorted(set(raw) - _DRIFT_FIELDS)
    if unknown:
        raise SettingsError(f"drift.{unknown[0]}", "unknown setting (known: mode, schedule)")
    schedule = raw.get("schedule", DriftSchedule.schedule)
    if not isinstance(schedule, str) or not _SCHEDULE.fullmatch(schedule):
        raise SettingsError("drift.schedule", f"{schedule!r} is not a rate(...) or cron(...) expression")
    return DriftSchedule(
        schedule=schedule, mode=_choice("drift.mode", raw.get("mode", "repair"), ("repair", "report"))
    )
