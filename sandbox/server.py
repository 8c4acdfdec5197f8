"""A real HTTP server on loopback that behaves like LiveAll, plus a control API for tests."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

from sandbox.loopback import LoopbackServer
from sandbox.model import GARBAGE_WRONG_SHAPE, Endpoint, Fault
from sandbox.rules import Rejection, error_message
from sandbox.state import DEFAULT_DELIVERY_STEP_SECONDS, DataShape, SandboxState

AnswerT = TypeVar("AnswerT")

JSON_TYPE: Final = "application/json; charset=utf-8"
TEXT_TYPE: Final = "text/plain; charset=utf-8"
HTML_TYPE: Final = "text/html; charset=utf-8"
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_DRAIN_BYTES: Final = 16 * MAX_BODY_BYTES
# An idle keep-alive connection is closed after this long, so it cannot pin a thread.
IDLE_TIMEOUT_SECONDS: Final = 30.0
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
# A stopping server notices the shutdown request within this interval.
POLL_INTERVAL_SECONDS: Final = 0.02

SEND_IM: Final = "/SendIM"
# The form-encoded endpoints, which answer plain text.
TEXT_ENDPOINTS: Final[dict[str, Endpoint]] = {
    "/GetSMSStatus": "GetSMSStatus",
    "/GetSMSHistory": "GetSMSHistory",
    "/GetAccountBalance": "GetAccountBalance",
}
PROVIDER_PATHS: Final = frozenset({SEND_IM, *TEXT_ENDPOINTS})
CONTROL_GET_PATHS: Final = frozenset(
    {"/_sandbox/ledger", "/_sandbox/messages", "/_sandbox/requests", "/_sandbox/health"}
)
CONTROL_POST_PATHS: Final = frozenset(
    {"/_sandbox/reset", "/_sandbox/faults", "/_sandbox/fault-rate", "/_sandbox/config", "/_sandbox/status"}
)

ERROR_PAGE: Final = (
    "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n"
    "<body><h1>Service Unavailable</h1>\n"
    "<p>The server is temporarily unable to service your request. Please try again later.</p>\n"
    "</body></html>\n"
)
# What an ASP.NET Web API backend answers on an unhandled exception: JSON, HTTP 200
# behind some proxies, and nothing like the documented envelope.
WRONG_SHAPE_BODY: Final[dict[str, str]] = {"Message": "An error has occurred."}
# Cut in half by the garbage fault when there is no real answer to cut.
PLACEHOLDER_ANSWER: Final[dict[str, Any]] = {
    "success": True,
    "OperationErrors": None,
    "SubmissionID": 0,
    "data": [],
}
# Cut in half by the garbage fault when a text endpoint's real answer is empty.
PLACEHOLDER_TEXT: Final = f"Error: 8 - {error_message(8)}"


def _decode_json(raw: bytes) -> Any:
    """The parsed body, or its text when it is not JSON (still worth keeping in `requests`)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", errors="replace")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _form_fields(raw: bytes) -> dict[str, str]:
    """A form-encoded body's fields, the first value of each."""
    form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in form.items()}


