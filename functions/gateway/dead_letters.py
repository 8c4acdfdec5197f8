"""Parking a queue record in the dead-letter queue at once, with the reason, for an operator."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from gateway import names
from gateway.aws import aws_session
from gateway.failures import Failure, GatewayError

# SQS allows 10 message attributes and 256 KB; the reason fits in a few short ones.
MAX_ATTRIBUTE_TEXT = 1024
SOURCE_MESSAGE_ID_ATTRIBUTE = "SourceMessageId"


_client_lock = threading.Lock()


def remainder_key(store_key: str, failure: Failure) -> str:
    """The IdempotencyKey of the part of a partial send that failed this way, parked as a message of its own.

    Deterministic, so a redelivered original parks the same remainder under the same key, and the
    reconciler finds the outcome-unknown part of a partial send by it.
    """
    return f"{store_key.removeprefix('key:')}#not-sent-{failure.info.slug}"


@cache
def sqs_client() -> Any:
    # Made on the first parking, not at cold start: most batches park nothing. The lock
    # because records park from several threads and a boto3 session is not thread-safe.
    with _client_lock:
        return aws_session().client("sqs")


def park(
    queue_url: str, *, body: str, message_id: str, explicit_key: str | None, error: GatewayError
) -> None:
    """Send the record's body to the dead-letter queue with why it failed and how to replay it safely."""
    # The field errors too: an operator reading the dead letter must see what to fix.
    detail = " ".join([error.detail, *(f"{e.field}: {e.message};" for e in error.errors)])
    attributes = {
        "ErrorType": error.failure.info.slug,
        "ErrorDetail": detail[:MAX_ATTRIBUTE_TEXT],
        # A replay keeps the record's idempotency identity, so what was sent is not sent again.
        SOURCE_MESSAGE_ID_ATTRIBUTE: message_id,
    }
    if explicit_key is not None:
        attributes[names.QUEUE_IDEMPOTENCY_ATTRIBUTE] = explicit_key
    if error.provider_code is not None:
        attributes["ProviderCode"] = str(error.provider_code)
        attributes["ProviderMessage"] = (error.provider_message or "-")[:MAX_ATTRIBUTE_TEXT]
    sqs_client().send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value or "-"} for name, value in attributes.items()
        },
    )
