"""The emulator's other sources of the message queue, and the events its tap hands on (local.emulator).

make run provisions an SNS topic subscribed to the queue (raw delivery off) and a rule on an
`orders` bus targeting it, as a stage's snsSources / eventSources do, and the tracking backlog
queue. Under moto's mock_aws (tests/conftest.py's `aws` fixture), so these run in-process.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from gateway import names
from local import emulator
from local.emulator import Resources, accepted_events
from local.run import RunningService, banner, function_environment

# What AWS writes into a notification SQS gets with raw delivery off, and into an event a rule's
# SQS target gets (AWS's SNS and EventBridge guides).
SNS_MEMBERS = {
    "Type",
    "MessageId",
    "TopicArn",
    "Subject",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
    "MessageAttributes",
}
EVENT_MEMBERS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
MESSAGE = {
    "im_type": "IM",
    "im_sender_name": "MyShop",
    "im_text": "Code <id> from <source> at <time>",  # what moto's own templating would have replaced
    "destinations": ["+30 691 234 5678"],
}


def _bodies(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]


def test_a_message_published_to_the_topic_reaches_the_queue_in_sns_s_envelope(aws: Resources) -> None:
    # When our message is published to the topic
    published = boto3.client("sns").publish(TopicArn=aws.source_topic_arn, Message=json.dumps(MESSAGE))

    # Then the queue holds one notification document (raw delivery off) carrying it as text
    (body,) = _bodies(aws.queue_url)
    assert body["Type"] == "Notification"
    assert body["MessageId"] == published["MessageId"]
    assert body["TopicArn"] == aws.source_topic_arn
    assert json.loads(body["Message"]) == MESSAGE
    assert set(body) <= SNS_MEMBERS
    assert aws.source_topic_arn.endswith(f":{emulator.SOURCE_TOPIC_NAME}")


def test_an_event_on_the_orders_bus_reaches_the_queue_whole(aws: Resources) -> None:
    # When events are put on the orders bus: ours, and one of another source
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": aws.source_bus_name,
                "Source": aws.source_event_source,
                "DetailType": "Order Shipped",
                "Detail": json.dumps(MESSAGE),
            },
            {
                "EventBusName": aws.source_bus_name,
                "Source": "someone.else",
                "DetailType": "Order Shipped",
                "Detail": json.dumps(MESSAGE),
            },
        ]
    )

    # Then the queue holds only ours: the whole event, every member AWS writes (account included),
    # in AWS's order, the detail untouched (moto's template would replace <id>, <source>, <time>)
    (body,) = _bodies(aws.queue_url)
    assert list(body) == EVENT_MEMBERS
    assert body["id"] == answer["Entries"][0]["EventId"]
    assert (body["source"], body["detail-type"], body["version"]) == ("local.orders", "Order Shipped", "0")
    assert body["account"] == "123456789012"
    assert body["detail"] == MESSAGE


def test_a_rule_with_an_input_transformer_keeps_moto_s_templating(aws: Resources) -> None:
    # Given a rule on the orders bus whose target transforms the event
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="transformed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="t", EventBusName="orders", EventPattern=json.dumps({"source": ["local.orders"]}))
    events.put_targets(
        Rule="t",
        EventBusName="orders",
        Targets=[
            {
                "Id": "t",
                "Arn": arn,
                "InputTransformer": {
                    "InputPathsMap": {"text": "$.detail.im_text"},
                    "InputTemplate": '{"text": "<text>"}',
                },
            }
        ],
    )

    # When an event is put
    events.put_events(
        Entries=[
            {
                "EventBusName": "orders",
                "Source": "local.orders",
                "DetailType": "x",
                "Detail": '{"im_text": "hi"}',
            }
        ]
    )

    # Then that target gets the transformed input
    assert _bodies(queue_url) == [{"text": "hi"}]


def test_the_tracking_backlog_queue_is_provisioned_and_given_to_the_functions(aws: Resources) -> None:
    # Then the queue exists under its name, keeping messages for the stack's retention
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=names.TRACKING_BACKLOG_QUEUE_NAME)["QueueUrl"]
    assert url == aws.tracking_backlog_queue_url
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert (
        int(attributes["Attributes"]["MessageRetentionPeriod"])
        == names.TRACKING_BACKLOG_RETENTION_DAYS * 86_400
    )

    # And the functions' environment names it
    environment = function_environment({}, "http://127.0.0.1:1", "http://127.0.0.1:2/", aws, verbose=False)
    assert environment[names.ENV_TRACKING_BACKLOG_QUEUE_URL] == url


def test_the_banner_shows_the_topic_the_bus_and_the_webhooks() -> None:
    service = RunningService(
        api_url="http://127.0.0.1:3000",
        api_key="k",
        aws_endpoint_url="http://127.0.0.1:3001",
        queue_url="q",
        dead_letter_queue_url="d",
        event_bus_name=names.EVENT_BUS_NAME,
        provider_url="http://127.0.0.1:3002/",
        sandboxed=True,
        webhooks=("http://127.0.0.1:8080/hook  (every event POSTed as JSON; with X-Api-Key)",),
        source_topic_arn="arn:aws:sns:eu-central-1:123456789012:viber-gateway-local-orders",
        source_bus_name="orders",
        source_event_source="local.orders",
    )

    shown = banner(service, aws_port_is_default=True)

    assert "SNS topic      arn:aws:sns:eu-central-1:123456789012:viber-gateway-local-orders" in shown
    assert "Orders bus     orders  (events of source local.orders" in shown
    assert "Webhook        http://127.0.0.1:8080/hook" in shown
    assert "sns publish --topic-arn arn:aws:sns:eu-central-1:123456789012:viber-gateway-local-orders" in shown
    # ...and the put-events example's entries are JSON whose Detail is the example message, as text
    line = next(line for line in shown.splitlines() if "events put-events" in line)
    (entry,) = json.loads(line.split("--entries '", 1)[1].rstrip("'"))
    assert (entry["EventBusName"], entry["Source"]) == ("orders", "local.orders")
    assert "destinations" in json.loads(entry["Detail"])


# --- The tap's events ---------------------------------------------------------------------------


def _put_events(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"Entries": list(entries)}).encode()


def test_the_tap_hands_on_whole_events_with_the_bus_s_ids() -> None:
    request = _put_events(
        {
            "Source": names.EVENT_SOURCE,
            "DetailType": "Message Accepted",
            "Detail": '{"smsid": 1}',
            "EventBusName": f"arn:aws:events:eu-central-1:123456789012:event-bus/{names.EVENT_BUS_NAME}",
            "Resources": ["arn:x"],
        },
        {"Source": "x", "DetailType": "y", "Detail": "not json"},
        {"Source": "a", "DetailType": "b", "Detail": "{}", "Time": 1_796_600_000},
    )
    answer = json.dumps(
        {"Entries": [{"EventId": "one"}, {"ErrorCode": "MalformedDetail"}, {"EventId": "three"}]}
    ).encode()

    first, third = accepted_events(request, answer, now=1_796_602_739.5)

    assert first == {
        "version": "0",
        "id": "one",
        "detail-type": "Message Accepted",
        "source": names.EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-12-07T00:18:59Z",
        "region": "eu-central-1",
        "resources": ["arn:x"],
        "detail": {"smsid": 1},
        "event-bus-name": names.EVENT_BUS_NAME,
    }
    assert (third["id"], third["time"], third["event-bus-name"]) == ("three", "2026-12-06T23:33:20Z", None)


@pytest.mark.parametrize(
    ("request_body", "answer"), [(b"not json", b"{}"), (b"{}", b"<xml/>"), (b"[]", b"[]")]
)
def test_what_the_tap_cannot_read_hands_on_nothing(request_body: bytes, answer: bytes) -> None:
    assert accepted_events(request_body, answer) == []
