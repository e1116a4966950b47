"""What ``up`` says it does for the template while it starts: the given file, the cache, or a synth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from configpipe_tools.local.runner import LocalPipeline, Options
from configpipe_tools.local.template import _STAMP, SYNTH_INPUTS, _inputs_digest, cached_template

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files the synth reads (the cache key's inputs)."""
    for name in SYNTH_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def _cache(checkout: Path, digest: str) -> Path:
    out = checkout / ".local" / "cdk.out"
    out.mkdir(parents=True)
    (out / "ConfigPipe.template.json").write_text("{}")
    (out / _STAMP).write_text(digest)
    return out


def _source(checkout: Path, **options: object) -> str:
    pipeline = LocalPipeline(Options(**options))  # type: ignore[arg-type]
    pipeline.repo = checkout  # the copy, not this checkout: its cache is the test's
    return pipeline.template_source()


def test_a_given_template_is_named_as_used_not_synthesised(checkout: Path) -> None:
    said = _source(checkout, template=Path("cdk.out"))

    assert said == "using the template cdk.out"


def test_a_current_cache_is_named_as_cached(checkout: Path) -> None:
    _cache(checkout, _inputs_digest(checkout))

    assert cached_template(checkout) == checkout / ".local" / "cdk.out" / "ConfigPipe.template.json"
    assert _source(checkout).startswith("using the cached template")
    assert _source(checkout, resynth=True).startswith("synthesising the stack")


def test_a_stale_or_missing_cache_is_synthesised(checkout: Path) -> None:
    assert _source(checkout).startswith("synthesising the stack")

    _cache(checkout, "an older digest")

    assert cached_template(checkout) is None
    assert _source(checkout).startswith("synthesising the stack")
