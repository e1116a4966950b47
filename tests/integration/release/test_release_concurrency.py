"""Why the release manager runs one invocation at a time (reserved concurrency 1,
docs/security.md): its saves are conditional, but a traffic shift is two steps (record the
intent, then UpdateAlias), and a second invocation acting on the same release between them can
replace the intent. This pins the interleaving down on moto, so a change that makes the
release manager safe under concurrency shows up here, and the reservation can then be revisited."""

from __future__ import annotations

import contextlib

import boto3

from configpipe.bus import ConfigBus
from configpipe.release.alias import LambdaAliases
from configpipe.release.health import AlarmHealth
from configpipe.release.model import AliasTarget
from configpipe.release.service import ReleaseService
from configpipe.release.store import ReleaseStore
from configpipe.release.version_metrics import VersionMetrics
from tests.integration.release.conftest import BUS, REGION, REGISTRY, TABLE, TEAM, Env, control, request


def test_an_abort_interleaved_with_a_tick_leaves_the_alias_shifted(env: Env) -> None:
    # Given a linear release at 10 %
    env.service().handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    assert env.alias().percent_on("2") == 10.0

    # And a second invocation (a person's abort, which rolls the alias back) that gets as far
    # as recording its own intent (restore) while the tick is between recording "20 %" and
    # calling UpdateAlias; it stops there (`faults`), as a concurrent invocation would still be
    # about to write.
    interleaved: list[str] = []

    def tick_checkpoint(name: str) -> None:
        if name == "intent_recorded" and not interleaved:
            interleaved.append(name)
            env.faults["intent_recorded"] = 1
            with contextlib.suppress(RuntimeError):
                env.service().handle_control(control("abort"), TEAM)

    tick = ReleaseService(
        store=ReleaseStore(TABLE, env.ddb),
        aliases=LambdaAliases(env.lam),
        health=AlarmHealth(env.cw),
        hooks=env.hooks,
        bus=ConfigBus(BUS, boto3.client("events", region_name=REGION)),
        registry=REGISTRY,
        clock=env.clock,
        checkpoint=tick_checkpoint,
        version_metrics=VersionMetrics(env.cw),
    )

    # When the tick runs one minute later (its UpdateAlias lands: the revision it read is still
    # current; its save after it finds the abort's and leaves the release to it)
    env.clock.at(1)
    tick.reconcile("rel-1")
    assert env.alias().percent_on("2") == 20.0
    # and the abort's invocation goes on (its UpdateAlias now fails on the revision; it decides
    # again, as the next tick would)
    env.service().reconcile("rel-1")

    # Then the rollback the person asked for did not happen: the tick's write landed, and the
    # release took its own write for somebody else's change and left the alias as it found it
    # (run one at a time, the abort restores version 1)
    assert interleaved
    state, _ = tick.status("rel-1")
    assert state is not None and state.outcome is not None
    assert (state.status, state.outcome.code) == ("ABORTED", "CONCURRENT_ALIAS_CHANGE")
    assert env.alias().percent_on("2") == 20.0


def test_the_same_abort_and_tick_one_after_the_other_restore_the_alias(env: Env) -> None:
    # The contrast: the order reserved concurrency 1 enforces
    service = env.service()
    service.handle_request(request(strategy="Linear10PercentEvery1Minute"), TEAM)
    env.clock.at(1)
    service.handle_control(control("abort"), TEAM)
    service.reconcile("rel-1")

    state, _ = service.status("rel-1")
    assert state is not None and state.outcome is not None
    assert (state.status, state.outcome.code) == ("ABORTED", "MANUAL_ABORT")
    assert env.alias() == AliasTarget.of("1")
