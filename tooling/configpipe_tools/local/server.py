"""The emulator endpoint: the moto server's WSGI application, plus the Lambda ``Invoke`` API.

One port serves every AWS API, so every client needs only ``--endpoint-url``. The emulator can
create Lambda functions but cannot run them without Docker, so ``POST
/2015-03-31/functions/{name}/invocations`` for a function of the stack is answered here (by
:class:`LambdaInvokeApi`) and every other request, including all other Lambda API calls
(aliases, versions, configuration), goes to moto unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from configpipe_tools.local.consistency import SerialisedDynamoDB

if TYPE_CHECKING:
    from configpipe_tools.local.provision import LocalStack
    from configpipe_tools.local.sandbox import FunctionRuntime

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
#: Lambda's payload limits: 256 KB for asynchronous, 6 MB for synchronous invocations
_MAX_EVENT_PAYLOAD = 256 * 1024
_MAX_SYNC_PAYLOAD = 6 * 1024 * 1024

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class PortInUseError(Exception):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is already in use (another emulator or `configpipe local up`?). "
            "Stop it, or choose another port with --port N (--port 0 picks a free one)."
        )
        self.port = port


class LambdaInvokeApi:
    """``Invoke`` for the stack's functions: ``Event`` is queued on the function's async
    invocation queue (202); ``RequestResponse`` runs now and answers as Lambda does."""

    def __init__(
        self, stack: LocalStack, runtimes: dict[str, FunctionRuntime], enqueue: Callable[[str, bytes], None]
    ) -> None:
        self._stack = stack
        self._runtimes = runtimes
        self._enqueue = enqueue

    def handles(self, environ: dict[str, Any]) -> str | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        match = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        spec = self._stack.function_by_arn_or_name(unquote(match["name"]))
        return spec.name if spec else None

    def __call__(self, function: str, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        payload = payload or b"{}"
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        request_id = str(uuid.uuid4())
        try:
            json.loads(payload)
        except ValueError:
            return _error(
                start_response,
                400,
                "InvalidRequestContentException",
                "Could not parse request body into json",
            )
        if invocation_type == "DryRun":
            return _respond(start_response, 204, b"", {"x-amzn-RequestId": request_id})
        if invocation_type == "Event":
            if len(payload) > _MAX_EVENT_PAYLOAD:
                return _error(
                    start_response,
                    413,
                    "RequestTooLargeException",
                    "Request must be smaller than 262144 bytes for the InvokeAsync operation",
                )
            self._enqueue(function, payload)
            return _respond(start_response, 202, b"", {"x-amzn-RequestId": request_id})
        if len(payload) > _MAX_SYNC_PAYLOAD:
            return _error(
                start_response,
                413,
                "RequestTooLargeException",
                "Request must be smaller than 6291456 bytes for the Invoke operation",
            )
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", ["$LATEST"])[0]
        spec = self._stack.functions[function]
        invoked_arn = spec.arn if qualifier == "$LATEST" else f"{spec.arn}:{qualifier}"
        result = self._runtimes[function].invoke(payload, invoked_arn=invoked_arn)
        headers = {"x-amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if result.ok:
            return _respond(start_response, 200, result.payload, headers)
        headers["X-Amz-Function-Error"] = "Unhandled"
        return _respond(start_response, 200, result.error_payload(), headers)


def _respond(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    reason = {
        200: "OK",
        202: "Accepted",
        204: "No Content",
        400: "Bad Request",
        404: "Not Found",
        413: "Request Entity Too Large",
    }
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers.items()],
    )
    return [body]


def _error(start_response: StartResponse, status: int, code: str, message: str) -> list[bytes]:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return _respond(start_response, status, body, {"x-amzn-ErrorType": code})


class EmulatorApp:
    """WSGI: the stack's ``Invoke`` calls to :class:`LambdaInvokeApi`, everything else to moto."""

    def __init__(self) -> None:
        self.moto: WsgiApp = DomainDispatcherApplication(create_backend_app)
        self.invoke_api: LambdaInvokeApi | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        api = self.invoke_api
        if api is not None:
            function = api.handles(environ)
            if function is not None:
                return api(function, environ, start_response)
        return self.moto(environ, start_response)


class _QuietRequestHandler(MotoRequestHandler):
    """No access log line per request: the terminal belongs to the person using the pipeline."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class EmulatorServer:
    """The moto server (threaded werkzeug, as ``ThreadedMotoServer``) on ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.app = EmulatorApp()
        self._consistency = SerialisedDynamoDB()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        # werkzeug prints its own "Address already in use / Port N is in use by another program"
        # and exits when it cannot bind: keep that off the terminal (our PortInUseError says it
        # with the options to use), and show its words only for another failure.
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                self._server = make_server(
                    self.host,
                    self.requested_port,
                    self.app,
                    threaded=True,
                    request_handler=_QuietRequestHandler,
                )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(self.host, self.requested_port) from None
            raise
        except SystemExit:
            if "in use" in said.getvalue():
                raise PortInUseError(self.host, self.requested_port) from None
            raise OSError(
                f"cannot listen on {self.host}:{self.requested_port}: {said.getvalue().strip()}"
            ) from None
        self._consistency.install()
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._consistency.remove()
