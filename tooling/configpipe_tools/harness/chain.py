"""The whole pipeline in one process, on moto, driven step by step.

:class:`Chain` plays the parts AWS plays between our functions: it reads what reached the
bus (through a catch-all rule, so moto's EventBridge does the routing), hands
``ConfigurationChange`` to the validator handler and ``ConfigurationUpdated`` and every
``ConfigurationRollout*`` announcement to the propagator handler, hands the change log's
stream records (versions, rejections, rollout items) to the materialiser handler,
and runs each async Lambda invocation of a service's update handler. Like AWS it is
at-least-once: a failed invocation is retried with the same event, a failed stream
record is redelivered.

Faults are injected at the AWS boundary, never inside our code: :class:`Crashes` raises
*after* a chosen AWS call has taken effect (the side effect happened, then the process
"died"), through botocore's ``after-call`` event hook on every client the functions make.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from configpipe.bus import ConfigBus
from configpipe.changelog import ChangeLog
from configpipe.contracts import ROLLOUT_EVENT_TYPES
from configpipe.crypto import SecretsKey
from configpipe.fanout import FanOut
from configpipe.handlers import materialiser as materialiser_handler
from configpipe.handlers import propagator as propagator_handler
from configpipe.registry_source import RegistrySource
from configpipe.settings import MaterialiserSettings
from configpipe.streams import lambda_stream_record, passes_materialiser_filter
from configpipe.write_path import WritePath
from configpipe_tools.harness.aws import ACCOUNT, REGION, Pipeline
from configpipe_tools.harness.events import sealed
from configpipe_tools.harness.lambda_context import LambdaContext
from sample_service.app import build as build_update_handler
from sample_service.settings import SampleServiceSettings

MAX_ATTEMPTS = 6
_PROPAGATED = {"ConfigurationUpdated", *(t.value for t in ROLLOUT_EVENT_TYPES)}


class SimulatedCrashError(Exception):
    """The function's process died right after an AWS call returned."""


@dataclass
class Crashes:
    """Crash after the ``nth`` successful call of ``service.Operation`` (once)."""

    plan: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    fired: list[tuple[str, str]] = field(default_factory=list)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __call__(self, model: Any, http_response: Any = None, **_: Any) -> None:
        op = (model.service_model.service_name, model.name)
        self.calls[op] += 1
        if op not in self.plan or (http_response is not None and http_response.status_code >= 300):
            return
        self.seen[op] += 1
        if self.seen[op] == self.plan[op]:
            self.fired.append(op)
            raise SimulatedCrashError(f"crash after {op[0]}.{op[1]} #{self.plan[op]}")


@dataclass
class Delivery:
    """Knobs for how the chain delivers: duplicates and ordering."""

    duplicate: bool = False
    reverse: bool = False


