"""``configpipe release …`` against moto, with the real release function behind the bus.

What the CLI publishes is drained from the bus (the ``pipeline`` fixture's capture queue) and
handed to the release function's own entry points — the Lambda handler for the contract
test, and, for ``--wait`` / ``--follow``, the service that handler builds from its environment,
running in a thread as the Lambda would run while the CLI polls. The function ``checkout-api``
has published versions and a ``live`` alias, as in tests/integration/release/.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configpipe.handlers import release as release_handler
from configpipe.release.contracts import ReleaseRequested
from configpipe.release.model import AliasTarget
from configpipe.release.service import ReleaseService
from configpipe.release.settings import ReleaseSettings, release_registry_document
from configpipe_tools.harness.aws import REGION, Pipeline
from configpipe_tools.harness.events import eventbridge_event
from configpipe_tools.harness.lambda_context import LambdaContext
from tests.integration.release.conftest import create_release_table
from tests.unit.cli.conftest import (
    CHECKOUT,
    assert_clean_exit,
    parse_json,
    run_in_background,
    stop_thread,
)

FUNCTION = "checkout-api"
TABLE = "ReleaseState"
ALARM = "checkout-api-errors"
FAST_FOLLOW = ("--interval", "0.02")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def alias() -> AliasTarget:
    response = boto3.client("lambda", region_name=REGION).get_alias(FunctionName=FUNCTION, Name="live")
    return AliasTarget.of(
        response["FunctionVersion"], (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    )


def set_alarm(state: str, cloudwatch: Any = None) -> None:
    cloudwatch = cloudwatch or boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason="test")


def delivered(captured: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to the release Lambda (moto's SQS copy omits ``account``)."""
    return eventbridge_event(captured["detail"], captured["detail-type"], captured["source"], captured["id"])


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def released(pipeline: Pipeline) -> Pipeline:
    """The release table, ``checkout-api`` v1-v3 with ``live`` on v1, and an OK alarm."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="checkout-api", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
    )
    for n in (1, 2, 3):
        lam.update_function_configuration(FunctionName=FUNCTION, Description=f"v{n}")
        lam.publish_version(FunctionName=FUNCTION)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=ALARM,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    set_alarm("OK")
    create_release_table(boto3.client("dynamodb", region_name=REGION), TABLE)
    return pipeline


def release_service(pipeline: Pipeline) -> ReleaseService:
    """The release function as the handler module builds it, from the settings the stack gives it
    (a settings model, not os.environ: no test changes the process environment)."""
    return release_handler.build(
        ReleaseSettings(
            release_table=TABLE,
            event_bus_name=pipeline.bus_name,
            release_registry=release_registry_document(pipeline.registry),
        )
    )


@dataclass
class ReleaseFunction:
    """The release function on what reaches the bus: requests and controls as EventBridge
    delivers them, plus the scheduled tick, each time it pumps."""

    pipeline: Pipeline
    events: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    #: built on the test's thread (building boto3 clients on the pump's thread would race it)
    service: ReleaseService = field(init=False)

    def __post_init__(self) -> None:
        self.service = release_service(self.pipeline)

    def pump(self) -> None:
        service = self.service
        with self._lock:
            for event in self.pipeline.bus_events():
                self.events.append(event)
                if not event["source"].startswith("configpipe.team."):
                    continue
                if event["detail-type"] == "ReleaseRequested":
                    self.outcomes.append(service.handle_request(event["detail"], event["source"]).outcome)
                elif event["detail-type"] == "ReleaseControl":
                    self.outcomes.append(service.handle_control(event["detail"], event["source"]).outcome)
            service.reconcile_all()

    def published(self, detail_type: str) -> list[dict[str, Any]]:
        with self._lock:
            self.events.extend(self.pipeline.bus_events())
        return [e for e in self.events if e["detail-type"] == detail_type]

    def start(self) -> None:

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.pump()
                except BaseException as error:
                    self.errors.append(error)
                    return
                self._stop.wait(0.02)

        self._thread = threading.Thread(target=run, name="release-function", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        stop_thread(self._stop, self._thread)


@pytest.fixture
def release_function(released: Pipeline) -> Iterator[ReleaseFunction]:
    yield from run_in_background(ReleaseFunction(released))


@pytest.fixture
def idle_release_function(released: Pipeline) -> ReleaseFunction:
    return ReleaseFunction(released)


@pytest.fixture
def release(cli):  # type: ignore[no-untyped-def]
    """``configpipe release --release-table … <args>`` as team checkout."""

    def invoke(*args: str, source: str | None = CHECKOUT) -> Any:
        return cli("release", "--release-table", TABLE, *args, source=source)

    return invoke


def start_args(*extra: str, strategy: str = "Canary10Percent5Minutes", version: str = "2") -> list[str]:
    return ["start", FUNCTION, "--to-version", version, "--strategy", strategy, "--reason", "ship", *extra]


# --- start: the contract -------------------------------------------------------------------


def test_start_publishes_the_contract_the_release_handler_accepts(release, idle_release_function):
    # When
    result = release(*start_args("--alarm", ALARM, "--no-wait", "-o", "json"))

    # Then exactly one ReleaseRequested went on the bus, as the team, with a fresh release id
    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "published"
    (event,) = idle_release_function.published("ReleaseRequested")
    assert event["source"] == CHECKOUT
    detail = event["detail"]
    assert detail["releaseId"] == body["releaseId"]
    assert ReleaseRequested.model_validate(detail).to_detail() == detail
    assert detail["function"] == FUNCTION and detail["alias"] == "live" and detail["targetVersion"] == "2"
    assert detail["strategy"] == "Canary10Percent5Minutes" and detail["alarms"] == [ALARM]
    assert detail["author"] == "arn:aws:sts::123456789012:user/moto"

    # And the release handler accepts that very event: 10 % of live moves to v2
    answer = release_handler.handler(delivered(event), LambdaContext(), service=idle_release_function.service)  # type: ignore[arg-type]
    assert answer == {"outcome": "accepted", "releaseId": body["releaseId"]}
    assert alias() == AliasTarget.of("1", {"2": 0.1})


def test_ignore_poll_alarm_failure_is_sent_only_when_asked(release, idle_release_function):
    assert_clean_exit(release(*start_args("--alarm", ALARM, "--no-wait", "--release-id", "r-default")), 0)
    assert_clean_exit(
        release(
            *start_args("--alarm", ALARM, "--no-wait", "--ignore-poll-alarm-failure", "--release-id", "r-ig")
        ),
        0,
    )

    default, ignoring = idle_release_function.published("ReleaseRequested")
    assert "ignorePollAlarmFailure" not in default["detail"]  # unchanged contract and hash by default
    assert ignoring["detail"]["ignorePollAlarmFailure"] is True
    answer = release_handler.handler(  # type: ignore[arg-type]
        delivered(ignoring), LambdaContext(), service=idle_release_function.service
    )
    assert answer["outcome"] == "accepted"


def test_custom_strategy_as_json_is_sent_as_the_contract_object(release, idle_release_function):
    spec = '{"type": "linear", "percentage": 25, "intervalMinutes": 2}'
    result = release(*start_args("--no-wait", strategy=spec))

    assert_clean_exit(result, 0)
    (event,) = idle_release_function.published("ReleaseRequested")
    assert event["detail"]["strategy"] == {"type": "linear", "percentage": 25.0, "intervalMinutes": 2}
    answer = release_handler.handler(  # type: ignore[arg-type]
        delivered(event), LambdaContext(), service=idle_release_function.service
    )
    assert answer["outcome"] == "accepted"
    assert alias() == AliasTarget.of("1", {"2": 0.25})


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (start_args(strategy="Canary10Percent"), "UNKNOWN_STRATEGY"),
        (start_args(strategy="Canary150Percent5Minutes"), "INVALID_PERCENTAGE"),
        (start_args(strategy="Linear0PercentEvery1Minute"), "INVALID_PERCENTAGE"),
        (
            start_args(strategy='{"type": "canary", "percentage": 100, "intervalMinutes": 5}'),
            "INVALID_PERCENTAGE",
        ),
        (start_args(strategy="Canary10Percent0Minutes"), "INVALID_INTERVAL"),
        (start_args(version="$LATEST"), "TARGET_IS_LATEST"),
        (start_args(version="two"), "INVALID_VERSION"),
        (start_args(version="²"), "INVALID_VERSION"),  # passed str.isdigit(), then int() raised
        (start_args(version="\uff11\uff12"), "INVALID_VERSION"),
        (start_args(strategy="Linear0.001PercentEvery1Minute"), "INVALID_PERCENTAGE"),
        (
            ["start", "arn:aws:lambda:fn", "--to-version", "2", "--strategy", "AllAtOnce", "-r", "r"],
            "INVALID_FIELD",
        ),
        (start_args("--hook-timeout", "0"), "INVALID_FIELD"),
        (
            ["start", "payments-api", "--to-version", "2", "--strategy", "AllAtOnce", "-r", "r"],
            "SOURCE_NOT_AUTHORIZED",
        ),
        (
            ["start", "unknown-fn", "--to-version", "2", "--strategy", "AllAtOnce", "-r", "r"],
            "FUNCTION_NOT_REGISTERED",
        ),
        (start_args("--pre-hook", "payments-api"), "HOOK_NOT_REGISTERED"),
    ],
)
def test_bad_requests_exit_2_and_publish_nothing(release, idle_release_function, args, code):
    result = release(*args, "-o", "json")

    assert_clean_exit(result, 2)
    error = parse_json(result)["error"]
    assert error["code"] == "INVALID_RELEASE"
    assert code in [r["code"] for r in error["reasons"]]
    assert idle_release_function.published("ReleaseRequested") == []


def test_bad_strategy_is_reported_before_any_aws_call(runner):
    """No moto here: a bad strategy must not need credentials, a registry or a table."""
    from configpipe_tools.cli.main import app

    result = runner.invoke(
        app,
        [
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--source",
            CHECKOUT,
            "release",
            *start_args(strategy="Fast"),
        ],
    )

    assert_clean_exit(result, 2)
    assert "UNKNOWN_STRATEGY" in result.stderr
    assert "nothing was sent" in result.stderr


def test_missing_source_or_reason_is_a_usage_error(release, idle_release_function):
    assert_clean_exit(release(*start_args(), source=None), 2)
    assert_clean_exit(
        release("start", FUNCTION, "--to-version", "2", "--strategy", "AllAtOnce", "-r", " "), 2
    )
    assert idle_release_function.published("ReleaseRequested") == []


# --- start: waiting for the outcome ----------------------------------------------------------


def test_start_waits_until_the_release_has_started(release, release_function):
    result = release(*start_args("--alarm", ALARM, "-o", "json"))

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "started"
    assert body["release"]["status"] == "SHIFTING"
    assert body["release"]["percent"] == 10
    assert body["release"]["alarms"] == [{"name": ALARM, "state": "OK"}]
    assert alias() == AliasTarget.of("1", {"2": 0.1})


def test_start_rejected_by_the_release_function_exits_3_with_its_reasons(release, release_function):
    # Version 9 does not exist: only the release function (which reads Lambda) can tell.
    result = release(*start_args(version="9"))

    assert_clean_exit(result, 3)
    assert "rejected" in result.stdout
    assert "UNKNOWN_VERSION" in result.stdout
    assert alias() == AliasTarget.of("1")
    # the temporary subscription is gone
    rules = boto3.client("events", region_name=REGION).list_rules(EventBusName="configpipe-config-bus")[
        "Rules"
    ]
    assert [r["Name"] for r in rules] == ["capture-all"]


def test_a_rejection_lists_every_reason_the_release_function_found(release, release_function):
    # Version 9 and the alarm do not exist: two problems only the release function can tell
    result = release(*start_args("--alarm", "no-such-alarm", "-o", "json", version="9"))

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert {r["code"] for r in body["reasons"]} == {"UNKNOWN_VERSION", "UNKNOWN_ALARM"}


def test_second_release_on_a_busy_alias_is_rejected_as_in_progress(release, release_function):
    assert_clean_exit(release(*start_args()), 0)

    result = release(*start_args(version="3"), "-o", "json")

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["RELEASE_IN_PROGRESS"]


def test_no_outcome_within_the_timeout_exits_4_with_the_release_id_to_retry(release, idle_release_function):
    result = release(*start_args("--timeout", "0.3", "--release-id", "ship-v2", "-o", "json"))

    assert_clean_exit(result, 4)
    error = parse_json(result)["error"]
    assert error["code"] == "TIMEOUT" and error["releaseId"] == "ship-v2"
    assert "--release-id ship-v2" in error["hint"]

    # Re-running with the same id once the function runs is safe: one release, started.
    idle_release_function.pump()
    retry = release(*start_args("--timeout", "1", "--release-id", "ship-v2", "-o", "json"))
    assert_clean_exit(retry, 0)
    assert parse_json(retry)["status"] == "started"


# --- status -----------------------------------------------------------------------------------


def test_status_after_a_start_shows_weight_strategy_and_history(release, release_function):
    assert_clean_exit(release(*start_args("--alarm", ALARM)), 0)

    result = release("status", FUNCTION)
    as_json = release("status", FUNCTION, "-o", "json")

    assert_clean_exit(result, 0)
    assert "Canary10Percent5Minutes" in result.stdout
    assert "SHIFTING" in result.stdout
    assert "10% on v2, 90% on v1" in result.stdout
    assert "ReleaseStepped" in result.stdout
    body = parse_json(as_json)
    assert body["percent"] == 10 and body["targetVersion"] == "2" and body["previousVersion"] == "1"
    assert body["nextStepAt"] is not None
    assert [h["type"] for h in body["history"]] == ["ReleaseStarted", "ReleaseStepped"]
    assert body["schedule"] == [[0, 10.0], [5, 100.0]]


def test_status_without_any_release_exits_2(release, released):
    result = release("status", FUNCTION, "-o", "json")

    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["code"] == "RELEASE_NOT_FOUND"


def test_status_needs_to_know_the_release_table(cli, released):
    result = cli("release", "status", FUNCTION)

    assert_clean_exit(result, 2)
    assert "--release-table" in result.stderr and "--stack" in result.stderr


def test_release_table_comes_from_the_stack_outputs(cli, released, release_function):
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="Configpipe",
        TemplateBody=json.dumps(
            {
                "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "placeholder"}}},
                "Outputs": {"ReleaseTableName": {"Value": TABLE}},
            }
        ),
    )
    assert_clean_exit(cli("release", "--release-table", TABLE, *start_args()), 0)

    result = cli("--stack", "Configpipe", "release", "status", FUNCTION, "-o", "json")

    assert_clean_exit(result, 0)
    assert parse_json(result)["percent"] == 10


def test_missing_release_table_is_exit_5_naming_the_option(cli, released):
    result = cli("release", "--release-table", "NoSuchTable", "status", FUNCTION)

    assert_clean_exit(result, 5)
    assert "NoSuchTable" in result.stderr and "--release-table" in result.stderr


# --- controls ---------------------------------------------------------------------------------


def test_abort_rolls_the_alias_back_and_status_reports_it(release, release_function):
    assert_clean_exit(release(*start_args()), 0)
    assert alias() == AliasTarget.of("1", {"2": 0.1})

    result = release("abort", FUNCTION, "--reason", "error rate", "-o", "json")

    assert_clean_exit(result, 0)
    body = parse_json(result)
    assert body["status"] == "applied" and body["action"] == "abort"
    assert body["release"]["status"] == "ABORTED"
    assert body["release"]["outcome"]["code"] == "MANUAL_ABORT"
    assert alias() == AliasTarget.of("1")  # exactly as before: v1, no routing config
    (control,) = release_function.published("ReleaseControl")
    assert control["source"] == CHECKOUT and control["detail"]["action"] == "abort"
    assert control["detail"]["releaseId"] == body["releaseId"]

    # Following an aborted release ends at once with exit 3
    assert_clean_exit(release("status", FUNCTION, "--follow", *FAST_FOLLOW), 3)
    # and there is nothing left to abort
    again = release("abort", FUNCTION, "-o", "json")
    assert_clean_exit(again, 2)
    assert parse_json(again)["error"]["code"] == "NO_ACTIVE_RELEASE"


def test_pause_resume_and_promote(release, release_function):
    assert_clean_exit(release(*start_args()), 0)

    paused = release("pause", FUNCTION, "-r", "investigating", "-o", "json")
    assert_clean_exit(paused, 0)
    assert parse_json(paused)["release"]["paused"] is True

    resumed = release("resume", FUNCTION, "-o", "json")
    assert_clean_exit(resumed, 0)
    assert parse_json(resumed)["release"]["paused"] is False

    promoted = release("promote", FUNCTION, "-o", "json")
    assert_clean_exit(promoted, 0)
    view = parse_json(promoted)["release"]
    assert view["status"] == "COMPLETED" and view["percent"] == 100
    assert alias() == AliasTarget.of("2")
    assert [e["detail"]["action"] for e in release_function.published("ReleaseControl")] == [
        "pause",
        "resume",
        "promote",
    ]


def test_a_control_id_reused_for_another_action_exits_3_with_the_conflict(release, release_function):
    assert_clean_exit(release(*start_args()), 0)
    assert_clean_exit(release("pause", FUNCTION, "--control-id", "c-1"), 0)

    result = release("resume", FUNCTION, "--control-id", "c-1", "-o", "json")

    assert_clean_exit(result, 3)
    body = parse_json(result)
    assert body["status"] == "rejected"
    assert [r["code"] for r in body["reasons"]] == ["CONTROL_ID_CONFLICT"]


def test_control_of_another_teams_function_exits_2_and_sends_nothing(release, release_function):
    result = release("abort", "payments-api", "-o", "json")

    assert_clean_exit(result, 2)
    assert parse_json(result)["error"]["reasons"][0]["code"] == "SOURCE_NOT_AUTHORIZED"
    assert release_function.published("ReleaseControl") == []


def test_control_no_wait_only_publishes(release, release_function):
    assert_clean_exit(release(*start_args()), 0)

    result = release("pause", FUNCTION, "--no-wait", "--control-id", "pause-1", "-o", "json")

    assert_clean_exit(result, 0)
    assert parse_json(result)["status"] == "published"
    (control,) = release_function.published("ReleaseControl")
    assert control["detail"]["controlId"] == "pause-1"


# --- follow -----------------------------------------------------------------------------------


def test_start_follow_ends_with_exit_0_when_the_release_completes(release, release_function):
    result = release(*start_args(*FAST_FOLLOW, "--follow", strategy="AllAtOnce"))

    assert_clean_exit(result, 0)
    assert "COMPLETED" in result.stdout
    assert "ReleaseCompleted" in result.stdout
    assert "100% on v2" in result.stdout
    assert result.stdout.endswith("╯\n"), "the final view ends its line"
    assert alias() == AliasTarget.of("2")


def test_follow_shows_the_alarm_rollback_and_exits_3(release, release_function):
    assert_clean_exit(release(*start_args("--alarm", ALARM)), 0)
    # the alarm fires while the CLI is following
    # (its client made here: making one on the timer's thread would iterate os.environ)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarm = threading.Timer(0.2, set_alarm, args=("ALARM", cloudwatch))
    alarm.start()

    result = release("status", FUNCTION, "--follow", *FAST_FOLLOW, "--timeout", "10", "-o", "json")
    alarm.join()

    assert_clean_exit(result, 3)
    events = lines(result)
    assert events[-1]["type"] == "summary"
    assert events[-1]["status"] == "ROLLED_BACK"
    assert events[-1]["outcome"]["code"] == "ALARM"
    assert events[-1]["alarms"] == [{"name": ALARM, "state": "ALARM"}]
    assert [e["type"] for e in events[:-1]][-1] == "ReleaseRolledBack"
    assert alias() == AliasTarget.of("1")


def test_follow_stops_at_its_timeout_with_exit_4(release, release_function):
    assert_clean_exit(release(*start_args()), 0)

    result = release("status", FUNCTION, "--follow", *FAST_FOLLOW, "--timeout", "0.2")

    assert_clean_exit(result, 4)
    assert "still SHIFTING at 10%" in result.stderr
    assert "--follow" in result.stderr


# --- AWS problems -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [start_args(), ["status", FUNCTION], ["abort", FUNCTION]],
)
def test_no_credentials_is_exit_5_with_what_to_do(cli_process, args):
    # (a process with no credentials in its environment: no test changes this one's)
    result = cli_process(
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--source",
        CHECKOUT,
        "release",
        "--release-table",
        TABLE,
        *args,
        env={"AWS_MAX_ATTEMPTS": "1"},
    )

    assert_clean_exit(result, 5)
    assert "no usable AWS credentials" in result.stderr
    assert "--profile" in result.stderr
