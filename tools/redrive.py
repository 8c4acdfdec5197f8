"""Move dead letters back to the queue once their cause is fixed.

    python -m tools.redrive                 # every dead letter, by SQS's own message-move task
    python -m tools.redrive --error-type provider-failed --error-type out-of-credit

Replaying is safe: each record keeps its idempotency identity (its
IdempotencyKey, or SourceMessageId for records the gateway parked), so what
was sent is answered from the idempotency store, not sent again.

Where the endpoint has no message-move task (the local emulator), or when
only some error types are to move, messages are moved one by one instead:
received from the dead-letter queue, sent to the queue, then deleted.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

import local  # noqa: F401 - puts functions/ on sys.path
from gateway import names

# Attributes that describe the failure; the rest (idempotency identity) travels with the replay.
REASON_ATTRIBUTES = frozenset({"ErrorType", "ErrorDetail", "ProviderCode", "ProviderMessage"})
_UNSUPPORTED = frozenset(
    {"NotImplemented", "InvalidAction", "UnsupportedOperation", "InternalFailure", "500"}
)


@dataclass
class Queues:
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    dead_letter_arn: str


def find_queues(sqs: Any, queue_url: str | None, dead_letter_url: str | None) -> Queues:
    queue_url = queue_url or sqs.get_queue_url(QueueName=names.QUEUE_NAME)["QueueUrl"]
    dead_letter_url = dead_letter_url or sqs.get_queue_url(QueueName=names.DEAD_LETTER_QUEUE_NAME)["QueueUrl"]

    def arn(url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    return Queues(queue_url, arn(queue_url), dead_letter_url, arn(dead_letter_url))


def start_move_task(sqs: Any, queues: Queues) -> str | None:
    """SQS's own redrive; None where the endpoint does not offer it."""
    try:
        answer = sqs.start_message_move_task(
            SourceArn=queues.dead_letter_arn, DestinationArn=queues.queue_arn
        )
    except NotImplementedError:
        return None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _UNSUPPORTED:
            return None
        raise
    return str(answer["TaskHandle"])


def move_one_by_one(sqs: Any, queues: Queues, error_types: set[str] | None) -> Counter[str]:
    """Move matching dead letters; leave the others where they are. Returns counts by error type."""
    moved: Counter[str] = Counter()
    skipped: dict[str, str] = {}  # message id -> receipt handle, hidden until the end of the run
    try:
        _move_batches(sqs, queues, error_types, moved, skipped, set())
    finally:
        for receipt_handle in skipped.values():
            sqs.change_message_visibility(
                QueueUrl=queues.dead_letter_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
            )
    return moved


def _move_batches(
    sqs: Any,
    queues: Queues,
    error_types: set[str] | None,
    moved: Counter[str],
    skipped: dict[str, str],
    moved_identities: set[str],
) -> None:
    while True:
        batch = sqs.receive_message(
            QueueUrl=queues.dead_letter_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=30,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in skipped]
        if not fresh:
            return
        for message in fresh:
            attributes = message.get("MessageAttributes", {})
            error_type = attributes.get("ErrorType", {}).get("StringValue", "redriven-by-queue")
            # A running consumer may park a moved message again: move each one once per run.
            identity = "|".join(
                attributes.get(name, {}).get("StringValue", message["MessageId"])
                for name in ("SourceMessageId", names.QUEUE_IDEMPOTENCY_ATTRIBUTE)
            )
            if identity in moved_identities or (error_types is not None and error_type not in error_types):
                skipped[message["MessageId"]] = message["ReceiptHandle"]
                continue
            kept = {name: value for name, value in attributes.items() if name not in REASON_ATTRIBUTES}
            for value in kept.values():
                value.pop("StringListValues", None)
                value.pop("BinaryListValues", None)
            sqs.send_message(QueueUrl=queues.queue_url, MessageBody=message["Body"], MessageAttributes=kept)
            sqs.delete_message(QueueUrl=queues.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved_identities.add(identity)
            moved[error_type] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queue-url", help=f"default: the queue named {names.QUEUE_NAME}")
    parser.add_argument(
        "--dead-letter-queue-url", help=f"default: the queue named {names.DEAD_LETTER_QUEUE_NAME}"
    )
    parser.add_argument(
        "--error-type",
        action="append",
        dest="error_types",
        help="move only dead letters parked for this failure type (repeatable); implies one-by-one moving",
    )
    args = parser.parse_args(argv)
    sqs = boto3.client("sqs")
    queues = find_queues(sqs, args.queue_url, args.dead_letter_queue_url)
    if args.error_types is None:
        handle = start_move_task(sqs, queues)
        if handle is not None:
            print(f"SQS message-move task started: {handle}")
            print(f"Follow it with: aws sqs list-message-move-tasks --source-arn {queues.dead_letter_arn}")
            return 0
        print("This endpoint has no message-move task; moving messages one by one.")
    moved = move_one_by_one(sqs, queues, set(args.error_types) if args.error_types else None)
    for error_type, count in sorted(moved.items()):
        print(f"moved {count:5d}  {error_type}")
    print(f"moved {sum(moved.values()):5d}  in all, from {queues.dead_letter_url} to {queues.queue_url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
