"""Long destination lists: split into provider requests, sent concurrently, answered in order, exactly."""

from __future__ import annotations

import json

import boto3
import pytest

from gateway import names
from queue_handler import handler as queue_handler
from sandbox import Fault
from tests.conftest import reset_process_caches
from tests.integration.test_api_send import PROBLEM, post, valid_im
from tests.integration.test_idempotency import REPLAYED, post_with_key
from tests.integration.test_queue import _record

NUMBERS = [f"3069100000{i:02d}" for i in range(1, 6)]


@pytest.fixture
def chunks_of_two(gateway_env, monkeypatch):
    monkeypatch.setenv(names.ENV_PROVIDER_CHUNK_SIZE, "2")
    reset_process_caches()
    return gateway_env


@pytest.fixture
def one_at_a_time(chunks_of_two, monkeypatch):
    """Chunks sent one after another, so a queued fault hits a known chunk."""
    monkeypatch.setenv(names.ENV_PROVIDER_MAX_CONCURRENCY, "1")
    reset_process_caches()
    return chunks_of_two


def test_a_long_list_is_split_and_answered_in_order(chunks_of_two, lambda_context) -> None:
    # Given five destinations and provider requests of two
    status, _, body = post(valid_im(destinations=NUMBERS), lambda_context)

    # Then three requests reached the provider, together holding each number once
    assert status == 200
    sent = [entry.payload["destinations"] for entry in chunks_of_two.ledger]
    assert sorted(d for chunk in sent for d in chunk) == NUMBERS
    assert sorted(len(chunk) for chunk in sent) == [1, 2, 2]
    # And the answer lists them in request order, with each request's submission id
    assert [m["destination"] for m in body["messages"]] == NUMBERS
    assert len(body["submission_ids"]) == 3
    ids = {
        entry.smsids[i]: d
        for entry in chunks_of_two.ledger
        for i, d in enumerate(entry.payload["destinations"])
    }
    assert all(ids[m["smsid"]] == m["destination"] for m in body["messages"])


def test_a_partial_send_says_exactly_what_was_sent(one_at_a_time, lambda_context) -> None:
    # Given the provider failing the first of three requests (nothing sent by that one)
    one_at_a_time.add_fault(Fault(kind="error_code", code=8))

    # When the five-number message is posted
    status, headers, body = post(valid_im(destinations=NUMBERS), lambda_context)

    # Then the answer is a problem that lists the sent and the unsent destinations
    assert status == 502
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "partially-sent"
    assert [m["destination"] for m in body["messages"]] == NUMBERS[2:]
    assert body["not_sent"] == [{"destination": d, "type": PROBLEM + "provider-failed"} for d in NUMBERS[:2]]
    assert "3 of 5 destinations were sent" in body["detail"]
    assert len(one_at_a_time.ledger) == 2


def test_a_partial_send_is_replayed_not_resent(one_at_a_time, lambda_context) -> None:
    # Given a partial send under an idempotency key
    one_at_a_time.add_fault(Fault(kind="error_code", code=8))
    first = post_with_key(valid_im(destinations=NUMBERS), "bulk-1", lambda_context)
    assert first[0] == 502

    # When the caller retries with the same key
    status, headers, body = post_with_key(valid_im(destinations=NUMBERS), "bulk-1", lambda_context)

    # Then it gets the same account of what was sent, and nothing is sent again
    assert (status, body) == (502, first[2])
    assert headers[REPLAYED] == "true"
    assert len(one_at_a_time.requests) == 3


def test_the_queue_parks_what_a_partial_send_did_not_send(one_at_a_time, lambda_context, queues) -> None:
    # Given a queued five-number message whose first provider request fails
    one_at_a_time.add_fault(Fault(kind="error_code", code=8))
    record = _record(valid_im(destinations=NUMBERS), "m-bulk")

    # When the queue handler processes it
    assert queue_handler({"Records": [record]}, lambda_context) == {"batchItemFailures": []}

    # Then the unsent part waits in the dead-letter queue with its reason and a key of its own
    sqs = boto3.client("sqs")
    [parked] = sqs.receive_message(
        QueueUrl=queues["dead_letter"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert json.loads(parked["Body"])["destinations"] == NUMBERS[:2]
    assert attributes["ErrorType"] == "provider-failed"
    assert attributes["IdempotencyKey"] == "sqs-message:m-bulk#not-sent-provider-failed"

    # And replaying it twice sends the rest once; the original's redelivery sends nothing
    replay = _record(parked["Body"], "m-replay", attributes)
    assert queue_handler({"Records": [replay]}, lambda_context) == {"batchItemFailures": []}
    assert queue_handler({"Records": [dict(replay, messageId="m-replay-2")]}, lambda_context) == {
        "batchItemFailures": []
    }
    assert queue_handler({"Records": [record]}, lambda_context) == {"batchItemFailures": []}
    sent = sorted(d for entry in one_at_a_time.ledger for d in entry.payload["destinations"])
    assert sent == NUMBERS
