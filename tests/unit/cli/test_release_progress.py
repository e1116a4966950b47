"""When `release start --wait` calls a release started: it exists for this request AND has taken
its first step. The release function creates the release, then shifts the alias — two writes —
and a read between them must not report a canary at 0 % (seen under load)."""

from __future__ import annotations

from configpipe.release.contracts import ControlAction, ReleaseStatus
from configpipe.release.model import AliasTarget, target_for
from configpipe.release.strategies import parse_strategy
from configpipe_tools.cli.release_progress import reflects, started
from tests.unit.release.test_engine import state


def test_a_canary_created_but_not_yet_shifted_is_not_started_yet():
    created = state(strategy=parse_strategy("Canary10Percent5Minutes"), applied=AliasTarget.of("1"))
    shifted = state(strategy=parse_strategy("Canary10Percent5Minutes"), applied=target_for(10.0, "1", "2"))

    assert started(created, "h") is None
    assert started(shifted, "h") == shifted


def test_a_strategy_whose_first_step_is_0_percent_is_started_at_once():
    created = state(
        strategy=parse_strategy("AppConfig.Linear50PercentEvery30Seconds"), applied=AliasTarget.of("1")
    )

    assert started(created, "h") == created


def test_another_requests_release_or_one_waiting_for_its_hook_or_ended():
    assert started(state(), "other") is None
    assert started(None, "h") is None
    for status in (ReleaseStatus.PRE_TRAFFIC, ReleaseStatus.ROLLING_BACK, ReleaseStatus.ROLLED_BACK):
        waiting = state(status=status, strategy=parse_strategy("Canary10Percent5Minutes"))
        assert started(waiting, "h") == waiting


def test_promote_has_taken_effect_when_the_release_ends_or_only_its_post_traffic_hook_is_left():
    promoted = reflects(ControlAction.PROMOTE)

    assert not promoted(state(promoted=True, status=ReleaseStatus.BAKING))  # the next write completes it
    assert promoted(state(promoted=True, status=ReleaseStatus.POST_TRAFFIC))
    assert promoted(state(status=ReleaseStatus.COMPLETED))
