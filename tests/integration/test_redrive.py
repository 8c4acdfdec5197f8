"""Replay: dead letters move back to the queue and are not sent twice."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3

from queue_handler import handler
from sandbox import Fault
from tests.integration.test_queue import IM_BODY as BODY
from tests.integration.test_queue import _record
from tools import redrive


def _receive_all(queue_url: str) -> list[dict]:
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )
    return answer.get("Messages", [])


def _as_lambda_records(messages: list[dict]) -> dict:
    return {
        "Records": [
            _record(
                m["Body"],
                m["MessageId"],
                {name: value["StringValue"] for name, value in m.get("MessageAttributes", {}).items()},
            )
            for m in messages
        ]
    }


def test_redrive_moves_dead_letters_back_and_replay_is_safe(
    gateway_env, lambda_context, queues, capsys
) -> None:
    # Given one record parked because the provider was out of reach of the caller's data (sender not approved)
    # and one parked with an unknown outcome (the provider did send it)
    gateway_env.add_fault(Fault(kind="error_code", code=56))
    handler({"Records": [_record(BODY, "m-rejected")]}, lambda_context)
    gateway_env.add_fault(Fault(kind="drop", after_processing=True))
    handler({"Records": [_record({**BODY, "im_text": "y"}, "m-uncertain")]}, lambda_context)
    assert len(gateway_env.ledger) == 1

    # When the operator fixes the cause and runs the redrive (moto has no message-move task)
    assert redrive.main([]) == 0
    printed = capsys.readouterr().out
    assert "one by one" in printed
    assert "moved     2  in all" in printed

    # Then both are back on the queue without their failure reasons, the dead-letter queue is empty
    back = _receive_all(queues["queue"])
    assert len(back) == 2
    assert all("ErrorType" not in m.get("MessageAttributes", {}) for m in back)
    assert _receive_all(queues["dead_letter"]) == []

    # And processing them sends the rejected one now, but not the one that was already sent
    assert handler(_as_lambda_records(back), lambda_context) == {"batchItemFailures": []}
    texts = sorted(json.dumps(entry.payload["im_text"]) for entry in gateway_env.ledger)
    assert texts == ['"x"', '"y"']


def test_redrive_can_move_only_some_error_types(gateway_env, lambda_context, queues, capsys) -> None:
    # Given a rejected record and a malformed one in the dead-letter queue
    gateway_env.add_fault(Fault(kind="error_code", code=56))
    handler({"Records": [_record(BODY, "m-1"), _record("{oops", "m-2")]}, lambda_context)

    # When only the provider rejections are moved
    assert redrive.main(["--error-type", "rejected-by-provider"]) == 0

    # Then the malformed one stays parked
    assert [m["Body"] for m in _receive_all(queues["queue"])] == [json.dumps(BODY)]
    [left] = _receive_all(queues["dead_letter"])
    assert left["MessageAttributes"]["ErrorType"]["StringValue"] == "malformed-request"


def _consume_until(stop: threading.Event, queue_url: str, lambda_context: Any) -> None:
    """The queue's event source mapping, as local.poller plays it: receive, invoke, delete."""
    from local.poller import lambda_record

    sqs = boto3.client("sqs")
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            stop.wait(0.01)
            continue
        answer = handler(
            {"Records": [lambda_record(m, "arn:aws:sqs:eu-central-1:123:q") for m in messages]},
            lambda_context,
        )
        failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_running_consumer_that_parks_again_cannot_keep_the_redrive_going(
    gateway_env, lambda_context, queues
) -> None:
    # Given 30 dead letters with an unknown outcome, keyed by their SQS message ids (no IdempotencyKey)
    for number in range(30):
        gateway_env.add_fault(Fault(kind="drop", after_processing=True))
        handler(
            {"Records": [_record({**BODY, "im_text": f"lost {number}"}, f"m-lost-{number}")]}, lambda_context
        )
    sqs = boto3.client("sqs")
    waiting = sqs.get_queue_attributes(
        QueueUrl=queues["dead_letter"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert waiting["Attributes"]["ApproximateNumberOfMessages"] == "30"

    # When the redrive runs while the queue function consumes the queue (and parks each replay again)
    stop = threading.Event()
    consumer = threading.Thread(target=_consume_until, args=(stop, queues["queue"], lambda_context))
    consumer.start()
    try:
        queues_found = redrive.find_queues(sqs, queues["queue"], queues["dead_letter"])
        run = redrive.move_one_by_one(sqs, queues_found, None)
    finally:
        time.sleep(0.5)
        stop.set()
        consumer.join(timeout=30)

    # Then it finishes having moved each dead letter once, and nothing was sent a second time
    assert sum(run.moved.values()) == 30
    assert run.interrupted is False
    assert len(gateway_env.requests) == 30


def test_an_interrupted_redrive_finishes_the_message_in_hand(gateway_env, lambda_context, queues) -> None:
    # Given three parked records
    gateway_env.add_fault(
        Fault(kind="error_code", code=56),
        Fault(kind="error_code", code=56),
        Fault(kind="error_code", code=56),
    )
    handler({"Records": [_record({**BODY, "im_text": f"t{n}"}, f"m-{n}") for n in range(3)]}, lambda_context)
    sqs = boto3.client("sqs")
    queues_found = redrive.find_queues(sqs, queues["queue"], queues["dead_letter"])

    # When Ctrl-C comes right after the first message was sent to the queue (before its delete)
    stop = threading.Event()
    sqs.meta.events.register("after-call.sqs.SendMessage", lambda **_: stop.set())
    run = redrive.move_one_by_one(sqs, queues_found, None, stop=stop)

    # Then that message was also deleted from the dead-letter queue: it is in exactly one queue
    assert run.interrupted is True
    assert sum(run.moved.values()) == 1
    back = _receive_all(queues["queue"])
    left = _receive_all(queues["dead_letter"])
    assert len(back) == 1
    assert len(left) == 2
    assert back[0]["Body"] not in {m["Body"] for m in left}
