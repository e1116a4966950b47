"""Hostile-input fuzzing of every function's entry point, on moto (``make fuzz``; not part of
``make test``).

Drives the validator, materialiser, propagator, release manager and the update-handler building
block, each through the event envelope AWS hands it, with ``--events`` generated events (default
10,000 each): a mix of valid events and hostile ones (the whole Unicode range with lone
surrogates, every JSON type in every field, thousands of unknown fields, 100 KB strings, nesting
up to 900 levels, missing fields, broken envelopes; see ``configpipe_tools.harness.hostile``).

For each function it prints: events, how many it rejected, exceptions that escaped (or, for
the materialiser, records it failed), **writes caused by invalid input**, p50/p99 time per
event and the longest log line. A write is every AWS call that is not a read (DynamoDB,
SSM, Secrets Manager, EventBridge, Lambda) that succeeded, counted through botocore's
``after-call`` hook on the one session every function's clients come from, plus the ports that stand for other
functions (an update handler's ``on_update``, the propagator's Invoke). A call made while
handling an event the function rejected is an invalid write, except the one rejection record
the contract allows (the validator's change-log item, the release manager's
``ReleaseRejected``). Exit status 1 if any function had an exception or an invalid write.

    PYTHONPATH=functions:tooling:. .venv/bin/python scripts/fuzz.py [--events N] [--seed S] [--only NAME]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "tooling"), str(ROOT)]
os.environ.update(
    AWS_ACCESS_KEY_ID="fuzz",
    AWS_SECRET_ACCESS_KEY="fuzz",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="configpipe",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_SERVICE_NAME="configpipe-fuzz",
)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from configpipe.bus import ConfigBus  # noqa: E402
from configpipe.changelog import ChangeLog  # noqa: E402
from configpipe.client.update_handler import config_update_handler  # noqa: E402
from configpipe.contracts import ConfigurationChange  # noqa: E402
from configpipe.crypto import SecretsKey  # noqa: E402
from configpipe.fanout import FanOut  # noqa: E402
from configpipe.handlers import materialiser as materialiser_handler  # noqa: E402
from configpipe.handlers import propagator as propagator_handler  # noqa: E402
from configpipe.handlers import release as release_handler  # noqa: E402
from configpipe.handlers import validator as validator_handler  # noqa: E402
from configpipe.observability import logger  # noqa: E402
from configpipe.registry_source import RegistrySource  # noqa: E402
from configpipe.release.alias import LambdaAliases  # noqa: E402
from configpipe.release.health import AlarmHealth  # noqa: E402
from configpipe.release.hooks import HookResult, HookVerdict  # noqa: E402
from configpipe.release.service import ReleaseService  # noqa: E402
from configpipe.release.store import ReleaseStore  # noqa: E402
from configpipe.settings import MaterialiserSettings  # noqa: E402
from configpipe.stores import ParameterStore, SecretStore  # noqa: E402
from configpipe.streams import lambda_stream_record, passes_materialiser_filter  # noqa: E402
from configpipe.values import is_sensitive  # noqa: E402
from configpipe.write_path import WritePath  # noqa: E402
from configpipe_tools.harness import hostile  # noqa: E402
from configpipe_tools.harness.aws import (  # noqa: E402
    ACCOUNT,
    REGION,
    RELEASE_TABLE,
    Pipeline,
    provision,
    provision_release,
)
from configpipe_tools.harness.chain import _build_materialiser  # noqa: E402
from configpipe_tools.harness.events import change, eventbridge_event, sealed  # noqa: E402
from configpipe_tools.harness.hostile import WriteMeter  # noqa: E402
from configpipe_tools.harness.lambda_context import LambdaContext  # noqa: E402

#: A log line longer than this is reported (with its start): caller input is not bounded.
MAX_LOG_LINE = 16_384
#: Put into every valid value: a log line or rejection that carries it leaks a value.
MARKER = "zz-value-marker-zz"
CHANGE_FIELDS = hostile.contract_fields(ConfigurationChange)


# --- observation -----------------------------------------------------------------------------


class LogSink(io.TextIOBase):
    """Where the functions' logs go: kept per event, measured, never printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.taken: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        self.taken.extend(lines)
        return lines

    def drain(self) -> list[str]:
        """Every line since the last drain, including those a target already looked at."""
        lines, self.taken = self.taken + self.lines, []
        self.lines = []
        return lines


