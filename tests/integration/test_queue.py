"""The SQS handler: partial batch responses, each good record sent once."""

from __future__ import annotations

import json

from gateway import names
from queue_handler import handler
from sandbox import Fault
from tests.conftest import TEST_TOKEN, load_event, reset_process_caches


def test_two_bad_records_of_five_are_the_only_failures(gateway_env, lambda_context, capsys) -> None:
    # Given the sample batch (records 2 and 4 are bad) and no dead-letter queue URL configured
    event = load_event("sqs-batch.json")
    ids = [record["messageId"] for record in event["Records"]]

    # When the queue handler processes it
    answer = handler(event, lambda_context)

    # Then exactly those two are reported, and the three good ones were sent once each
    assert answer == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[3]}]}
    sent = sorted(entry.payload["destinations"] for entry in gateway_env.ledger)
    assert sent == [["306911111001"], ["306911111003"], ["306911111005"]]
    assert TEST_TOKEN not in capsys.readouterr().out


def test_a_provider_failure_fails_only_its_record(gateway_env, lambda_context, monkeypatch) -> None:
    # Given records sent one at a time, and a provider that fails the first call of a three-record batch
    monkeypatch.setenv(names.ENV_QUEUE_RECORD_CONCURRENCY, "1")
    reset_process_caches()
    event = load_event("sqs-batch.json")
    event["Records"] = [event["Records"][0], event["Records"][2], event["Records"][4]]
    gateway_env.add_fault(Fault(kind="error_code", code=8))  # first call fails
    ids = [record["messageId"] for record in event["Records"]]

    # When processed
    answer = handler(event, lambda_context)

    # Then only that record is reported; its neighbours were sent
    assert answer == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    assert len(gateway_env.ledger) == 2
    assert json.loads(event["Records"][0]["body"])["destinations"] == ["+30 691 111 1001"]


IM_BODY = {"im_type": "IM", "im_sender_name": "MyShop", "im_text": "x", "destinations": ["306912345678"]}


def _dead_letters(queue_url: str) -> list[dict]:
    import boto3

    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return answer.get("Messages", [])


def _record(body: dict | str, message_id: str, attributes: dict | None = None) -> dict:
    event = load_event("sqs-batch.json")
    record = dict(event["Records"][0])
    record["messageId"] = message_id
    record["body"] = body if isinstance(body, str) else json.dumps(body)
    record["messageAttributes"] = {
        name: {"stringValue": value, "dataType": "String"} for name, value in (attributes or {}).items()
    }
    return record


def test_permanent_failures_go_to_the_dead_letter_queue_with_the_reason(
    gateway_env, lambda_context, queues
) -> None:
    # Given the sample batch, with the dead-letter queue known to the function
    event = load_event("sqs-batch.json")
    ids = [record["messageId"] for record in event["Records"]]

    # When processed
    answer = handler(event, lambda_context)

    # Then the two bad records are not retried but parked with why, and removed from the batch
    assert answer == {"batchItemFailures": []}
    parked = {
        m["MessageAttributes"]["SourceMessageId"]["StringValue"]: m
        for m in _dead_letters(queues["dead_letter"])
    }
    assert set(parked) == {ids[1], ids[3]}
    assert parked[ids[1]]["MessageAttributes"]["ErrorType"]["StringValue"] == "malformed-request"
    assert parked[ids[3]]["MessageAttributes"]["ErrorType"]["StringValue"] == "invalid-request"
    assert parked[ids[3]]["Body"] == event["Records"][3]["body"]
    assert len(gateway_env.ledger) == 3


def test_provider_rejection_is_parked_with_the_provider_code(gateway_env, lambda_context, queues) -> None:
    gateway_env.add_fault(Fault(kind="error_code", code=56))
    event = {
        "Records": [
            _record(
                IM_BODY,
                "m-56",
            )
        ]
    }
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert attributes["ErrorType"] == "rejected-by-provider"
    assert attributes["ProviderCode"] == "56"
    assert TEST_TOKEN not in json.dumps(parked)