class _Handler(BaseHTTPRequestHandler):
    """One connection: the provider's endpoints and the sandbox's control API."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's connection pool expects
    server_version = "LiveAllSandbox/1.0"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; with Nagle on, the client's delayed
    # ACK would add about 40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: request lines are noise in test output."""

    def version_string(self) -> str:
        """The Server header, without the Python version http.server appends."""
        return self.server_version

    # ----- plumbing ----------------------------------------------------------------

    def _answer(
        self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer_json(self, value: Any, status: int = 200) -> None:
        self._answer(status, _json_bytes(value), JSON_TYPE)

    def _answer_text(self, text: str, status: int = 200) -> None:
        self._answer(status, text.encode("utf-8"), TEXT_TYPE)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering why it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Rare for JSON clients; refusing keeps the connection handling simple.
            self.close_connection = True
            self._answer_text("Length Required\n", HTTPStatus.LENGTH_REQUIRED)
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            # The stream cannot be trusted to hold a next request.
            self.close_connection = True
            self._answer_text("Bad Content-Length\n", HTTPStatus.BAD_REQUEST)
            return None
        if length > MAX_BODY_BYTES:
            # Drain what is reasonable: closing with unread data makes the client see a
            # connection reset instead of this answer.
            remaining = length if length <= MAX_DRAIN_BYTES else 0
            self.close_connection = remaining == 0
            while remaining > 0 and (chunk := self.rfile.read(min(65536, remaining))):
                remaining -= len(chunk)
            self._answer_text("Payload Too Large\n", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None
        return self.rfile.read(length) if length else b""

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _method_not_allowed(self, allowed: str) -> None:
        body = b"Method Not Allowed\n"
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED, body, TEXT_TYPE, [("Allow", allowed)])

    def _not_found(self) -> None:
        self._answer_text("Not Found\n", HTTPStatus.NOT_FOUND)

    def _drop(self) -> None:
        # No response at all: once the handler returns, the server closes the socket.
        self.close_connection = True

    def _client_still_connected(self) -> bool:
        """False once the client has closed its end (e.g. after its read timeout)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return True
            return bool(self.connection.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    # ----- routing -----------------------------------------------------------------

    def do_GET(self) -> None:
        """Control API reads; the provider's endpoints are POST only."""
        if self._read_body() is None:
            return
        path = self._path()
        sandbox = self.server.sandbox
        if path == "/_sandbox/ledger":
            self._answer_json(sandbox.ledger_json())
        elif path == "/_sandbox/messages":
            self._answer_json(sandbox.messages_json())
        elif path == "/_sandbox/requests":
            self._answer_json(sandbox.requests)
        elif path == "/_sandbox/health":
            self._answer_json({"ok": True})
        elif path in PROVIDER_PATHS or path in CONTROL_POST_PATHS:
            self._method_not_allowed("POST")
        else:
            self._not_found()

    def do_POST(self) -> None:
        """The provider's endpoints and the control API's changes."""
        raw = self._read_body()
        if raw is None:
            return
        path = self._path()
        if path == SEND_IM:
            self._send_im(raw)
        elif path in TEXT_ENDPOINTS:
            self._text_endpoint(TEXT_ENDPOINTS[path], _form_fields(raw))
        elif path in CONTROL_POST_PATHS:
            self._control(path, raw)
        elif path in CONTROL_GET_PATHS:
            self._method_not_allowed("GET")
        else:
            self._not_found()

    # ----- the provider ------------------------------------------------------------

    def _send_im(self, raw: bytes) -> None:
        sandbox = self.server.sandbox
        payload = _decode_json(raw)
        fault = sandbox.record_request(payload)
        if fault is None:
            response = sandbox.process_send(payload)
            sandbox.pause(sandbox.latency)
            self._answer_json(response)
            return
        if fault.kind == "slow":
            slow_response = self._slowly(fault, lambda: sandbox.process_send(payload))
            if slow_response is not None:
                sandbox.pause(sandbox.latency)
                self._answer_json(slow_response)
            return
        # Before processing the provider did nothing; after it, the message is sent.
        processed = sandbox.process_send(payload) if fault.after_processing else None
        sandbox.pause(sandbox.latency)
        self._misbehave(fault, processed)

    def _slowly(self, fault: Fault, answer: Callable[[], AnswerT]) -> AnswerT | None:
        """A slow fault: the endpoint's work, then the stall (after processing), or the stall first.

        A provider that stalls before doing anything does nothing for a client that has given
        up meanwhile (None, the connection dropped); a patient client gets the normal answer.
        """
        sandbox = self.server.sandbox
        if fault.after_processing:
            made = answer()
            sandbox.pause(fault.delay)
            return made
        sandbox.pause(fault.delay)
        if not self._client_still_connected():
            self._drop()
            return None
        return answer()

    def _misbehave(self, fault: Fault, processed: dict[str, Any] | None) -> None:
        if fault.kind == "error_code":
            self._answer_json(Rejection(fault.code).to_response())
        elif fault.kind == "empty":
            self._answer(HTTPStatus.OK, b"", JSON_TYPE)
        elif fault.kind == "garbage" and fault.code != GARBAGE_WRONG_SHAPE:
            whole = _json_bytes(processed if processed is not None else PLACEHOLDER_ANSWER)
            self._answer(HTTPStatus.OK, whole[: len(whole) // 2], JSON_TYPE)
        else:
            self._misbehave_alike(fault)

    def _misbehave_alike(self, fault: Fault) -> None:
        """The faults every endpoint answers the same way: HTTP errors, HTML, wrong shape, drops."""
        if fault.kind == "http_status":
            headers = [("Retry-After", "2")] if fault.status in RETRY_AFTER_STATUSES else []
            body = f"{fault.status} {_reason(fault.status)}\n".encode()
            self._answer(fault.status, body, TEXT_TYPE, headers)
        elif fault.kind == "html":
            self._answer(HTTPStatus.OK, ERROR_PAGE.encode("utf-8"), HTML_TYPE)
        elif fault.kind == "garbage":  # GARBAGE_WRONG_SHAPE
            self._answer(HTTPStatus.OK, _json_bytes(WRONG_SHAPE_BODY), JSON_TYPE)
        else:  # "drop"
            self._drop()

    def _text_answer(self, endpoint: Endpoint, fields: dict[str, str]) -> str:
        sandbox = self.server.sandbox
        token = fields.get("apitoken")
        if endpoint == "GetSMSStatus":
            return sandbox.status_report(token, fields.get("smsids"))
        if endpoint == "GetSMSHistory":
            return sandbox.history_report(token, fields)
        return sandbox.balance_report(token, fields.get("countryprefix"))

    def _text_endpoint(self, endpoint: Endpoint, fields: dict[str, str]) -> None:
        """GetSMSStatus, GetSMSHistory or GetAccountBalance, with that endpoint's faults."""
        sandbox = self.server.sandbox
        fault = sandbox.pick_fault(endpoint)
        if fault is not None and fault.kind == "slow":
            slow_answer = self._slowly(fault, lambda: self._text_answer(endpoint, fields))
            if slow_answer is None:
                return
            answer = slow_answer
        else:
            # These endpoints only read, so computing the answer before the fault is harmless;
            # the garbage fault needs it to cut in half.
            answer = self._text_answer(endpoint, fields)
        sandbox.pause(sandbox.latency)
        if fault is None or fault.kind == "slow":
            self._answer_text(answer)
        elif fault.kind == "error_code":
            # GetSMSHistory reports the provider's own errors as HTTP 500; the others in a 200.
            status = HTTPStatus.INTERNAL_SERVER_ERROR if endpoint == "GetSMSHistory" else HTTPStatus.OK
            self._answer_text(f"Error: {fault.code} - {error_message(fault.code)}", status)
        elif fault.kind == "empty":
            self._answer(HTTPStatus.OK, b"", TEXT_TYPE)
        elif fault.kind == "garbage" and fault.code != GARBAGE_WRONG_SHAPE:
            whole = (answer or PLACEHOLDER_TEXT).encode("utf-8")
            self._answer(HTTPStatus.OK, whole[: len(whole) // 2], TEXT_TYPE)
        else:
            self._misbehave_alike(fault)

    # ----- control API -------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        sandbox = self.server.sandbox
        try:
            body = json.loads(raw) if raw.strip() else {}
            if path == "/_sandbox/reset":
                sandbox.reset()
            elif path == "/_sandbox/faults":
                items = body if isinstance(body, list) else [body]
                sandbox.add_fault(*(Fault.from_json(item) for item in items))
            elif path == "/_sandbox/fault-rate":
                sandbox.set_fault_rate_from_json(body)
            elif path == "/_sandbox/status":
                sandbox.force_status_from_json(body)
            else:
                if not isinstance(body, dict):
                    raise TypeError("config must be a JSON object")
                sandbox.configure(body)
        except (ValueError, TypeError) as exc:
            # The messages name fields and rules, never the values (tokens among them).
            self._answer_json({"ok": False, "error": str(exc)}, HTTPStatus.BAD_REQUEST)
            return
        self._answer_json({"ok": True})


class _Server(LoopbackServer):
    """The sandbox's server: its state, and daemon request threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxState) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class ProviderSandbox(SandboxState):
    """A fake LiveAll on loopback, served from a daemon thread.

    Use as `with ProviderSandbox(tokens={"tok"}) as sb: ...` or start()/stop().
    """

    def __init__(
        self,
        tokens: Iterable[str],
        approved_senders: Iterable[str] | None = None,
        data_shape: DataShape = "objects",
        latency: float = 0.0,
        balance: float = 100.0,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        delivery_step_seconds: float = DEFAULT_DELIVERY_STEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(tokens, approved_senders, data_shape, latency, balance, delivery_step_seconds, clock)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ProviderSandbox:
        """Bind and serve in a daemon thread; returns at once. Starting twice is harmless."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(self._address, self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name="provider-sandbox",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and open connections, join the threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        # Cut connections before waking sleeping handlers (latency, slow faults), so a
        # stalled client sees the connection close rather than a late answer.
        server.close_connections()
        self._stopping.set()
        server.server_close()  # also joins the handler threads
        thread.join()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """Base URL ending in "/": SendIM is at url + "SendIM"."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_name, self._server.server_port
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def __enter__(self) -> ProviderSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
