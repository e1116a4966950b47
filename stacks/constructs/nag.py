"""cdk-nag AwsSolutions checks and the one way findings are acknowledged.

Every acknowledgement goes through :func:`acknowledge`: it names one finding (rule id plus,
for rules that report several findings per resource, the exact ``[Action::…]`` or
``[Resource::…]`` it applies to) on one construct, with the reason it is acceptable. There
is deliberately no stack-wide variant.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def attach_checks(app: App) -> None:
    """Run AwsSolutions on every stack at synth; any unacknowledged finding fails synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    if not finding.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions finding: {finding!r}")
    if len(reason) < 20:
        raise ValueError(f"acknowledging {finding} needs a specific reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))
