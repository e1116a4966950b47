#!/usr/bin/env python3
"""The configpipe demo: the real pipeline, on this machine (it prints how long it took).

Starts the local pipeline (the moto server with the synthesised stack provisioned in it and
the stack's functions running from ./functions), then walks through what a team does:
changes for three services, a rejected change, a secret, a global flag, history and a
rollback, then releases with ``configpipe release``: a canary promoted to 100 %, a release
rolled back by its CloudWatch alarm on the (sped-up) reconcile tick, a release stopped by its
own per-version metrics (analysis, no alarm), and a config canary.
Every wait is a poll with a generous deadline that says while it waits, so a busy machine
(``make demo-stress``) slows the demo without failing it. Run: ``.venv/bin/python
scripts/demo.py [--state-dir DIR]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))

from rich.console import Console  # noqa: E402
from rich.padding import Padding  # noqa: E402
from rich.table import Column, Table  # noqa: E402
from rich.text import Text  # noqa: E402

from configpipe.client import ConfigClient  # noqa: E402
from configpipe_tools.local.fixtures import provision_release_targets  # noqa: E402
from configpipe_tools.local.runner import LocalPipeline, Options  # noqa: E402
from configpipe_tools.local.server import PortInUseError  # noqa: E402
from configpipe_tools.local.template import STACK_NAME, TemplateError  # noqa: E402
from configpipe_tools.local.waiting import GaveUpError  # noqa: E402
from configpipe_tools.local.waiting import wait_for as patient_wait  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
RUN = uuid.uuid4().hex[:6]  # change ids are idempotency keys: unique per run
CHECKOUT, PAYMENTS = "configpipe.team.checkout", "configpipe.team.payments"
#: rate(1 minute) reconcile tick every 2 s: an alarm rolls a release back within seconds
SCHEDULE_SPEEDUP = 30.0


class DemoError(Exception):
    pass


#: What every wait allows: minutes, so a busy machine (``make demo-stress``) only slows the demo
WAIT_SECONDS = 120.0


def _still_waiting(line: str) -> None:
    console.print(Text(f"  … {line}", style="dim"))


class Demo:
    def __init__(self, pipeline: LocalPipeline) -> None:
        self.p = pipeline
        self.outputs = pipeline.outputs()
        self.bus_name = self.outputs["EventBusName"]
        self.seen: list[dict[str, Any]] = []
        self._watch_bus()

    # --- plumbing ---------------------------------------------------------------------

    def _watch_bus(self) -> None:
        """Subscribe to the bus like any consumer: a rule that matches every configpipe event."""
        sqs, events = self.p.client("sqs"), self.p.client("events")
        self.queue = sqs.create_queue(QueueName="demo-bus-watch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="demo-watch",
            EventBusName=self.bus_name,
            EventPattern=json.dumps({"source": [{"prefix": "configpipe."}]}),
        )
        events.put_targets(
            Rule="demo-watch", EventBusName=self.bus_name, Targets=[{"Id": "watch", "Arn": arn}]
        )

    def bus(self, detail_type: str, change_id: str) -> list[dict[str, Any]]:
        sqs = self.p.client("sqs")
        for message in sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", []):
            self.seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return [
            e
            for e in self.seen
            if e["detail-type"] == detail_type and e["detail"].get("changeId") == change_id
        ]

    def wait_for(self, probe: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
        """Poll with a deadline, saying every few seconds that it is still waiting; on giving up,
        say what was awaited and the last events seen on the bus."""
        try:
            return patient_wait(
                probe, what, timeout=timeout, progress=_still_waiting, last_seen=self.last_events
            )
        except GaveUpError as error:
            raise DemoError(str(error)) from None

    def last_events(self) -> str:
        """The last few events on the bus, for a wait that gives up."""
        self.bus("", "")
        if not self.seen:
            return "no event on the bus yet"
        tail = self.seen[-4:]
        return "; ".join(
            f"{e['detail-type']} {e['detail'].get('key') or e['detail'].get('releaseId') or ''}".strip()
            + (f" v{e['detail']['version']}" if "version" in e["detail"] else "")
            for e in tail
        )

    def delivered_key(self, key: str) -> list[dict[str, Any]]:
        self.bus("", "")  # drain the subscription into self.seen
        return [
            e
            for e in self.seen
            if e["detail-type"] == "ConfigurationDelivered" and e["detail"].get("key") == key
        ]

    def publish(self, source: str, **detail: Any) -> str:
        detail = {
            "changeId": f"demo-{RUN}-{len(self.seen)}-{uuid.uuid4().hex[:4]}",
            "environment": "development",
            "operation": "put",
            "author": "demo",
            "reason": "configpipe demo",
            **detail,
        }
        entry = {
            "EventBusName": self.bus_name,
            "Source": source,
            "DetailType": "ConfigurationChange",
            "Detail": json.dumps(detail),
        }
        assert self.p.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
        return str(detail["changeId"])

    def parameter(self, name: str) -> str | None:
        try:
            return str(self.p.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except self.p.client("ssm").exceptions.ParameterNotFound:
            return None

    def cli(self, *args: str, columns: int = 110) -> str:
        """The configpipe CLI, as a person would run it against this endpoint."""
        env = {
            **os.environ,
            **self.p.client_environment(),
            "CONFIGPIPE_AUTHOR": "demo",
            "COLUMNS": str(columns),
        }
        result = subprocess.run(
            [
                *_configpipe_command(),
                "--endpoint-url",
                self.p.url,
                "--stack",
                STACK_NAME,
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS + 60,
            check=False,
            cwd=REPO,
        )
        if result.returncode != 0:
            raise DemoError(
                f"configpipe {' '.join(args)} failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return result.stdout

    # --- the scenario -------------------------------------------------------------------

    def changes_for_three_services(self) -> None:
        step("1. Three teams change their own configuration")
        changes = [
            ("configpipe.team.checkout", "checkout", "max_items", 50),
            ("configpipe.team.payments", "payments", "payments.retry-limit", 3),
            ("configpipe.team.search", "search", "ranking", {"boost": 1.5, "model": "bm25"}),
        ]
        rows = []
        for source, service, key, value in changes:
            started = time.monotonic()
            change_id = self.publish(source, service=service, key=key, value=value)
            delivered = self.wait_for(
                functools.partial(self.bus, "ConfigurationDelivered", change_id), f"{service} delivery"
            )
            name = f"/config/{service}/development/{key}"
            version = str(delivered[0]["detail"]["version"])
            rows.append(
                (service, version, name, str(self.parameter(name)), f"{time.monotonic() - started:.1f}s")
            )
        table = Table(
            "service",
            "version",
            # A parameter name is never cut nor wrapped (piped, the console is 110 wide): the
            # other columns give way.
            Column("SSM parameter (materialised)", no_wrap=True, min_width=max(len(r[2]) for r in rows)),
            Column("value", overflow="fold"),
            "delivered in",
        )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        say(
            "PutEvents → validator → change log → stream → materialiser (SSM, ConfigurationUpdated) → "
            "propagator → <service>-config-update-handler."
        )

    def a_rejected_change(self) -> None:
        step("2. A change that breaks the rules is rejected, with a reason, and writes nothing")
        change_id = self.publish("configpipe.team.checkout", service="checkout", key="max_items", value=5000)
        rejected = self.wait_for(lambda: self.bus("ConfigurationRejected", change_id), "the rejection")
        for reason in rejected[0]["detail"]["reasons"]:
            say(f"[red]ConfigurationRejected[/red] {reason['code']}: {reason['message']}")
        say(
            "/config/checkout/development/max_items is still "
            f"{self.parameter('/config/checkout/development/max_items')}"
        )
        change_id = self.publish("configpipe.team.payments", service="checkout", key="max_items", value=10)
        rejected = self.wait_for(lambda: self.bus("ConfigurationRejected", change_id), "the rejection")
        codes = ", ".join(r["code"] for r in rejected[0]["detail"]["reasons"])
        say(f"payments publishing a checkout key: [red]{codes}[/red] (each team owns its keys)")

    def a_secret(self) -> None:
        step("3. A secret: encrypted by the CLI before it is sent, stored only in Secrets Manager")
        # Never shown: the demo of "secrets never leak" prints only its length.
        secret, key = f"s3cr3t-{RUN}", "payments.api-token"
        args = ("put", "payments", "development", key)
        flags = ("--sensitive", "--reason", "rotate the PSP token", "--no-wait")
        self.run(PAYMENTS, *args, secret, *flags, shown=(*args, masked(secret), *flags))
        secrets = self.p.client("secretsmanager")
        stored = self.wait_for(
            lambda: _secret_value(secrets, f"configpipe/payments/development/{key}"), "the secret"
        )
        say(f"Secrets Manager configpipe/payments/development/{key}: {masked(json.loads(stored))}")
        parameter = f"/config/payments/development/{key}"
        say(f"SSM {parameter}: {self.parameter(parameter) or 'absent'}")
        self.wait_for(lambda: self.delivered_key(key), "the secret's delivery")
        applied = self.wait_for(
            lambda: self.applied("payments", key), "payments' handler to apply the secret"
        )
        say(
            f"payments-config-update-handler applied version {applied['version']} "
            f"(it read the value from Secrets Manager; the event carried only {applied['valueHash'][:24]}…)"
        )
        self.run(None, "get", "payments", "development", key)
        leaked = [e["detail-type"] for e in self.seen if secret in json.dumps(e)]
        logs = "".join(p.read_text() for p in self.p.log_dir.glob("*.log"))
        change_log = self.p.client("dynamodb").scan(TableName=self.outputs["ChangeLogTableName"])["Items"]
        say(
            f"the secret in clear: on the bus in {len(leaked)} event(s), in the change log in "
            f"{sum(secret in json.dumps(item, default=str) for item in change_log)} item(s) (it holds "
            f"KMS ciphertext), in {sum(secret in line for line in logs.splitlines())} function log line(s)"
        )

    def a_global_flag(self) -> None:
        step("4. A global flag reaches every service subscribed to it")
        change_id = self.publish(
            "configpipe.team.platform", service="global", key="feature.dark-mode", value=True
        )
        delivered = self.wait_for(
            lambda: (
                len(self.bus("ConfigurationDelivered", change_id)) >= 3
                and self.bus("ConfigurationDelivered", change_id)
            ),
            "three deliveries",
        )
        for event in sorted(delivered, key=lambda e: e["detail"]["targetService"]):
            say(
                f"ConfigurationDelivered → {event['detail']['targetService']:<9} "
                f"{event['detail']['functionName']}"
            )
        change_id = self.publish(
            "configpipe.team.platform",
            service="global",
            key="feature.dark-mode",
            value=True,
            environment="production",
        )
        delivered = self.wait_for(
            lambda: (
                len(self.bus("ConfigurationDelivered", change_id)) >= 2
                and self.bus("ConfigurationDelivered", change_id)
            ),
            "production deliveries",
        )
        names = ", ".join(sorted(e["detail"]["targetService"] for e in delivered))
        say(f"in production: {names} (search subscribes to development and staging only)")

    def history_and_rollback(self) -> None:
        step("5. History and a rollback, with the configpipe CLI")
        target = ("checkout", "development", "max_items")
        change_id = f"demo-{RUN}-cart-80"
        self.run(
            CHECKOUT,
            "put",
            *target,
            "80",
            "--json",
            "--reason",
            "a bigger cart",
            "--change-id",
            change_id,
            "--no-wait",
        )
        self.wait_for(lambda: self.bus("ConfigurationDelivered", change_id), "version 2's delivery")
        self.run(
            CHECKOUT,
            "rollback",
            *target,
            "--to",
            "1",
            "--reason",
            "80 overloads the cart service",
            "--no-wait",
        )
        self.wait_for(
            lambda: (
                self.parameter("/config/checkout/development/max_items") == "50"
                and _current_version(self, "checkout", "max_items") == 3
            ),
            "the rollback to version 1's value",
        )
        self.run(None, "get", *target)
        self.run(None, "history", *target)

    def releases(self) -> None:
        step("6. Releases: shift a Lambda alias, watch it, promote it or roll it back")
        if "ReleaseFunctionName" not in self.outputs:
            say("[dim]releases are not in this stack[/dim]")
            return
        stack = self.p.stack
        assert stack is not None
        # The teams' own functions are not in the stack: stand-ins, created as a team would.
        targets = provision_release_targets(self.p.client, stack)
        say("demo fixtures (stand-ins for the teams' own functions, [bold]not[/bold] part of the stack):")
        for target in targets:
            say(f"  {target.describe()}")
        tick = 60 / self.p.options.schedule_speedup
        say(f"release reconcile tick: rate(1 minute) from the template, fired every {tick:g}s here")
        self.a_canary_release()
        self.a_release_rolled_back_by_its_alarm()
        self.a_release_stopped_by_its_analysis()

    def a_canary_release(self) -> None:
        step("6a. A canary: checkout-api live v1 → v2, Canary10Percent5Minutes, then promote")
        release_id = f"demo-{RUN}-canary"
        before = self.alias("checkout-api")
        self.release_cli(
            CHECKOUT,
            "start",
            "checkout-api",
            "--to-version",
            "2",
            "--strategy",
            "Canary10Percent5Minutes",
            "--reason",
            "ship checkout-api v2 to 10% first",
            "--release-id",
            release_id,
        )
        started = self.wait_for(lambda: self.release_events("ReleaseStarted", release_id), "ReleaseStarted")
        schedule = ", ".join(f"t={m}min {p:g}%" for m, p in started[0]["detail"]["schedule"])
        say(f"[green]ReleaseStarted[/green] schedule: {schedule}")
        canary = self.wait_for(
            lambda: self.alias_when("checkout-api", lambda a: a["weights"] == {"2": 0.1}),
            "the 10% canary weight on the alias",
        )
        self.show_alias("Lambda GetAlias checkout-api:live", [("before", before), ("canary", canary)])
        self.release_cli(CHECKOUT, "promote", "checkout-api", "--reason", "the canary looks healthy")
        promoted = self.wait_for(
            lambda: self.alias_when("checkout-api", lambda a: a["version"] == "2" and not a["weights"]),
            "the alias on v2",
        )
        completed = self.wait_for(
            lambda: self.release_events("ReleaseCompleted", release_id), "ReleaseCompleted"
        )
        self.show_alias("Lambda GetAlias checkout-api:live after promote", [("promoted", promoted)])
        detail = completed[0]["detail"]
        say(
            f"[green]ReleaseCompleted[/green] {release_id}: {detail['percent']:g}% "
            f"on v{detail['targetVersion']} after {detail['durationSeconds']:.1f}s "
            "(promoted instead of waiting the 5 minutes)"
        )
        self.show_history(release_id)

    def a_release_rolled_back_by_its_alarm(self) -> None:
        step("6b. A release watched by an alarm: the alarm fires, the reconcile tick rolls it back")
        release_id = f"demo-{RUN}-alarm"
        alarm = f"payments-api-errors-{RUN}"
        cloudwatch = self.p.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[
                {"Name": "FunctionName", "Value": "payments-api"},
                {"Name": "Resource", "Value": "payments-api:live"},
            ],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
        say(f"CloudWatch alarm {alarm} (Errors ≥ 1 on payments-api:live), state {self.alarm_state(alarm)}")
        before = self.alias("payments-api")
        self.release_cli(
            PAYMENTS,
            "start",
            "payments-api",
            "--to-version",
            "2",
            "--strategy",
            "Linear10PercentEvery1Minute",
            "--alarm",
            alarm,
            "--reason",
            "ship payments-api v2, 10% more every minute",
            "--release-id",
            release_id,
        )
        shifted = self.wait_for(
            lambda: self.alias_when("payments-api", lambda a: a["weights"] == {"2": 0.1}),
            "the first 10% step",
        )
        # Locally, metrics do not drive alarms (EMF is not emulated): set the state, as a test would.
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="ALARM", StateReason="demo: v2 throws on every payment"
        )
        fired = time.monotonic()
        say(f"[red]SetAlarmState {alarm} → {self.alarm_state(alarm)}[/red]; waiting for the next tick ...")
        rolled = self.wait_for(
            lambda: self.release_events("ReleaseRolledBack", release_id), "ReleaseRolledBack"
        )
        detail = rolled[0]["detail"]
        after = self.alias("payments-api")
        say(
            f"[red]ReleaseRolledBack[/red] {detail['code']} by the reconcile tick "
            f"{time.monotonic() - fired:.1f}s after the alarm: {detail['message']}"
        )
        self.show_alias(
            "Lambda GetAlias payments-api:live",
            [("before", before), ("step 1", shifted), ("rolled back", after)],
        )
        exact = (after["version"], after["weights"]) == (before["version"], before["weights"])
        say(
            f"restored exactly (version and routing): [bold]{'yes' if exact else 'NO'}[/bold]"
            + ("" if exact else f" — before {before}, after {after}")
        )
        if not exact:
            raise DemoError("the rollback did not restore the alias")
        if after["routing"] != before["routing"]:
            say(
                f"[dim](the emulator echoes RoutingConfig {json.dumps(after['routing'])} where Lambda "
                "omits an empty one)[/dim]"
            )
        self.release_cli(None, "status", "payments-api")

    def a_release_stopped_by_its_analysis(self) -> None:
        step("6c. A release judged by its own metrics: no alarm, the candidate's error rate stops it")
        release_id = f"demo-{RUN}-analysis"
        lam = self.p.client("lambda")
        before = self.alias("search-api")
        baseline = before["version"]
        lam.update_function_configuration(FunctionName="search-api", Description=f"demo {RUN}")
        target = lam.publish_version(FunctionName="search-api", Description=f"demo {RUN}")["Version"]
        analysis = '{"gates": [{"metric": "errorRate", "maxIncreasePercent": 50}], "minInvocations": 50}'
        self.release_cli(
            "configpipe.team.search",
            "start",
            "search-api",
            "--to-version",
            target,
            "--strategy",
            "Canary10Percent1Minutes",
            "--analysis",
            analysis,
            "--reason",
            f"ship search-api v{target}, judged against v{baseline}",
            "--release-id",
            release_id,
        )
        self.wait_for(
            lambda: self.alias_when("search-api", lambda a: a["weights"] == {target: 0.1}), "the 10% step"
        )
        # What Lambda publishes per executed version for alias traffic (moto does not run the
        # functions, so the demo puts the figures): v-target fails 10 %, v-baseline 1 %.
        now = datetime.now(UTC)
        for version, invocations, errors in ((target, 100, 10), (baseline, 900, 9)):
            dims = [
                {"Name": "FunctionName", "Value": "search-api"},
                {"Name": "Resource", "Value": "search-api:live"},
                {"Name": "ExecutedVersion", "Value": version},
            ]
            self.p.client("cloudwatch").put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[
                    {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": invocations},
                    {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors},
                ],
            )
        say(f"per-version metrics: v{target} 10 errors in 100 calls, v{baseline} 9 in 900; no alarm exists")
        self.run(None, "release", "compare", "search-api")
        say("the step lasts a real minute; at its end the release function judges it ...")
        rolled = self.wait_for(
            lambda: self.release_events("ReleaseRolledBack", release_id), "ReleaseRolledBack"
        )
        detail = rolled[0]["detail"]
        say(f"[red]ReleaseRolledBack[/red] {detail['code']}: {detail['message']}")
        after = self.alias("search-api")
        self.show_alias("Lambda GetAlias search-api:live", [("before", before), ("rolled back", after)])
        if (after["version"], after["weights"]) != (before["version"], before["weights"]):
            raise DemoError("the analysis rollback did not restore the alias")

    # --- progressive configuration rollouts -----------------------------------------------

    def a_config_canary(self) -> None:
        step("7. A config canary: a new rate limit to 10% of tenants, an alarm, the rollback")
        key = f"rate_limit_{RUN}"
        alarm = f"checkout-config-errors-{RUN}"
        cloudwatch = self.p.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="configpipe/demo",
            MetricName="CheckoutErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="demo: healthy")
        stable = self.publish("configpipe.team.checkout", service="checkout", key=key, value=100)
        self.wait_for(lambda: self.bus("ConfigurationDelivered", stable), "the stable value")
        self.cli(
            "--source",
            "configpipe.team.checkout",
            "put",
            "checkout",
            "development",
            key,
            "250",
            "--rollout",
            "Canary10Percent30Minutes",
            "--alarm",
            alarm,
            "--target",
            "tenant-vip",
            "--reason",
            "raise the rate limit, 10% of tenants first",
            "--no-wait",
        )
        view = self.wait_for(
            lambda: self.parameter(f"/config/checkout/development/{key}/rollout"), "the rollout view"
        )
        say(f"/config/checkout/development/{key}/rollout: weight {json.loads(view)['weight']:g}%")
        tenants = [f"tenant-{i}" for i in range(1, 9)] + ["tenant-vip"]
        answers = {t: self.tenant_read(t, key) for t in tenants}
        table = Table("tenant (checkout-config-update-handler, direct invoke)", "reads", "candidate?")
        for tenant, answer in answers.items():
            table.add_row(tenant, str(answer.get("value")), "yes" if answer.get("readsCandidate") else "")
        console.print(table)
        # A new reader (nothing cached yet) with its cache on: the rollout's buckets are computed
        # in the client, so 10,000 subjects need two reads, not 10,000 (minutes on a busy machine).
        reader = ConfigClient("checkout", "development", ssm_client=self.p.client("ssm"))
        population = [f"tenant-{i}" for i in range(10_000)]
        share = sum(reader.get(key, subject=t) == 250 for t in population) / len(population)
        say(f"of 10,000 tenants, {share:.1%} read 250 (the weight is 10%); tenant-vip is a --target")
        self.run(None, "rollout", "status", "checkout", "development", key)
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="demo: 429s spike")
        fired = time.monotonic()
        say(f"[red]SetAlarmState {alarm} → ALARM[/red]; waiting for the rollout tick ...")
        self.wait_for(
            lambda: self.parameter(f"/config/checkout/development/{key}/rollout") is None,
            "the rollback",
        )
        say(
            f"[red]rolled back[/red] {time.monotonic() - fired:.1f}s after the alarm; every tenant reads "
            f"{self.tenant_read('tenant-vip', key).get('value')} again"
        )
        self.run(None, "history", "checkout", "development", key)

    def feature_flags(self) -> None:
        step("8. Feature flags: maintenance mode for one tenant, pushed to OpenFeature, then off")
        team = "configpipe.team.checkout"
        self.run(team, "flag", "set", "checkout", "development", "rate_limit", "100", "-r", "demo: flags")
        self.run(team, "flag", "disable", "checkout", "development", "maintenance", "-r", "demo: flags")
        self.wait_for(
            lambda: self.served("tenant-7").get("maintenanceReason") == "STATIC", "the flags document"
        )
        tenants = ["tenant-1", "tenant-2", "tenant-7"]
        self.show_served("before", tenants)
        self.run(
            team, "flag", "enable", "checkout", "development", "maintenance", "--for", "tenant=tenant-7",
            "-r", "demo: tenant-7 into maintenance",
        )  # fmt: skip
        accepted = time.monotonic()  # the CLI returns once the pipeline accepted the change
        self.wait_for(lambda: self.served("tenant-7").get("statusCode") == 503, "tenant-7 in maintenance")
        say(f"tenant-7 answered 503 {time.monotonic() - accepted:.1f}s after the change was accepted")
        self.show_served("after enable --for tenant=tenant-7", tenants)
        self.run(
            team, "flag", "disable", "checkout", "development", "maintenance", "--for", "tenant=tenant-7",
            "-r", "demo: tenant-7 back",
        )  # fmt: skip
        accepted = time.monotonic()
        self.wait_for(lambda: self.served("tenant-7").get("statusCode") == 200, "tenant-7 served again")
        say(f"tenant-7 served again {time.monotonic() - accepted:.1f}s after the change was accepted")
        self.run(None, "flag", "list", "checkout", "development")

    def a_tenant_value(self) -> None:
        step("9. A tenant with its own value: tenant-9's larger cart, the others keep the service's")
        team = "configpipe.team.checkout"
        target = ("checkout", "development", "max_items")
        self.run(
            team, "put", *target, "300", "--tenant", "tenant-9", "--reason", "demo: tenant-9's larger cart"
        )
        self.wait_for(
            lambda: self.parameter("/config/checkout/development.tenants/tenant-9/max_items") == "300",
            "tenant-9's parameter",
        )
        self.run(None, "get", *target, "--tenant", "tenant-9")
        self.run(None, "diff", *target, "--tenant", "tenant-9")
        # the service's own Lambda reads tenant → service (sample_service.app.answer)
        tenant_9 = self.wait_for(
            lambda: (answer := self.tenant_read("tenant-9", "max_items")).get("value") == 300 and answer,
            "the checkout service reading tenant-9's value",
        )
        table = Table("tenant", "max_items the checkout service reads", "its own value?")
        for tenant, answer in (
            ("tenant-1", self.tenant_read("tenant-1", "max_items")),
            ("tenant-9", tenant_9),
        ):
            table.add_row(tenant, str(answer.get("value")), "yes" if answer.get("tenantOverride") else "no")
        console.print(table)

    def served(self, tenant: str) -> dict[str, Any]:
        """How the checkout service serves ``tenant``: its OpenFeature flags (sample_service.app.serve)."""
        response = self.p.client("lambda").invoke(
            FunctionName="checkout-config-update-handler",
            Payload=json.dumps({"tenant": tenant, "serve": True, "environment": "development"}).encode(),
        )
        answer: dict[str, Any] = json.loads(response["Payload"].read())
        return answer

    def show_served(self, title: str, tenants: list[str]) -> None:
        table = Table(f"tenant ({title})", "status", "maintenance reason", "rate limit")
        for tenant in tenants:
            answer = self.served(tenant)
            table.add_row(
                tenant,
                str(answer.get("statusCode")),
                str(answer.get("maintenanceReason")),
                str(answer.get("rateLimit")),
            )
        console.print(table)

    def tenant_read(self, tenant: str, key: str) -> dict[str, Any]:
        """What the checkout service answers for ``tenant``: its own ConfigClient read, per tenant."""
        response = self.p.client("lambda").invoke(
            FunctionName="checkout-config-update-handler",
            Payload=json.dumps({"tenant": tenant, "key": key, "environment": "development"}).encode(),
        )
        answer: dict[str, Any] = json.loads(response["Payload"].read())
        return answer

    # --- release plumbing ---------------------------------------------------------------

    def release_cli(self, source: str | None, command: str, *args: str) -> None:
        """``configpipe release …`` as a release engineer runs it (it publishes ReleaseRequested /
        ReleaseControl on the bus with the team's source, and waits for the outcome: minutes, not
        the default 30 s, so a busy machine only slows it)."""
        waits = ("--timeout", f"{WAIT_SECONDS:g}") if command in ("start", "promote") else ()
        self.run(source, "release", command, *args, *waits)

    def run(self, source: str | None, *args: str, shown: tuple[str, ...] | None = None) -> str:
        """The configpipe CLI as a person runs it: the command (``shown`` if it must not show
        an argument), then its output."""
        team = ("--source", source) if source else ()
        command = " ".join(shlex.quote(a) for a in (*team, *(shown or args)))
        console.print(Text(f"  $ configpipe {command}", style="bold"))
        output = self.cli(*team, *args, columns=max(60, console.width - 4))
        text = "\n".join(line.rstrip() for line in output.rstrip().splitlines())
        if text:
            console.print(Padding(Text(text), (0, 0, 0, 4)))
        return output

    def applied(self, service: str, key: str) -> dict[str, Any] | None:
        """What ``service``'s update handler recorded for ``key`` in development (the demo services'
        applied table), flattened."""
        table = self.outputs["AppliedTableName"]
        for item in self.p.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]:
            owner = item.get("pk", item.get("service", {})).get("S")
            if owner == service and item["sk"]["S"] == f"development#{key}":
                return {k: next(iter(v.values())) for k, v in item.items()}
        return None

    def release_events(self, detail_type: str, release_id: str) -> list[dict[str, Any]]:
        self.bus("", "")  # drain the subscription into self.seen
        return [
            e
            for e in self.seen
            if e["detail-type"] == detail_type and e["detail"].get("releaseId") == release_id
        ]

    def alias(self, function: str) -> dict[str, Any]:
        """The alias as Lambda's GetAlias returns it (in the emulator)."""
        alias = self.p.client("lambda").get_alias(FunctionName=function, Name="live")
        routing = alias.get("RoutingConfig")
        return {
            "version": alias["FunctionVersion"],
            "weights": dict((routing or {}).get("AdditionalVersionWeights") or {}),
            "routing": routing,
        }

    def alias_when(self, function: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        alias = self.alias(function)
        return alias if ready(alias) else None

    def alarm_state(self, alarm: str) -> str:
        alarms = self.p.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        return str(alarms[0]["StateValue"]) if alarms else "missing"

    def show_alias(self, title: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
        table = Table("", "FunctionVersion", "RoutingConfig.AdditionalVersionWeights", "traffic", title=title)
        for label, alias in rows:
            weights = alias["weights"]
            extra = sum(weights.values())
            traffic = ", ".join(
                [
                    f"v{alias['version']} {1 - extra:.0%}",
                    *(f"v{v} {w:.0%}" for v, w in sorted(weights.items())),
                ]
            )
            table.add_row(label, alias["version"], json.dumps(weights) if weights else "none", traffic)
        console.print(table)

    def show_history(self, release_id: str) -> None:
        events = sorted(
            (
                e
                for e in self.seen
                if e["source"] == "configpipe.pipeline" and e["detail"].get("releaseId") == release_id
            ),
            key=lambda e: e["detail"].get("seq", 0),
        )
        line = " → ".join(f"{e['detail-type']} {e['detail'].get('percent', 0):g}%" for e in events)
        say(f"[dim]announced on the bus: {line}[/dim]")


def _configpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("configpipe")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from configpipe_tools.cli.main import app; app()"]
    )


def _secret_value(client: Any, name: str) -> str | None:
    try:
        return str(client.get_secret_value(SecretId=name)["SecretString"])
    except client.exceptions.ResourceNotFoundException:
        return None


def _current_version(demo: Demo, service: str, key: str) -> int | None:
    item = (
        demo.p.client("dynamodb")
        .get_item(
            TableName=demo.outputs["ChangeLogTableName"],
            Key={"pk": {"S": f"KEY#{service}#development#{key}"}, "sk": {"S": "CURRENT"}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item["version"]["N"]) if item else None


def masked(secret: str) -> str:
    return f"<secret, {len(secret)} chars>"


def step(title: str) -> None:
    console.print()
    console.rule(f"[bold]{title}")


def say(text: str) -> None:
    console.print(f"  {text}")


def main(argv: list[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument(
        "--state-dir",
        type=Path,
        default=REPO / ".local" / "demo",
        help="Where this run's function logs go (default .local/demo).",
    )
    args = arguments.parse_args(argv)
    began = time.monotonic()
    console.rule("[bold cyan]configpipe demo: the real pipeline on a local AWS emulator")
    pipeline = LocalPipeline(
        Options(
            port=int(os.environ.get("CONFIGPIPE_DEMO_PORT", "0")),
            state_dir=args.state_dir,
            schedule_speedup=SCHEDULE_SPEEDUP,
        )
    )
    with console.status(f"{pipeline.template_source()}, then starting the emulator ..."):
        try:
            pipeline.start()
        except (TemplateError, PortInUseError) as error:
            console.print(f"[red]cannot start the local pipeline:[/red] {error}")
            return 2
    try:
        stack = pipeline.stack
        assert stack is not None
        say(
            f"emulator: {pipeline.url}   stack: {len(stack.functions)} functions, "
            f"{sum(len(v) for v in stack.rule_functions.values())} rule targets, "
            f"{len(stack.mappings)} stream mapping, "
            f"from {pipeline.template.path if pipeline.template else '?'} "
            f"(ready in {pipeline.started_in:.1f}s)"
        )
        demo = Demo(pipeline)
        demo.changes_for_three_services()
        demo.a_rejected_change()
        demo.a_secret()
        demo.a_global_flag()
        demo.history_and_rollback()
        demo.releases()
        demo.a_config_canary()
        demo.feature_flags()
        demo.a_tenant_value()
    except DemoError as error:
        console.print(f"[red]demo failed:[/red] {error}")
        console.print(f"function logs: {pipeline.log_dir}")
        return 1
    finally:
        with console.status("stopping the pipeline ..."):
            pipeline.stop()
    step(f"Done in {time.monotonic() - began:.0f}s. Where to look next")
    say(
        f"function logs of this run:  {pipeline.log_dir}/<function>.log (JSON lines, as CloudWatch gets them)"
    )
    say("keep it running and use any client:  .venv/bin/configpipe local up   (docs/local.md)")
    say("                                     --keep-state keeps your changes across restarts")
    say("the flow and the contracts:          docs/architecture.md")
    say("the CLI:                             docs/cli.md   releases: docs/releases.md")
    say("config rollouts:                     docs/rollouts.md")
    say("feature flags:                       docs/feature-flags.md")
    say("tenants:                             docs/architecture.md#tenants, docs/security.md")
    say("the end-to-end tests:                .venv/bin/pytest tests/e2e -q")
    say("releases, yourself:                  .venv/bin/configpipe local up --schedule-speedup 30")
    say("                                     (stand-ins checkout-api/payments-api/search-api:live → v1)")
    release_log = next(iter(pipeline.log_dir.glob("*Releases*.log")), None)
    if release_log:
        say(f"the release function's log:          {release_log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
