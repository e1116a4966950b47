"""Exit codes scripts can trust, and the one place where every failure becomes one of them.

A user mistake or an AWS problem never ends in a traceback: it becomes a :class:`CliError`
with a message, a hint that says what to do next, and an exit code. Unexpected bugs still
raise (with locals hidden, see ``main.app``), because hiding those would hide defects.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from pydantic import ValidationError

from configpipe.errors import EventPublishError


class ExitCode(IntEnum):
    OK = 0
    #: Usage error or invalid input; nothing was sent.
    INVALID = 2
    #: The pipeline rejected the change (incl. VERSION_CONFLICT), or a dry run predicts it would.
    REJECTED = 3
    #: Published, but no outcome before ``--timeout``.
    TIMEOUT = 4
    #: AWS could not be reached or refused the call (credentials, not found, throttled).
    AWS = 5


class CliError(Exception):
    """A failure the user can act on. ``code`` is a stable machine-readable name."""

    def __init__(
        self,
        message: str,
        exit_code: ExitCode,
        code: str,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.hint = hint
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        body.update(self.details)
        return {"error": body, "exitCode": int(self.exit_code)}


def invalid(message: str, code: str = "INVALID_INPUT", hint: str | None = None) -> CliError:
    return CliError(message, ExitCode.INVALID, code, hint)


_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "MissingAuthenticationToken",
    "IncompleteSignature",
}
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "KMSAccessDeniedException"}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
}
_CREDENTIALS_HINT = (
    "Check your AWS credentials: pass --profile (and run `aws sso login --profile <name>` if it "
    "uses SSO), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; `aws sts get-caller-identity` "
    "shows who you are."
)


def publish_failed(error: EventPublishError, retry: str) -> CliError:
    """The bus refused an entry; ``retry`` says which id makes a retry safe."""
    codes = sorted({str(e.get("ErrorCode")) for e in error.failed_entries})
    return CliError(
        f"the bus refused the event: {', '.join(codes)}",
        ExitCode.AWS,
        "PUBLISH_FAILED",
        f"{retry} AccessDenied usually means your --source is not allowed to publish to the bus.",
    )


def translate(error: BaseException, *, resources: dict[str, str] | None = None) -> CliError | None:
    """The :class:`CliError` for a known failure, or None for a bug (which must surface)."""
    names = resources or {}
    if isinstance(error, CliError):
        return error
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors(include_input=False, include_url=False)
        )
        return invalid(f"invalid change: {problems}", code="INVALID_CHANGE")
    if isinstance(error, ProfileNotFound):
        return CliError(
            f"AWS profile not found: {error.kwargs.get('profile', '')}",
            ExitCode.AWS,
            "PROFILE_NOT_FOUND",
            "List your profiles with `aws configure list-profiles`, or create one with "
            "`aws configure --profile <name>`.",
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return CliError("no usable AWS credentials found", ExitCode.AWS, "NO_CREDENTIALS", _CREDENTIALS_HINT)
    if isinstance(error, SSOTokenLoadError | UnauthorizedSSOTokenError | TokenRetrievalError):
        return CliError(
            "the SSO session is missing or expired",
            ExitCode.AWS,
            "SSO_LOGIN_REQUIRED",
            "Run `aws sso login --profile <name>` and try again.",
        )
    if isinstance(error, NoRegionError):
        return CliError(
            "no AWS region configured",
            ExitCode.AWS,
            "NO_REGION",
            "Pass --region (e.g. --region eu-west-1) or set AWS_REGION.",
        )
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return CliError(
            f"could not reach AWS: {error}",
            ExitCode.AWS,
            "ENDPOINT_UNREACHABLE",
            "Check your network, --region and --endpoint-url (is the local emulator running?).",
        )
    if isinstance(error, EventPublishError):
        return publish_failed(
            error, "Retry with the same --change-id (safe: the pipeline ignores duplicates)."
        )
    if isinstance(error, ClientError):
        return _client_error(error, names)
    if isinstance(error, BotoCoreError):
        return CliError(
            f"AWS SDK error: {error}",
            ExitCode.AWS,
            "AWS_ERROR",
            "Retry; if it persists, run with a "
            "different --region/--profile or check the AWS Health dashboard.",
        )
    return None


def _not_found_hint(names: dict[str, str]) -> str:
    """Without a stack the CLI falls back to default names, which a deployed stack does not use
    (CloudFormation generates the table's): the likely fix is --stack, so say it first."""
    if not names.get("stack"):
        return (
            "No --stack given, so the CLI used its default names: pass --stack ConfigPipe (or set "
            "CONFIGPIPE_STACK) to take the names from the deployed stack's outputs, or name the "
            "resource with its own option. Check --region/--profile too."
        )
    return "Check the name and --region/--profile: is the pipeline deployed in this account and region?"


def _client_error(error: ClientError, names: dict[str, str]) -> CliError:
    code = str(error.response.get("Error", {}).get("Code", "Unknown"))
    message = str(error.response.get("Error", {}).get("Message", ""))
    operation = error.operation_name
    if code in _CREDENTIAL_CODES:
        return CliError(
            f"AWS did not accept your credentials ({code})",
            ExitCode.AWS,
            "BAD_CREDENTIALS",
            _CREDENTIALS_HINT,
        )
    if code in _ACCESS_CODES:
        return CliError(
            f"access denied for {operation}: {message}",
            ExitCode.AWS,
            "ACCESS_DENIED",
            "Your identity lacks a permission for this command; ask the platform team for the "
            "configpipe publisher/reader policy, or use another --profile.",
        )
    if code in _THROTTLE_CODES:
        return CliError(
            f"AWS throttled {operation} even after retries ({code})",
            ExitCode.AWS,
            "THROTTLED",
            "Wait a few seconds and retry; writes are safe to retry with the same --change-id.",
        )
    if operation == "DescribeStacks" and code == "ValidationError":
        return CliError(
            f"stack {names.get('stack', '')!r} not found: {message}",
            ExitCode.AWS,
            "STACK_NOT_FOUND",
            "Check --stack (CONFIGPIPE_STACK), --region and --profile; `aws cloudformation list-stacks` "
            "shows the stacks in this account and region.",
        )
    if code in {"ResourceNotFoundException", "NotFoundException"}:
        where = {
            "GetItem": f"change log table {names.get('table', '')!r} (--table / CONFIGPIPE_TABLE)",
            "Query": f"change log table {names.get('table', '')!r} (--table / CONFIGPIPE_TABLE)",
            "PutEvents": f"event bus {names.get('bus', '')!r} (--bus / CONFIGPIPE_BUS)",
            "PutRule": f"event bus {names.get('bus', '')!r} (--bus / CONFIGPIPE_BUS)",
            "Encrypt": f"KMS key {names.get('secrets_key', '')!r} (--secrets-key / CONFIGPIPE_SECRETS_KEY)",
        }.get(operation, "a resource")
        return CliError(
            f"{where} not found: {message}", ExitCode.AWS, "RESOURCE_NOT_FOUND", _not_found_hint(names)
        )
    return CliError(
        f"AWS error in {operation}: {code}: {message}",
        ExitCode.AWS,
        "AWS_ERROR",
        "Retry; if it persists, check the name, --region and --profile.",
    )
