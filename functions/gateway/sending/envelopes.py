"""Other systems' envelopes around a queued message: an SNS notification, an EventBridge event.

A topic subscribed to the queue with raw delivery off (SNS's default) delivers a
notification whose `Message` is the text that was published; a rule with the queue as
target delivers the whole event, the message in its `detail`. Either is unwrapped, and its
own id (the notification's MessageId, the event's id) becomes the message's idempotency
identity when it carries no key: SNS and EventBridge deliver at least once, and a
notification delivered twice is one message, sent once.

What makes an envelope is AWS's documented shape, all of it: the type, ids, times and
their kinds, and no member AWS does not write. Our own messages forbid unknown fields, so
no valid message is one; a body that merely has a `Message` or `detail` member is read as
a message, and refused naming that member.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.fields import FieldError
from gateway.sending.body import read_json_object

# The members of an SNS notification delivered to SQS with raw delivery off (SNS's JSON format);
# SequenceNumber and MessageGroupId are a FIFO topic's.
SNS_REQUIRED = frozenset({"Type", "MessageId", "TopicArn", "Message", "Timestamp"})
SNS_MEMBERS = SNS_REQUIRED | {
    "Subject",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
    "MessageAttributes",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
}
# The members of an EventBridge event as a rule's SQS target gets it (replay-name: an archive's replay).
EVENT_REQUIRED = frozenset(
    {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
)
EVENT_MEMBERS = EVENT_REQUIRED | {"replay-name"}


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """The message inside an envelope, and what the envelope says of it."""

    document: dict[str, Any]  # the message itself, as a queue body would hold it
    identity: str  # the envelope's own id, namespaced: "sns:<MessageId>", "event:<id>"
    attribute_key: str | None  # an SNS message attribute IdempotencyKey
    source: str  # where the message is, for errors: "Message" or "detail"


def unwrap(document: dict[str, Any]) -> Unwrapped | None:
    """The message `document` carries, if it is an SNS notification or an EventBridge event; else None.

    GatewayError (with the inner message's problem) when it is an envelope whose message is not
    one JSON object.
    """
    if _is_sns_notification(document):
        inner = _inner(lambda: read_json_object(document["Message"]), "Message")
        return Unwrapped(
            inner,
            f"sns:{document['MessageId']}",
            _sns_attribute_key(document.get("MessageAttributes")),
            "Message",
        )
    if _is_event(document):
        detail = document["detail"]
        if not isinstance(detail, dict):
            raise GatewayError(
                Failure.MALFORMED_REQUEST,
                "The EventBridge event's detail must be the message: one JSON object.",
            )
        return Unwrapped(detail, f"event:{document['id']}", None, "detail")
    return None


def _is_sns_notification(document: dict[str, Any]) -> bool:
    if document.get("Type") != names.SNS_NOTIFICATION_TYPE:
        return False
    if not SNS_REQUIRED <= document.keys() <= SNS_MEMBERS:
        return False
    topic = document["TopicArn"]
    return (
        all(isinstance(document[member], str) for member in SNS_REQUIRED)
        and bool(document["MessageId"])
        and topic.startswith("arn:")
        and topic.split(":")[2:3] == ["sns"]
    )


def _is_event(document: dict[str, Any]) -> bool:
    if not EVENT_REQUIRED <= document.keys() <= EVENT_MEMBERS:
        return False
    texts = ("version", "id", "detail-type", "source", "account", "time", "region")
    return (
        document["version"] == "0"
        and all(isinstance(document[member], str) for member in texts)
        and bool(document["id"])
        and isinstance(document["resources"], list)
    )


def _inner(read: Any, source: str) -> dict[str, Any]:
    try:
        inner: dict[str, Any] = read()
    except GatewayError as error:
        raise GatewayError(
            error.failure, f"The SNS notification's {source} is not a message: {error.detail}"
        ) from None
    return inner


def _sns_attribute_key(attributes: object) -> str | None:
    """The notification's IdempotencyKey message attribute (String, or Binary holding ASCII text)."""
    if not isinstance(attributes, dict):
        return None
    attribute = attributes.get(names.QUEUE_IDEMPOTENCY_ATTRIBUTE)
    if not isinstance(attribute, dict):
        return None
    value = attribute.get("Value")
    if not isinstance(value, str):
        return None
    if attribute.get("Type") != "Binary":
        return value
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise GatewayError(
            Failure.INVALID_REQUEST,
            "The notification's message attribute is not usable; see errors.",
            errors=[
                FieldError(
                    f"MessageAttributes.{names.QUEUE_IDEMPOTENCY_ATTRIBUTE}",
                    "a Binary attribute must hold ASCII text",
                )
            ],
        ) from None
