"""Reading a release's progress for ``configpipe release …``: the release table (the CLI only
*reads* it, through :class:`ReleaseStore`), its alarms, and the rejections on the bus.

Effects are read from the table. Rejections are only announced on the bus (nothing is
written for a rejected request or control), so ``--wait`` listens for them through a
temporary queue + rule (:class:`~configpipe_tools.cli.watching.Subscription`, the mechanism
``watch`` uses), opened *before* publishing, and parses them with the contract the release
function publishes (:class:`ReleaseRejected`).

``--follow`` polls the table (``--interval``) until the release ends, bounded by a deadline:
0 when it completed, 3 when it was rolled back or aborted, 4 when still running.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError
from rich.live import Live
from rich.text import Text

from configpipe.contracts import PIPELINE_SOURCE
from configpipe.release.contracts import ControlAction, ReleaseDetailType, ReleaseRejected, ReleaseStatus
from configpipe.release.health import AlarmHealth
from configpipe.release.model import ReleaseState
from configpipe.release.store import ReleaseStore
from configpipe_tools.cli.common import poll_until
from configpipe_tools.cli.context import CliContext
from configpipe_tools.cli.errors import CliError, ExitCode, invalid
from configpipe_tools.cli.output import Output
from configpipe_tools.cli.release_output import history_line, history_view, panel, release_view
from configpipe_tools.cli.watching import Subscription

ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}

#: What :func:`poll` returns: the state once the effect shows, or the rejection's reasons.
Outcome = ReleaseState | list[dict[str, Any]] | None


# --- the release table ----------------------------------------------------------------------


def release_store(cli: CliContext) -> ReleaseStore:
    name = cli.release_table_name
    if not name:
        raise invalid(
            "which release table? it is named by the stack",
            code="MISSING_RELEASE_TABLE",
            hint="Pass --stack <stack name> (or set CONFIGPIPE_STACK) to read ReleaseTableName from its "
            "outputs, or `configpipe release --release-table <name> …` (CONFIGPIPE_RELEASE_TABLE).",
        )
    return ReleaseStore(name, client=cli.client("dynamodb"))


def _release_by_id(store: ReleaseStore, function: str, alias: str, release_id: str) -> ReleaseState:
    state = store.get(release_id)
    if state is None:
        raise invalid(
            f"no release {release_id}",
            code="RELEASE_NOT_FOUND",
            hint=f"`configpipe release status {function} --alias {alias}` shows the alias's release.",
        )
    if (state.function, state.alias) != (function, alias):
        raise invalid(
            f"release {release_id} is a release of {state.function}:{state.alias}, not of {function}:{alias}",
            code="RELEASE_MISMATCH",
        )
    return state


def _release_of_alias(store: ReleaseStore, function: str, alias: str, *, active_only: bool) -> ReleaseState:
    # The lock is read consistently; the index of past releases may lag a second.
    active = store.lock_holder(function, alias)
    state = store.get(active) if active else None
    if state is None and not active_only:
        past = store.releases_for_alias(function, alias)
        state = past[0] if past else None
    if state is None:
        raise invalid(
            f"no {'active ' if active_only else ''}release on {function}:{alias}",
            code="NO_ACTIVE_RELEASE" if active_only else "RELEASE_NOT_FOUND",
            hint=f"`configpipe release status {function} --alias {alias}` shows the last one"
            if active_only
            else f"Start one with `configpipe release start {function} --alias {alias} --to-version N "
            "--strategy … --reason …`.",
        )
    return state


def find_release(
    store: ReleaseStore, function: str, alias: str, release_id: str | None, *, active_only: bool
) -> ReleaseState:
    """``release_id``'s release (which must be of ``function:alias``), else the alias's active
    one, else (unless ``active_only``) its last one."""
    if release_id is not None:
        state = _release_by_id(store, function, alias, release_id)
    else:
        state = _release_of_alias(store, function, alias, active_only=active_only)
    if active_only and state.status.terminal:
        raise invalid(
            f"release {state.release_id} has already ended ({state.status.value})",
            code="RELEASE_NOT_ACTIVE",
            hint="Start a new release to change the alias again.",
        )
    return state


def alarm_states(cli: CliContext, state: ReleaseState) -> dict[str, str]:
    """Best effort: ``{alarm: state}``, or ``UNKNOWN`` when this identity may not read them."""
    if not state.alarms:
        return {}
    try:
        found = AlarmHealth(cli.client("cloudwatch")).states(state.alarms)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ACCESS_CODES:
            raise
        found = {}
    return {name: found.get(name, "UNKNOWN") for name in state.alarms}


def current_view(cli: CliContext, store: ReleaseStore, state: ReleaseState) -> dict[str, Any]:
    """The view of ``state`` with its history and its alarms' states, read now."""
    return release_view(state, store.history(state.release_id), alarm_states(cli, state))


# --- the effects a request or control waits for ---------------------------------------------


def started(state: ReleaseState | None, request_hash: str) -> ReleaseState | None:
    """The release, once it exists for *this* request and has taken its first step.

    The release function creates the release and then shifts the alias (two writes); a read in
    between would report "started, 0 %" for a canary that is about to be at 10 %. So a shifting
    release counts as started once the alias carries the strategy's first weight (0 % for the
    AppConfig strategies, whose first step comes after an interval)."""
    # A state under our id from another request is a RELEASE_ID_CONFLICT: its rejection follows.
    if state is None or state.request_hash != request_hash:
        return None
    if state.status is ReleaseStatus.SHIFTING and state.percent < state.strategy.percent_at(0):
        return None
    return state


