"""Parking a queue record in the dead-letter queue at once, with the reason, for an operator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gateway import names
from gateway.aws import aws_client
from gateway.failures import Failure, GatewayError

if TYPE_CHECKING:
    from gateway.tracking.store import UnknownSend

# SQS allows 10 message attributes and 256 KB; the reason fits in a few short ones.
MAX_ATTRIBUTE_TEXT = 1024
SOURCE_MESSAGE_ID_ATTRIBUTE = "SourceMessageId"
# Attributes that say why a record failed; the rest (its idempotency identity) travels with a replay.
REASON_ATTRIBUTES = frozenset({"ErrorType", "ErrorDetail", "ProviderCode", "ProviderMessage"})


_client_lock = threading.Lock()


def remainder_key(store_key: str, failure: Failure) -> str:
    """The IdempotencyKey of the part of a partial send that failed this way, parked as a message of its own.

    Deterministic, so a redelivered original parks the same remainder under the same key, and the
    reconciler finds the outcome-unknown part of a partial send by it.
    """
    return f"{store_key.removeprefix('key:')}#not-sent-{failure.info.slug}"


@cache
def sqs_client() -> Any:
    # Made on the first parking (or before the snapshot), not at every cold start: most batches
    # park nothing. Under the lock: records park from several threads, and the cache alone
    # could make two.
    with _client_lock:
        return aws_client("sqs")


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


class DeadLetterScan:
    """One pass over a dead-letter queue, each message handed out once.

    Every message received is hidden while the pass lasts, so a receive brings new ones; at the
    end those not taken (deleted, or moved) are visible again at once, not after a timeout.
    The pass ends when a receive brings nothing new, or after `max_receives` receives.
    """

    def __init__(
        self, sqs: Any, url: str, *, attribute_names: list[str] | None = None, max_receives: int | None = None
    ) -> None:
        self._sqs = sqs
        self._url = url
        self._attribute_names = attribute_names or []
        self._max_receives = max_receives
        self._left: dict[str, str] = {}  # message id -> receipt handle, of those received, not taken

    def __iter__(self) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        receives = 0
        while self._max_receives is None or receives < self._max_receives:
            receives += 1
            batch = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
                **({"AttributeNames": self._attribute_names} if self._attribute_names else {}),
            ).get("Messages", [])
            fresh = [message for message in batch if message["MessageId"] not in seen]
            if not fresh:
                return
            for message in fresh:  # the whole batch: a pass may stop before the batch's end
                seen.add(message["MessageId"])
                self._left[message["MessageId"]] = message["ReceiptHandle"]
            yield from fresh

    def taken(self, message: dict[str, Any]) -> None:
        """The message left the dead-letter queue: nothing to make visible again."""
        self._left.pop(message["MessageId"], None)

    def __enter__(self) -> DeadLetterScan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for receipt_handle in self._left.values():
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
            )


def send_back(sqs: Any, message: dict[str, Any], *, queue_url: str, dead_letter_queue_url: str) -> None:
    """Send a dead letter to the queue, then delete it; its reason stays behind, its identity goes.

    Replaying is safe because the record keeps what the queue function keys it by.
    """
    kept = {
        name: {k: v for k, v in value.items() if k not in ("StringListValues", "BinaryListValues")}
        for name, value in message.get("MessageAttributes", {}).items()
        if name not in REASON_ATTRIBUTES
    }
    if names.QUEUE_IDEMPOTENCY_ATTRIBUTE not in kept and SOURCE_MESSAGE_ID_ATTRIBUTE not in kept:
        # Moved here by SQS's own redrive, with the id it was first sent under: keep that identity.
        kept[SOURCE_MESSAGE_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": message["MessageId"]}
    sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=kept)
    sqs.delete_message(QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])


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
        settled = 0
        with DeadLetterScan(sqs, self.dead_letter_queue_url, max_receives=self.RECEIVE_LIMIT) as scan:
            for message in scan:
                if not wanted:
                    break
                identity = _identity(message)
                match = wanted.pop(identity, None) if identity is not None else None
                if match is None:
                    continue
                if self._act(sqs, message, sent=match[1]):
                    scan.taken(message)
                settled += 1
        return settled

    def _act(self, sqs: Any, message: dict[str, Any], *, sent: bool) -> bool:
        """Delete it (sent) or send it back (not sent); False when it stays where it is."""
        if sent:
            sqs.delete_message(QueueUrl=self.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            return True
        if self.queue_url is None:
            return False  # no queue to send it back to: it stays for an operator's redrive
        send_back(sqs, message, queue_url=self.queue_url, dead_letter_queue_url=self.dead_letter_queue_url)
        return True


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