@dataclass
class Verdict:
    rejected: bool
    failed: str | None = None  # a record the function failed (the materialiser's batch item failures)


@dataclass
class Report:
    name: str
    events: int = 0
    rejected: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)
    invalid_writes: Counter[str] = field(default_factory=Counter)
    leaks: int = 0
    times: list[float] = field(default_factory=list)
    longest_log_line: int = 0
    longest_log_head: str = ""

    @property
    def ok(self) -> bool:
        return not self.exceptions and not self.invalid_writes and not self.leaks

    def lines(self) -> list[str]:
        times = sorted(self.times)
        p50 = statistics.median(times) * 1000 if times else 0.0
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000 if times else 0.0
        exceptions, invalid_writes = sum(self.exceptions.values()), sum(self.invalid_writes.values())
        out = [
            f"{self.name:<15} events {self.events:>6}  rejected {self.rejected:>6}  "
            f"exceptions {exceptions:>5}  invalid writes {invalid_writes:>5}  "
            f"value in logs {self.leaks:>3}  p50 {p50:7.2f} ms  p99 {p99:8.2f} ms  "
            f"longest log line {self.longest_log_line:>7} B"
        ]
        by_type = Counter[str]()
        example: dict[str, str] = {}
        for text, n in self.exceptions.items():
            kind = text.split(":", 1)[0]
            by_type[kind] += n
            example.setdefault(kind, text)
        out += [f"    exception x{n}: {example[kind]}" for kind, n in by_type.most_common(6)]
        out += [f"    invalid write x{n}: {op}" for op, n in self.invalid_writes.most_common(5)]
        if self.longest_log_line > MAX_LOG_LINE:
            out.append(f"    longest log line starts: {self.longest_log_head!r}")
        return out


def short(error: BaseException) -> str:
    message = str(error).replace("\n", " ")
    return f"{type(error).__name__}: {message[:160]}"


# --- the functions under test --------------------------------------------------------------


class Target:
    """One function: its hostile events and how to invoke it and read its verdict."""

    name = ""
    #: writes the contract allows for a rejected event (its one rejection record)
    allowed_on_reject: Counter[tuple[str, str]] = Counter()

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        raise NotImplementedError

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        raise NotImplementedError


class Validator(Target):
    name = "validator"
    allowed_on_reject = Counter({("dynamodb", "PutItem"): 1})

    #: moto copies every table of the account for each TransactWriteItems (its rollback), so a
    #: change log that grows by one record per event makes the run quadratic: the validator
    #: gets its own table, emptied every this many events.
    RESET_EVERY = 25

    def __init__(self, pipeline: Pipeline, session: boto3.Session, table_name: str) -> None:
        self.table_name = table_name
        self.events_seen = 0
        self.write_path = WritePath(
            change_log=ChangeLog(table_name, table=session.resource("dynamodb").Table(table_name)),
            registry=RegistrySource(pipeline.registry_parameter, client=session.client("ssm")),
            secrets=SecretsKey(pipeline.secrets_key_id, pipeline.hash_key_id, client=session.client("kms")),
        )

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        for _ in range(count):
            pick = rng.random()
            valid = valid_change(rng)
            if pick < 0.3:
                yield eventbridge_event(valid, source=source_of(valid))
            elif pick < 0.8:
                yield eventbridge_event(hostile.mutate(rng, valid, CHANGE_FIELDS), source=source_of(valid))
            elif pick < 0.9:
                yield eventbridge_event(hostile.json_value(rng))
            else:
                yield hostile.envelope_mutation(rng, eventbridge_event(valid))

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        self.events_seen += 1
        if self.events_seen % self.RESET_EVERY == 0:
            copy_table(self.table_name, self.table_name, fresh=True)
        result = validator_handler.handler(event, LambdaContext(), write_path=self.write_path)
        return Verdict(rejected=result.get("status") == "rejected")