class Chain:
    def __init__(self, pipeline: Pipeline, crashes: Crashes | None = None, delivery: Delivery | None = None):
        self.pipeline = pipeline
        self.crashes = crashes or Crashes()
        self.delivery = delivery or Delivery()
        # Every client the functions create comes from this session, so the crash hook
        # sees every AWS call they make; the test's own publishing uses another session.
        self.session = boto3.Session(region_name=REGION)
        self.session.events.register("after-call.*.*", self.crashes)
        env = pipeline.env()
        registry = RegistrySource(pipeline.registry_parameter, client=self.session.client("ssm"))
        self.write_path = WritePath(
            change_log=ChangeLog(
                pipeline.table_name, table=self.session.resource("dynamodb").Table(pipeline.table_name)
            ),
            registry=registry,
            secrets=SecretsKey(
                pipeline.secrets_key_id, pipeline.hash_key_id, client=self.session.client("kms")
            ),
        )
        self.materialiser = _build_materialiser(self.session, MaterialiserSettings.model_validate(env))
        self.fanout = FanOut(
            registry=registry,
            invoker=self._invoke_async,
            bus=ConfigBus(pipeline.bus_name, client=self.session.client("events")),
        )
        self.update_handlers = {
            pipeline.registry.handler_of(name): build_update_handler(
                SampleServiceSettings(service_name=name, applied_table=pipeline.applied_table_name),
                table=self.session.resource("dynamodb").Table(pipeline.applied_table_name),
            )
            for name in pipeline.registry.services
        }
        self._async_queue: list[tuple[str, dict[str, Any], int]] = []
        self._pending_records: list[dict[str, Any]] = []
        self._pending_events: list[tuple[dict[str, Any], int]] = []
        self.seen_events: list[dict[str, Any]] = []
        self.dead_letters: list[Any] = []
        self._publisher = boto3.Session(region_name=REGION).client("events")

    # --- what a team does ------------------------------------------------------------------

    def sealed(self, detail: dict[str, Any]) -> dict[str, Any]:
        """``detail`` with its value encrypted as a publisher sends a secret (``encryptedValue``),
        with a client of its own, so the encryption is no crash point of the functions."""
        kms = boto3.Session(region_name=REGION).client("kms")
        return sealed(detail, self.pipeline.secrets_key_id, kms)

    def publish(self, detail: dict[str, Any], source: str = "configpipe.team.checkout") -> None:
        response = self._publisher.put_events(
            Entries=[
                {
                    "EventBusName": self.pipeline.bus_name,
                    "Source": source,
                    "DetailType": "ConfigurationChange",
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert response["FailedEntryCount"] == 0

    # --- what AWS does between our functions ------------------------------------------------

    def run(self, max_rounds: int = 50) -> None:
        """Deliver until nothing is left to deliver."""
        for _ in range(max_rounds):
            progressed = self._deliver_bus_events()
            progressed |= self._deliver_stream_records()
            progressed |= self._run_async_invocations()
            if not progressed:
                return
        raise AssertionError("the pipeline did not settle")

    def _deliver_bus_events(self) -> bool:
        fresh = [(self._as_lambda_event(e), 0) for e in self.pipeline.bus_events()]
        self.seen_events.extend(e for e, _ in fresh)
        if self.delivery.duplicate:
            fresh = [x for pair in zip(fresh, fresh, strict=True) for x in pair]
        if self.delivery.reverse:
            fresh.reverse()
        queue, self._pending_events = self._pending_events + fresh, []
        for event, attempts in queue:
            target = self._target(event)
            if target is None:
                continue
            try:
                target(event)
            except SimulatedCrashError:
                self._retry_event(event, attempts)
            except Exception as error:  # an AWS-level failure: EventBridge/Lambda retry
                self._retry_event(event, attempts, error)
        return bool(queue)

    def _retry_event(self, event: dict[str, Any], attempts: int, error: Exception | None = None) -> None:
        if attempts + 1 >= MAX_ATTEMPTS:
            self.dead_letters.append((event, error))
        else:
            self._pending_events.append((event, attempts + 1))

    def _target(self, event: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
        """The rules of the stack: ConfigurationChange from a team → validator;
        ConfigurationUpdated and ConfigurationRollout* from the pipeline → propagator."""
        if event["detail-type"] == "ConfigurationChange" and event["source"].startswith("configpipe.team."):
            return self.write_path.handle
        if event["detail-type"] in _PROPAGATED and event["source"] == "configpipe.pipeline":
            return lambda e: propagator_handler.handler(e, LambdaContext(), fanout=self.fanout)
        return None

    def _deliver_stream_records(self) -> bool:
        fresh = self.pipeline.stream_event()["Records"]
        fresh = [r for r in fresh if passes_materialiser_filter(r)]
        if self.delivery.duplicate:
            fresh = fresh + fresh
        if self.delivery.reverse:
            fresh = list(reversed(fresh))
        batch = self._pending_records + fresh
        if not batch:
            return False
        lambda_records = [lambda_stream_record(r, self.pipeline.stream_arn) for r in batch]
        try:
            response = materialiser_handler.handler(
                {"Records": lambda_records}, LambdaContext(), materialiser=self.materialiser
            )
        except Exception:  # the whole batch failed (Powertools raises): the ESM retries it all
            self._pending_records = batch
            return True
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        self._pending_records = [r for r in batch if r["dynamodb"]["SequenceNumber"] in failed]
        return True

    def _invoke_async(self, function_name: str, payload: bytes) -> None:
        """Lambda's async Invoke: accepted (202) now, run later, retried on failure."""
        if function_name not in self.update_handlers:
            raise RuntimeError(f"ResourceNotFoundException: Function not found: {function_name}")
        self._async_queue.append((function_name, json.loads(payload), 0))

    def _run_async_invocations(self) -> bool:
        queue, self._async_queue = self._async_queue, []
        for function_name, event, attempts in queue:
            try:
                self.update_handlers[function_name](event, LambdaContext(function_name=function_name))
            except Exception as error:
                if attempts + 1 >= 3:  # Lambda async: 1 try + 2 retries, then the DLQ
                    self.dead_letters.append((function_name, error, event.get("detail-type")))
                else:
                    self._async_queue.append((function_name, event, attempts + 1))
        return bool(queue)

    @staticmethod
    def _as_lambda_event(event: dict[str, Any]) -> dict[str, Any]:
        # moto's SQS target leaves out "account", which EventBridge always sends to Lambda.
        return {"account": ACCOUNT, **event}


def _build_materialiser(session: boto3.Session, settings: MaterialiserSettings) -> Any:
    from configpipe.materialise import Materialiser
    from configpipe.stores import ParameterStore, SecretStore

    return Materialiser(
        change_log=ChangeLog(
            settings.change_log_table, table=session.resource("dynamodb").Table(settings.change_log_table)
        ),
        parameters=ParameterStore(client=session.client("ssm")),
        secrets=SecretStore(client=session.client("secretsmanager"), kms_key_id=settings.secrets_key_id),
        secrets_key=SecretsKey(settings.secrets_key_id, client=session.client("kms")),
        bus=ConfigBus(settings.event_bus_name, client=session.client("events")),
        inline_value_max_bytes=settings.inline_value_max_bytes,
        registry=RegistrySource(settings.registry_parameter, client=session.client("ssm")),
    )


def snapshot(pipeline: Pipeline) -> dict[str, Any]:
    """Everything a change leaves behind, minus timestamps: change log versions and
    pointers, SSM parameters, secrets, what each service applied."""
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    log_items = dynamodb.Table(pipeline.table_name).scan(ConsistentRead=True)["Items"]
    versions = sorted(
        (
            i["pk"],
            i["sk"],
            int(i["version"]),
            _stable(i.get("valueHash")),
            i.get("operation"),
            bool(i.get("deleted")),
        )
        for i in log_items
        if i["kind"] in ("version", "current")
    )
    rollouts = sorted(
        (i["pk"], str(i["rolloutId"]), i["status"], int(i["sequence"]), str(i["weight"]))
        for i in log_items
        if i["kind"] == "rollout"
    )
    changes = sorted(
        (i["pk"], i["status"], i.get("version") and int(i["version"]))
        for i in log_items
        if i["kind"] == "change"
    )
    ssm = boto3.client("ssm", region_name=REGION)
    parameters = {
        p["Name"]: p["Value"]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/config", Recursive=True)
        for p in page["Parameters"]
    }
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    secrets = {}
    for secret in secretsmanager.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
        deleted = "DeletedDate" in secret
        value = None if deleted else secretsmanager.get_secret_value(SecretId=secret["ARN"])["SecretString"]
        secrets[secret["Name"]] = (deleted, value)
    applied_items = dynamodb.Table(pipeline.applied_table_name).scan(ConsistentRead=True)["Items"]
    applied = sorted(
        (i["pk"], i["sk"], int(i["version"]), _stable(i["valueHash"]), bool(i.get("deleted")))
        for i in applied_items
        if "version" in i
    )
    # the sample service's record of the last rollout step it applied, per key
    applied_rollouts = sorted(
        (i["pk"], i["sk"], i["rolloutId"], i["status"], int(i["candidateVersion"]), int(i["sequence"]))
        for i in applied_items
        if "rolloutId" in i
    )
    return {
        "versions": versions,
        "rollouts": rollouts,
        "changes": changes,
        "parameters": parameters,
        "secrets": secrets,
        "applied": applied,
        "appliedRollouts": applied_rollouts,
    }


def _stable(value_hash: Any) -> Any:
    """HMACs depend on the run's KMS key; compare secrets by their stored value instead."""
    return "hmac-sha256:*" if isinstance(value_hash, str) and value_hash.startswith("hmac-") else value_hash
