"""Messages other systems deliver through SNS or EventBridge: unwrapped, sent once, parked with reasons.

The envelopes are AWS's documented shapes (events/sqs-sns-notification.json: an SNS
notification as an SQS subscription with raw delivery off receives it;
events/sqs-eventbridge-event.json: an event as a rule's SQS target receives it), through
the real queue handler, moto's queues and the sandbox.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import boto3
import pytest

from queue_handler import handler
from sandbox import ProviderSandbox
from tests.conftest import LambdaContext, load_event

PROBLEM = "urn:viber-gateway:problem:"
MESSAGE = {
    "im_type": "IM",
    "im_sender_name": "MyShop",
    "im_text": "Shipped.",
    "destinations": ["306912345678"],
}


def sns_record(message_id: str = "m-1", **changes: Any) -> dict[str, Any]:
    """The sample's SQS record, its notification changed by `changes` (None removes a member)."""
    record = copy.deepcopy(load_event("sqs-sns-notification.json")["Records"][0])
    notification = json.loads(record["body"])
    for member, value in changes.items():
        if value is None:
            notification.pop(member, None)
        else:
            notification[member] = value
    record.update(messageId=message_id, body=json.dumps(notification))
    return record


def event_record(message_id: str = "m-1", **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(load_event("sqs-eventbridge-event.json")["Records"][0])
    event = json.loads(record["body"])
    for member, value in changes.items():
        if value is None:
            event.pop(member, None)
        else:
            event[member] = value
    record.update(messageId=message_id, body=json.dumps(event))
    return record


def plain_record(
    body: Any, message_id: str = "m-1", attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
    record.update(messageId=message_id, body=body if isinstance(body, str) else json.dumps(body))
    record["messageAttributes"] = attributes or {}
    return record


def run(context: LambdaContext, *records: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = handler({"Records": list(records)}, context)
    return answer


def parked(queue_url: str) -> list[dict[str, Any]]:
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return answer.get("Messages", [])


def sent(provider: ProviderSandbox) -> list[list[str]]:
    return [entry.payload["destinations"] for entry in provider.ledger]


def test_aws_sample_sns_notification_is_unwrapped_and_sent(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    # When the queue gets AWS's sample notification carrying our message
    answer = run(lambda_context, sns_record())
    # Then the message inside is sent, once, and nothing is parked
    assert answer == {"batchItemFailures": []}
    assert sent(gateway_env) == [["306911111001"]]
    assert parked(queues["dead_letter"]) == []


def test_aws_sample_eventbridge_event_is_unwrapped_and_sent(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    assert run(lambda_context, event_record()) == {"batchItemFailures": []}
    assert sent(gateway_env) == [["306911111002"]]


def test_a_redelivered_notification_is_sent_once(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    # Given one SNS notification delivered twice (two SQS messages, one MessageId)
    run(lambda_context, sns_record("sqs-1"))
    run(lambda_context, sns_record("sqs-2"))
    # Then it was sent once
    assert len(gateway_env.ledger) == 1
    # And two notifications of the same text (two MessageIds) are two messages
    run(lambda_context, sns_record("sqs-3", MessageId="another-notification"))
    assert len(gateway_env.ledger) == 2


def test_a_redelivered_event_is_sent_once_and_another_event_is_another_message(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    run(lambda_context, event_record("sqs-1"))
    run(lambda_context, event_record("sqs-2"))
    assert len(gateway_env.ledger) == 1
    run(lambda_context, event_record("sqs-3", id="7b8e8feb-0000-4cf7-a9f1-bf3703467718"))
    assert len(gateway_env.ledger) == 2


def test_a_key_in_the_message_or_the_notifications_attributes_wins_over_the_envelope_id(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    # Two notifications (two MessageIds) of one message under one key: sent once
    keyed = json.dumps({**MESSAGE, "idempotency_key": "order-7"})
    run(lambda_context, sns_record("a", MessageId="n-1", Message=keyed))
    run(lambda_context, sns_record("b", MessageId="n-2", Message=keyed))
    assert len(gateway_env.ledger) == 1
    # The same with the key as an SNS message attribute, String or Binary
    attributes = {"IdempotencyKey": {"Type": "String", "Value": "order-8"}}
    binary = {"IdempotencyKey": {"Type": "Binary", "Value": base64.b64encode(b"order-8").decode()}}
    run(
        lambda_context,
        sns_record("c", MessageId="n-3", Message=json.dumps(MESSAGE), MessageAttributes=attributes),
    )
    run(
        lambda_context,
        sns_record("d", MessageId="n-4", Message=json.dumps(MESSAGE), MessageAttributes=binary),
    )
    assert len(gateway_env.ledger) == 2


def test_raw_delivery_on_is_our_json_itself_and_is_sent(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    # With raw delivery on, SNS puts the published text in the body and its attributes on the message
    attributes = {"IdempotencyKey": {"stringValue": "raw-1", "dataType": "String"}}
    run(lambda_context, plain_record(MESSAGE, "r-1", attributes))
    run(lambda_context, plain_record(MESSAGE, "r-2", attributes))
    assert len(gateway_env.ledger) == 1


def test_an_envelope_whose_message_is_invalid_is_parked_with_the_inner_messages_errors(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    # Given a notification whose message has a bad number, and an event whose detail lacks the text
    bad_number = json.dumps({**MESSAGE, "destinations": ["12"]})
    no_text = {key: value for key, value in MESSAGE.items() if key != "im_text"}
    run(lambda_context, sns_record("s-1", Message=bad_number), event_record("e-1", detail=no_text))
    # Then nothing is sent, and both are parked as invalid, naming the inner fields
    assert gateway_env.ledger == []
    letters = {
        m["MessageAttributes"]["SourceMessageId"]["StringValue"]: m for m in parked(queues["dead_letter"])
    }
    assert set(letters) == {"s-1", "e-1"}
    for message_id, field in (("s-1", "destinations[0]"), ("e-1", "im_text")):
        attributes = letters[message_id]["MessageAttributes"]
        assert attributes["ErrorType"]["StringValue"] == "invalid-request"
        assert field in attributes["ErrorDetail"]["StringValue"]
    # And the envelope is kept as it came, so a replay unwraps it again under the same identity
    assert json.loads(letters["s-1"]["Body"])["Type"] == "Notification"


def test_a_notification_whose_message_is_not_json_is_parked_as_malformed(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    run(lambda_context, sns_record("s-1", Message="Hello world!"))
    [letter] = parked(queues["dead_letter"])
    assert letter["MessageAttributes"]["ErrorType"]["StringValue"] == "malformed-request"
    assert "Message" in letter["MessageAttributes"]["ErrorDetail"]["StringValue"]
    assert gateway_env.ledger == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**MESSAGE, "Message": json.dumps(MESSAGE)}, "Message"),
        ({**MESSAGE, "detail": MESSAGE}, "detail"),
        ({"Message": json.dumps(MESSAGE)}, "Message"),
        ({"detail": MESSAGE}, "detail"),
        # An SNS look-alike missing what AWS always writes (no MessageId, no TopicArn)
        (
            {"Type": "Notification", "Message": json.dumps(MESSAGE), "Timestamp": "2026-12-06T09:54:06Z"},
            "Type",
        ),
        # An event look-alike without version and account
        ({"id": "x", "detail-type": "t", "source": "s", "detail": MESSAGE}, "id"),
    ],
    ids=[
        "Message-beside-fields",
        "detail-beside-fields",
        "Message-alone",
        "detail-alone",
        "sns-partial",
        "event-partial",
    ],
)
def test_a_body_that_merely_has_a_message_or_detail_member_is_not_an_envelope(
    gateway_env: ProviderSandbox,
    lambda_context: LambdaContext,
    queues: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    run(lambda_context, plain_record(body, "l-1"))
    assert gateway_env.ledger == []
    [letter] = parked(queues["dead_letter"])
    assert letter["MessageAttributes"]["ErrorType"]["StringValue"] == "invalid-request"
    assert f"{field}: is not a known field" in letter["MessageAttributes"]["ErrorDetail"]["StringValue"]


def test_an_event_from_an_archive_replay_is_an_envelope_too(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    run(lambda_context, event_record("x-1", **{"replay-name": "orders-replay"}))
    assert len(gateway_env.ledger) == 1
