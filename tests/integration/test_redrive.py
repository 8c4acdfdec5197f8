"""Replay: dead letters move back to the queue and are not sent twice."""

from __future__ import annotations

import json

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
