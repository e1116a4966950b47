"""Checks a release request must pass before it is accepted (and before any traffic moves).

Static rules first (registry, authorisation, strategy, versions, hooks), then the ones that
need AWS (function, alias, versions and their configuration, alarms). Every failure is a
:class:`~configpipe.release.contracts.ReleaseReason` with a stable code, and a rejection carries
all of them at once (issue 15); nothing is written for a rejected request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from configpipe.registry import Registry
from configpipe.release.alias import LambdaAliases
from configpipe.release.bounds import shown
from configpipe.release.contracts import MAX_ALARMS, ReleaseReason, ReleaseReasonCode, ReleaseRequested
from configpipe.release.errors import AliasNotFoundError, FunctionNotFoundError, VersionNotFoundError
from configpipe.release.health import AlarmHealth
from configpipe.release.model import AliasState
from configpipe.release.strategies import Strategy, StrategyError, parse_strategy

LATEST = "$LATEST"
MAX_VERSION_DIGITS = 20
#: What Lambda calls a published version: a positive number. ASCII digits only — str.isdigit()
#: also takes a superscript two (which int() refuses) and fullwidth digits (which Lambda does not know).
VERSION_PATTERN = re.compile(rf"[1-9][0-9]{{0,{MAX_VERSION_DIGITS - 1}}}")


class ReleaseRejectedError(Exception):
    def __init__(self, reasons: list[ReleaseReason]) -> None:
        super().__init__("; ".join(f"{r.code}: {r.message}" for r in reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class ValidatedRelease:
    service: str
    strategy: Strategy
    alias_state: AliasState


def owner_of(registry: Registry, function: str) -> str | None:
    """The registered service whose ``functions`` list the function (None if none does)."""
    for name, entry in sorted(registry.services.items()):
        if function in entry.functions:
            return name
    return None


def _reason(code: ReleaseReasonCode, message: str, field: str | None = None) -> ReleaseReason:
    return ReleaseReason(code=code, message=message, field=field)


def _registry_reasons(
    request: ReleaseRequested, source: str, registry: Registry
) -> tuple[list[ReleaseReason], str | None]:
    """The function is registered and ``source`` may release it; ``(reasons, owning service)``."""
    service = owner_of(registry, request.function)
    if service is None:
        return [
            _reason(
                ReleaseReasonCode.FUNCTION_NOT_REGISTERED,
                f"{request.function} is not in any registered service's functions",
                "function",
            )
        ], None
    if source not in registry.services[service].publishers:
        return [
            _reason(
                ReleaseReasonCode.SOURCE_NOT_AUTHORIZED,
                f"source {source} may not release functions of service {service}",
                "source",
            )
        ], service
    return [], service


def _version_reasons(request: ReleaseRequested) -> list[ReleaseReason]:
    if request.target_version == LATEST:
        return [
            _reason(
                ReleaseReasonCode.TARGET_IS_LATEST,
                "$LATEST is mutable; release a published version",
                "targetVersion",
            )
        ]
    if not VERSION_PATTERN.fullmatch(request.target_version):
        return [
            _reason(
                ReleaseReasonCode.INVALID_VERSION,
                "targetVersion must be a published version number (ASCII digits, no leading zero, "
                f"at most {MAX_VERSION_DIGITS}), got {shown(request.target_version)}",
                "targetVersion",
            )
        ]
    return []


def _hooks(request: ReleaseRequested) -> list[tuple[str, str]]:
    """``(field, hook function)`` of each hook the request names."""
    named = (("preTrafficHook", request.pre_traffic_hook), ("postTrafficHook", request.post_traffic_hook))
    return [(field, hook) for field, hook in named if hook is not None]


def static_reasons(
    request: ReleaseRequested, source: str, registry: Registry | None
) -> tuple[list[ReleaseReason], str | None, Strategy | None]:
    """The rules that need no AWS call: ``(reasons, owning service, parsed strategy)``.

    With ``registry=None`` (a caller that cannot read it) the registry rules — the function is
    registered, ``source`` may release it, the hooks are registered — are skipped, not failed,
    and the service is None.
    """
    reasons: list[ReleaseReason] = []
    service = None
    if registry is not None:
        reasons, service = _registry_reasons(request, source, registry)
    strategy = None
    try:
        strategy = parse_strategy(request.strategy)
    except StrategyError as e:
        reasons.append(_reason(e.code, e.message, "strategy"))
    reasons.extend(_version_reasons(request))
    if request.analysis is not None and strategy is not None and not strategy.weighted:
        # Analysis compares the two versions while both serve; after an all-at-once switch the
        # baseline has no traffic, so every verdict would be inconclusive.
        reasons.append(
            _reason(
                ReleaseReasonCode.ANALYSIS_NOT_APPLICABLE,
                f"{strategy.name} never splits traffic between the versions, so there is nothing to "
                "compare; use a canary or linear strategy, or drop the analysis",
                "analysis",
            )
        )
    if registry is not None:
        reasons.extend(
            _reason(
                ReleaseReasonCode.HOOK_NOT_REGISTERED,
                f"hook {hook} must be a function registered for the released function's service",
                field,
            )
            for field, hook in _hooks(request)
            if service is None or hook not in registry.services[service].functions
        )
    if len(request.alarms) > MAX_ALARMS:
        reasons.append(
            _reason(
                ReleaseReasonCode.TOO_MANY_ALARMS,
                f"at most {MAX_ALARMS} alarms, got {len(request.alarms)}",
                "alarms",
            )
        )
    return reasons, service, strategy


def validate_request(
    request: ReleaseRequested,
    source: str,
    registry: Registry,
    aliases: LambdaAliases,
    health: AlarmHealth,
) -> ValidatedRelease:
    """:raises ReleaseRejectedError: with every reason found, in one rejection: the static ones and
    every check against AWS they leave meaningful (a request with an unknown version *and* an
    unknown alarm hears of both at once, not one per attempt). A caller who may not release the
    function at all (not registered, source not a publisher) hears only that: the release function
    does not look up, and so does not reveal, anything in AWS for it."""
    reasons, service, strategy = static_reasons(request, source, registry)
    if service is None or any(r.code in _ACCESS_CODES for r in reasons):
        raise ReleaseRejectedError(reasons)
    unregistered_hooks = {r.field for r in reasons if r.code is ReleaseReasonCode.HOOK_NOT_REGISTERED}
    version_valid = not any(r.field == "targetVersion" for r in reasons)
    aws_reasons, alias_state = _aws_reasons(
        request, strategy, version_valid, unregistered_hooks, aliases, health
    )
    reasons.extend(aws_reasons)
    if reasons:
        raise ReleaseRejectedError(reasons)
    assert strategy is not None and alias_state is not None
    return ValidatedRelease(service=service, strategy=strategy, alias_state=alias_state)


_ACCESS_CODES = (ReleaseReasonCode.FUNCTION_NOT_REGISTERED, ReleaseReasonCode.SOURCE_NOT_AUTHORIZED)


def _aws_reasons(
    request: ReleaseRequested,
    strategy: Strategy | None,
    version_valid: bool,
    unregistered_hooks: set[str | None],
    aliases: LambdaAliases,
    health: AlarmHealth,
) -> tuple[list[ReleaseReason], AliasState | None]:
    """Every check that reads Lambda or CloudWatch, skipping only those a static problem makes
    meaningless (an invalid version is not looked up, an unregistered hook not probed)."""
    reasons: list[ReleaseReason] = []
    alias_state = None
    if not aliases.exists(request.function):
        reasons.append(
            _reason(
                ReleaseReasonCode.UNKNOWN_FUNCTION, f"function {request.function} does not exist", "function"
            )
        )
    else:
        alias_state, alias_reasons = _alias_reasons(request, strategy, aliases)
        reasons.extend(alias_reasons)
        if version_valid:
            reasons.extend(_target_version_reasons(request, strategy, aliases, alias_state, alias_reasons))
    reasons.extend(
        _reason(ReleaseReasonCode.UNKNOWN_HOOK_FUNCTION, f"hook function {hook} does not exist", field)
        for field, hook in _hooks(request)
        if field not in unregistered_hooks and not aliases.exists(hook)
    )
    if len(request.alarms) <= MAX_ALARMS:
        reasons.extend(_alarm_reasons(request, health))
    return reasons, alias_state


def _alias_reasons(
    request: ReleaseRequested, strategy: Strategy | None, aliases: LambdaAliases
) -> tuple[AliasState | None, list[ReleaseReason]]:
    """The alias exists and can be shifted to the target as asked: ``(its state, reasons)``."""
    function, alias = request.function, request.alias
    try:
        alias_state = aliases.get(function, alias)
    except AliasNotFoundError:
        return None, [
            _reason(ReleaseReasonCode.UNKNOWN_ALIAS, f"alias {function}:{alias} does not exist", "alias")
        ]
    reasons = []
    if alias_state.function_version == request.target_version:
        reasons.append(
            _reason(
                ReleaseReasonCode.TARGET_IS_CURRENT,
                f"{function}:{alias} already serves version {request.target_version}",
                "targetVersion",
            )
        )
    if strategy is not None and strategy.weighted and alias_state.function_version == LATEST:
        reasons.append(
            _reason(
                ReleaseReasonCode.ALIAS_ON_LATEST,
                f"{function}:{alias} points at $LATEST, which Lambda cannot weight; "
                "use AllAtOnce or BlueGreen, or point the alias at a published version first",
                "alias",
            )
        )
    return alias_state, reasons


def _target_version_reasons(
    request: ReleaseRequested,
    strategy: Strategy | None,
    aliases: LambdaAliases,
    alias_state: AliasState | None,
    alias_reasons: list[ReleaseReason],
) -> list[ReleaseReason]:
    """The target version exists and, for a weighted shift, Lambda accepts routing across it."""
    try:
        target_config = aliases.version_config(request.function, request.target_version)
    except (VersionNotFoundError, FunctionNotFoundError):
        return [
            _reason(
                ReleaseReasonCode.UNKNOWN_VERSION,
                f"version {request.target_version} of {request.function} does not exist",
                "targetVersion",
            )
        ]
    if alias_state is None or alias_reasons or strategy is None or not strategy.weighted:
        return []
    current_config = aliases.version_config(request.function, alias_state.function_version)
    conflicts = current_config.routing_conflicts(target_config)
    if not conflicts:
        return []
    return [
        _reason(
            ReleaseReasonCode.INCOMPATIBLE_VERSION_CONFIG,
            f"versions {alias_state.function_version} and {request.target_version} differ in "
            f"{', '.join(conflicts)}; Lambda refuses a weighted alias across them "
            "(use AllAtOnce or BlueGreen)",
            "targetVersion",
        )
    ]


def _alarm_reasons(request: ReleaseRequested, health: AlarmHealth) -> list[ReleaseReason]:
    """Every alarm exists and none is firing before any traffic moved."""
    if not request.alarms:
        return []
    states = health.states(request.alarms)
    reasons = []
    missing = [name for name in request.alarms if name not in states]
    if missing:
        reasons.append(
            _reason(ReleaseReasonCode.UNKNOWN_ALARM, f"alarm(s) not found: {', '.join(missing)}", "alarms")
        )
    firing = [name for name in request.alarms if states.get(name) == "ALARM"]
    if firing:
        reasons.append(
            _reason(
                ReleaseReasonCode.ALARM_ACTIVE,
                f"alarm(s) already in ALARM before any traffic moved: {', '.join(firing)}",
                "alarms",
            )
        )
    return reasons
