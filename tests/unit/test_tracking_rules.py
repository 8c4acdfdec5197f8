"""The tracker's rules without AWS: when to ask again, what is a change, what each event says."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway import names
from gateway.provider.statuses import State, StatusRecord
from gateway.responses import MessageEventDetail
from gateway.tracking.store import TrackedMessage
from gateway.tracking.tracker import _apply, poll_interval
from local.tracking import event_line
from tests.conftest import EVENTS

NOW = 1_800_000_000
MESSAGE = TrackedMessage(
    smsid="20818588",
    destination="306912345671",
    reference="o-1",
    sms_fallback=True,
    submission_id="1000",
    submitted_at=NOW - 120,
    tracking_until=NOW - 120 + 72 * 3600,
)


def record(code: int, *, sms_count: int | None = 1, charge: str | None = "0.01") -> StatusRecord:
    return StatusRecord(
        smsid=MESSAGE.smsid,
        submitted_at=datetime.fromtimestamp(MESSAGE.submitted_at, UTC),
        updated_at=datetime.fromtimestamp(NOW - 5, UTC),
        destination=MESSAGE.destination,
        code=code,
        text="x",
        sms_count=sms_count,
        charge=None if charge is None else Decimal(charge),
    )


@pytest.mark.parametrize(
    ("age", "interval"), [(0, 60), (14 * 60, 60), (15 * 60, 300), (2 * 3600 - 1, 300), (2 * 3600, 1800)]
)
def test_young_messages_are_asked_about_every_run_older_ones_less_often(age: int, interval: int) -> None:
    assert poll_interval(age, 60) == interval


def test_a_new_code_for_the_same_state_is_stored_without_an_event() -> None:
    # Given a message LiveAll first calls "accepted" (queued, as it was taken in)
    updated, events = _apply(MESSAGE, record(300001), NOW)

    # Then the code is kept, but where it stands did not change: no event
    assert (updated.code, updated.state.value, updated.polls) == (300001, "queued", 1)
    assert events == []


def test_a_viber_failure_with_sms_fallback_is_a_change_but_not_final() -> None:
    updated, [event] = _apply(replace(MESSAGE, code=300009), record(300005), NOW)
    assert event.detail_type == names.DETAIL_TYPE_STATUS_CHANGED
    assert (event.detail["state"], event.detail["final"], event.detail["previous_state"]) == (
        "undelivered",
        False,
        "queued",
    )
    assert updated.open


def test_an_unknown_code_is_unknown_and_kept_never_an_error() -> None:
    updated, [event] = _apply(MESSAGE, record(999_999), NOW)
    assert (updated.state.value, updated.channel.value, updated.code) == ("unknown", "unknown", 999_999)
    assert event.detail["provider_code"] == 999_999


def test_the_end_of_the_window_ends_tracking_with_an_event() -> None:
    late = NOW + 72 * 3600
    delivered = replace(MESSAGE, code=300002, state=State.DELIVERED)
    updated, events = _apply(delivered, record(300002), late)
    assert [e.detail_type for e in events] == [names.DETAIL_TYPE_TRACKING_ENDED]
    assert events[0].detail["reason"] == "window-ended"
    assert updated.tracking_ended
    assert not updated.open


def test_a_final_status_at_the_window_ends_as_final_not_as_ended() -> None:
    late = NOW + 72 * 3600
    updated, events = _apply(MESSAGE, record(300008), late)
    assert [e.detail_type for e in events] == [names.DETAIL_TYPE_STATUS_CHANGED]
    assert updated.final
    assert not updated.tracking_ended


def test_a_message_the_provider_does_not_know_yet_stays_as_it_was() -> None:
    updated, events = _apply(MESSAGE, None, NOW)
    assert events == []
    assert updated == replace(MESSAGE, polls=1)


def test_the_published_event_schema_is_the_models_own() -> None:
    # The documented schema (events/schemas) is made from the model the code fills: it cannot drift
    published = json.loads((EVENTS / "schemas" / "message-event-detail.json").read_text())
    generated = MessageEventDetail.model_json_schema()
    assert {k: v for k, v in published.items() if not k.startswith("$")} == generated


def test_make_run_prints_one_line_per_event() -> None:
    event = json.loads((EVENTS / "event-message-status-changed.json").read_text())
    assert event_line(event) == "event Message Status Changed 20818588 delivered (sms, final) ref order-1042"


def test_make_run_prints_the_reconcilers_and_the_balance_checks_events() -> None:
    resolved = json.loads((EVENTS / "event-send-outcome-resolved.json").read_text())
    low = json.loads((EVENTS / "event-balance-low.json").read_text())
    assert event_line(resolved) == (
        "event Send Outcome Resolved sent key order-1042 smsids 20818590 ref order-1042"
    )
    assert event_line(low) == "event Balance Low 8.42 EUR, below 10"
