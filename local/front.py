"""The HTTP front: API Gateway's part of the local service.

Each request becomes a REST API proxy event for the API function, shaped like
events/api-post-im.json. Like the deployed REST API it serves exactly
POST /messages, GET /messages and GET /messages/{smsid}, the suppression list's
and the scheduled sends' routes (x-api-key required) and GET /openapi.json
(open, the function's document answered without invoking it, as the deployed
MOCK integration does); anything else gets API Gateway's own 403: an unknown
path, and any method the resource has none of. The stack defines no OPTIONS
(no CORS preflight), HEAD, PATCH or ANY method, so OPTIONS, HEAD, PATCH,
TRACE, CONNECT, a PUT or DELETE where none is routed, and any other method
token all get the 403 "Missing Authentication Token" problem. GET /docs is
local only: Swagger UI from the installed Powertools package, with no CDN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from aws_lambda_powertools.event_handler.openapi import swagger_ui

from gateway import names
from local.defaults import ACCOUNT_ID
from local.functions import FunctionHost
from sandbox.loopback import LoopbackServer

API_KEY_HEADER: Final = "x-api-key"
OPENAPI_PATH: Final = "/openapi.json"


@dataclass(frozen=True, slots=True)
class Route:
    """A method and resource of the deployed REST API (infra/components/api.py)."""

    method: str
    resource: str  # API Gateway's template: "/messages/{smsid}"
    keyed: bool  # x-api-key required

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if `method path` is this route, else None (as API Gateway routes)."""
        found = resolve(path)
        if method != self.method or found is None or found[0] != self.resource:
            return None
        return found[1]


ROUTES: Final = (
    Route("POST", "/messages", keyed=True),
    Route("POST", "/messages/preview", keyed=True),
    Route("GET", "/account/balance", keyed=True),
    Route("GET", "/messages", keyed=True),
    Route("GET", "/messages/{smsid}", keyed=True),
    Route("GET", "/suppressions", keyed=True),
    Route("POST", "/suppressions/import", keyed=True),
    Route("PUT", "/suppressions/{number}", keyed=True),
    Route("GET", "/suppressions/{number}", keyed=True),
    Route("DELETE", "/suppressions/{number}", keyed=True),
    Route("GET", "/schedules", keyed=True),
    Route("GET", "/schedules/{id}", keyed=True),
    Route("DELETE", "/schedules/{id}", keyed=True),
    Route("GET", OPENAPI_PATH, keyed=False),
)
RESOURCES: Final = frozenset(route.resource for route in ROUTES)


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def resolve(path: str, resources: frozenset[str] = RESOURCES) -> tuple[str, dict[str, str]] | None:
    """The resource API Gateway picks for `path`, and its path parameters; None if there is none.

    Segment by segment, a static resource wins over a path parameter beside it: /messages/preview
    is the preview resource (POST only), never /messages/{smsid} with smsid "preview", so a GET
    of it is refused as a method that resource lacks, as deployed.
    """
    templates = [resource.split("/") for resource in resources]
    chosen = [""]
    parameters: dict[str, str] = {}
    for depth, part in enumerate(path.split("/")[1:], start=1):
        children = {t[depth] for t in templates if len(t) > depth and t[:depth] == chosen}
        if part in children and not _is_parameter(part):
            chosen.append(part)
            continue
        parameter = next((child for child in sorted(children) if _is_parameter(child)), None)
        if parameter is None or not part:
            return None
        chosen.append(parameter)
        parameters[parameter[1:-1]] = unquote(part)
    resource = "/".join(chosen)
    return (resource, parameters) if resource in resources else None


DOCS_PATH: Final = "/docs"
# Local only: `make reconcile` runs the scheduled function's reconcile task here, as it would
# invoke the deployed function (tools/reconcile.py).
RECONCILE_PATH: Final = "/_local/reconcile"
STAGE: Final = "local"
API_ID: Final = "local"
KEY_ID_LENGTH: Final = 10  # API Gateway's key ids: ten lowercase letters and digits
MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
# An idle keep-alive connection is closed after this long, so it cannot pin a thread.
IDLE_TIMEOUT_SECONDS: Final = 30.0
PROBLEM_JSON_TYPE: Final = "application/problem+json"
JSON_TYPE: Final = "application/json"
HTML_TYPE: Final = "text/html; charset=utf-8"
# The server sets these itself; a handler's copy would contradict them.
HOP_BY_HOP_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
# A method is any token (RFC 9110, 9.1): API Gateway answers the ones no resource has with its 403.
METHOD_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def key_id_for(api_key: str) -> str:
    """The id API Gateway would tell the function for this key (requestContext.identity.apiKeyId).

    A key's id is not its value: the caps count a caller's sends under it (key:<id> on usage#<day>)
    and read its own limits from limits#key:<id>. Derived from the value, so a key has the same id every
    time make run is started with it, as a deployed key keeps its id.
    """
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:KEY_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """An answer API Gateway gives itself, without calling the function."""

    response_type: str  # the gateway response type (names.API_GATEWAY_RESPONSES)
    error_type: str  # the x-amzn-ErrorType header
    message: str  # $context.error.message

    @property
    def status(self) -> int:
        return names.API_GATEWAY_RESPONSES[self.response_type][0]

    def problem(self, request_id: str) -> dict[str, Any]:
        """The problem body the deployed API's gateway responses write (infra/components/api.py)."""
        status, title = names.API_GATEWAY_RESPONSES[self.response_type]
        return {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": self.message,
            "request_id": request_id,
        }