def reflects(action: ControlAction) -> Callable[[ReleaseState], bool]:
    """When the stored state shows that the control took effect."""
    return {
        ControlAction.PAUSE: lambda s: s.paused or s.status.terminal,
        ControlAction.RESUME: lambda s: not s.paused,
        # Promote finishes the release (through its post-traffic hook, if any); the promoted flag
        # alone is an intermediate write the release function is about to act on.
        ControlAction.PROMOTE: lambda s: (
            s.status.terminal or (s.promoted and s.status is ReleaseStatus.POST_TRAFFIC)
        ),
        ControlAction.ABORT: lambda s: s.status.terminal,
    }[action]


# --- rejections, through a temporary subscription -------------------------------------------


def rejection_pattern(detail: dict[str, list[str]]) -> dict[str, Any]:
    """``ReleaseRejected`` events matching ``detail``."""
    return {
        "source": [PIPELINE_SOURCE],
        "detail-type": [ReleaseDetailType.RELEASE_REJECTED.value],
        "detail": detail,
    }


def rejection_reasons(subscription: Subscription) -> list[dict[str, Any]] | None:
    """The reasons of the first ``ReleaseRejected`` received, parsed with the contract the
    release function publishes (fields this CLI does not know yet are ignored)."""
    for event in subscription.receive(0):
        detail = event.get("detail")
        try:
            return [reason.to_detail() for reason in ReleaseRejected.model_validate(detail).reasons]
        except ValidationError:
            # Still a rejection, e.g. with a reason code newer than this CLI: show it as sent.
            reasons = detail.get("reasons") if isinstance(detail, dict) else None
            if isinstance(reasons, list):
                return [dict(r) for r in reasons]
    return None


@contextlib.contextmanager
def rejections(cli: CliContext, out: Output, detail: dict[str, list[str]]) -> Iterator[Subscription | None]:
    """A temporary subscription to the matching rejections (None when this identity may not
    subscribe: a rejection then shows as a timeout)."""
    subscription = Subscription(cli, rejection_pattern(detail))
    try:
        try:
            subscription.open()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ACCESS_CODES:
                raise
            out.warn(
                "cannot subscribe to the bus (events:PutRule / sqs:CreateQueue denied): a rejection will "
                "show as a timeout"
            )
            yield None
            return
        yield subscription
    finally:
        leftovers = subscription.close()
        if leftovers:
            out.warn("could not delete temporary resources; delete them with:\n  " + "\n  ".join(leftovers))


def poll(
    deadline: float, rejected: Subscription | None, effect: Callable[[], ReleaseState | None]
) -> Outcome:
    """Until the deadline: the rejection's reasons, or ``effect()`` once it is not None."""

    def probe() -> Outcome:
        if rejected is not None:
            reasons = rejection_reasons(rejected)
            if reasons is not None:
                return reasons
        return effect()

    return poll_until(deadline, probe)


# --- --follow -------------------------------------------------------------------------------


def _still_running(release_id: str, state: ReleaseState, view: dict[str, Any]) -> CliError:
    return CliError(
        f"release {release_id} is still {state.status.value} at {view['percent']:g}%; "
        "stopped following (the release goes on)",
        ExitCode.TIMEOUT,
        "TIMEOUT",
        hint=f"`configpipe release status {state.function} --alias {state.alias} --follow` "
        "follows it again; raise --timeout for long strategies.",
        details={"releaseId": release_id, "status": state.status.value},
    )


def follow_release(
    cli: CliContext, out: Output, release_id: str, deadline: float, interval: float
) -> ExitCode:
    """Poll the table until the release ends or the deadline passes; new history entries are
    printed as they appear (JSON lines with ``-o json``), the live view shows weight and health."""
    store = release_store(cli)
    shown = 0
    live = None if out.as_json else Live(console=out.out, auto_refresh=False, transient=False)
    with live if live is not None else contextlib.nullcontext():
        while True:
            state = store.get(release_id)
            if state is None:
                raise invalid(f"no release {release_id}", code="RELEASE_NOT_FOUND")
            history = store.history(release_id)
            alarms = alarm_states(cli, state)
            for entry in history[shown:]:
                if live is None:
                    out.event({"type": "history", **history_view(entry)}, history_line(entry))
                else:
                    live.console.print(history_line(entry), soft_wrap=True)
            shown = len(history)
            view = release_view(state, history, alarms)
            if live is not None:
                live.update(panel(view), refresh=True)
            if state.status.terminal:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _still_running(release_id, state, view)
            time.sleep(min(interval, remaining))
    if live is not None and not live.console.is_terminal:
        # Off a terminal, rich prints the final view without ending its line: the next output
        # (a shell prompt, the next command's) would start on the panel's last line.
        live.console.line()
    code = ExitCode.OK if state.status is ReleaseStatus.COMPLETED else ExitCode.REJECTED
    if out.as_json:
        out.event({"type": "summary", **view}, Text(""))
    return code
