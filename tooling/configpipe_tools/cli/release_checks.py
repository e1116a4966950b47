"""The checks ``configpipe release …`` makes before it sends anything.

They run the release function's own code (:mod:`configpipe.release.contracts`,
:mod:`configpipe.release.validation`): the contract, the strategy and its ranges, ``$LATEST``,
and the registry rules when ``/configpipe/registry`` is readable. A failure is exit 2 and
nothing is published. Checks that need Lambda, CloudWatch or the release's state are the
release function's (its ``ReleaseRejected`` is exit 3).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from configpipe.release.contracts import (
    CustomStrategy,
    ReleaseControl,
    ReleaseReason,
    ReleaseReasonCode,
    ReleaseRequested,
)
from configpipe.release.service import reasons_from_validation_error
from configpipe.release.validation import owner_of, static_reasons
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid

#: Stands in for the author (and an unknown release id) while input is checked, so bad input
#: is reported before any AWS call (STS, DynamoDB) is made.
PLACEHOLDER = "pending"

_HINTS = {
    ReleaseReasonCode.UNKNOWN_STRATEGY: "Named strategies: Canary10Percent5Minutes, …, "
    "Linear10PercentEvery1Minute, …, AllAtOnce, BlueGreen; custom ones follow the same grammar.",
    ReleaseReasonCode.INVALID_PERCENTAGE: "The percentage is at least 1 and below 100, "
    "e.g. Canary5Percent10Minutes.",
    ReleaseReasonCode.INVALID_INTERVAL: "Intervals are 1-1440 minutes.",
    ReleaseReasonCode.TARGET_IS_LATEST: "Publish a version (`aws lambda publish-version`) and release that.",
    ReleaseReasonCode.INVALID_VERSION: "--to-version is a published version number, e.g. 42.",
    ReleaseReasonCode.FUNCTION_NOT_REGISTERED: "Ask the platform team to list the function in its "
    "service's `functions` (cdk.json configpipe.registry).",
    ReleaseReasonCode.SOURCE_NOT_AUTHORIZED: "Publish as the owning service's team (--source).",
    ReleaseReasonCode.HOOK_NOT_REGISTERED: "A hook must be a registered function of the same service.",
}


def refuse(reasons: list[ReleaseReason]) -> None:
    """Exit 2, nothing sent, when there is any reason."""
    if reasons:
        raise CliError(
            "the release request is invalid; nothing was sent",
            ExitCode.INVALID,
            "INVALID_RELEASE",
            hint=next((_HINTS[r.code] for r in reasons if r.code in _HINTS), None),
            details={"reasons": [r.to_detail() for r in reasons]},
        )


def strategy_value(strategy: str) -> str | dict[str, Any]:
    """A name, or the parameter object when the option holds JSON."""
    if not strategy.lstrip().startswith("{"):
        return strategy
    try:
        value = json.loads(strategy)
    except ValueError:
        raise invalid(
            "--strategy looks like JSON but does not parse",
            code="INVALID_STRATEGY",
            hint='e.g. --strategy \'{"type": "canary", "percentage": 5, "intervalMinutes": 10}\'',
        ) from None
    try:
        return CustomStrategy.model_validate(value).to_detail()
    except ValidationError as error:
        refuse(reasons_from_validation_error(error))
        raise  # unreachable: refuse raised


def analysis_value(analysis: str | None) -> dict[str, Any] | None:
    """``--analysis``: the JSON object of a release's analysis gates (issue 16), or None."""
    if analysis is None:
        return None
    try:
        value = json.loads(analysis)
    except ValueError:
        raise invalid(
            "--analysis must be a JSON object",
            code="INVALID_ANALYSIS",
            hint='e.g. --analysis \'{"gates": [{"metric": "errorRate", "maxIncreasePercent": 50}]}\'',
        ) from None
    if not isinstance(value, dict):
        raise invalid("--analysis must be a JSON object", code="INVALID_ANALYSIS")
    return value


def parse_request(detail: dict[str, Any]) -> ReleaseRequested:
    try:
        return ReleaseRequested.model_validate({k: v for k, v in detail.items() if v is not None})
    except ValidationError as error:
        refuse(reasons_from_validation_error(error))
        raise  # unreachable: refuse raised


def parse_control(**fields: Any) -> ReleaseControl:
    try:
        return ReleaseControl.model_validate(fields)
    except ValidationError as error:
        refuse(reasons_from_validation_error(error))
        raise  # unreachable: refuse raised


def check_request(cli: CliContext, team: str, detail: dict[str, Any]) -> ReleaseRequested:
    """The request as the release function will parse it, checked as far as can be here.
    ``detail`` still carries the placeholder author: the real one costs an STS call."""
    # 1. The contract and the registry-free rules: no AWS yet.
    request = parse_request(detail)
    refuse(static_reasons(request, team, None)[0])
    # 2. The registry rules, when this identity can read the registry.
    registry = cli.registry()
    if registry is not None:
        refuse(static_reasons(request, team, registry)[0])
    return request


def check_control(
    cli: CliContext, team: str, function: str, release_id: str | None, control: dict[str, Any]
) -> None:
    """The control's contract (with placeholders for what is not known yet) and, when the
    registry is readable, that ``team`` may steer releases of ``function``."""
    parse_control(releaseId=release_id or PLACEHOLDER, author=cli.author_override or PLACEHOLDER, **control)
    registry = cli.registry()
    if registry is None:
        return
    owner = owner_of(registry, function)
    if owner is None:
        refuse(
            [
                ReleaseReason(
                    code=ReleaseReasonCode.FUNCTION_NOT_REGISTERED,
                    message=f"{function} is not in any registered service's functions",
                    field="function",
                )
            ]
        )
    elif team not in registry.services[owner].publishers:
        refuse(
            [
                ReleaseReason(
                    code=ReleaseReasonCode.SOURCE_NOT_AUTHORIZED,
                    message=f"source {team} may not control releases of service {owner}",
                    field="source",
                )
            ]
        )