class Refused(Exception):
    """The request ends with API Gateway's own answer."""

    def __init__(self, answer: GatewayAnswer) -> None:
        super().__init__(answer.message)
        self.answer = answer


FORBIDDEN: Final = GatewayAnswer("INVALID_API_KEY", "ForbiddenException", "Forbidden")
MISSING_AUTHENTICATION_TOKEN: Final = GatewayAnswer(
    "MISSING_AUTHENTICATION_TOKEN", "MissingAuthenticationTokenException", "Missing Authentication Token"
)
FUNCTION_FAILED: Final = GatewayAnswer("DEFAULT_5XX", "InternalServerErrorException", "Internal server error")
BAD_REQUEST: Final = GatewayAnswer("BAD_REQUEST_BODY", "BadRequestException", "Bad Request")
# API Gateway takes chunked bodies; the front does not, and says so as a plain bad request.
LENGTH_REQUIRED: Final = GatewayAnswer("BAD_REQUEST_BODY", "BadRequestException", "Length Required")
REQUEST_TOO_LONG: Final = GatewayAnswer("REQUEST_TOO_LARGE", "RequestTooLongException", "Request Too Long")


def proxy_event(
    *,
    method: str,
    target: str,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str,
    request_id: str,
    api_key: str | None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """A REST API (v1) proxy integration event, as API Gateway sends it to the function.

    `api_key_id` is the key's id (default: the one `key_id_for` gives the key).
    """
    url = urlsplit(target)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # API Gateway keeps the last of repeated headers here
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(url.query, keep_blank_values=True)
    try:
        text_body: str | None = body.decode("utf-8") if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    domain = single_headers.get("Host") or single_headers.get("host") or "localhost"
    return {
        "resource": resource or url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": API_ID,
            "resourcePath": resource or url.path,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": url.path,
            "accountId": ACCOUNT_ID,
            "protocol": protocol,
            "stage": STAGE,
            "domainPrefix": domain.split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": single_headers.get("User-Agent"),
                "apiKey": api_key,
                "apiKeyId": (api_key_id or key_id_for(api_key)) if api_key else None,
            },
            "domainName": domain,
            "apiId": API_ID,
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def proxy_answer(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the function's proxy response; ValueError if it is not one."""
    if not isinstance(answer, dict) or not isinstance(answer.get("statusCode"), int):
        raise ValueError("the function's answer is not a proxy response")
    # As API Gateway merges them: multiValueHeaders win over headers of the same name.
    merged: dict[str, list[tuple[str, str]]] = {}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        merged[name.lower()] = [(name, str(value)) for value in values]
    for name, value in (answer.get("headers") or {}).items():
        merged.setdefault(name.lower(), [(name, str(value))])
    headers = [pair for key, pairs in merged.items() if key not in HOP_BY_HOP_HEADERS for pair in pairs]
    body = answer.get("body") or ""
    payload = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
    return answer["statusCode"], headers, payload


def swagger_page(spec_json: str) -> str:
    """Swagger UI with its script and styles inlined from the Powertools package, as enable_swagger does."""
    assets = Path(swagger_ui.__file__).parent
    return swagger_ui.generate_swagger_html(
        spec_json.replace("</", "<\\/"),  # so the spec cannot end the inline <script> early
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="",
        oauth2_config=None,
    )


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway expect
    server_version = "viber-gateway-local"
    timeout = IDLE_TIMEOUT_SECONDS
    server: FrontServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: `_serve` writes one concise line per request instead."""

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        try:
            status = self._answer(request_id)
        except Refused as refusal:
            answer = refusal.answer
            # The deployed API answers its own errors as problem+json (infra/components/api.py).
            body = json.dumps(answer.problem(request_id)).encode()
            headers = [("Content-Type", PROBLEM_JSON_TYPE), ("x-amzn-ErrorType", answer.error_type)]
            self._send(answer.status, headers, body, request_id)
            status = answer.status
        elapsed_ms = (time.monotonic() - started) * 1000
        self.server.log.info("%s %s %d %.0f ms", self.command, urlsplit(self.path).path, status, elapsed_ms)

    def __getattr__(self, name: str) -> Any:
        """`do_<METHOD>` for every method: http.server answers a 501 of its own to one it finds none for.

        Each goes through `_serve`, which routes the methods the stack defines and answers the
        others as API Gateway does (403, Missing Authentication Token).
        """
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _answer(self, request_id: str) -> int:
        if not METHOD_TOKEN.fullmatch(self.command):
            self.close_connection = True
            raise Refused(BAD_REQUEST)
        body = self._read_body()
        url = urlsplit(self.path)
        if (self.command, url.path) == ("GET", DOCS_PATH):
            return self._docs(url.query, request_id)
        if (self.command, url.path) == ("POST", RECONCILE_PATH):
            return self._reconcile(body, request_id)
        if (self.command, url.path) == ("GET", OPENAPI_PATH):
            # As the deployed API's MOCK integration: the function's document, without invoking it.
            self._send(200, [("Content-Type", JSON_TYPE)], self.server.spec().encode(), request_id)
            return 200
        # API Gateway picks the resource first, then the method: a method the resource has no
        # route for, or a path no resource is, is its 403.
        resource, path_parameters = resolve(url.path) or ("", {})
        route = next((r for r in ROUTES if (r.method, r.resource) == (self.command, resource)), None)
        if route is None:
            raise Refused(MISSING_AUTHENTICATION_TOKEN)
        api_key = key_id = None
        if route.keyed:
            api_key = self.headers.get(API_KEY_HEADER)  # header names are case-insensitive here
            key_id = None if api_key is None else self.server.key_id_of(api_key)
            if key_id is None:
                raise Refused(FORBIDDEN)
        event = proxy_event(
            method=self.command,
            target=self.path,
            resource=route.resource,
            path_parameters=path_parameters,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            request_id=request_id,
            api_key=api_key,
            api_key_id=key_id,
        )
        try:
            status, headers, payload = proxy_answer(self.server.functions.invoke_api(event))
        except Exception:
            self.server.log.exception("the API function failed")
            raise Refused(FUNCTION_FAILED) from None
        self._send(status, headers, payload, request_id)
        return status

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the unread chunks would be taken for the next request
            raise Refused(LENGTH_REQUIRED)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise Refused(BAD_REQUEST)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise Refused(REQUEST_TOO_LONG)
        return self.rfile.read(length) if length else b""

    def _reconcile(self, body: bytes, request_id: str) -> int:
        try:
            asked = json.loads(body or b"{}")
            dismiss = [str(item) for item in asked.get("dismiss", [])] if isinstance(asked, dict) else []
        except ValueError:
            raise Refused(BAD_REQUEST) from None
        report = self.server.functions.invoke_scheduled({"task": "reconcile", "dismiss": dismiss})
        self._send(200, [("Content-Type", JSON_TYPE)], json.dumps(report).encode(), request_id)
        return 200

    def _docs(self, query: str, request_id: str) -> int:
        # The page asks for ?format=json, as Powertools' own Swagger route serves it.
        if parse_qs(query).get("format") == ["json"]:
            self._send(200, [("Content-Type", JSON_TYPE)], self.server.spec().encode(), request_id)
        else:
            self._send(200, [("Content-Type", HTML_TYPE)], self.server.docs_page().encode(), request_id)
        return 200

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", request_id)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of the body it leaves out
            self.wfile.write(body)


class FrontServer(LoopbackServer):
    """The front on loopback, served from a thread; stop() closes connections and joins every thread."""

    # Request threads are joined by server_close(); daemon only so a stuck one cannot block exit.
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        api_key: str,
        functions: FunctionHost,
        log: logging.Logger,
        more_api_keys: Sequence[str] = (),
    ) -> None:
        """`api_key` and `more_api_keys` are the keys of the usage plan: each a caller of its own."""
        self.api_key = api_key
        # {value: id}: as API Gateway tells the function which key called, by its id.
        self.api_keys = {key: key_id_for(key) for key in (api_key, *more_api_keys)}
        self.functions = functions
        self.log = log
        # Made once, as the deployed API's MOCK template is made at synthesis: serving it never
        # waits for an invocation in progress.
        self._spec = functions.openapi_json()
        self._docs_lock = threading.Lock()
        self._docs_page: str | None = None
        self._thread: threading.Thread | None = None
        super().__init__(address, _FrontHandler)

    def key_id_of(self, given: str) -> str | None:
        """The id of the key `given` is, or None if it is none of them (compared in constant time)."""
        found = None
        for key, key_id in self.api_keys.items():
            if hmac.compare_digest(given.encode(), key.encode()):
                found = key_id
        return found

    @property
    def url(self) -> str:
        return f"http://{self.server_name}:{self.server_port}"

    def spec(self) -> str:
        return self._spec

    def docs_page(self) -> str:
        """The Swagger UI page, built on first use (it inlines about 1.5 MB of script)."""
        with self._docs_lock:
            if self._docs_page is None:
                self._docs_page = swagger_page(self.spec())
            return self._docs_page

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="http-front", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        # Idle keep-alive connections would hold their threads until the idle timeout.
        self.close_connections()
        self.server_close()
        if self._thread is not None:
            self._thread.join()
