"""Release fixtures on moto: a service function with published versions and a ``live``
alias, the release table (same keys and indexes as stacks/release.py), a bus whose
``configpipe.pipeline`` events are captured in an SQS queue, a controllable clock and a
fake hook port (it stands for the service team's hook function, which moto cannot run)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from configpipe.bus import ConfigBus
from configpipe.registry import Registry
from configpipe.release.alias import LambdaAliases
from configpipe.release.health import AlarmHealth
from configpipe.release.hooks import HookRequest, HookResult, HookVerdict
from configpipe.release.model import AliasTarget
from configpipe.release.service import ReleaseService
from configpipe.release.store import ReleaseStore
from configpipe.release.version_metrics import VersionMetrics

#: the session's default region (tests/conftest.py): a function built from its settings makes its
#: clients in the default region, as in Lambda, and must find these resources there
REGION = "us-east-1"
FUNCTION = "checkout-api"
HOOK = "checkout-smoke"
ALIAS = "live"
TEAM = "configpipe.team.checkout"
TABLE = "release-state"
BUS = "configpipe-config-bus"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)

REGISTRY = Registry.model_validate(
    {
        "services": {
            "checkout": {"publishers": [TEAM], "functions": [FUNCTION, HOOK]},
            "payments": {
                "publishers": ["configpipe.team.payments"],
                "functions": ["payments-api", "ghost-fn"],
            },
        }
    }
)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def create_release_table(client: Any, name: str = TABLE) -> None:
    def gsi(index: str, pk: str, sk: str) -> dict[str, Any]:
        return {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[gsi("queue", "gsi1pk", "gsi1sk"), gsi("byAlias", "gsi2pk", "gsi2sk")],
    )


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> datetime:
        self.now = START + timedelta(minutes=minutes)
        return self.now


@dataclass
class FakeHooks:
    """The hook port, faked: answers per phase and records every call."""

    verdicts: dict[str, HookVerdict] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, HookRequest]] = field(default_factory=list)

    def run(self, function: str, request: HookRequest, timeout_seconds: int) -> HookResult:
        self.calls.append((function, request))
        verdict = self.verdicts.get(request.phase.value, HookVerdict.PASSED)
        message = self.messages.get(request.phase.value, f"fake {verdict.value.lower()}")
        return HookResult(verdict=verdict, message=message)


@dataclass
class Env:
    lam: Any
    cw: Any
    ddb: Any
    sqs: Any
    queue_url: str
    clock: Clock
    hooks: FakeHooks
    role_a: str
    role_b: str
    checkpoints: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)

    def service(self) -> ReleaseService:
        def checkpoint(name: str) -> None:
            # faults[name] = n: the n-th time `name` is reached from now on, the function "dies"
            self.checkpoints.append(name)
            if name in self.faults:
                self.faults[name] -= 1
                if self.faults[name] <= 0:
                    del self.faults[name]
                    raise RuntimeError(f"injected crash at {name}")

        return ReleaseService(
            store=ReleaseStore(TABLE, self.ddb),
            aliases=LambdaAliases(self.lam),
            health=AlarmHealth(self.cw),
            hooks=self.hooks,
            bus=ConfigBus(BUS, boto3.client("events", region_name=REGION)),
            registry=REGISTRY,
            clock=self.clock,
            checkpoint=checkpoint,
            version_metrics=VersionMetrics(self.cw),
        )

    def alias(self) -> AliasTarget:
        response = self.lam.get_alias(FunctionName=FUNCTION, Name=ALIAS)
        return AliasTarget.of(
            response["FunctionVersion"], (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        )

    def set_alias(self, version: str, weights: dict[str, float] | None = None) -> None:
        self.lam.update_alias(
            FunctionName=FUNCTION,
            Name=ALIAS,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights or {}},
        )

    def alarm(self, name: str, state: str = "OK") -> None:
        self.cw.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        self.cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every pipeline event published so far (drains the capture queue into a cache)."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                _captured.setdefault(id(self), []).append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        captured = _captured.get(id(self), [])
        return [e for e in captured if detail_type is None or e["detail-type"] == detail_type]

    def table_items(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=TABLE)["Items"]


_captured: dict[int, list[dict[str, Any]]] = {}


@pytest.fixture
def env() -> Iterator[Env]:
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role_a = iam.create_role(RoleName="checkout-a", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        role_b = iam.create_role(RoleName="checkout-b", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        lam.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.12",
            Role=role_a,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
        )
        lam.publish_version(FunctionName=FUNCTION)  # 1
        lam.update_function_configuration(FunctionName=FUNCTION, Description="v2")
        lam.publish_version(FunctionName=FUNCTION)  # 2
        lam.update_function_configuration(FunctionName=FUNCTION, Role=role_b, Description="v3 other role")
        lam.publish_version(FunctionName=FUNCTION)  # 3: a role Lambda refuses to weight against 1
        lam.update_function_configuration(FunctionName=FUNCTION, Role=role_a, Description="v4")
        lam.publish_version(FunctionName=FUNCTION)  # 4
        lam.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion="1")
        lam.create_function(
            FunctionName=HOOK,
            Runtime="python3.12",
            Role=role_a,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
        )
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_release_table(ddb)
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="captured")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": ["configpipe.pipeline"]})
        )
        events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
        env = Env(
            lam=lam,
            cw=boto3.client("cloudwatch", region_name=REGION),
            ddb=ddb,
            sqs=sqs,
            queue_url=queue_url,
            clock=Clock(),
            hooks=FakeHooks(),
            role_a=role_a,
            role_b=role_b,
        )
        yield env
        _captured.pop(id(env), None)


def request(**overrides: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "releaseId": "rel-1",
        "function": FUNCTION,
        "alias": ALIAS,
        "targetVersion": "2",
        "strategy": "Canary10Percent5Minutes",
        "author": "dev@example.com",
        "reason": "ship v2",
    }
    detail.update(overrides)
    return {k: v for k, v in detail.items() if v is not None}


def control(action: str, control_id: str | None = None, release_id: str = "rel-1") -> dict[str, Any]:
    return {
        "releaseId": release_id,
        "controlId": control_id or f"{action}-1",
        "action": action,
        "author": "oncall@example.com",
        "reason": f"{action} by test",
    }
