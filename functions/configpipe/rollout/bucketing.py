"""Who reads the candidate value during a rollout: pure, deterministic, no I/O.

During a rollout a key has a stable version, a candidate version, a weight (percent, from the
strategy's timeline) and optional targets. A reader asks for the value *for a subject* (tenant
id, user id, request key…):

* a subject listed in ``targets`` reads the candidate whatever its bucket (gray release by tag);
* otherwise it reads the candidate when ``bucket(...) < round(weight_percent * 100)``.

``bucket`` is SHA-256 over an unambiguous encoding of (service, environment, key, candidate
version, subject): a fixed domain tag, then each field as UTF-8 prefixed by its byte length
(8 bytes, big-endian), so no two different tuples encode alike (``("a:b", "c")`` vs
``("a", "b:c")``). The first 8 bytes of the digest, read as an unsigned integer h in
[0, 2^64), are scaled to [0, 10000) as ``(h * 10000) >> 64`` — range scaling, not ``h % 10000``,
so every bucket gets either floor or ceil of 2^64/10000 hash values (relative bias below
10^-15; with modulo it would be the same order, but scaling keeps it obviously uniform and
order-preserving).

Properties (tested in tests/unit/rollout/test_bucketing.py, measured by
scripts/rollout_stats.py):

* **uniform** — at weight w, a large population lands within sampling noise of w
  (10,000 subjects: ±1 point);
* **monotone** — the bucket does not depend on the weight, so a subject that reads the
  candidate at weight w still reads it at every w' ≥ w (by construction);
* **independent across keys** — the key is hashed, so the subjects reading the candidate of key
  A and of key B overlap ≈ wA·wB, and the same tenants are not always the guinea pigs;
* **reshuffled per candidate** — the candidate version is hashed, so the next candidate of the
  same key starts with an independent set of subjects.

Readers that pass no subject use :func:`execution_environment_subject`: a random id made once
per process (per Lambda execution environment), like AppConfig's per-client rollout.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection

BUCKETS = 10_000
_DOMAIN = b"configpipe.rollout.bucket.v1"
_EXECUTION_ENVIRONMENT_SUBJECT = f"env:{uuid.uuid4()}"


def _encode(*fields: str) -> bytes:
    out = bytearray(_DOMAIN)
    for field in fields:
        data = field.encode("utf-8")
        out += len(data).to_bytes(8, "big")
        out += data
    return bytes(out)


def bucket(service: str, environment: str, key: str, candidate_version: str | int, subject: str) -> int:
    """The subject's bucket in [0, 10000) for this key's candidate (deterministic)."""
    digest = hashlib.sha256(_encode(service, environment, key, str(candidate_version), subject)).digest()
    return (int.from_bytes(digest[:8], "big") * BUCKETS) >> 64


def threshold(weight_percent: float) -> int:
    """Buckets below this read the candidate: ``round(weight_percent * 100)``, clamped to [0, 10000]."""
    return min(BUCKETS, max(0, round(weight_percent * 100)))


def receives_candidate(
    *,
    service: str,
    environment: str,
    key: str,
    candidate_version: str | int,
    subject: str,
    weight_percent: float,
    targets: Collection[str] = (),
) -> bool:
    """Whether ``subject`` reads the candidate value at ``weight_percent`` (0-100)."""
    if subject in targets:
        return True
    return bucket(service, environment, key, candidate_version, subject) < threshold(weight_percent)


def execution_environment_subject() -> str:
    """The subject of readers that pass none: random, made once per process (execution environment)."""
    return _EXECUTION_ENVIRONMENT_SUBJECT
