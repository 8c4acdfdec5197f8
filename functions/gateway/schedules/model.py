"""A schedule: one request to send later, in parts (one per time it goes out), and its states.

A request with send_at and no window is one part. A send window splits a bulk send by the
recipients' zones, each zone a part at its own opening. Each part is fired once by its own
trigger; the schedule's state follows from its parts' (`derived_state`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time
    SENDING = "sending"  # fired (or a part of it has), not finished
    SENT = "sent"  # sent, with the send's answer
    FAILED = "failed"  # its send failed for good, with the problem
    CANCELLED = "cancelled"  # cancelled before it fired


DONE = frozenset({State.SENT, State.FAILED, State.CANCELLED})


def iso(instant: datetime) -> str:
    """An instant as RFC 3339 UTC with seconds (`2026-12-08T08:00:00Z`)."""
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    send_at: str  # iso(): when it goes out
    zone: str | None  # the recipients' zone, when a window placed the part
    destinations: tuple[str, ...]
    state: State = State.SCHEDULED
    fired_at: str | None = None
    answer: dict[str, Any] | None = None  # the send's 200 body
    problem: dict[str, Any] | None = None  # the send's problem (failed), or the last one (retrying)

    def view(self, *, with_destinations: bool = True) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "part": self.number,
            "send_at": self.send_at,
            "zone": self.zone,
            "state": self.state.value,
            "destination_count": len(self.destinations),
        }
        if with_destinations:
            shown["destinations"] = list(self.destinations)
        if self.fired_at is not None:
            shown["fired_at"] = self.fired_at
        if self.answer is not None and with_destinations:
            shown["answer"] = self.answer
        if self.problem is not None:
            shown["problem"] = self.problem
        return shown


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    created_at: str
    send_at: str | None  # what the caller asked for (None: the window alone placed it)
    request: dict[str, Any]  # the checked request without destinations, as JSON (aliases)
    parts: tuple[Part, ...]
    origin: str = "api"  # api or queue
    fingerprint: str = ""  # of the request as the caller sent it: a retry under its key must match
    version: int = 0
    state: State = field(default=State.SCHEDULED)

    @property
    def reference(self) -> str | None:
        value = self.request.get("reference")
        return value if isinstance(value, str) else None

    @property
    def destination_count(self) -> int:
        return sum(len(part.destinations) for part in self.parts)

    @property
    def first_send_at(self) -> str:
        return min(part.send_at for part in self.parts)

    @property
    def last_send_at(self) -> str:
        return max(part.send_at for part in self.parts)

    def with_part(self, part: Part) -> Schedule:
        parts = tuple(part if p.number == part.number else p for p in self.parts)
        return replace(self, parts=parts, state=derived_state(parts))

    def view(self, *, with_destinations: bool = True) -> dict[str, Any]:
        """The schedule as GET /schedules/{id} answers it (the list leaves numbers and answers out)."""
        shown: dict[str, Any] = {
            "id": self.id,
            "state": self.state.value,
            "send_at": self.send_at,
            "created_at": self.created_at,
            "reference": self.reference,
            "destination_count": self.destination_count,
            "parts": [part.view(with_destinations=with_destinations) for part in self.parts],
        }
        window = self.request.get("window")
        if isinstance(window, dict):
            shown["window"] = window
        return shown


def derived_state(parts: tuple[Part, ...]) -> State:
    states = {part.state for part in parts}
    if states == {State.SCHEDULED}:
        return State.SCHEDULED
    if states == {State.CANCELLED}:
        return State.CANCELLED
    if not states <= DONE:
        return State.SENDING
    if State.FAILED in states:
        return State.FAILED
    return State.SENT


def fingerprint(document: dict[str, Any]) -> str:
    """A digest of a request as sent, keys sorted, so that a retry of it matches."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def schedule_id_for(store_key: str) -> str:
    """The id of the schedule a keyed request makes: the same key always names the same schedule."""
    return hashlib.sha256(f"schedule:{store_key}".encode()).hexdigest()[:32]
