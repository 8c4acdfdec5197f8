"""The queues' event source mappings: receive, invoke the queue function, delete what succeeded.

One poller per queue the queue function consumes (the message queue, the schedules' trigger
queue); each hands its records over with its own queue's ARN as eventSourceARN, as Lambda does.

Failed records stay on the queue and come back after the visibility timeout;
after maxReceiveCount receives the emulator's redrive moves them to the
dead-letter queue, as SQS does.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from local.defaults import REGION
from local.functions import FunctionHost

BATCH_SIZE: Final = 10  # SQS's maximum per receive
WAIT_SECONDS: Final = 1  # long poll: an empty queue costs one call a second
RETRY_PAUSE_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    url: str
    arn: str
    visibility_timeout: int
    max_receive_count: int


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # Lambda spells SQS's StringValue/BinaryValue in camel case, with binary values in base64.
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode("ascii") if binary is not None else None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }


def failed_ids(answer: Any, batch_ids: list[str]) -> set[str]:
    """The records the function reported failed; an answer Lambda cannot read fails the whole batch."""
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not isinstance(failures, list):
        return set(batch_ids)
    reported = {item.get("itemIdentifier") for item in failures if isinstance(item, dict)}
    if not reported <= set(batch_ids):
        return set(batch_ids)
    return {str(identifier) for identifier in reported}


class QueuePoller:
    """Polls the queue from a thread until stopped; each batch is one queue-function invocation."""

    def __init__(
        self,
        sqs: Any,
        queue: QueueSettings,
        functions: FunctionHost,
        log: logging.Logger,
        *,
        label: str = "queue",
    ) -> None:
        """`label` starts the poller's log lines ("queue", "trigger"): which event source mapping it is."""
        self._sqs = sqs
        self._queue = queue
        self._functions = functions
        self._log = log
        self._label = label
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{label}-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask it to stop without waiting: pollers told together end in one long poll, not one each."""
        self._stopping.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return (within about WAIT_SECONDS when idle)."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue.url,
                    MaxNumberOfMessages=BATCH_SIZE,
                    WaitTimeSeconds=WAIT_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except (BotoCoreError, ClientError) as error:
                self._log.warning("%s: cannot receive (%s); trying again", self._label, error)
                self._stopping.wait(RETRY_PAUSE_SECONDS)
                continue
            if messages:
                self._process(messages)

    def _process(self, messages: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        batch_ids = [message["MessageId"] for message in messages]
        event = {"Records": [lambda_record(message, self._queue.arn) for message in messages]}
        try:
            failed = failed_ids(self._functions.invoke_queue(event), batch_ids)
        except Exception:
            self._log.exception("the queue function failed the whole batch (%s)", self._label)
            failed = set(batch_ids)
        elapsed_ms = (time.monotonic() - started) * 1000
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        self._delete(succeeded)
        for message in messages:
            self._log.info(
                "%s %s %s (batch of %d, %.0f ms)",
                self._label,
                message["MessageId"],
                self._outcome(message, failed),
                len(messages),
                elapsed_ms,
            )

    def _outcome(self, message: dict[str, Any], failed: set[str]) -> str:
        if message["MessageId"] not in failed:
            return "handled, deleted from the queue"
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        attempt = f"failed on receive {receives} of {self._queue.max_receive_count}"
        if receives >= self._queue.max_receive_count:
            return f"{attempt}: the dead-letter queue takes it after the visibility timeout"
        return f"{attempt}: back in {self._queue.visibility_timeout} s"

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        try:
            answer = self._sqs.delete_message_batch(QueueUrl=self._queue.url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            self._log.warning(
                "%s: cannot delete %d processed message(s) (%s)", self._label, len(messages), error
            )
            return
        for failure in answer.get("Failed", []):
            self._log.warning(
                "%s: delete failed for entry %s: %s", self._label, failure["Id"], failure.get("Message")
            )
