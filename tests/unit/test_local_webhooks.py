"""make run --webhook: the bus's events POSTed as an EventBridge API destination would (local.webhooks).

The pure parts (flags, headers, body, retry rule, backoff, console line) and the forwarder with a
stand-in for HTTP; tests/e2e/test_integrations.py runs it against a real receiver.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from gateway import names
from local import webhooks
from local.run import webhooks_from

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Message Status Changed",
    "source": names.EVENT_SOURCE,
    "account": "123456789012",
    "time": "2026-12-06T09:54:06Z",
    "region": "eu-central-1",
    "resources": [],
    "detail": {"smsid": 20818588, "state": "delivered", "final": True},
    "event-bus-name": names.EVENT_BUS_NAME,
}


# --- Flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://hooks.example.com/x?y=1"])
def test_an_http_url_is_a_webhook(url: str) -> None:
    assert webhooks.webhook_url(f" {url} ") == url


@pytest.mark.parametrize("url", ["ftp://example.com/", "example.com/hook", "http:///hook", ""])
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        webhooks.webhook_url(url)


def test_a_header_is_name_colon_value() -> None:
    assert webhooks.webhook_header("X-Api-Key: test") == ("X-Api-Key", "test")
    assert webhooks.webhook_header("Authorization:Basic dXNlcjpwdw==") == (
        "Authorization",
        "Basic dXNlcjpwdw==",
    )
    assert webhooks.webhook_header("X-Empty:") == ("X-Empty", "")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("X-Api-Key test", "Name: value"),
        ("Bad Name: x", "Name: value"),
        (": x", "Name: value"),
        ("X-Split: a\r\nInjected: b", "line break"),
        ("Content-Type: text/plain", "set by the sender"),
        ("content-length: 3", "set by the sender"),
    ],
)
def test_a_header_that_is_not_one_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        webhooks.webhook_header(text)


def test_the_flags_make_the_webhooks_and_the_banner_hides_header_values() -> None:
    # When two URLs (one given twice) and a header are asked for
    chosen = webhooks_from(
        ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "http://127.0.0.1:9/a"], ["X-Api-Key: s3cret"]
    )

    # Then each URL is delivered to once, with the header; the banner names the header, not its value
    assert chosen is not None
    assert chosen.urls == ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    assert chosen.headers == (("X-Api-Key", "s3cret"),)
    shown = "\n".join(chosen.shown())
    assert "X-Api-Key" in shown
    assert "s3cret" not in shown


def test_no_webhook_is_none_and_a_header_alone_is_a_mistake() -> None:
    assert webhooks_from(None, None) is None
    with pytest.raises(ValueError, match="--webhook"):
        webhooks_from(None, ["X-Api-Key: x"])


def test_the_runner_refuses_bad_webhook_flags_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from local.run import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--webhook", "not-a-url"])
    assert exit_info.value.code == 2
    assert "http(s) URL" in capsys.readouterr().err


# --- What is sent -------------------------------------------------------------------------------


def test_the_body_is_the_whole_event_as_eventbridge_delivers_it() -> None:
    # When the tap's event is made a request body
    body = json.loads(webhooks.body_of(EVENT))

    # Then it is EventBridge's event, every member, without the tap's note of the bus
    assert list(body) == [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ]
    assert body["detail"] == EVENT["detail"]


def test_the_headers_are_json_eventbridge_s_agent_and_the_user_s() -> None:
    headers = webhooks.request_headers([("X-Api-Key", "test"), ("user-agent", "mine")])

    assert headers == {"Content-Type": "application/json", "user-agent": "mine", "X-Api-Key": "test"}


@pytest.mark.parametrize(
    ("event", "forwarded"),
    [
        (EVENT, True),
        ({**EVENT, "event-bus-name": None}, True),  # put without a bus name
        ({**EVENT, "event-bus-name": "orders"}, False),  # another bus
        ({**EVENT, "source": "local.orders"}, False),  # not the gateway's
    ],
)
def test_only_the_gateway_s_events_on_its_bus_are_forwarded(event: dict[str, Any], forwarded: bool) -> None:
    assert webhooks.is_forwarded(event, names.EVENT_BUS_NAME, names.EVENT_SOURCE) is forwarded


# --- Retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retried"), [(None, True), (429, True), (500, True), (503, True), (599, True)]
)
def test_connection_errors_throttles_and_server_errors_are_retried(status: int | None, retried: bool) -> None:
    assert webhooks.is_retried(status) is retried


@pytest.mark.parametrize("status", [200, 201, 204, 301, 400, 401, 403, 404, 409, 413])
def test_other_answers_are_final(status: int) -> None:
    assert webhooks.is_retried(status) is False


def test_the_backoff_doubles_up_to_a_cap() -> None:
    assert [webhooks.backoff_seconds(attempt) for attempt in range(1, 8)] == [0.5, 1, 2, 4, 5, 5, 5]


def _post_answering(
    *outcomes: webhooks.Outcome,
) -> tuple[list[tuple[str, bytes, dict[str, str]]], webhooks.Post]:
    calls: list[tuple[str, bytes, dict[str, str]]] = []
    answers = list(outcomes)

    def post(url: str, body: bytes, headers: dict[str, str]) -> webhooks.Outcome:
        calls.append((url, body, headers))
        return answers.pop(0)

    return calls, post


def test_a_delivery_is_tried_again_after_a_503_and_a_refused_connection() -> None:
    calls, post = _post_answering((503, "Service Unavailable"), (None, "NewConnectionError"), (200, "OK"))
    waits: list[float] = []

    outcome, tries = webhooks.deliver(post, "http://h/x", b"{}", {}, sleep=lambda s: waits.append(s) or False)

    assert (outcome, tries) == ((200, "OK"), 3)
    assert waits == [0.5, 1.0]
    assert len(calls) == 3


def test_a_delivery_gives_up_after_the_last_attempt() -> None:
    _, post = _post_answering(*[(500, "Internal Server Error")] * webhooks.MAX_ATTEMPTS)

    outcome, tries = webhooks.deliver(post, "http://h/x", b"{}", {}, sleep=lambda s: False)

    assert (outcome, tries) == ((500, "Internal Server Error"), webhooks.MAX_ATTEMPTS)


def test_a_client_error_is_not_retried() -> None:
    calls, post = _post_answering((400, "Bad Request"))

    assert webhooks.deliver(post, "http://h/x", b"{}", {}, sleep=lambda s: False) == ((400, "Bad Request"), 1)
    assert len(calls) == 1


def test_stopping_ends_the_retries() -> None:
    _, post = _post_answering((503, "Service Unavailable"), (200, "OK"))

    outcome, tries = webhooks.deliver(post, "http://h/x", b"{}", {}, sleep=lambda s: True)

    assert (outcome, tries) == ((503, "Service Unavailable"), 1)


# --- The console --------------------------------------------------------------------------------


def test_one_line_per_delivery() -> None:
    url = "http://127.0.0.1:8080/hook"
    assert webhooks.outcome_line(url, EVENT, (200, "OK"), 1) == (
        "webhook http://127.0.0.1:8080/hook 200 Message Status Changed 20818588 delivered"
    )
    assert webhooks.outcome_line(url, EVENT, (None, "NewConnectionError"), 4) == (
        "webhook http://127.0.0.1:8080/hook failed Message Status Changed 20818588 delivered after 4 tries "
        "(NewConnectionError)"
    )
    resolved = {**EVENT, "detail-type": "Send Outcome Resolved", "detail": {"idempotency_key": "order-1"}}
    assert webhooks.outcome_line(url, resolved, (404, "Not Found"), 1) == (
        "webhook http://127.0.0.1:8080/hook 404 Send Outcome Resolved order-1 (Not Found)"
    )


# --- The forwarder ------------------------------------------------------------------------------


def test_the_forwarder_posts_each_event_to_each_url_in_order_from_threads() -> None:
    # Given a forwarder to two URLs, with a stand-in for HTTP
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    done = threading.Event()

    def post(url: str, body: bytes, headers: dict[str, str]) -> webhooks.Outcome:
        received.append((url, json.loads(body), headers))
        if len(received) == 4:
            done.set()
        return 200, "OK"

    chosen = webhooks.Webhooks(("http://h/a", "http://h/b"), (("X-Api-Key", "test"),))
    log = logging.getLogger("test-webhooks")
    forwarder = webhooks.WebhookForwarder(
        chosen, log, bus_name=names.EVENT_BUS_NAME, source=names.EVENT_SOURCE, post=post
    )
    forwarder.start()
    try:
        # When the tap hands over two of the gateway's events and one of another source
        second = {**EVENT, "id": "second"}
        forwarder.take([EVENT, {**EVENT, "source": "local.orders"}, second])
        assert done.wait(5)
    finally:
        forwarder.stop()

    # Then each URL got the two events, in order, with the header
    for url in ("http://h/a", "http://h/b"):
        mine = [(body["id"], headers) for target, body, headers in received if target == url]
        assert [event_id for event_id, _ in mine] == [EVENT["id"], "second"]
        assert all(headers["X-Api-Key"] == "test" for _, headers in mine)
        assert all(headers["Content-Type"] == "application/json" for _, headers in mine)
