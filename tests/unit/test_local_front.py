"""The local front answers every method the deployed REST API does not route as API Gateway does.

The stack (infra/components/api.py) gives each resource only the methods in local.front.ROUTES:
no OPTIONS (no CORS preflight), no HEAD, no PATCH, no ANY. API Gateway answers any other method
on a resource, or any method on a path it does not know, with its MISSING_AUTHENTICATION_TOKEN
gateway response: 403, the problem body the stack configures, x-amzn-ErrorType
MissingAuthenticationTokenException. The front is served on loopback with a stand-in for the
functions, so these run in milliseconds.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from local.front import OPENAPI_PATH, ROUTES, FrontServer, resolve

API_KEY = "front-test-key"
# Methods HTTP or WebDAV define, and tokens no one does: none of them may get http.server's 501.
OTHER_METHODS = ("TRACE", "CONNECT", "PATCH", "OPTIONS", "HEAD", "PROPFIND", "PURGE", "FOO", "get")
ROUTED_METHODS = ("GET", "POST", "PUT", "DELETE")


class ApiFunctionStub:
    """Stands in for local.functions.FunctionHost: the API function answers 200 and is counted."""

    def __init__(self) -> None:
        self.api_events: list[dict[str, Any]] = []

    def openapi_json(self) -> str:
        return json.dumps({"openapi": "3.1.0"})

    def invoke_api(self, event: dict[str, Any]) -> dict[str, Any]:
        self.api_events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def functions() -> ApiFunctionStub:
    return ApiFunctionStub()


@pytest.fixture(scope="module")
def front(functions: ApiFunctionStub) -> Iterator[FrontServer]:
    server = FrontServer(
        ("127.0.0.1", 0), api_key=API_KEY, functions=functions, log=logging.getLogger("test-front")
    )
    server.start()
    yield server
    server.stop()


def _concrete(resource: str) -> str:
    """A path of the resource: `/messages/{smsid}` -> `/messages/sample`."""
    return "/".join("sample" if part.startswith("{") else part for part in resource.split("/"))


# Every resource the API has, and a path it does not.
PATHS = sorted({_concrete(route.resource) for route in ROUTES} | {"/", "/nowhere", "/messages/a/b"})
UNROUTED = [
    (method, path)
    for path in PATHS
    for method in (*OTHER_METHODS, *ROUTED_METHODS)
    if not any(route.match(method, path) is not None for route in ROUTES)
]


def _request(front: FrontServer, method: str, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", front.server_port, timeout=5)
    try:
        connection.request(method, path, headers={"x-api-key": API_KEY})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def test_the_unrouted_pairs_include_the_ones_the_brief_names() -> None:
    # The matrix is not empty by accident: TRACE everywhere, PUT and DELETE where the API has none
    assert ("TRACE", "/messages") in UNROUTED
    assert ("PUT", "/messages") in UNROUTED
    assert ("DELETE", "/account/balance") in UNROUTED
    assert ("OPTIONS", "/suppressions/sample") in UNROUTED
    assert ("GET", "/suppressions/sample") not in UNROUTED
    # A static resource beside a path parameter is that resource, whose methods are its own
    assert ("GET", "/messages/preview") in UNROUTED
    assert ("DELETE", "/suppressions/import") in UNROUTED


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/messages", ("/messages", {})),
        ("/messages/20818588", ("/messages/{smsid}", {"smsid": "20818588"})),
        ("/messages/preview", ("/messages/preview", {})),
        ("/suppressions/import", ("/suppressions/import", {})),
        ("/suppressions/%2B306912345678", ("/suppressions/{number}", {"number": "+306912345678"})),
        ("/messages/", None),
        ("/messages/1/2", None),
        ("/account", None),  # a resource with no method: no route
        ("/", None),
        ("/nowhere", None),
    ],
)
def test_a_path_resolves_to_the_resource_api_gateway_picks(
    path: str, resolved: tuple[str, dict[str, str]] | None
) -> None:
    assert resolve(path) == resolved


@pytest.mark.parametrize(("method", "path"), UNROUTED, ids=[f"{m} {p}" for m, p in UNROUTED])
def test_a_method_the_api_does_not_route_gets_api_gateway_s_403(
    front: FrontServer, functions: ApiFunctionStub, method: str, path: str
) -> None:
    invoked = len(functions.api_events)

    # When the method is asked of the path, with the right key
    response, body = _request(front, method, path)

    # Then API Gateway's own answer comes back, never http.server's 501, and the function never runs
    assert response.status == 403, body
    assert response.getheader("Content-Type") == "application/problem+json"
    assert response.getheader("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    request_id = response.getheader("x-amzn-RequestId")
    expected = {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Missing Authentication Token",
        "request_id": request_id,
    }
    if method == "HEAD":  # the headers of that answer, without its body
        assert body == b""
        assert int(response.getheader("Content-Length", "0")) == len(json.dumps(expected).encode())
    else:
        assert json.loads(body) == expected
    assert len(functions.api_events) == invoked


def test_trace_does_not_echo_the_request(front: FrontServer) -> None:
    # When TRACE is sent with the key (TRACE's purpose is to echo the request back)
    response, body = _request(front, "TRACE", "/messages")

    # Then nothing of the request comes back: no key, no request line
    assert response.status == 403
    assert API_KEY.encode() not in body
    assert b"TRACE" not in body


def test_routed_methods_still_reach_the_function(front: FrontServer, functions: ApiFunctionStub) -> None:
    # When each route's method is asked with the key
    for route in ROUTES:
        response, body = _request(front, route.method, _concrete(route.resource))

        # Then it is answered by the function (or the spec), not refused
        assert response.status == 200, (route, body)
    assert len(functions.api_events) == len([route for route in ROUTES if route.resource != OPENAPI_PATH])


def test_the_connection_stays_usable_after_an_unrouted_method(front: FrontServer) -> None:
    # Given a keep-alive connection that was answered a TRACE and an unknown method
    connection = http.client.HTTPConnection("127.0.0.1", front.server_port, timeout=5)
    try:
        for method in ("TRACE", "FOO"):
            connection.request(method, "/messages", headers={"x-api-key": API_KEY})
            response = connection.getresponse()
            response.read()
            assert response.status == 403

        # When a routed request follows on it
        connection.request("GET", OPENAPI_PATH)
        response = connection.getresponse()

        # Then it is served
        assert response.status == 200
        assert json.loads(response.read()) == {"openapi": "3.1.0"}
    finally:
        connection.close()


def test_a_method_that_is_not_a_token_is_a_bad_request(front: FrontServer) -> None:
    # When the request line's method holds characters no method may have
    with socket.create_connection(("127.0.0.1", front.server_port), timeout=5) as raw:
        raw.sendall(b"GE(T /messages HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk

    # Then it is a 400 problem and the connection is closed
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["status"] == 400
