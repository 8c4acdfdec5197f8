"""End to end through `make run`: scheduled sends and send windows as a user meets them.

A send with send_at is answered 202 with the schedule, reaches LiveAll at its time and not
before, once; a cancelled one never does; a send window closed now holds a send until it
opens, in the recipient's own time.

The module starts services of its own (about 2 s each), so that no backlog another test
left to the session's tracker delays Message Accepted here, and no schedule made here
fires into another test's ledger. The first test runs on the wall clock (a part due within
a minute goes to the trigger queue with an SQS delay). The others need hours to pass: their
service's scheduled-sends clock runs CLOCK_SCALE times faster (make run --clock-scale), and
their parts go through EventBridge Scheduler's one-time schedules, which make run fires
itself (local.scheduler).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from gateway import names
from tests.e2e.harness import LocalService, eventually
from tests.e2e.local_service import running_local_service

# An hour of the compressed clock passes in 6 s: long enough to cancel in, short enough to wait out.
CLOCK_SCALE = 600.0
ATHENS = ZoneInfo("Europe/Athens")  # a Greek mobile's zone
SETTLE_SECONDS = 15  # from a part's time to the sandbox, with room for a slow machine
DIRECT_DELAY_SECONDS = 5
EVENT_TYPES = [
    names.DETAIL_TYPE_SEND_SCHEDULED,
    names.DETAIL_TYPE_SCHEDULE_CANCELLED,
    names.DETAIL_TYPE_MESSAGE_ACCEPTED,
]


@pytest.fixture(scope="module")
def wall_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """`make run` of this module's own, on the wall clock."""
    log_path: Path = tmp_path_factory.mktemp("local-run-schedules") / "output.log"
    with running_local_service(log_path) as started:
        yield started


@pytest.fixture(scope="module")
def compressed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """`make run --clock-scale 600` of this module's own."""
    log_path: Path = tmp_path_factory.mktemp("local-run-compressed") / "output.log"
    with running_local_service(log_path, clock_scale=CLOCK_SCALE) as started:
        yield started


@pytest.fixture
def wall(wall_service: LocalService) -> Iterator[LocalService]:
    """The wall-clock service with its sandbox emptied, before and after the test."""
    wall_service.sandbox("POST", "reset")
    yield wall_service
    wall_service.sandbox("POST", "reset")


@pytest.fixture
def compressed(compressed_service: LocalService) -> Iterator[LocalService]:
    """The compressed service with its sandbox emptied, before and after the test."""
    compressed_service.sandbox("POST", "reset")
    yield compressed_service
    compressed_service.sandbox("POST", "reset")


@pytest.fixture
def made() -> Iterator[list[tuple[LocalService, str]]]:
    """Schedules a test made; cancelled after it, so that none fires into a later test's ledger."""
    schedules: list[tuple[LocalService, str]] = []
    yield schedules
    for service, schedule_id in schedules:
        service.call("DELETE", f"/schedules/{schedule_id}")  # 200, or 409 once fired: either is fine


def _number() -> str:
    """A Greek mobile no other test uses; the sandbox's last digit 8: a Viber user who reads it."""
    return f"3069{random.randrange(10**6, 10**7)}8"  # noqa: S311 - not a secret


def _body(destination: str, reference: str, **schedule: Any) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": "Your order ships today",
        "destinations": [destination],
        "reference": reference,
        **schedule,
    }


def _rfc3339(instant: datetime) -> str:
    """As a caller in Athens writes it: local time with its offset, whole seconds."""
    return instant.astimezone(ATHENS).isoformat(timespec="seconds")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _schedule(
    service: LocalService, made: list[tuple[LocalService, str]], body: dict[str, Any]
) -> dict[str, Any]:
    """POST the body; assert it was scheduled (202, Location) and return the answer."""
    response = service.post_message(body)
    assert response.status == 202, response.data
    answer: dict[str, Any] = response.json()
    made.append((service, answer["id"]))
    assert response.headers["Location"].endswith(f"/schedules/{answer['id']}")
    assert answer["state"] == "scheduled"
    return answer


def _sends_to(service: LocalService, destination: str) -> list[dict[str, Any]]:
    return [entry for entry in service.ledger() if destination in entry["payload"]["destinations"]]


def _subscribe(service: LocalService, reference: str) -> str:
    """A queue receiving the reference's schedule events and Message Accepted, by a rule of the test's own."""
    return service.subscribe(
        f"e2e-{reference}",
        {"source": [names.EVENT_SOURCE], "detail-type": EVENT_TYPES, "detail": {"reference": [reference]}},
    )


