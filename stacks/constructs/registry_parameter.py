"""The service registry, published as one SSM parameter read by the validator and propagator."""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from configpipe.registry import Registry

PARAMETER_NAME = "/configpipe/registry"
#: Standard-tier parameters hold at most 4 KB; larger registries need (paid) Advanced tier.
STANDARD_TIER_MAX_BYTES = 4096


class RegistryParameter(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, registry: Registry) -> None:
        super().__init__(scope, construct_id)
        document = registry.to_document()
        size = len(document.encode("utf-8"))
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=PARAMETER_NAME,
            description="configpipe service registry (from cdk.json context configpipe.registry)",
            string_value=document,
            tier=ssm.ParameterTier.ADVANCED if size > STANDARD_TIER_MAX_BYTES else ssm.ParameterTier.STANDARD,
        )
