"""Delivery tracking on one machine: the schedule that runs the tracker, and the printer of its events."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from local.defaults import REPO
from local.functions import FunctionHost

SCHEDULE_EVENT: Final = REPO / "events" / "tracker-schedule.json"
WAIT_SECONDS: Final = 1


class TrackerSchedule:
    """EventBridge's part: invokes the tracker function every `period` seconds until stopped."""

    def __init__(self, functions: FunctionHost, period: float, log: logging.Logger) -> None:
        self._functions = functions
        self._period = period
        self._log = log
        self._event = json.loads(Path(SCHEDULE_EVENT).read_text(encoding="utf-8"))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracker-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._period):
            try:
                run = self._functions.invoke_tracker(self._event)
            except Exception:
                self._log.exception("the tracker function failed")
                continue
            done = {k: v for k, v in run.items() if v and k != "oldest_open_age_seconds"}
            if done and not run.get("skipped"):
                self._log.info("tracker %s", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in done.items()))


class EventPrinter:
    """Prints each event the bus routed to the sink queue, one line each, then deletes it."""

    def __init__(self, sqs: Any, queue_url: str, log: logging.Logger) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._log = log
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-printer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
                ).get("Messages", [])
            except (BotoCoreError, ClientError) as error:
                self._log.warning("events: cannot receive (%s)", error)
                self._stopping.wait(WAIT_SECONDS)
                continue
            for message in messages:
                self._log.info("%s", event_line(json.loads(message["Body"])))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


def event_line(event: dict[str, Any]) -> str:
    """`event Message Status Changed 20818588 delivered (sms, final) ref order-1042`."""
    detail = event.get("detail", {})
    flags = ", ".join(filter(None, [detail.get("channel"), "final" if detail.get("final") else None]))
    parts = [f"event {event.get('detail-type')} {detail.get('smsid')} {detail.get('state')} ({flags})"]
    if detail.get("reason"):
        parts.append(f"reason {detail['reason']}")
    if detail.get("reference"):
        parts.append(f"ref {detail['reference']}")
    return " ".join(parts)