def _read(service: LocalService, queue_url: str, into: list[dict[str, Any]], *about: str) -> list[str]:
    """Move the queue's events that mention any of `about` (reference, schedule id) into `into`;
    the detail types of all kept so far."""
    while batch := service.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            event = json.loads(message["Body"])
            detail = json.dumps(event["detail"])
            if any(needle in detail for needle in about):
                into.append(event)
            service.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [event["detail-type"] for event in into]


def _get(service: LocalService, schedule_id: str) -> dict[str, Any]:
    response = service.call("GET", f"/schedules/{schedule_id}")
    assert response.status == 200, response.data
    return dict(response.json())


def test_a_send_scheduled_seconds_ahead_goes_out_at_its_time_once(
    wall: LocalService, made: list[tuple[LocalService, str]]
) -> None:
    # Given a consumer of the schedules' events, and a send due in 5 s (on the wall clock)
    destination, reference = _number(), f"e2e-at-{uuid.uuid4().hex[:8]}"
    events_queue = _subscribe(wall, reference)
    send_at = (datetime.now(UTC) + timedelta(seconds=DIRECT_DELAY_SECONDS)).replace(microsecond=0)

    # When it is POSTed with send_at
    answer = _schedule(wall, made, _body(destination, reference, send_at=_rfc3339(send_at)))

    # Then the answer is the schedule: one part, at that instant, for that number
    [part] = answer["parts"]
    assert _instant(part["send_at"]) == send_at
    assert (part["state"], part["destinations"]) == ("scheduled", [destination])
    # ...and nothing has reached LiveAll yet
    assert _sends_to(wall, destination) == []

    # And at its time it reaches LiveAll, not before
    [entry] = eventually(
        lambda: _sends_to(wall, destination) or None,
        timeout=DIRECT_DELAY_SECONDS + SETTLE_SECONDS,
        what=f"the scheduled send to {destination}",
    )
    assert entry["received_at"] >= send_at.timestamp() - 1  # SQS delays are whole seconds

    # And the bus said Send Scheduled, then Message Accepted
    received: list[dict[str, Any]] = []
    eventually(
        lambda: (
            names.DETAIL_TYPE_MESSAGE_ACCEPTED in _read(wall, events_queue, received, reference, answer["id"])
        ),
        timeout=SETTLE_SECONDS,
        what="Message Accepted",
    )
    assert [event["detail-type"] for event in received] == [
        names.DETAIL_TYPE_SEND_SCHEDULED,
        names.DETAIL_TYPE_MESSAGE_ACCEPTED,
    ]

    # And the schedule says sent, with the provider's message ids
    schedule = eventually(
        lambda: (found := _get(wall, answer["id"]))["state"] == "sent" and found,
        timeout=SETTLE_SECONDS,
        what="the schedule's state: sent",
    )
    [sent_part] = schedule["parts"]
    assert sent_part["state"] == "sent"
    assert [m["smsid"] for m in sent_part["answer"]["messages"]] == entry["smsids"]

    # And waiting longer, it was still sent only once
    time.sleep(3)
    assert len(_sends_to(wall, destination)) == 1


def test_a_cancelled_send_never_reaches_the_provider(
    compressed: LocalService, made: list[tuple[LocalService, str]]
) -> None:
    # Given a consumer of the schedules' events, and a send scheduled an hour ahead (6 s here)
    destination, reference = _number(), f"e2e-cancel-{uuid.uuid4().hex[:8]}"
    events_queue = _subscribe(compressed, reference)
    send_at = (compressed.clock() + timedelta(hours=1)).replace(microsecond=0)
    answer = _schedule(compressed, made, _body(destination, reference, send_at=_rfc3339(send_at)))
    assert _instant(answer["parts"][0]["send_at"]) == send_at

    # When it is cancelled
    response = compressed.call("DELETE", f"/schedules/{answer['id']}")

    # Then the answer says cancelled, for every part
    assert response.status == 200, response.data
    cancelled = response.json()
    assert cancelled["state"] == "cancelled"
    assert {part["state"] for part in cancelled["parts"]} == {"cancelled"}
    # ...and the bus says so
    received: list[dict[str, Any]] = []
    eventually(
        lambda: (
            names.DETAIL_TYPE_SCHEDULE_CANCELLED
            in _read(compressed, events_queue, received, reference, answer["id"])
        ),
        timeout=SETTLE_SECONDS,
        what="Scheduled Send Cancelled",
    )

    # And when its time has passed, it has not reached LiveAll, and is still cancelled
    time.sleep(max(0.0, compressed.wall_seconds_until(send_at)) + 3)
    assert _sends_to(compressed, destination) == []
    assert _get(compressed, answer["id"])["state"] == "cancelled"
    _read(compressed, events_queue, received, reference, answer["id"])
    assert names.DETAIL_TYPE_MESSAGE_ACCEPTED not in [event["detail-type"] for event in received]

    # And cancelling it again is a conflict
    again = compressed.call("DELETE", f"/schedules/{answer['id']}")
    assert again.status == 409, again.data


