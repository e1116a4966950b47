#!/usr/bin/env python3
"""The configpipe CDK app. Settings come from cdk.json context ``configpipe``."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.configpipe_stack import ConfigPipeStack
from stacks.constructs import nag
from stacks.settings import PipelineSettings

STACK_NAME = "ConfigPipe"


def build_app(app: cdk.App | None = None, *, with_nag: bool = True) -> cdk.App:
    app = app or cdk.App()
    settings = PipelineSettings.from_node(app.node)
    ConfigPipeStack(
        app,
        STACK_NAME,
        settings=settings,
        description="configpipe: event-driven configuration pipeline",
    )
    if with_nag:
        nag.attach_checks(app)
    return app


if __name__ == "__main__":
    build_app().synth()
