"""cdk-nag findings on the app as cdk.json ships it (in-process synth, both packs attached):
how many each rule reports, and how many of them the stack acknowledges.

    .venv/bin/python scripts/nag_findings.py [--pack NIST.800.53.R5-] [--version-prune]

The first synth keeps every acknowledgement (what a deploy sees: it must print 0). The second
drops the acknowledgements of ``--pack`` (default: NIST 800-53 R5), so what it prints is every
finding of that pack on the template, acknowledged or not; the difference is what the
acknowledgements cover. ``--version-prune`` turns the scheduled prune on for one function
(it is off in cdk.json), so its function is checked too.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # app.py and stacks/ live at the repo root, not in a package

from configpipe_tools.local.template import jsii_quiet_environment  # noqa: E402

os.environ.update(jsii_quiet_environment())  # before jsii starts: no Node end-of-life banner

import aws_cdk as cdk  # noqa: E402

from app import build_app  # noqa: E402
from stacks.constructs import nag  # noqa: E402


def findings(context: dict[str, Any]) -> list[tuple[str, str]]:
    out = tempfile.mkdtemp(prefix="nag-")
    app = cdk.App(context=context, outdir=out)
    build_app(app, with_nag=True)
    try:
        app.synth()
    except RuntimeError as error:  # ValidationFailed: the report is written all the same
        if "ValidationFailed" not in str(error):
            raise
    report = json.loads((Path(out) / "validation-report.json").read_text())
    return [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="NIST.800.53.R5-", help="prefix of the pack's rule ids")
    parser.add_argument("--version-prune", action="store_true", help="synthesise with the prune on")
    args = parser.parse_args()
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    if args.version_prune:
        context["configpipe"]["versionPrune"] = {"checkout-api": {"keep": 3}}

    unacknowledged = findings(context)
    print(f"unacknowledged findings, all packs: {len(unacknowledged)}")
    for rule, path in sorted(unacknowledged):
        print(f"  {rule}  {path}")

    real = nag.acknowledge

    def without_pack(construct: Any, finding: str, reason: str) -> None:
        if not finding.startswith(args.pack):
            real(construct, finding, reason)

    nag.acknowledge = without_pack  # type: ignore[assignment]
    try:
        every = findings(context)
    finally:
        nag.acknowledge = real  # type: ignore[assignment]
    in_pack = [(rule, path) for rule, path in every if rule.startswith(args.pack)]
    by_rule = collections.Counter(rule for rule, _ in in_pack)
    print(
        f"findings of {args.pack}* with its acknowledgements dropped: {len(in_pack)} ({len(by_rule)} rules)"
    )
    for rule, count in sorted(by_rule.items()):
        print(f"  {count:3d}  {rule}")


if __name__ == "__main__":
    main()