def _window_closed_now(service: LocalService) -> tuple[dict[str, str], datetime]:
    """A window opening an hour from now in Athens (to the next minute) and closing an hour later,
    and the instant it opens. It waits out the hour where that window would cross midnight."""
    while True:
        opens = service.clock().astimezone(ATHENS) + timedelta(hours=1)
        opens = opens.replace(second=0, microsecond=0) + timedelta(minutes=1)
        closes = opens + timedelta(hours=1)
        if closes.date() == opens.date():
            return {"from": f"{opens:%H:%M}", "to": f"{closes:%H:%M}"}, opens.astimezone(UTC)
        time.sleep(0.5)


def test_a_closed_send_window_holds_a_send_until_it_opens(
    compressed: LocalService, made: list[tuple[LocalService, str]]
) -> None:
    # Given a send window, in the recipient's local time, that opens an hour from now
    destination, reference = _number(), f"e2e-window-{uuid.uuid4().hex[:8]}"
    window, opens = _window_closed_now(compressed)

    # When a send to a Greek number is POSTed with it
    answer = _schedule(compressed, made, _body(destination, reference, window=window))

    # Then it is held: one part, in Athens' zone, at the window's opening
    [part] = answer["parts"]
    assert part["zone"] == "Europe/Athens"
    assert _instant(part["send_at"]) == opens
    assert part["destinations"] == [destination]
    # ...and nothing has reached LiveAll yet
    assert _sends_to(compressed, destination) == []

    # And once the window opens it reaches LiveAll, not before
    [entry] = eventually(
        lambda: _sends_to(compressed, destination) or None,
        timeout=max(0.0, compressed.wall_seconds_until(opens)) + SETTLE_SECONDS,
        what=f"the held send to {destination}",
    )
    assert compressed.clock_seconds(entry["received_at"]) >= opens.timestamp()
    eventually(
        lambda: _get(compressed, answer["id"])["state"] == "sent",
        timeout=SETTLE_SECONDS,
        what="the schedule's state: sent",
    )


def _listed(service: LocalService, **query: Any) -> list[str]:
    """The ids GET /schedules lists for the query, every page followed."""
    ids: list[str] = []
    cursor = None
    for _ in range(50):
        page_query = {**query, **({"cursor": cursor} if cursor else {})}
        response = service.call("GET", f"/schedules?{urlencode(page_query)}")
        assert response.status == 200, response.data
        page = response.json()
        ids += [schedule["id"] for schedule in page["schedules"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("GET /schedules kept giving a next page")


def test_schedules_are_listed_by_state_in_the_order_they_go_out(
    compressed: LocalService, made: list[tuple[LocalService, str]]
) -> None:
    # Given two sends scheduled ten days ahead, an hour apart, the later one cancelled
    reference = f"e2e-list-{uuid.uuid4().hex[:8]}"
    first_at = (compressed.clock() + timedelta(days=10)).replace(microsecond=0)
    later_at = first_at + timedelta(hours=1)
    first = _schedule(compressed, made, _body(_number(), reference, send_at=_rfc3339(first_at)))
    later = _schedule(compressed, made, _body(_number(), reference, send_at=_rfc3339(later_at)))
    assert compressed.call("DELETE", f"/schedules/{later['id']}").status == 200
    around = {
        "from": (first_at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": (later_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    # When the schedules of that time are listed, by state and all, a page of one at a time
    scheduled = _listed(compressed, state="scheduled", **around)
    cancelled = _listed(compressed, state="cancelled", **around)
    everything = _listed(compressed, limit=1, **around)

    # Then each state lists its own, and all of them come in the order they go out
    assert first["id"] in scheduled
    assert later["id"] not in scheduled
    assert later["id"] in cancelled
    assert first["id"] not in cancelled
    assert [i for i in everything if i in (first["id"], later["id"])] == [first["id"], later["id"]]
