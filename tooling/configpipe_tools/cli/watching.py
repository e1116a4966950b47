"""``configpipe watch``: follow updates and deliveries, per service, with resume by version.

Resume works like etcd's watch-from-revision, adapted to per-key versions:

1. subscribe first: a temporary SQS queue and a rule on the config bus that forwards the
   pipeline's ``ConfigurationUpdated`` / ``ConfigurationDelivered`` /
   ``ConfigurationDeliveryFailed`` events to it;
2. then catch up from the change log: every version newer than ``--since-version`` of
   every key in scope (the change log is the source of truth; the bus keeps nothing);
3. then follow the queue, skipping what the catch-up already showed.

Subscribing before reading means nothing published during the catch-up is missed. The
queue and rule are deleted on exit, including Ctrl-C; if that fails the commands to
delete them are printed.

After the catch-up, each service's applied version is rebuilt from the delivery ledger (issue
14: what each service's update handler acknowledged, including refusals), so a watch that
reconnects knows at once who runs what, instead of waiting for each service's next delivery.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from configpipe.changelog import VersionRecord
from configpipe.client.subscription import Backoff, missed_keys, versions_after
from configpipe.contracts import (
    GLOBAL_SERVICE,
    PIPELINE_SOURCE,
    TEAM_SOURCE_PREFIX,
    ConfigurationDelivered,
    ConfigurationDeliveryFailed,
    ConfigurationUpdated,
    DetailType,
)
from configpipe.ledger import DeliveryLedger
from configpipe.registry import DEFAULT_ENVIRONMENTS, Registry
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import invalid
from configpipe_tools.cli.output import Output, operation_text, record_fields

WATCH_PREFIX = "configpipe-watch-"
_FOLLOWED = (
    DetailType.CONFIGURATION_UPDATED,
    DetailType.CONFIGURATION_DELIVERED,
    DetailType.CONFIGURATION_DELIVERY_FAILED,
)
_LONG_POLL_SECONDS = 20

Scope = tuple[str, str, str]  # service, environment, key


@dataclass(frozen=True)
class WatchFilter:
    service: str | None = None
    environment: str | None = None
    key: str | None = None
    #: Only this tenant's own values; None: only service (and global) values, whose versions
    #: are the ones convergence is tracked for (a tenant's versions are a sequence of their own).
    tenant: str | None = None

    def wants_scope(self, service: str, environment: str, key: str, tenant: str | None = None) -> bool:
        if tenant != self.tenant:
            return False
        if self.service and service not in {self.service, GLOBAL_SERVICE}:
            return False
        if self.environment and environment != self.environment:
            return False
        return not (self.key and key != self.key)

    def wants_target(self, target: str) -> bool:
        return not self.service or target == self.service


@dataclass
class Convergence:
    """Per key: the newest version announced; per (service, key): the newest delivered."""

    registry: Registry | None
    only_service: str | None = None
    latest: dict[Scope, int] = field(default_factory=dict)
    applied: dict[tuple[str, Scope], int] = field(default_factory=dict)
    failed: dict[tuple[str, Scope], tuple[int, str]] = field(default_factory=dict)

    def announce(self, scope: Scope, version: int) -> None:
        self.latest[scope] = max(version, self.latest.get(scope, 0))

    def delivered(self, target: str, scope: Scope, version: int) -> None:
        self.announce(scope, version)  # events are unordered: a delivery proves the version exists
        self.applied[(target, scope)] = max(version, self.applied.get((target, scope), 0))

    def delivery_failed(self, target: str, scope: Scope, version: int, error: str) -> None:
        self.announce(scope, version)
        self.failed[(target, scope)] = (version, error)

    def targets(self, scope: Scope) -> list[str]:
        expected: set[str] = set()
        if self.registry is not None and self.registry.is_known(scope[0]):
            expected.update(self.registry.affected_services(*scope))
        expected.update(t for (t, s) in [*self.applied, *self.failed] if s == scope)
        if self.only_service:
            expected &= {self.only_service}
        return sorted(expected)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for scope in sorted(self.latest):
            latest = self.latest[scope]
            for target in self.targets(scope):
                applied = self.applied.get((target, scope))
                failure = self.failed.get((target, scope))
                if applied is not None and applied >= latest:
                    state = "converged"
                elif failure is not None and failure[0] >= latest:
                    state = "failed"
                else:
                    state = "pending"
                row: dict[str, Any] = {
                    "targetService": target,
                    "service": scope[0],
                    "environment": scope[1],
                    "key": scope[2],
                    "latestVersion": latest,
                    "appliedVersion": applied,
                    "state": state,
                }
                if state == "failed" and failure is not None:
                    row["error"] = failure[1]
                rows.append(row)
        return rows


def watch_pattern(flt: WatchFilter) -> dict[str, Any]:
    """The rule pattern ``watch`` subscribes with: the pipeline's update and delivery events,
    narrowed by environment and key (service and target are filtered on receipt)."""
    pattern: dict[str, Any] = {"source": [PIPELINE_SOURCE], "detail-type": [d.value for d in _FOLLOWED]}
    detail: dict[str, list[str]] = {}
    if flt.environment:
        detail["environment"] = [flt.environment]
    if flt.key:
        detail["key"] = [flt.key]
    if flt.tenant:
        detail["tenant"] = [flt.tenant]
    if detail:
        pattern["detail"] = detail
    return pattern


def watch_prefix(source: str | None) -> str:
    """``configpipe-watch-<team>-``: a team's publisher policy may create, read and delete only
    the watch rules and queues under its own prefix (docs/security.md, M1)."""
    team = (source or "").removeprefix(TEAM_SOURCE_PREFIX).replace(".", "-")[:30] or "anonymous"
    return f"{WATCH_PREFIX}{team}-"


class Subscription:
    """A temporary queue + rule on the config bus for the events matching ``pattern`` (an
    EventBridge event pattern), deleted by :meth:`close`."""

    def __init__(self, ctx: CliContext, pattern: dict[str, Any]) -> None:
        self._ctx = ctx
        self.pattern = pattern
        self.name = f"{watch_prefix(ctx.source)}{uuid.uuid4().hex[:12]}"
        self.queue_url: str | None = None
        self._rule_created = False
        self._target_added = False

    def open(self) -> None:
        """The rule first (it has no target yet, so nothing is sent), then the queue with its
        policy set at creation: the publisher policy grants no sqs:SetQueueAttributes, so no
        queue's policy can be changed afterwards (docs/security.md, M1)."""
        sqs, events = self._ctx.client("sqs"), self._ctx.client("events")
        rule_arn = events.put_rule(
            Name=self.name,
            EventBusName=self._ctx.bus_name,
            EventPattern=json.dumps(self.pattern),
            State="ENABLED",
            Description="temporary: configpipe watch (deleted when the watch ends)",
        )["RuleArn"]
        self._rule_created = True
        # arn:<partition>:events:<region>:<account>:rule/...: the queue lives beside the rule.
        _, partition, _, region, account = rule_arn.split(":")[:5]
        queue_arn = f"arn:{partition}:sqs:{region}:{account}:{self.name}"
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self.queue_url = sqs.create_queue(
            QueueName=self.name,
            Attributes={
                "MessageRetentionPeriod": "3600",
                "SqsManagedSseEnabled": "true",
                "Policy": json.dumps(policy),
            },
            tags={"configpipe:purpose": "watch"},
        )["QueueUrl"]
        events.put_targets(
            Rule=self.name, EventBusName=self._ctx.bus_name, Targets=[{"Id": "watch", "Arn": queue_arn}]
        )
        self._target_added = True

    def receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        sqs = self._ctx.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        events = []
        for message in messages:
            try:
                events.append(json.loads(message["Body"]))
            except ValueError:
                continue
        return events

    def close(self) -> list[str]:
        """Delete what :meth:`open` created; returns the manual clean-up commands for whatever
        could not be deleted."""
        leftovers: list[str] = []
        bus = self._ctx.bus_name
        if self._target_added:
            try:
                self._ctx.client("events").remove_targets(Rule=self.name, EventBusName=bus, Ids=["watch"])
            except (BotoCoreError, ClientError):
                leftovers.append(
                    f"aws events remove-targets --rule {self.name} --event-bus-name {bus} --ids watch"
                )
        if self._rule_created:
            try:
                self._ctx.client("events").delete_rule(Name=self.name, EventBusName=bus)
            except (BotoCoreError, ClientError):
                leftovers.append(f"aws events delete-rule --name {self.name} --event-bus-name {bus}")
        if self.queue_url:
            try:
                self._ctx.client("sqs").delete_queue(QueueUrl=self.queue_url)
            except (BotoCoreError, ClientError):
                leftovers.append(f"aws sqs delete-queue --queue-url {self.queue_url}")
        return leftovers