def test_transient_failures_are_retried_not_parked(gateway_env, lambda_context, queues) -> None:
    # Given the provider unavailable (HTTP 429)
    gateway_env.add_fault(Fault(kind="http_status", status=429))
    event = {
        "Records": [
            _record(
                IM_BODY,
                "m-429",
            )
        ]
    }

    # Then the record is left to the queue's backoff, and nothing is parked
    assert handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m-429"}]}
    assert _dead_letters(queues["dead_letter"]) == []


def test_uncertain_outcome_is_parked_and_its_replay_is_not_resent(
    gateway_env, lambda_context, queues
) -> None:
    # Given a send whose answer is lost after the provider accepted it
    gateway_env.add_fault(Fault(kind="drop", after_processing=True))
    assert handler({"Records": [_record(IM_BODY, "m-lost")]}, lambda_context) == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert attributes["ErrorType"] == "outcome-unknown"

    # When an operator replays the parked message (it arrives with a new message id)
    replay = _record(parked["Body"], "m-replayed", attributes)
    handler({"Records": [replay]}, lambda_context)

    # Then it is not sent again: the provider saw one request
    assert len(gateway_env.requests) == 1


def test_a_redelivered_record_is_not_sent_again(gateway_env, lambda_context, queues) -> None:
    # Given a record that was sent, but whose deletion from the queue was lost
    assert handler({"Records": [_record(IM_BODY, "m-1")]}, lambda_context) == {"batchItemFailures": []}

    # When SQS delivers the same message again
    answer = handler({"Records": [_record(IM_BODY, "m-1")]}, lambda_context)

    # Then it succeeds without a second send
    assert answer == {"batchItemFailures": []}
    assert len(gateway_env.ledger) == 1


def test_explicit_keys_dedupe_different_messages(gateway_env, lambda_context, queues, monkeypatch) -> None:
    # Given the same message queued twice by a producer, with its key as attribute and as body field
    by_attribute = _record(IM_BODY, "m-a", {"IdempotencyKey": "order-7"})
    by_field = _record({**IM_BODY, "idempotency_key": "order-7"}, "m-b")
    # One record at a time: moto's in-process DynamoDB does not make a conditional write atomic
    # across threads (DynamoDB does), so two threads could both "win" the key here, never in AWS.
    monkeypatch.setenv(names.ENV_QUEUE_RECORD_CONCURRENCY, "1")
    reset_process_caches()

    # When both are processed in one batch
    first = handler({"Records": [by_attribute, by_field]}, lambda_context)

    # Then one was sent; the other replayed it, or (if it came while the first was in progress) waits a retry
    assert first["batchItemFailures"] in ([], [{"itemIdentifier": "m-b"}], [{"itemIdentifier": "m-a"}])
    retried = [
        r
        for r in (by_attribute, by_field)
        if {"itemIdentifier": r["messageId"]} in first["batchItemFailures"]
    ]
    if retried:  # Lambda never sends an empty batch, so only when one waits for a retry
        assert handler({"Records": retried}, lambda_context) == {"batchItemFailures": []}
    assert len(gateway_env.ledger) == 1


def test_one_boto3_session_serves_the_secret_the_store_and_the_dead_letters(
    gateway_env, lambda_context, queues, monkeypatch
) -> None:
    # Given a fresh container, counting the boto3 sessions it makes
    import boto3

    made: list[object] = []
    real_session = boto3.session.Session

    def counted_session(*args, **kwargs):
        session = real_session(*args, **kwargs)
        made.append(session)
        return session

    monkeypatch.setattr(boto3.session, "Session", counted_session)
    event = load_event("sqs-batch.json")

    # When a batch reads the token, uses the idempotency table and parks two records
    answer = handler(event, lambda_context)

    # Then all of it went through one session (each more costs a cold start tens of milliseconds)
    assert answer == {"batchItemFailures": []}
    assert len(_dead_letters(queues["dead_letter"])) == 2
    assert len(gateway_env.ledger) == 3
    assert len(made) == 1
