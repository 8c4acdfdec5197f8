"""End to end: the gateway as other systems reach it, and as it reaches them.

- An SNS topic subscribed to the message queue (raw delivery off) and a rule on an `orders`
  bus targeting it (make run provisions both, local.emulator): the queue function unwraps the
  notification's `Message` and the event's `detail`, and the envelope's own id is the
  message's identity, so a notification or event delivered twice is sent once, while two
  publications of the same body are two sends.
- make run --webhook: every event of the gateway's bus is POSTed to a receiver, as an
  EventBridge API destination would, with the headers given.
- Methods the deployed REST API has no route for get API Gateway's 403, not http.server's 501.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway import names
from tests.e2e.harness import HOST, LocalService, eventually
from tests.e2e.local_service import running_local_service

SETTLE_SECONDS = 15
WEBHOOK_SECONDS = 30
TOPIC_NAME = "viber-gateway-local-orders"
SOURCE_BUS = "orders"
SOURCE = "local.orders"
VIBER_READER = "+30 691 234 5678"  # the sandbox reads it (sandbox/README.md: by last digit)
EVENT_MEMBERS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


def _message(marker: str) -> dict[str, Any]:
    # <id>, <source> and <time> in the text: moto's own templating would have replaced them
    return {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": f"Order {marker} <id> from <source> has shipped.",
        "destinations": [VIBER_READER],
    }


def _sends_of(local: LocalService, marker: str) -> list[dict[str, Any]]:
    return [entry for entry in local.ledger() if marker in str(entry["payload"].get("im_text"))]


def _settled_sends(local: LocalService, marker: str, at_least: int) -> list[dict[str, Any]]:
    """The sends of `marker` once there are `at_least` and the message queue is empty (all handled)."""
    eventually(lambda: len(_sends_of(local, marker)) >= at_least, timeout=SETTLE_SECONDS, what="the send")
    eventually(lambda: local.messages_in(local.queue_url) == 0, timeout=SETTLE_SECONDS, what="an empty queue")
    return _sends_of(local, marker)


def _capture_queue(local: LocalService, name: str) -> tuple[str, str]:
    """A queue of the test's own: its URL and ARN."""
    url = str(local.sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = local.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, str(arn)


def _captured(local: LocalService, queue_url: str) -> list[str]:
    def bodies() -> list[str] | None:
        messages = local.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [str(message["Body"]) for message in messages] or None

    return eventually(bodies, timeout=SETTLE_SECONDS, what="the captured delivery")


@pytest.fixture
def topic_arn(local: LocalService) -> str:
    topics = local.aws("sns").list_topics()["Topics"]
    arns = [topic["TopicArn"] for topic in topics if topic["TopicArn"].endswith(f":{TOPIC_NAME}")]
    assert arns, f"make run provisions no topic {TOPIC_NAME}: {topics}"
    return str(arns[0])


# --- SNS ----------------------------------------------------------------------------------------


def test_a_message_published_to_the_topic_is_sent_once(local: LocalService, topic_arn: str) -> None:
    # When our message is published to the topic subscribed to the queue
    marker = uuid.uuid4().hex
    local.aws("sns").publish(TopicArn=topic_arn, Message=json.dumps(_message(marker)))

    # Then it is sent, exactly once, the text as published
    sends = _settled_sends(local, marker, 1)
    assert len(sends) == 1
    assert sends[0]["payload"]["im_text"] == _message(marker)["im_text"]
    assert sends[0]["payload"]["destinations"] == ["306912345678"]


def test_the_same_body_published_twice_is_two_notifications_and_two_sends(
    local: LocalService, topic_arn: str
) -> None:
    # When the same body is published twice: two notifications, two MessageIds
    marker = uuid.uuid4().hex
    for _ in range(2):
        local.aws("sns").publish(TopicArn=topic_arn, Message=json.dumps(_message(marker)))

    # Then it is sent twice
    assert len(_settled_sends(local, marker, 2)) == 2


def test_a_notification_the_queue_delivers_again_is_sent_once(local: LocalService, topic_arn: str) -> None:
    # Given a queue of the test's own subscribed to the topic too (raw delivery off), which
    # captures the notification document the message queue gets
    capture_url, capture_arn = _capture_queue(local, f"e2e-sns-capture-{uuid.uuid4().hex[:8]}")
    sns = local.aws("sns")
    subscription = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=capture_arn,
        Attributes={"RawMessageDelivery": "false"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    try:
        marker = uuid.uuid4().hex
        published = sns.publish(TopicArn=topic_arn, Message=json.dumps(_message(marker)))
        (envelope,) = _captured(local, capture_url)
        assert json.loads(envelope)["MessageId"] == published["MessageId"]
        assert len(_settled_sends(local, marker, 1)) == 1

        # When the queue delivers that same notification twice more (SQS and SNS deliver at least once)
        for _ in range(2):
            local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=envelope)

        # Then it is still sent once
        eventually(lambda: local.messages_in(local.queue_url) == 0, timeout=SETTLE_SECONDS, what="the queue")
        assert len(_sends_of(local, marker)) == 1
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        local.sqs.delete_queue(QueueUrl=capture_url)


# --- EventBridge --------------------------------------------------------------------------------


def _put_order(local: LocalService, marker: str) -> str:
    answer = local.aws("events").put_events(
        Entries=[
            {
                "EventBusName": SOURCE_BUS,
                "Source": SOURCE,
                "DetailType": "Order Shipped",
                "Detail": json.dumps(_message(marker)),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return str(answer["Entries"][0]["EventId"])


def test_an_event_on_the_orders_bus_is_sent_once(local: LocalService) -> None:
    # When an event whose detail is our message is put on the orders bus
    marker = uuid.uuid4().hex
    _put_order(local, marker)

    # Then it is sent exactly once, the text untouched
    sends = _settled_sends(local, marker, 1)
    assert len(sends) == 1
    assert sends[0]["payload"]["im_text"] == _message(marker)["im_text"]


def test_an_event_the_queue_delivers_again_is_sent_once(local: LocalService) -> None:
    # Given a rule of the test's own on the orders bus, capturing the event the message queue gets
    capture_url, capture_arn = _capture_queue(local, f"e2e-event-capture-{uuid.uuid4().hex[:8]}")
    events = local.aws("events")
    rule = f"e2e-capture-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=SOURCE_BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule=rule, EventBusName=SOURCE_BUS, Targets=[{"Id": "capture", "Arn": capture_arn}])
    try:
        marker = uuid.uuid4().hex
        event_id = _put_order(local, marker)
        (delivered,) = _captured(local, capture_url)
        event = json.loads(delivered)
        # (the whole event, as AWS delivers it to an SQS target)
        assert list(event) == EVENT_MEMBERS
        assert (event["id"], event["detail"]) == (event_id, _message(marker))
        assert len(_settled_sends(local, marker, 1)) == 1

        # When the queue delivers that same event twice more
        for _ in range(2):
            local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=delivered)

        # Then it is still sent once
        eventually(lambda: local.messages_in(local.queue_url) == 0, timeout=SETTLE_SECONDS, what="the queue")
        assert len(_sends_of(local, marker)) == 1
    finally:
        events.remove_targets(Rule=rule, EventBusName=SOURCE_BUS, Ids=["capture"])
        events.delete_rule(Name=rule, EventBusName=SOURCE_BUS)
        local.sqs.delete_queue(QueueUrl=capture_url)


# --- Webhooks -----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook endpoint on loopback: keeps each request; answers 503 to the first `failures`."""

    failures: int = 1
    requests: list[tuple[str, dict[str, str], dict[str, Any], int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        with self.lock:
            status = 503 if len(self.requests) < self.failures else 200
            self.requests.append((path, headers, body, status))
            return status

    def delivered(self) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(path, headers, body) for path, headers, body, status in self.requests if status == 200]


def _receiver_server(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            status = receiver.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return ThreadingHTTPServer((HOST, 0), Handler)


@pytest.fixture(scope="module")
def webhooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalService, Receiver, Path]]:
    """A runner of its own with a webhook to a receiver of the test's (the session's runner has none)."""
    receiver = Receiver()
    server = _receiver_server(receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    log = tmp_path_factory.mktemp("local-run-webhooks") / "output.log"
    url = f"http://{HOST}:{server.server_address[1]}/hook"
    try:
        with running_local_service(
            log,
            extra_arguments=[
                f"--webhook={url}",
                "--webhook-header",
                "X-Api-Key: test",
                "--delivery-step-seconds=0.5",
            ],
        ) as service:
            yield service, receiver, log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_webhook_gets_a_send_s_events_with_the_header(
    webhooked: tuple[LocalService, Receiver, Path],
) -> None:
    service, receiver, log = webhooked
    # When a message is sent through the API
    marker = uuid.uuid4().hex
    response = service.post_message({**_message(marker), "reference": marker})
    assert response.status == 200, response.data
    (smsid,) = [message["smsid"] for message in response.json()["messages"]]

    # Then the receiver gets Message Accepted, then the status changes to the final one
    def mine() -> list[dict[str, Any]] | None:
        bodies = [body for _, _, body in receiver.delivered() if body["detail"].get("smsid") == smsid]
        finished = any(body["detail"].get("final") for body in bodies)
        return bodies if finished else None

    bodies = eventually(mine, timeout=WEBHOOK_SECONDS, what="the send's events at the webhook")
    kinds = [body["detail-type"] for body in bodies]
    assert kinds[0] == "Message Accepted"
    assert set(kinds[1:]) == {"Message Status Changed"}
    # (the tracker polls every few seconds: it may see only some of the sandbox's steps)
    assert bodies[-1]["detail"]["state"] == "seen"
    # ...each the whole event as EventBridge delivers it, of the gateway's source
    for body in bodies:
        assert list(body) == EVENT_MEMBERS
        assert body["source"] == names.EVENT_SOURCE
        assert body["detail"]["reference"] == marker
    # ...POSTed to the URL with the header given, as JSON
    for path, headers, _ in receiver.delivered():
        assert path == "/hook"
        assert headers["x-api-key"] == "test"
        assert headers["content-type"] == "application/json"
    # ...the first delivery, answered 503, was tried again and arrived
    with receiver.lock:
        _, _, first_body, first_status = receiver.requests[0]
    assert first_status == 503
    assert first_body["id"] in [body["id"] for _, _, body in receiver.delivered()]
    # ...and the console said so, one line per delivery
    output = log.read_text(errors="replace")
    assert f"webhook http://{HOST}:" in output
    assert f"200 Message Accepted {smsid}" in output
    banner = next(line for line in output.splitlines() if line.strip().startswith("Webhook"))
    assert "/hook" in banner
    assert "X-Api-Key" in banner
    assert "test" not in banner.split("/hook", 1)[1]  # the header's name, never its value


# --- Methods the API has no route for ---------------------------------------------------------


def _request(local: LocalService, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    address = urlsplit(local.api_url)
    connection = http.client.HTTPConnection(address.hostname or HOST, address.port, timeout=10)
    try:
        connection.request(method, path, headers={"x-api-key": local.api_key})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _unrouted(local: LocalService) -> list[tuple[str, str]]:
    """Every (method, path) the API's OpenAPI document defines no operation for, on its paths."""
    document = json.loads(local.http.request("GET", f"{local.api_url}/openapi.json").data)
    methods = ("TRACE", "CONNECT", "PATCH", "OPTIONS", "HEAD", "PUT", "DELETE", "GET", "POST", "FOO")
    pairs = []
    for template, operations in document["paths"].items():
        path = "/".join("sample" if part.startswith("{") else part for part in template.split("/"))
        pairs += [(method, path) for method in methods if method.lower() not in operations]
    pairs += [(method, "/openapi.json") for method in methods if method != "GET"]
    return pairs


def test_trace_and_every_unrouted_method_get_api_gateway_s_403(local: LocalService) -> None:
    unrouted = _unrouted(local)
    assert ("TRACE", "/messages") in unrouted
    problems = []
    for method, path in unrouted:
        # When the method is asked of the path, with the key
        status, headers, body = _request(local, method, path)

        # Then API Gateway's MISSING_AUTHENTICATION_TOKEN answer comes back, as deployed
        expected = {
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": "Missing Authentication Token",
            "request_id": headers.get("x-amzn-requestid"),
        }
        answer = (
            status,
            headers.get("content-type"),
            headers.get("x-amzn-errortype"),
            None if method == "HEAD" else json.loads(body or b"null"),
        )
        wanted = (
            403,
            "application/problem+json",
            "MissingAuthenticationTokenException",
            None if method == "HEAD" else expected,
        )
        if answer != wanted:
            problems.append(f"{method} {path}: {answer}")
    assert problems == []
    assert local.ledger() == []
