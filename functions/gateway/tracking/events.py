"""A message's status events: accepted, its status changed, its tracking ended.

Every event has a detail shaped like a status lookup's answer (`message_status`), plus
`previous_state` and, for the end of tracking, `reason`. Delivery is at least once: a
consumer that must not act twice on one change keys on `smsid` with `state` and `updated_at`.
"""

from __future__ import annotations

from typing import Any

from gateway import names
from gateway.events import Event, iso
from gateway.tracking.store import TrackedMessage

WINDOW_ENDED = "window-ended"


def message_status(message: TrackedMessage) -> dict[str, Any]:
    """A message as a status lookup answers it and every event carries it."""
    return {
        "smsid": int(message.smsid),
        "destination": message.destination,
        "reference": message.reference,
        "channel": message.channel.value,
        "state": message.state.value,
        "final": message.final,
        "provider_code": message.code,
        "provider_text": message.text or None,
        "submitted_at": iso(message.submitted_at),
        "updated_at": iso(message.updated_at),
        "sms_count": message.sms_count,
        "charge": None if message.charge is None else float(message.charge),
    }


def accepted(message: TrackedMessage) -> Event:
    return Event(names.DETAIL_TYPE_MESSAGE_ACCEPTED, {**message_status(message), "previous_state": None})


def status_changed(message: TrackedMessage, previous: TrackedMessage) -> Event:
    detail = {**message_status(message), "previous_state": previous.state.value}
    return Event(names.DETAIL_TYPE_STATUS_CHANGED, detail)


def tracking_ended(message: TrackedMessage) -> Event:
    detail = {**message_status(message), "previous_state": message.state.value, "reason": WINDOW_ENDED}
    return Event(names.DETAIL_TYPE_TRACKING_ENDED, detail)
