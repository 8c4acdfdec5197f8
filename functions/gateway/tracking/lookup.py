"""Status lookup: what LiveAll says of messages now, with what the gateway knows of them (the reference)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.provider.queries import ProviderQueries
from gateway.tracking.events import message_status
from gateway.tracking.store import TrackingStore, untracked, with_status


@dataclass(frozen=True, slots=True)
class Lookup:
    messages: list[dict[str, Any]] = field(default_factory=list)
    not_found: list[int] = field(default_factory=list)  # ids LiveAll does not know for this account


def look_up(
    smsids: list[str],
    queries: ProviderQueries,
    tracking: TrackingStore | None,
    *,
    seconds_left: Callable[[], float] | None = None,
) -> Lookup:
    """The status of each id, in the order asked (duplicates once); GatewayError if the provider fails."""
    wanted = list(dict.fromkeys(smsids))
    records = {
        record.smsid: record
        for record in queries.statuses(wanted, seconds_left=seconds_left() if seconds_left else None)
    }
    known = tracking.get_many([smsid for smsid in wanted if smsid in records]) if tracking else {}
    lookup = Lookup()
    for smsid in wanted:
        record = records.get(smsid)
        if record is None:
            lookup.not_found.append(int(smsid))
            continue
        message = known.get(smsid)
        current = with_status(message, record) if message is not None else untracked(record)
        lookup.messages.append(message_status(current))
    return lookup