class Materialiser(Target):
    name = "materialiser"

    def __init__(self, materialiser: Any, records: list[dict[str, Any]]) -> None:
        self.materialiser = materialiser
        self.records = records

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        for _ in range(count):
            record = rng.choice(self.records)
            pick = rng.random()
            if pick < 0.35:
                yield {"Records": [record]}
            elif pick < 0.85:
                yield {"Records": [mutated_stream_record(rng, record)]}
            else:
                yield hostile.envelope_mutation(rng, {"Records": [record]})

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        try:
            result = materialiser_handler.handler(event, LambdaContext(), materialiser=self.materialiser)
        except Exception as error:  # Powertools raises when every record of the batch failed
            result, failed = {}, short(error)
        else:
            failed = "batch item failure" if result.get("batchItemFailures") else None
        lines = log_lines()
        if failed:
            # the record's own exception, as the handler logged it
            errors = [json.loads(line) for line in lines if '"exception_name"' in line]
            if errors:
                failed = f"{errors[-1].get('exception_name')}: {str(errors[-1].get('exception'))[-200:]}"
        return Verdict(rejected=any('"stream record refused"' in line for line in lines), failed=failed)


class Propagator(Target):
    name = "propagator"

    def __init__(
        self, pipeline: Pipeline, session: boto3.Session, meter: WriteMeter, pool: list[dict[str, Any]]
    ):
        def invoke(function_name: str, payload: bytes) -> None:
            meter.calls.append(("lambda", "Invoke"))  # the port stands for Lambda's async Invoke

        self.fanout = FanOut(
            registry=RegistrySource(pipeline.registry_parameter, client=session.client("ssm")),
            invoker=invoke,
            bus=ConfigBus(pipeline.bus_name, client=session.client("events")),
        )
        self.pool = pool

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        yield from announcement_events(rng, count, self.pool)

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        result = propagator_handler.handler(event, LambdaContext(), fanout=self.fanout)
        return Verdict(rejected=result.get("outcome") == "rejected")


class UpdateHandler(Target):
    name = "update-handler"

    def __init__(self, session: boto3.Session, meter: WriteMeter, pool: list[dict[str, Any]]) -> None:
        # The service's callbacks stand for its own writes: one call is one effect.
        self.handler = config_update_handler(
            "checkout",
            on_update=lambda update, value: meter.calls.append(("service", "on_update")),
            on_rollout=lambda event, stable, candidate: meter.calls.append(("service", "on_rollout")),
            parameters=ParameterStore(client=session.client("ssm")),
            secrets=SecretStore(client=session.client("secretsmanager")),
        )
        self.pool = pool

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        yield from announcement_events(rng, count, self.pool)

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        result = self.handler(event, LambdaContext(function_name="checkout-config-update-handler"))
        return Verdict(rejected=result.get("reason") == "invalid")


class PassingHooks:
    """The hook port: stands for a team's hook function (moto runs no Lambda code)."""

    def run(self, function: str, request: Any, timeout_seconds: int) -> HookResult:
        return HookResult(verdict=HookVerdict.PASSED, message="fuzz")


