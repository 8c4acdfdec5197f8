"""Parking a queue record in the dead-letter queue at once, with the reason, for an operator."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from gateway import names
from gateway.aws import aws_session
from gateway.failures import Failure, GatewayError
from gateway.tracking import UnknownSend

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


class DeadLetters:
    """The dead-letter queue as the reconciler settles it: an uncertain send's dead letter is deleted
    once it proved sent, or sent back to the queue once it proved not sent."""

    RECEIVE_LIMIT = 100  # calls of 10 messages: enough to see a dead-letter queue an alarm watches

    def __init__(self, dead_letter_queue_url: str, queue_url: str | None) -> None:
        self.dead_letter_queue_url = dead_letter_queue_url
        self.queue_url = queue_url

    def settle(self, decisions: list[tuple[UnknownSend, bool]]) -> int:
        """Act on the dead letter of each (send, sent) found; return how many were found."""
        wanted = {_identity_of(send): (send, sent) for send, sent in decisions}
        sqs = sqs_client()
        seen: dict[str, str] = {}  # message id -> receipt handle, of those left where they are
        settled = 0
        try:
            for _ in range(self.RECEIVE_LIMIT):
                batch = sqs.receive_message(
                    QueueUrl=self.dead_letter_queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=30,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                fresh = [m for m in batch if m["MessageId"] not in seen]
                if not fresh or not wanted:
                    break
                for message in fresh:
                    identity = _identity(message)
                    match = wanted.pop(identity, None) if identity is not None else None
                    if match is None:
                        seen[message["MessageId"]] = message["ReceiptHandle"]
                        continue
                    self._act(sqs, message, sent=match[1])
                    settled += 1
        finally:
            for receipt_handle in seen.values():
                sqs.change_message_visibility(
                    QueueUrl=self.dead_letter_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
                )
        return settled

    def _act(self, sqs: Any, message: dict[str, Any], *, sent: bool) -> None:
        if not sent and self.queue_url is not None:
            kept = {
                name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                for name, value in message.get("MessageAttributes", {}).items()
                if name not in _REASON_ATTRIBUTES and "StringValue" in value
            }
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"], MessageAttributes=kept)
        elif not sent:
            return  # no queue to send it back to: it stays for an operator's redrive
        sqs.delete_message(QueueUrl=self.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])


_REASON_ATTRIBUTES = frozenset({"ErrorType", "ErrorDetail", "ProviderCode", "ProviderMessage"})
_UNKNOWN_REMAINDER = "#not-sent-" + Failure.OUTCOME_UNKNOWN.info.slug


def _identity_of(send: UnknownSend) -> tuple[str | None, str | None]:
    """How the send's dead letter is found: its SourceMessageId, and its key if it is a remainder."""
    key = remainder_key(send.key, Failure.OUTCOME_UNKNOWN) if send.partial and send.key else None
    return send.message_id, key


def _identity(message: dict[str, Any]) -> tuple[str | None, str | None] | None:
    attributes = message.get("MessageAttributes", {})
    if attributes.get("ErrorType", {}).get("StringValue") != Failure.OUTCOME_UNKNOWN.info.slug:
        return None
    key = attributes.get(names.QUEUE_IDEMPOTENCY_ATTRIBUTE, {}).get("StringValue")
    source = attributes.get(SOURCE_MESSAGE_ID_ATTRIBUTE, {}).get("StringValue")
    return source, key if key and key.endswith(_UNKNOWN_REMAINDER) else None
