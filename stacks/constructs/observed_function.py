"""A Lambda function the way every configpipe function is built: its own role and nothing
else's, its own log group (the only one it may write), Powertools from the public layer,
X-Ray active, JSON logs.

Callers grant each role exact actions on exact ARNs through :meth:`allow`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from configpipe.metrics import NAMESPACE
from stacks.constructs import nag
from stacks.constructs.openfeature_layer import OpenFeatureLayer
from stacks.settings import PipelineSettings

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
#: ``functions/`` is exactly the runtime (the ``configpipe`` package and the sample update
#: handler); the CLI and the local emulator live in ``tooling/`` and cannot ship. Caches never do.
ASSET_EXCLUDES = [
    "**/__pycache__",
    "*.pyc",
    "*.egg-info",
]
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
RUNTIME = lambda_.Runtime.PYTHON_3_12
DEFAULT_TIMEOUT = Duration.seconds(30)


def powertools_layer_arn(version: int) -> str:
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_LAYER_ACCOUNT}:"
        f"layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:{version}"
    )


class SharedCode(Construct):
    """The code asset and Powertools layer, defined once and shared by every function."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=ASSET_EXCLUDES)
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", powertools_layer_arn(settings.powertools_layer_version)
        )
        #: For functions whose code uses configpipe.client.openfeature (the demo handlers).
        self.openfeature = OpenFeatureLayer(self, "OpenFeature", runtime=RUNTIME).layer


class ObservedFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedCode,
        settings: PipelineSettings,
        handler: str,
        service_name: str,
        description: str,
        environment: Mapping[str, str],
        function_name: str | None = None,
        timeout: Duration | None = None,
        memory_size: int = 256,
        extra_layers: Sequence[lambda_.ILayerVersion] = (),
        concurrency_name: str | None = None,
    ) -> None:
        """``concurrency_name``: this function's entry in the ``reservedConcurrency`` setting
        (default: ``service_name``)."""
        super().__init__(scope, construct_id)
        self._unscoped_reasons: list[str] = []
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"configpipe {service_name}: exactly what this function needs",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=shared.code,
            handler=handler,
            layers=[shared.powertools, *extra_layers],
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout or DEFAULT_TIMEOUT,
            memory_size=memory_size,
            reserved_concurrent_executions=settings.reserved_concurrency.get(
                concurrency_name or service_name
            ),
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # botocore's "standard" retry mode (exponential backoff with jitter, throttling
                # and transient errors) for every client, instead of the "legacy" default.
                "AWS_RETRY_MODE": "standard",
                **environment,
            },
        )
        # The role is the function's own, so it may write its own log group and no other.
        self.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        self._acknowledge_unscoped(
            "X-Ray PutTraceSegments/PutTelemetryRecords (added by Tracing.ACTIVE) have no resource "
            "type and can only be granted on '*'"
        )
        # --- NIST 800-53 R5 (docs/security.md) ---------------------------------------------
        nag.acknowledge(
            self.function,
            "NIST.800.53.R5-LambdaInsideVPC",
            "The function calls only AWS APIs (DynamoDB, SSM, Secrets Manager, KMS, EventBridge, "
            "Lambda, CloudWatch), each request signed with its own role and sent over TLS, and "
            "serves no network endpoint; a VPC would add NAT or an interface endpoint per service "
            "and no control over who may call what that IAM does not already give.",
        )
        nag.acknowledge(
            self.log_group,
            "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            "CloudWatch Logs encrypts every log group at rest; what is logged here holds no "
            "configuration value or secret (identities, reason codes and value hashes only: "
            "tests/unit/test_materialise.py::test_a_secret_never_reaches_the_logs_even_when_its_"
            "record_fails), so a customer-managed key would protect nothing more.",
        )
        nag.acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "This policy is the function's own: exact actions on exact ARNs for this role alone, "
            "versioned and deployed with the template and deleted with the role. A managed policy "
            "exists to be shared between principals, which least privilege per function avoids.",
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12 because the public Powertools layer used here is the python312 "
            "build; move both together when the layer for a newer runtime is adopted.",
        )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    @property
    def function_name(self) -> str:
        return self.function.function_name

    def allow(
        self,
        actions: Sequence[str],
        resources: Sequence[str],
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=conditions)
        )

    def allow_unscoped(self, actions: Sequence[str], why: str) -> None:
        """Grant actions that IAM cannot scope to a resource (read-only ones only)."""
        self.allow(actions, ["*"])
        self._acknowledge_unscoped(why)

    def _acknowledge_unscoped(self, why: str) -> None:
        self._unscoped_reasons.append(why)
        nag.acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "; ".join(self._unscoped_reasons) + "; every other statement of this role names exact ARNs.",
        )

    def arn(self, service: str, resource: str) -> str:
        """An ARN in this stack's account and region (e.g. ``arn("ssm", "parameter/config/*")``)."""
        stack = Stack.of(self)
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"
