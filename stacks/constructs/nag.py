"""cdk-nag checks (AwsSolutions and NIST 800-53 rev. 5) and the one way findings are
acknowledged.

Every acknowledgement goes through :func:`acknowledge`: it names one finding (rule id plus,
for rules that report several findings per resource, the exact ``[Action::…]`` or
``[Resource::…]`` it applies to) on one construct, with the reason it is acceptable. There
is deliberately no stack-wide variant.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

#: The rule packs run at synth, by the prefix of their findings' ids.
PACKS = ("AwsSolutions-", "NIST.800.53.R5-")


def attach_checks(app: App) -> None:
    """Run AwsSolutions and NIST 800-53 R5 on every stack at synth; any unacknowledged finding
    fails synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    if not finding.startswith(PACKS):
        raise ValueError(f"not a finding of {' or '.join(p.rstrip('-') for p in PACKS)}: {finding!r}")
    if len(reason) < 20:
        raise ValueError(f"acknowledging {finding} needs a specific reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))
