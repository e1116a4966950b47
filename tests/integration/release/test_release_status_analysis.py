"""``configpipe release status`` shows the newest analysis verdict and its figures (issue 16), in
the JSON view and the Rich summary, from the state and history it already reads."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from configpipe_tools.cli.release_output import release_view, render_status
from tests.integration.release.conftest import TEAM, Env, request
from tests.integration.release.test_release_analysis import ANALYSIS, healthy_split


def _views(env: Env) -> tuple[dict[str, Any], str]:
    state, history = env.service().status("rel-1")
    assert state is not None
    view = release_view(state, history, {})
    buffer = io.StringIO()
    render_status(Console(file=buffer, width=200, color_system=None), view)
    return view, buffer.getvalue()


def test_a_failed_step_shows_its_verdict_and_figures(env: Env) -> None:
    service = env.service()
    service.handle_request(request(analysis=ANALYSIS), TEAM)
    healthy_split(env, range(5), candidate_errors=4)
    env.clock.at(5)
    service.reconcile_all()

    view, text = _views(env)

    assert view["status"] == "ROLLED_BACK"
    analysis = view["analysis"]
    assert analysis["verdict"] == "fail"
    assert analysis["stepPercent"] == 10
    assert analysis["candidateVersion"] == "2" and analysis["baselineVersion"] == "1"
    assert analysis["candidateInvocations"] == 200 and analysis["baselineInvocations"] == 1800
    error_rate = next(g for g in analysis["gates"] if g["gate"].startswith("errorRate"))
    assert error_rate["verdict"] == "fail"
    assert error_rate["candidate"] == 10.0
    assert "analysis" in text and "fail at 10%: v2 200 invocations, v1 1800" in text
    assert "errorRate" in text


def test_a_passed_step_shows_the_verdict_announced_when_it_was_left(env: Env) -> None:
    service = env.service()
    service.handle_request(request(analysis=ANALYSIS), TEAM)
    healthy_split(env, range(5))
    env.clock.at(5)
    service.reconcile_all()

    view, text = _views(env)

    assert view["status"] == "COMPLETED"
    assert view["analysis"]["verdict"] == "pass"
    assert view["analysis"]["stepPercent"] == 10
    assert "pass at 10%" in text


def test_a_release_without_analysis_has_none(env: Env) -> None:
    env.service().handle_request(request(), TEAM)
    view, text = _views(env)
    assert view["analysis"] is None
    assert "analysis" not in text.split("history")[0]