class Watch:
    def __init__(self, ctx: CliContext, out: Output, flt: WatchFilter) -> None:
        self._ctx = ctx
        self._out = out
        self._filter = flt
        self._registry = ctx.registry()
        self.state = Convergence(self._registry, only_service=flt.service)
        self._seen: set[tuple[Any, ...]] = set()

    # --- catch-up from the change log ---------------------------------------------------

    def catch_up(self, since_version: int) -> int:
        shown = 0
        for record in self._missed(since_version):
            scope = (record.service, record.environment, record.key)
            self._seen.add((DetailType.CONFIGURATION_UPDATED.value, *scope, record.version, None))
            self.state.announce(scope, record.version)
            self._out.event(
                {"type": "caughtUp", **record_fields(record), "rolledBackTo": record.rolled_back_to},
                Text("↻ ", style="dim")
                + Text(f"v{record.version} ", style="bold")
                + Text(f"{'/'.join(scope)}  {operation_text(record)} by {record.author}: {record.reason}"),
            )
            shown += 1
        return shown

    def rebuild_applied(self, ledger: DeliveryLedger) -> int:
        """What each service in scope has applied (and refused), from the delivery ledger: the
        state a disconnected watch lost. Returns the number of entries shown."""
        flt = self._filter
        assert flt.service is not None  # checked by the command
        shown = 0
        for service in self._services():
            for environment in self._environments():
                # --tenant: that tenant's own values' acknowledgements (global keys have no tenants)
                tenant = flt.tenant if service != GLOBAL_SERVICE else None
                for entry in ledger.entries(service, environment, flt.key, tenant):
                    if not flt.wants_target(entry.target_service):
                        continue
                    scope = (service, environment, entry.key)
                    if entry.applied_version is not None:
                        self.state.delivered(entry.target_service, scope, entry.applied_version)
                    if entry.failing and entry.failed_version is not None:
                        reason = f"refused: {entry.failure_reason}"
                        self.state.delivery_failed(entry.target_service, scope, entry.failed_version, reason)
                    applied = f"v{entry.applied_version}" if entry.applied_version is not None else "nothing"
                    refused = f", refused v{entry.failed_version}" if entry.failing else ""
                    self._out.event(
                        {
                            "type": "applied",
                            "service": service,
                            "environment": environment,
                            **entry.to_view(),
                            "key": entry.key,
                        },
                        Text("≡ ", style="dim")
                        + Text(
                            f"{'/'.join(scope)} → {entry.target_service} runs {applied}{refused} (ledger)"
                        ),
                    )
                    shown += 1
        return shown

    def _services(self) -> list[str]:
        service = self._filter.service
        assert service is not None
        return [service] if service == GLOBAL_SERVICE else [service, GLOBAL_SERVICE]

    def _environments(self) -> list[str]:
        if self._filter.environment:
            return [self._filter.environment]
        return list(self._registry.environments if self._registry else DEFAULT_ENVIRONMENTS)

    def _missed(self, since_version: int) -> Iterator[VersionRecord]:
        """The same catch-up as ``configpipe.client.Subscription``'s, from one version for
        every key (a watcher holds no per-key versions)."""
        flt = self._filter
        assert flt.service is not None  # checked by the command
        log = self._ctx.change_log()
        if flt.tenant is not None:
            for environment in self._environments():
                for key, _ in sorted(
                    log.keys(flt.service, environment, include_deleted=True, tenant=flt.tenant)
                ):
                    if not flt.key or key == flt.key:
                        history = log.history(
                            flt.service, environment, key, newest_first=False, tenant=flt.tenant
                        )
                        yield from (r for r in history if r.version > since_version)
            return
        for scope, _ in missed_keys(log, self._services(), self._environments()):
            if len(scope) == 3 and (not flt.key or scope[2] == flt.key):  # tenants: --tenant above
                service, environment, key = scope
                yield from versions_after(log, service, environment, key, since_version)

    # --- live events --------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> bool:
        """Show one bus event if it matches the filter and is new; True if it was shown."""
        if event.get("source") != PIPELINE_SOURCE:
            return False
        detail_type, detail = event.get("detail-type"), event.get("detail", {})
        try:
            if detail_type == DetailType.CONFIGURATION_UPDATED:
                return self._updated(ConfigurationUpdated.model_validate(detail))
            if detail_type == DetailType.CONFIGURATION_DELIVERED:
                return self._delivered(ConfigurationDelivered.model_validate(detail))
            if detail_type == DetailType.CONFIGURATION_DELIVERY_FAILED:
                return self._failed(ConfigurationDeliveryFailed.model_validate(detail))
        except ValidationError:
            self._out.warn(f"ignored a malformed {detail_type} event (id {event.get('id')})")
        return False

    def _fresh(self, *identity: Any) -> bool:
        if identity in self._seen:
            return False
        self._seen.add(identity)
        return True

    def _updated(self, e: ConfigurationUpdated) -> bool:
        scope = (e.service, e.environment, e.key)
        if not self._filter.wants_scope(*scope, e.tenant) or not self._fresh(
            DetailType.CONFIGURATION_UPDATED.value, *scope, e.version, None
        ):
            return False
        self.state.announce(scope, e.version)
        payload = e.to_detail()
        payload.pop("value", None)  # the stream shows versions, not values
        what = f"rollback→v{e.rolled_back_to}" if e.rolled_back_to else e.operation.value
        self._out.event(
            {"type": "updated", **payload},
            Text("● ", style="blue")
            + Text(f"v{e.version} ", style="bold")
            + Text(f"{'/'.join(scope)}  {what} by {e.author}: {e.reason}"),
        )
        return True

    def _new_delivery(
        self, detail_type: DetailType, e: ConfigurationDelivered | ConfigurationDeliveryFailed
    ) -> bool:
        """A delivery outcome in the filter's scope and target, not shown before."""
        scope = (e.service, e.environment, e.key)
        return (
            self._filter.wants_scope(*scope, e.tenant)
            and self._filter.wants_target(e.target_service)
            and self._fresh(detail_type.value, *scope, e.version, e.target_service)
        )

    def _delivered(self, e: ConfigurationDelivered) -> bool:
        if not self._new_delivery(DetailType.CONFIGURATION_DELIVERED, e):
            return False
        scope = (e.service, e.environment, e.key)
        self.state.delivered(e.target_service, scope, e.version)
        self._out.event(
            {"type": "delivered", **e.to_detail()},
            Text("✓ ", style="green")
            + Text(f"v{e.version} ", style="bold")
            + Text(f"{'/'.join(scope)} → {e.target_service} ({e.function_name})"),
        )
        return True

    def _failed(self, e: ConfigurationDeliveryFailed) -> bool:
        if not self._new_delivery(DetailType.CONFIGURATION_DELIVERY_FAILED, e):
            return False
        scope = (e.service, e.environment, e.key)
        error = f"{e.error_code}: {e.error_message}"
        self.state.delivery_failed(e.target_service, scope, e.version, error)
        self._out.event(
            {"type": "deliveryFailed", **e.to_detail()},
            Text("✗ ", style="red")
            + Text(f"v{e.version} ", style="bold")
            + Text(f"{'/'.join(scope)} → {e.target_service} failed: {error}"),
        )
        return True

    def follow(
        self,
        subscription: Subscription,
        max_events: int | None,
        timeout: float | None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Show live events until ``max_events`` or ``timeout``. A failed receive (network,
        throttling) is retried after the Subscription's backoff with jitter; the temporary
        queue keeps what arrives meanwhile, so nothing is missed."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        backoff = backoff or Backoff()
        shown = 0
        while max_events is None or shown < max_events:
            wait = _LONG_POLL_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = max(1, min(_LONG_POLL_SECONDS, int(remaining)))
            try:
                received = subscription.receive(wait)
            except (BotoCoreError, ClientError) as error:
                delay = backoff.next_delay()
                self._out.warn(f"receive failed ({type(error).__name__}); retrying in {delay:.1f}s")
                sleep(delay)
                continue
            backoff.reset()
            for event in received:
                if self.handle(event):
                    shown += 1
                    if max_events is not None and shown >= max_events:
                        break
        return shown

    # --- summary ------------------------------------------------------------------------

    def summary(self) -> None:
        rows = self.state.rows()
        converged = all(r["state"] == "converged" for r in rows)
        if self._out.as_json:
            self._out.event({"type": "summary", "converged": converged, "services": rows}, Text(""))
            return
        if not rows:
            self._out.note("no updates seen for the watched scope")
            return
        table = Table(title="convergence", title_justify="left")
        for column in ("service", "key", "latest", "applied", "state"):
            table.add_column(column, overflow="fold")
        style = {"converged": "green", "pending": "yellow", "failed": "red"}
        for row in rows:
            state = Text(row["state"], style=style[row["state"]])
            if row.get("error"):
                state += Text(f" ({row['error']})")
            table.add_row(
                Text(row["targetService"]),
                Text(f"{row['service']}/{row['environment']}/{row['key']}"),
                Text(f"v{row['latestVersion']}"),
                Text(f"v{row['appliedVersion']}" if row["appliedVersion"] is not None else "—"),
                state,
            )
        self._out.out.print(table)


def run_watch(
    ctx: CliContext,
    out: Output,
    flt: WatchFilter,
    since_version: int | None,
    max_events: int | None,
    timeout: float | None,
    ledger: DeliveryLedger | None = None,
) -> None:
    """``ledger``: with ``since_version``, rebuild applied versions from it after the catch-up."""
    if since_version is not None and not flt.service:
        raise invalid(
            "--since-version needs --service: catch-up reads that service's keys from the change log",
            code="USAGE",
            hint="e.g. configpipe watch --service checkout --env production --since-version 12",
        )
    watch = Watch(ctx, out, flt)
    subscription = Subscription(ctx, watch_pattern(flt))
    try:
        subscription.open()  # before the catch-up, so nothing falls in between
        if since_version is not None:
            watch.catch_up(since_version)
            if ledger is not None:
                try:
                    watch.rebuild_applied(ledger)
                except ClientError as error:
                    # A stack from before the ledger (or no read permission): the live events remain.
                    code = error.response["Error"]["Code"]
                    out.warn(f"applied versions not rebuilt from the delivery ledger ({code})")
        out.note(f"following the bus {ctx.bus_name} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            watch.follow(subscription, max_events, timeout)
    finally:
        leftovers = subscription.close()
        if leftovers:
            out.warn(
                "could not delete the watch's temporary resources; delete them with:\n  "
                + "\n  ".join(leftovers)
            )
    watch.summary()
