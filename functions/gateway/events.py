"""Events on the stack's EventBridge bus (source `viber-gateway`): put in as few calls as PutEvents allows.

What each capability publishes is its own (gateway.tracking.events: a message's status;
the suppression list, the schedules, the balance check theirs). Delivery is at least once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from gateway import names
from gateway.aws import aws_client
from gateway.observability import count, logger

MAX_ENTRIES_PER_CALL = 10  # PutEvents
MAX_BYTES_PER_CALL = 256 * 1024  # PutEvents, all entries together


def iso(seconds: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (`2026-11-30T06:00:00Z`)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    detail_type: str
    detail: dict[str, Any]


class EventPublisher:
    """Puts events on the bus in as few calls as PutEvents allows; reports which ones did not go."""

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name
        self.client: Any = aws_client("events")

    def publish(self, events: list[Event]) -> list[bool]:
        """Whether each event was put on the bus (failed entries are tried once more)."""
        published = [False] * len(events)
        pending = list(range(len(events)))
        for _ in range(2):
            failed: list[int] = []
            for batch in _batches(pending, lambda index: self._entry(events[index])):
                answer = self.client.put_events(Entries=[self._entry(events[index]) for index in batch])
                for index, result in zip(batch, answer.get("Entries", []), strict=False):
                    if "ErrorCode" in result:
                        failed.append(index)
                    else:
                        published[index] = True
            pending = failed
            if not pending:
                break
        if pending:
            count(names.METRIC_EVENTS_NOT_PUBLISHED, len(pending))
            logger.error("events not published", extra={"count": len(pending)})
        return published

    def _entry(self, event: Event) -> dict[str, Any]:
        return {
            "Source": names.EVENT_SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail),
            "EventBusName": self.bus_name,
        }


def _batches(indexes: Iterable[int], entry: Callable[[int], dict[str, Any]]) -> Iterable[list[int]]:
    batch: list[int] = []
    size = 0
    for index in indexes:
        entry_size = len(json.dumps(entry(index)).encode())
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or size + entry_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += entry_size
    if batch:
        yield batch


def publish_one(detail_type: str, detail: dict[str, Any]) -> None:
    """One event on the stage's bus, where there is one. A failure is counted and logged, never
    raised: what happened stands whether or not it is announced."""
    publisher = get_publisher()
    if publisher is None:
        return
    try:
        publisher.publish([Event(detail_type, detail)])
    except Exception as error:
        count(names.METRIC_EVENTS_NOT_PUBLISHED)
        logger.error("event not published", extra={"reason": type(error).__name__})


@cache
def get_publisher() -> EventPublisher | None:
    """The process-wide publisher of the stage's bus; None when the function has no bus."""
    from gateway.settings import get_settings

    bus_name = get_settings().event_bus_name
    return EventPublisher(bus_name) if bus_name else None
