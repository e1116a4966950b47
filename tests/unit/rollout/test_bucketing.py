"""Who reads the candidate: uniform, monotone, independent across keys, reshuffled per candidate,
targets first. Subject lists are generated from fixed seeds so every run sees the same numbers."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configpipe.rollout.bucketing import (
    BUCKETS,
    _encode,
    bucket,
    execution_environment_subject,
    receives_candidate,
    threshold,
)

N = 10_000


def subjects(seed: int, n: int = N) -> list[str]:
    rng = random.Random(seed)
    return [f"tenant-{rng.getrandbits(64):016x}" for _ in range(n)]


def share(key: str, candidate: str, weight: float, population: list[str]) -> float:
    hits = sum(
        receives_candidate(
            service="orders",
            environment="prod",
            key=key,
            candidate_version=candidate,
            subject=s,
            weight_percent=weight,
            targets=(),
        )
        for s in population
    )
    return 100.0 * hits / len(population)


def test_bucket_is_deterministic_and_in_range() -> None:
    b = bucket("orders", "prod", "timeout", "7", "tenant-1")
    assert b == bucket("orders", "prod", "timeout", "7", "tenant-1")
    assert b == bucket("orders", "prod", "timeout", 7, "tenant-1")  # a version is the same as text
    values = [bucket("s", "e", "k", "1", x) for x in subjects(1, 2000)]
    assert all(0 <= v < BUCKETS for v in values)


def test_encoding_is_unambiguous() -> None:
    assert _encode("a:b", "c") != _encode("a", "b:c")
    assert _encode("ab", "") != _encode("a", "b")
    assert _encode("", "ab") != _encode("a", "b")


@pytest.mark.parametrize("weight", [1, 5, 10, 25, 50, 90])
def test_uniform_within_one_point(weight: float) -> None:
    # The yardstick, on the population scripts/rollout_stats.py measures (seed 0).
    assert abs(share("timeout", "7", weight, subjects(0)) - weight) <= 1.0


@pytest.mark.parametrize("seed", [5, 11, 12, 13])
@pytest.mark.parametrize("weight", [1, 5, 10, 25, 50, 90])
def test_uniform_within_binomial_noise(weight: float, seed: int) -> None:
    # ±1 point is only ~2 standard deviations at w=50 for 10,000 subjects (sigma = 0.5 point), so
    # an honest test of any population bounds the error by the binomial noise: 4 sigma.
    sigma = (weight * (100 - weight) / N) ** 0.5
    assert abs(share("timeout", "7", weight, subjects(seed)) - weight) <= 4 * sigma


def test_bucket_histogram_is_flat() -> None:
    counts = [0] * 10
    for s in subjects(21):
        counts[bucket("orders", "prod", "timeout", "7", s) // 1000] += 1
    # 1000 expected per decile; chi-square with 9 dof, p = 0.001 critical value 27.9
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts)
    assert chi2 < 27.9, counts


@given(
    subject=st.text(max_size=40),
    key=st.text(min_size=1, max_size=20),
    candidate=st.integers(min_value=1, max_value=10**6),
    w1=st.floats(min_value=0, max_value=100),
    w2=st.floats(min_value=0, max_value=100),
)
def test_monotone_a_subject_keeps_the_candidate_as_the_weight_grows(
    subject: str, key: str, candidate: int, w1: float, w2: float
) -> None:
    low, high = sorted((w1, w2))

    def gets(w: float) -> bool:
        return receives_candidate(
            service="s",
            environment="e",
            key=key,
            candidate_version=candidate,
            subject=subject,
            weight_percent=w,
            targets=(),
        )

    assert not gets(low) or gets(high)


def test_monotone_over_a_whole_population_and_the_extremes() -> None:
    population = subjects(31, 2000)
    previous: set[str] = set()
    for weight in (0, 1, 5, 10, 25, 50, 90, 100):
        current = {
            s
            for s in population
            if receives_candidate(
                service="s",
                environment="e",
                key="k",
                candidate_version="3",
                subject=s,
                weight_percent=weight,
            )
        }
        assert previous <= current
        previous = current
    assert previous == set(population)  # 100 % is everybody
    assert threshold(0) == 0 and threshold(100) == BUCKETS and threshold(0.01) == 1


def test_targets_get_the_candidate_first_whatever_their_bucket() -> None:
    common = {"service": "s", "environment": "e", "key": "k", "candidate_version": "3"}
    assert receives_candidate(**common, subject="vip", weight_percent=0, targets={"vip"})
    assert not receives_candidate(**common, subject="other", weight_percent=0, targets={"vip"})
    assert receives_candidate(**common, subject="other", weight_percent=100, targets={"vip"})


def test_independent_across_keys() -> None:
    population = subjects(41)

    def chosen(key: str, weight: float) -> set[str]:
        return {
            s
            for s in population
            if receives_candidate(
                service="orders",
                environment="prod",
                key=key,
                candidate_version="7",
                subject=s,
                weight_percent=weight,
            )
        }

    a, b = chosen("timeout", 30), chosen("retries", 40)
    overlap = 100.0 * len(a & b) / len(population)
    assert abs(overlap - 30 * 40 / 100) <= 1.0  # ≈ wA·wB, not min(wA, wB)


def test_a_new_candidate_reshuffles_the_subjects() -> None:
    population = subjects(51)
    first = [bucket("orders", "prod", "timeout", "7", s) for s in population]
    second = [bucket("orders", "prod", "timeout", "8", s) for s in population]
    assert sum(x == y for x, y in zip(first, second, strict=True)) < 20  # ~1 expected
    both = sum(x < 5000 and y < 5000 for x, y in zip(first, second, strict=True))
    assert abs(100.0 * both / N - 25.0) <= 1.5  # independent halves, not the same half


def test_service_environment_and_subject_all_count() -> None:
    base = ("orders", "prod", "timeout", "7", "tenant-1")
    variants = [
        ("billing", *base[1:]),
        (base[0], "dev", *base[2:]),
        (*base[:2], "retries", *base[3:]),
        (*base[:4], "tenant-2"),
    ]
    assert all(bucket(*v) != bucket(*base) for v in variants)


def test_execution_environment_subject_is_random_per_process_and_stable_within() -> None:
    mine = execution_environment_subject()
    assert mine == execution_environment_subject()
    uuid.UUID(mine.removeprefix("env:"))
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from configpipe.rollout.bucketing import execution_environment_subject as f; print(f())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert other.startswith("env:") and other != mine
