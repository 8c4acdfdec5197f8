"""Tracking records the table refused when a send went out: kept on a queue until the tracker writes them.

A sent message must not be forgotten by tracking because one write failed: its
submission items wait on the backlog queue (one message each), and the tracker's next
run writes them, each only if it is not there yet, so a record delivered twice, or one
the send's own retry wrote after all, is taken in once. Their events then come late, but
all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway import names
from gateway.aws import aws_client
from gateway.observability import count, logger

MAX_BATCH = 10  # SendMessageBatch, ReceiveMessage, DeleteMessageBatch
DRAIN_MARGIN_SECONDS = 20  # a run stops draining with this much time left for its own work


class TrackingBacklog:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self.sqs: Any = aws_client("sqs")

    def keep(self, items: list[dict[str, Any]]) -> None:
        """Put `items` (tracking items, as the store writes them) on the queue; raise if any is not kept."""
        for start in range(0, len(items), MAX_BATCH):
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(item, separators=(",", ":"))}
                for index, item in enumerate(items[start : start + MAX_BATCH])
            ]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"{len(answer['Failed'])} tracking records not kept")
        count(names.METRIC_TRACKING_RECORDS_KEPT, len(items))

    def drain(
        self, write: Callable[[dict[str, Any]], None], *, seconds_left: Callable[[], float] | None = None
    ) -> int:
        """Write what waits (`write` each item, only if absent), deleting each once written; how many."""
        written = 0
        while seconds_left is None or seconds_left() > DRAIN_MARGIN_SECONDS:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=MAX_BATCH, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            done: list[dict[str, str]] = []
            for message in messages:
                try:
                    write(json.loads(message["Body"]))
                except Exception as error:  # left on the queue: the next run tries again
                    reason = type(error).__name__
                    logger.error("a kept tracking record is still not written", extra={"reason": reason})
                    continue
                done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
            if done:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
            written += len(done)
            if len(done) < len(messages):
                break  # the table still fails: leave the rest for the next run
        if written:
            logger.info("kept tracking records written", extra={"count": written})
        return written