class ReleaseManager(Target):
    name = "release-manager"
    allowed_on_reject = Counter({("events", "PutEvents"): 1})
    STRATEGIES = ["Canary10Percent5Minutes", "Linear10PercentEvery1Minute", "AllAtOnce", "BlueGreen"]
    REQUEST_FIELDS = [
        "releaseId",
        "function",
        "alias",
        "targetVersion",
        "strategy",
        "alarms",
        "author",
        "reason",
        "preTrafficHook",
        "postTrafficHook",
        "hookTimeoutSeconds",
    ]
    CONTROL_FIELDS = ["controlId", "releaseId", "action", "author", "reason"]

    def __init__(self, pipeline: Pipeline, session: boto3.Session) -> None:
        self.service = ReleaseService(
            store=ReleaseStore(RELEASE_TABLE, session.client("dynamodb")),
            aliases=LambdaAliases(session.client("lambda")),
            health=AlarmHealth(session.client("cloudwatch")),
            hooks=PassingHooks(),
            bus=ConfigBus(pipeline.bus_name, client=session.client("events")),
            registry=pipeline.registry,
        )

    def events(self, rng: random.Random, count: int) -> Iterator[Any]:
        for n in range(count):
            request = {
                "releaseId": f"rel-{n}",
                "function": "checkout-api",
                "alias": "live",
                "targetVersion": rng.choice(["1", "2", "3"]),
                "strategy": rng.choice(self.STRATEGIES),
                "author": "dev@example.com",
                "reason": f"ship {MARKER}",
            }
            control = {
                "controlId": f"c-{n}",
                "releaseId": f"rel-{rng.randrange(max(n, 1))}",
                "action": rng.choice(["pause", "resume", "promote", "abort", "status"]),
                "author": "dev@example.com",
                "reason": "fuzz",
            }
            pick = rng.random()
            if pick < 0.15:
                yield eventbridge_event(request, "ReleaseRequested")
            elif pick < 0.3:
                yield eventbridge_event(control, "ReleaseControl")
            elif pick < 0.55:
                yield eventbridge_event(hostile.mutate(rng, request, self.REQUEST_FIELDS), "ReleaseRequested")
            elif pick < 0.8:
                yield eventbridge_event(hostile.mutate(rng, control, self.CONTROL_FIELDS), "ReleaseControl")
            elif pick < 0.9:
                yield eventbridge_event(
                    hostile.json_value(rng), rng.choice(["ReleaseRequested", "ReleaseControl"])
                )
            else:
                yield hostile.envelope_mutation(rng, eventbridge_event(request, "ReleaseRequested"))

    def invoke(self, event: Any, log_lines: Callable[[], list[str]]) -> Verdict:
        result = release_handler.handler(event, LambdaContext(), service=self.service)
        return Verdict(rejected=result.get("outcome") == "rejected")


# --- generated events ------------------------------------------------------------------------


def valid_change(rng: random.Random) -> dict[str, Any]:
    key = rng.choice(["max_items", "rate_limit", "db_password", "feature.beta", "timeout_ms"])
    operation = rng.choice(["put"] * 6 + ["delete", "rollback"])
    extra: dict[str, Any] = {"toVersion": rng.randint(1, 3)} if operation == "rollback" else {}
    value = rng.choice([rng.randint(1, 1000), {"note": MARKER, "n": rng.random()}, MARKER, [MARKER, 1]])
    service = "global" if key.startswith("feature.") else "checkout"
    return change(
        key,
        value if key != "max_items" else rng.randint(-5, 2000),
        service=service,
        operation=operation,
        **extra,
    )


def source_of(detail: dict[str, Any]) -> str:
    return "configpipe.team.platform" if detail.get("service") == "global" else "configpipe.team.checkout"


def hostile_attribute(rng: random.Random) -> Any:
    """A DynamoDB-JSON attribute value of any shape, or not one at all."""
    pick = rng.randint(0, 9)
    if pick == 0:
        return {"S": rng.choice([hostile.text(rng), hostile.huge_text(rng), chr(0xDFFF)])}
    if pick == 1:
        return {"N": rng.choice(["1e999", "-5", "0", "abc", hostile.text(rng, 6), "9" * 60])}
    if pick == 2:
        return {"BOOL": hostile.scalar(rng)}
    if pick == 3:
        return {"NULL": True}
    if pick == 4:
        return {"M": {hostile.text(rng, 6): {"S": hostile.text(rng)} for _ in range(rng.randint(0, 3))}}
    if pick == 5:
        return {"L": [hostile_attribute(rng) for _ in range(rng.randint(0, 3))]}
    if pick == 6:
        value: Any = {"S": "deep"}
        for _ in range(rng.randint(40, hostile.MAX_NESTING)):
            value = {"M": {"d": value}}
        return value
    if pick == 7:
        return {"B": hostile.text(rng, 8)}
    if pick == 8:
        return {hostile.text(rng, 3) or "X": hostile.scalar(rng)}
    return hostile.json_value(rng)


