"""End to end: the local service as a user drives it, over HTTP, SQS and the sandbox's control API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway import names
from tests.e2e.harness import REPO, RUNNER_VARIABLES, LocalService, eventually

EVENTS = REPO / "events"
SETTLE_SECONDS = 10
# Five receives one second apart, then the redrive on the next receive.
DEAD_LETTER_SECONDS = 20


def body_of(name: str) -> dict[str, Any]:
    return dict(json.loads(Path(EVENTS / name).read_text()))


def test_a_posted_message_is_sent_once_and_answered_with_its_ids(local: LocalService) -> None:
    # Given the sample body with two destinations
    body = body_of("message-im.json")

    # When it is POSTed with the API key
    response = local.post_message(body)

    # Then the answer names each normalised destination with the provider's id...
    assert response.status == 200, response.data
    answer = response.json()
    assert [m["destination"] for m in answer["messages"]] == ["306912345678", "306987654321"]
    # ...and the provider received it exactly once, with those ids
    ledger = local.ledger()
    assert len(ledger) == 1
    assert ledger[0]["smsids"] == [m["smsid"] for m in answer["messages"]]
    assert ledger[0]["payload"]["im_text"] == body["im_text"]


def test_a_queued_message_is_sent_once_and_deleted_from_the_queue(local: LocalService) -> None:
    # Given the Viber-with-SMS-fallback sample, which repeats one destination
    body = body_of("message-im-smsfb.json")

    # When another system sends it to the queue
    local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=json.dumps(body))

    # Then the provider receives it, without the duplicate...
    ledger = eventually(lambda: local.ledger() or None, timeout=SETTLE_SECONDS, what="the send")
    assert ledger[0]["payload"]["destinations"] == ["306912345678", "306912345679"]
    # ...once, and the message is deleted, so it never comes back to be sent again
    eventually(lambda: local.messages_in(local.queue_url) == 0, timeout=SETTLE_SECONDS, what="the delete")
    assert len(local.ledger()) == 1


def test_a_repeated_post_with_one_idempotency_key_is_sent_once(local: LocalService) -> None:
    # Given a message POSTed once under an idempotency key
    body = body_of("message-im.json")
    key = {names.IDEMPOTENCY_KEY_HEADER: "e2e-order-1042"}
    first = local.post_message(body, headers=key)

    # When the caller sends it again under the same key
    again = local.post_message(body, headers=key)

    # Then the first answer is replayed, marked so, and the provider saw one send
    assert first.status == again.status == 200
    assert again.json() == first.json()
    assert again.headers.get(names.IDEMPOTENCY_REPLAYED_HEADER) == "true"
    assert len(local.ledger()) == 1


def test_queued_twice_under_one_idempotency_key_is_sent_once(local: LocalService) -> None:
    # Given two queue messages with the same body and the same IdempotencyKey attribute
    attributes = {names.QUEUE_IDEMPOTENCY_ATTRIBUTE: {"DataType": "String", "StringValue": "e2e-queued-1042"}}
    for _ in range(2):
        local.sqs.send_message(
            QueueUrl=local.queue_url,
            MessageBody=json.dumps(body_of("message-im.json")),
            MessageAttributes=attributes,
        )

    # When both have been handled
    eventually(lambda: local.messages_in(local.queue_url) == 0, timeout=SETTLE_SECONDS, what="both handled")

    # Then the provider saw one send
    assert len(local.ledger()) == 1


def test_an_invalid_message_gets_a_problem_naming_its_fields(local: LocalService) -> None:
    # Given a body with an empty text and a destination that is no number
    body = {**body_of("message-im.json"), "im_text": "", "destinations": ["not-a-number"]}

    # When it is POSTed
    response = local.post_message(body)

    # Then it is refused with a problem document that names both fields, and nothing is sent
    assert response.status == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"].endswith("invalid-request")
    assert {error["field"] for error in problem["errors"]} == {"im_text", "destinations[0]"}
    assert local.ledger() == []


def test_a_record_that_keeps_failing_ends_in_the_dead_letter_queue(local: LocalService) -> None:
    # Given a provider that fails every send with its internal error 8 (nothing sent, retry is safe)
    local.sandbox("POST", "fault-rate", {"rate": 1.0, "fault": {"kind": "error_code", "code": 8}})

    # When a message is queued
    sent = local.sqs.send_message(
        QueueUrl=local.queue_url, MessageBody=json.dumps(body_of("message-im.json"))
    )

    # Then after maxReceiveCount attempts the queue's redrive moves it to the dead-letter queue
    def dead_letter() -> dict[str, Any] | None:
        received = local.sqs.receive_message(
            QueueUrl=local.dead_letter_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        matching = [m for m in received.get("Messages", []) if m["MessageId"] == sent["MessageId"]]
        return matching[0] if matching else None

    message = eventually(dead_letter, timeout=DEAD_LETTER_SECONDS, what="the dead letter")
    local.sqs.delete_message(QueueUrl=local.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
    # ...each attempt reached the provider once, and none was sent
    assert len(local.sandbox("GET", "requests")) == names.QUEUE_MAX_RECEIVE_COUNT
    assert local.ledger() == []
    assert local.messages_in(local.queue_url) == 0


@pytest.mark.parametrize(
    "headers", [{"x-api-key": ""}, {"x-api-key": "not-the-key"}], ids=["missing", "wrong"]
)
def test_a_missing_or_wrong_api_key_is_forbidden(local: LocalService, headers: dict[str, str]) -> None:
    # Given a valid message, when it is POSTed without the right key
    request_headers = {"Content-Type": "application/json", **headers}
    if not headers["x-api-key"]:
        del request_headers["x-api-key"]
    response = local.http.request(
        "POST",
        f"{local.api_url}/messages",
        body=json.dumps(body_of("message-im.json")).encode(),
        headers=request_headers,
    )

    # Then API Gateway's own 403 answers, and the function never runs
    assert response.status == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Forbidden",
        "request_id": response.headers["x-amzn-RequestId"],
    }
    assert local.ledger() == []


def test_the_docs_page_and_the_spec_need_no_key_and_no_cdn(local: LocalService) -> None:
    # When the docs page and the spec are fetched without a key
    docs = local.http.request("GET", f"{local.api_url}/docs")
    spec = local.http.request("GET", f"{local.api_url}/openapi.json")

    # Then the page is Swagger UI with its script and styles inline: nothing loads from elsewhere
    assert docs.status == 200
    assert docs.headers["Content-Type"].startswith("text/html")
    page = docs.data.decode()
    assert "SwaggerUIBundle(" in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"@import\s+(url\()?[\"']?(https?:)?//", page, re.IGNORECASE)
    # ...and the spec describes POST /messages behind the API key
    assert spec.status == 200
    document = spec.json()
    assert "post" in document["paths"]["/messages"]
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"


def test_a_second_runner_on_the_same_port_refuses_to_start(local: LocalService) -> None:
    # When a second runner is started on the port the first one holds
    second = subprocess.run(
        [sys.executable, "-m", "local.run", f"--port={local.ports[0]}"],
        cwd=REPO,
        env={name: value for name, value in os.environ.items() if name not in RUNNER_VARIABLES},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    # Then it says the port is taken and exits non-zero, and the first one still answers
    assert second.returncode != 0
    assert f"port {local.ports[0]}" in second.stderr
    assert "already in use" in second.stderr
    assert local.http.request("GET", f"{local.api_url}/openapi.json").status == 200
