"""Move dead letters back to the queue once their cause is fixed.

    python -m tools.redrive                 # every dead letter, by SQS's own message-move task
    python -m tools.redrive --error-type provider-failed --error-type out-of-credit

Replaying is safe: each record keeps its idempotency identity (its
IdempotencyKey, or SourceMessageId for records the gateway parked), so what
was sent is answered from the idempotency store, not sent again.

Where the endpoint has no message-move task (the local emulator), or when
only some error types are to move, messages are moved one by one instead:
received from the dead-letter queue, sent to the queue, then deleted. Only
what was in the dead-letter queue when the run started moves, each message
once: a consumer that parks a replayed message again (an outcome-unknown one
does) cannot keep the run going. Ctrl-C finishes the message in hand, so none
is ever in both queues.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import boto3
from botocore.exceptions import ClientError

import local  # noqa: F401 - puts functions/ on sys.path
from gateway import names
from gateway.sending.dead_letters import SOURCE_MESSAGE_ID_ATTRIBUTE as SOURCE_MESSAGE_ID
from gateway.sending.dead_letters import DeadLetterScan, send_back

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


@dataclass
class OneByOne:
    """A run of one-by-one moves: what moved, what was left, and whether it was interrupted."""

    moved: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False


def move_one_by_one(
    sqs: Any, queues: Queues, error_types: set[str] | None, *, stop: threading.Event | None = None
) -> OneByOne:
    """Move the matching dead letters present at the start, each once; leave the others where they are."""
    stop = stop or threading.Event()
    run = OneByOne()
    # SentTimestamp is when a message entered the dead-letter queue (SQS's redrive keeps the
    # original one, which is older still): anything later was parked during this run.
    started_ms = int(time.time() * 1000)
    moved_identities: set[str] = set()
    with DeadLetterScan(sqs, queues.dead_letter_url, attribute_names=["SentTimestamp"]) as scan:
        for message in scan:
            if stop.is_set():
                break  # the message in hand was finished; the rest stay where they are
            identity = _identity(message)
            error_type = _attribute(message, "ErrorType") or "redriven-by-queue"
            parked_during_run = int(message.get("Attributes", {}).get("SentTimestamp", 0)) > started_ms
            unwanted = error_types is not None and error_type not in error_types
            if parked_during_run or unwanted or identity in moved_identities:
                continue
            send_back(sqs, message, queue_url=queues.queue_url, dead_letter_queue_url=queues.dead_letter_url)
            scan.taken(message)
            moved_identities.add(identity)
            run.moved[error_type] += 1
    run.interrupted = stop.is_set()
    return run


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name, {}).get("StringValue")
    return str(value) if value else None


def _identity(message: dict[str, Any]) -> str:
    """What the queue function keys a message by: it stays the same each time it is parked again."""
    for name in (names.QUEUE_IDEMPOTENCY_ATTRIBUTE, SOURCE_MESSAGE_ID):
        value = _attribute(message, name)
        if value:
            return f"{name}:{value}"
    with contextlib.suppress(ValueError, AttributeError):
        key = json.loads(message["Body"]).get(names.QUEUE_IDEMPOTENCY_FIELD)
        if isinstance(key, str):
            return f"{names.QUEUE_IDEMPOTENCY_FIELD}:{key}"
    return f"MessageId:{message['MessageId']}"


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM, instead of an exception between a send and its delete."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
    with stop_on_signals() as stop:
        run = move_one_by_one(sqs, queues, set(args.error_types) if args.error_types else None, stop=stop)
    for error_type, count in sorted(run.moved.items()):
        print(f"moved {count:5d}  {error_type}")
    print(f"moved {sum(run.moved.values()):5d}  in all, from {queues.dead_letter_url} to {queues.queue_url}")
    if run.interrupted:
        print("Interrupted: the message in hand was finished; the others stay in the dead-letter queue.")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