def mutated_stream_record(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    image = dict(record["dynamodb"]["NewImage"])
    for name in rng.sample(sorted(image), k=rng.randint(1, min(3, len(image)))):
        if rng.random() < 0.3:
            image.pop(name)
        else:
            image[name] = hostile_attribute(rng)
    pick = rng.random()
    if pick < 0.05:
        image.update({name: {"N": str(n)} for n, name in enumerate(hostile.many_fields(rng))})
    elif pick < 0.15:
        image["kind"] = hostile_attribute(rng)
    out = {**record, "dynamodb": {**record["dynamodb"], "NewImage": image}}
    if rng.random() < 0.1:
        out["eventName"] = rng.choice(["REMOVE", "MODIFY", hostile.text(rng, 6)])
    return out


def announcement_events(rng: random.Random, count: int, pool: list[dict[str, Any]]) -> Iterator[Any]:
    for _ in range(count):
        event = rng.choice(pool)
        pick = rng.random()
        if pick < 0.35:
            yield event
        elif pick < 0.85:
            detail = hostile.mutate(rng, event["detail"], sorted(event["detail"]))
            yield {**event, "detail": detail}
        else:
            yield hostile.envelope_mutation(rng, event)


# --- set-up --------------------------------------------------------------------------------


def copy_table(source: str, name: str, fresh: bool = False) -> None:
    """Create table ``name`` with ``source``'s keys and indexes (dropping ``name`` first if
    ``fresh``), through a client outside the metered session: set-up is not a write of the
    function under test."""
    client = boto3.client("dynamodb", region_name=REGION)
    table = client.describe_table(TableName=source)["Table"]
    if fresh:
        client.delete_table(TableName=name)
    client.create_table(
        TableName=name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        GlobalSecondaryIndexes=[
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in table.get("GlobalSecondaryIndexes", [])
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def seed_pipeline(pipeline: Pipeline, validator: Validator, materialiser: Any) -> tuple[list, list]:
    """Valid changes through the validator and materialiser: the stream records and the
    announcements they produce are the valid half of the materialiser's, propagator's and
    update handler's events."""
    changes = [
        change("rate_limit", 10),
        change("rate_limit", {"burst": 5, "note": MARKER}),
        change("rate_limit", "x" * 2000),  # not inline: read from SSM
        change("db_password", MARKER),  # sensitive: a secret
        change("db_password", MARKER + "-2"),
        change("max_items", 5000),  # rejected by the key's schema
        change("feature.beta", True, service="global"),
        change("timeout_ms", 100),
        change("timeout_ms", operation="delete"),
        change("rate_limit", operation="rollback", toVersion=1),
        change("ramp", 1, rollout={"strategy": "Linear10PercentEvery1Minute"}),
    ]
    kms = boto3.client("kms", region_name=REGION)
    for detail in changes:
        if is_sensitive(detail["key"], None) and "value" in detail:
            # a secret goes out encrypted, as `configpipe put` sends it (SENSITIVE_VALUE_IN_CLEAR)
            detail = sealed(detail, pipeline.secrets_key_id, kms)
        validator.write_path.handle(eventbridge_event(detail, source=source_of(detail)))
    records = [
        lambda_stream_record(r, pipeline.stream_arn)
        for r in pipeline.stream_event()["Records"]
        if passes_materialiser_filter(r)
    ]
    for record in records:
        materialiser_handler.handler({"Records": [record]}, LambdaContext(), materialiser=materialiser)
    announcements = [
        {"account": ACCOUNT, **e}
        for e in pipeline.bus_events()
        if e["detail-type"] == "ConfigurationUpdated" or e["detail-type"].startswith("ConfigurationRollout")
    ]
    # Nothing reads the bus from here on; moto's SQS grows slower per message as its queue
    # fills, so the catch-all rule's target goes (through a client outside the metered session).
    boto3.client("events", region_name=REGION).remove_targets(
        Rule="capture-all", EventBusName=pipeline.bus_name, Ids=["q"]
    )
    return records, announcements


# --- the run -------------------------------------------------------------------------------


def run(target: Target, rng: random.Random, count: int, meter: WriteMeter, sink: LogSink) -> Report:
    report = Report(target.name)
    meter.take()
    sink.drain()
    for event in target.events(rng, count):
        started = time.perf_counter()
        try:
            verdict = target.invoke(event, sink.take)
        except Exception as error:
            report.exceptions[short(error)] += 1
            verdict = Verdict(rejected=False)
        report.times.append(time.perf_counter() - started)
        report.events += 1
        writes = Counter(meter.take())
        lines = sink.drain()
        for line in lines:
            size = len(line.encode("utf-8", "replace"))
            if size > report.longest_log_line:
                report.longest_log_line, report.longest_log_head = size, line[:150]
        report.leaks += any(MARKER in line for line in lines)
        if verdict.failed:
            report.exceptions[verdict.failed] += 1
        if verdict.rejected:
            report.rejected += 1
            for (service, op), n in (writes - target.allowed_on_reject).items():
                report.invalid_writes[f"{service}.{op}"] += n
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events per function (default 10000)")
    parser.add_argument("--seed", type=int, default=9, help="random seed (default 9)")
    parser.add_argument("--only", action="append", help="run only this function (repeatable)")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))  # Lambda's Python default
    logging.getLogger("configpipe.client").setLevel(logging.INFO)
    sink = LogSink()
    logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
    client_log = logging.StreamHandler(sink)
    logging.getLogger("configpipe.client").addHandler(client_log)
    logging.getLogger("configpipe.client").propagate = False

    warnings.simplefilter("ignore")  # Powertools' "no metrics to publish", once per invocation
    out = sys.stdout
    wall = time.perf_counter()
    reports: list[Report] = []
    # Powertools prints EMF metrics to stdout: the functions' stdout goes to the log sink too.
    with mock_aws(), contextlib.redirect_stdout(sink):
        pipeline = provision()
        session = boto3.Session(region_name=REGION)
        meter = WriteMeter()
        session.events.register("after-call.*.*", meter)
        provision_release(session)
        copy_table(pipeline.table_name, "FuzzedChangeLog")
        materialiser = _build_materialiser(session, MaterialiserSettings.model_validate(pipeline.env()))
        records, announcements = seed_pipeline(
            pipeline, Validator(pipeline, session, pipeline.table_name), materialiser
        )
        targets: list[Target] = [
            Validator(pipeline, session, "FuzzedChangeLog"),
            Materialiser(materialiser, records),
            Propagator(pipeline, session, meter, announcements),
            UpdateHandler(session, meter, announcements),
            ReleaseManager(pipeline, session),
        ]
        print(
            f"fuzz: {args.events} events per function, seed {args.seed}; "
            f"{len(records)} stream records and {len(announcements)} announcements seeded",
            file=out,
        )
        for target in targets:
            if args.only and target.name not in args.only:
                continue
            started = time.perf_counter()
            report = run(target, random.Random(f"{args.seed}:{target.name}"), args.events, meter, sink)
            reports.append(report)
            print(
                *report.lines(),
                f"    ({time.perf_counter() - started:.0f} s)",
                sep="\n",
                file=out,
                flush=True,
            )
    failed = [r.name for r in reports if not r.ok]
    print(
        f"total wall time {time.perf_counter() - wall:.0f} s; "
        + (f"FAILED: {', '.join(failed)}" if failed else "all functions: 0 exceptions, 0 invalid writes"),
        file=out,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
