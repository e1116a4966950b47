"""Pre-/post-traffic hooks behind a small port.

A hook is one of the service's registered functions. It is invoked synchronously with a
:class:`HookRequest` and passes only if it returns ``{"status": "Succeeded"}`` within the
release's hook timeout; an error, any other answer or a timeout fails it (and rolls the
release back). A crash after a hook ran but before its result was recorded re-runs it on the
next reconcile, so hooks must be idempotent (as CodeDeploy's lifecycle hooks must be).

Tests inject a fake :class:`HookRunner`: it stands for the service team's function, which
moto cannot execute without Docker.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from configpipe.release.contracts import HookPhase

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class HookRequest(BaseModel):
    """The payload a hook function receives."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    release_id: str
    phase: HookPhase
    function: str
    alias: str
    target_version: str
    previous_version: str
    percent: float


class HookVerdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class HookResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    verdict: HookVerdict
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict is HookVerdict.PASSED


class HookRunner(Protocol):
    def run(self, function: str, request: HookRequest, timeout_seconds: int) -> HookResult: ...


class LambdaHookRunner:
    """Invokes the hook function with ``RequestResponse``. The client is built per timeout with
    botocore retries off: a timed-out hook must fail once, not be invoked three times."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        self._client = client

    def _client_for(self, timeout_seconds: int) -> LambdaClient:
        if self._client is not None:
            return self._client
        config = Config(
            read_timeout=timeout_seconds, connect_timeout=5, retries={"max_attempts": 1, "mode": "standard"}
        )
        return boto3.client("lambda", config=config)

    def run(self, function: str, request: HookRequest, timeout_seconds: int) -> HookResult:
        payload = request.model_dump_json(by_alias=True).encode("utf-8")
        try:
            response = self._client_for(timeout_seconds).invoke(
                FunctionName=function, InvocationType="RequestResponse", Payload=payload
            )
        except (ReadTimeoutError, ConnectTimeoutError) as e:
            return HookResult(
                verdict=HookVerdict.TIMED_OUT, message=f"no answer within {timeout_seconds}s: {e}"
            )
        except ClientError as e:
            return HookResult(verdict=HookVerdict.FAILED, message=f"invoke failed: {e}")
        body = response["Payload"].read().decode("utf-8", errors="replace")
        if response.get("FunctionError"):
            verdict = HookVerdict.TIMED_OUT if "timed out" in body.lower() else HookVerdict.FAILED
            return HookResult(verdict=verdict, message=body[:500])
        return interpret_answer(body)


def interpret_answer(body: str) -> HookResult:
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and str(answer.get("status", "")).lower() == "succeeded":
        return HookResult(verdict=HookVerdict.PASSED, message=str(answer.get("message", "")))
    return HookResult(
        verdict=HookVerdict.FAILED, message=f'expected {{"status": "Succeeded"}}, got {body[:300]}'
    )
