"""GetSMSHistory of the sandbox over loopback HTTP: the day's log, its filters and its days."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError

from sandbox import Fault, ProviderSandbox
from tests.conftest import FakeClock

TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "MyShop"
OTHER_SENDER = "OtherShop"
READER = "306912345679"
NO_VIBER = "306912345671"
STEP = 1.0


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, second)))


NOON = utc(2024, 6, 15, 9)  # 12:00 in Athens (EEST)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture(scope="module")
def shared_sandbox(clock: FakeClock) -> Iterator[ProviderSandbox]:
    with ProviderSandbox(tokens={TOKEN}, delivery_step_seconds=STEP, clock=clock) as sb:
        yield sb


@pytest.fixture
def sb(shared_sandbox: ProviderSandbox, clock: FakeClock) -> ProviderSandbox:
    shared_sandbox.reset()
    clock.now = NOON
    return shared_sandbox


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=3.0))


def body(**fields: Any) -> dict[str, Any]:
    return {
        "apitoken": TOKEN,
        "im_type": "IM",
        "im_sender_name": SENDER,
        "im_text": "Your order has shipped",
        "destinations": [READER],
        **fields,
    }


def send(http: urllib3.PoolManager, sb: ProviderSandbox, **fields: Any) -> dict[str, Any]:
    """Send a SendIM and return the provider's answer."""
    answer: dict[str, Any] = http.request("POST", sb.url + "SendIM", json=body(**fields)).json()
    assert answer["success"] is True, answer
    return answer


def send_at(
    http: urllib3.PoolManager, sb: ProviderSandbox, clock: FakeClock, when: float, **fields: Any
) -> int:
    """Send a one-destination SendIM at a given time and return its smsid."""
    clock.now = when
    smsid: int = send(http, sb, **fields)["data"][0]["smsid"]
    return smsid


def history_response(
    http: urllib3.PoolManager, sb: ProviderSandbox, **fields: str
) -> urllib3.BaseHTTPResponse:
    return http.request(
        "POST", sb.url + "GetSMSHistory", fields={"apitoken": TOKEN, **fields}, encode_multipart=False
    )


def history(http: urllib3.PoolManager, sb: ProviderSandbox, **fields: str) -> str:
    response = history_response(http, sb, **fields)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.data.decode()


def smsids_in(answer: str) -> list[int]:
    return [int(line.split("|")[0]) for line in answer.splitlines()]


# ----- the answer's format --------------------------------------------------------------


def test_history_lists_the_days_messages_in_lines(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a Viber message to two numbers and a low-cost fallback message, all at noon
    first = send(http, sb, destinations=[READER, NO_VIBER])
    fallback = send(
        http, sb, im_type="IM_SMSFB", senderid="Shop", sms_text="x" * 161, destinations=[NO_VIBER], pricecat=1
    )
    # And time enough for every status to end
    clock.now = NOON + 10 * STEP

    # When the day's history is asked
    answer = history(http, sb, submit_date="20240615")

    # Then there is one CRLF-ended line per message, by smsid, with two trailing extra fields
    assert answer.endswith("\r\n")
    lines = answer.split("\r\n")[:-1]
    reader_id, no_viber_id = (item["smsid"] for item in first["data"])
    fallback_id = fallback["data"][0]["smsid"]
    batch = first["SubmissionID"]
    end = int(NOON)
    assert lines == [
        f"{reader_id}|{batch}|{SENDER}|{READER}|{end + 3}|Seen|1|0.0100|IM|0",
        f"{no_viber_id}|{batch}|{SENDER}|{NO_VIBER}|{end + 1}|Undelivered|1|0.0100|IM|0",
        f"{fallback_id}|{batch + 1}|{SENDER}|{NO_VIBER}|{end + 3}|Delivered|2|0.0638|IM_SMSFB|1",
    ]


def test_history_follows_the_status(sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock) -> None:
    # Given a message to a reader
    send(http, sb)

    # When the history is asked at submission and two steps later
    at_submission = history(http, sb, submit_date="20240615")
    clock.now = NOON + 2 * STEP
    later = history(http, sb, submit_date="20240615")

    # Then each line has the status and date of the moment
    assert at_submission.split("|")[4:6] == [str(int(NOON)), "Accepted"]
    assert later.split("|")[4:6] == [str(int(NOON + 2 * STEP)), "Delivered"]


def test_nothing_matching_is_an_empty_body(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a message sent today
    send(http, sb)

    # When yesterday's history is asked
    response = history_response(http, sb, submit_date="20240614")

    # Then the answer is a 200 with no body at all
    assert response.status == 200
    assert response.data == b""


# ----- filters -------------------------------------------------------------------------------


@pytest.fixture
def day_of_sends(sb: ProviderSandbox, http: urllib3.PoolManager) -> dict[str, Any]:
    """Three SendIMs of the same day: two senders, four messages."""
    first = send(http, sb, destinations=[READER, NO_VIBER])
    second = send(http, sb, im_sender_name=OTHER_SENDER, destinations=[READER])
    third = send(http, sb, destinations=[NO_VIBER])
    ids = [item["smsid"] for answer in (first, second, third) for item in answer["data"]]
    return {"ids": ids, "batches": [first["SubmissionID"], second["SubmissionID"], third["SubmissionID"]]}


def test_filters_each_narrow_the_answer(
    sb: ProviderSandbox, http: urllib3.PoolManager, day_of_sends: dict[str, Any]
) -> None:
    # Given four messages of the day
    a, b, c, d = day_of_sends["ids"]
    batch1, batch2, _ = day_of_sends["batches"]

    # When the history is asked with each filter
    def ids(**fields: str) -> list[int]:
        return smsids_in(history(http, sb, submit_date="20240615", **fields))

    # Then each keeps only its matches, and filters combine
    assert ids() == [a, b, c, d]
    assert ids(senderid=SENDER) == [a, b, d]
    assert ids(senderid=OTHER_SENDER) == [c]
    assert ids(senderid="myshop") == []  # an exact match
    assert ids(destination=NO_VIBER) == [b, d]
    assert ids(destination=NO_VIBER[:-1]) == []  # exact digits, not a prefix
    assert ids(sms_id=str(c)) == [c]
    assert ids(batch_id=str(batch1)) == [a, b]
    assert ids(batch_id=str(batch2)) == [c]
    assert ids(gt_sms_id=str(b)) == [c, d]
    assert ids(gt_sms_id=str(d)) == []
    assert ids(senderid=SENDER, gt_sms_id=str(a)) == [b, d]
    assert ids(destination=READER, batch_id=str(batch1)) == [a]
    # And an optional field sent empty is no filter at all
    assert ids(senderid="", destination="", sms_id="", batch_id="", gt_sms_id="", timezone_offset="") == [
        a,
        b,
        c,
        d,
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"submit_date": ""},
        {"submit_date": "2024-06-15"},
        {"submit_date": "15062024"},
        {"submit_date": "20240631"},
        {"submit_date": "20240615", "timezone_offset": "2h"},
        {"submit_date": "20240615", "timezone_offset": "+02:00"},
        {"submit_date": "20240615", "timezone_offset": "15"},
        {"submit_date": "20240615", "sms_id": "abc"},
        {"submit_date": "20240615", "batch_id": "-1"},
        {"submit_date": "20240615", "gt_sms_id": "1.5"},
        {"submit_date": "20240615", "destination": "+306912345679"},
    ],
)
def test_malformed_parameters_are_error_59(
    sb: ProviderSandbox, http: urllib3.PoolManager, fields: dict[str, str]
) -> None:
    # Given a message of the day
    send(http, sb)

    # When the history is asked with a missing or malformed parameter
    answer = history(http, sb, **fields)

    # Then the provider refuses it
    assert answer == "Error: 59 - Empty or invalid parameters"


# ----- days: Athens time, its midnights and clock changes, and timezone_offset ----------------

DAY_EDGES = [
    # (the first second of an Athens day in UTC, the day before, that day)
    pytest.param(utc(2024, 6, 14, 21), "20240614", "20240615", id="summer-midnight"),
    pytest.param(utc(2024, 1, 14, 22), "20240114", "20240115", id="winter-midnight"),
    # The day clocks go forward (2024-03-31 01:00 UTC) is 23 hours long.
    pytest.param(utc(2024, 3, 30, 22), "20240330", "20240331", id="before-spring"),
    pytest.param(utc(2024, 3, 31, 21), "20240331", "20240401", id="after-spring"),
    # The day clocks go back (2024-10-27 01:00 UTC) is 25 hours long.
    pytest.param(utc(2024, 10, 26, 21), "20241026", "20241027", id="before-fall"),
    pytest.param(utc(2024, 10, 27, 22), "20241027", "20241028", id="after-fall"),
]


@pytest.mark.parametrize(("midnight", "day", "next_day"), DAY_EDGES)
def test_submit_date_is_the_day_in_athens(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    clock: FakeClock,
    midnight: float,
    day: str,
    next_day: str,
) -> None:
    # Given one message in the last second of an Athens day and one in the first second of the next
    late = send_at(http, sb, clock, midnight - 1)
    early = send_at(http, sb, clock, midnight)

    # When each day's history is asked
    # Then each message is on its own Athens day
    assert smsids_in(history(http, sb, submit_date=day)) == [late]
    assert smsids_in(history(http, sb, submit_date=next_day)) == [early]


def test_clock_change_days_are_23_and_25_hours(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given messages at 21:30 UTC on the days around both clock changes of 2024
    sends = {
        day: send_at(http, sb, clock, utc(2024, month, day_of_month, 21, 30))
        for day, (month, day_of_month) in {
            "20240331": (3, 30),  # 23:30 EET on the 30th is still the 30th...
            "20240401": (3, 31),  # ...but 00:30 EEST on April 1st after the change
            "20241027": (10, 26),  # 00:30 EEST on the 27th
            "20241028": (10, 27),  # 23:30 EET on the 27th: the long day still runs
        }.items()
    }

    # When each day's history is asked
    found = {day: smsids_in(history(http, sb, submit_date=day)) for day in sends}

    # Then 21:30 UTC falls on the day the Athens offset puts it on
    assert found == {
        "20240331": [],
        "20240401": [sends["20240401"]],
        "20241027": [sends["20241027"], sends["20241028"]],
        "20241028": [],
    }


@pytest.mark.parametrize(
    ("offset", "day_has_it"),
    [
        ("0", {"20240614": True, "20240615": False}),  # 23:30 UTC on the 14th
        ("2", {"20240614": False, "20240615": True}),
        ("+0.5", {"20240614": False, "20240615": True}),
        ("0.25", {"20240614": True, "20240615": False}),
        ("-5", {"20240614": True, "20240615": False}),
        ("5.5", {"20240614": False, "20240615": True}),
    ],
)
def test_timezone_offset_moves_the_day(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    clock: FakeClock,
    offset: str,
    day_has_it: dict[str, bool],
) -> None:
    # Given a message at 23:30 UTC (02:30 the next day in Athens)
    smsid = send_at(http, sb, clock, utc(2024, 6, 14, 23, 30))

    # When each day's history is asked with a fixed offset east of UTC
    found = {day: smsids_in(history(http, sb, submit_date=day, timezone_offset=offset)) for day in day_has_it}

    # Then the message is on the day that offset puts it on
    assert found == {day: [smsid] if has_it else [] for day, has_it in day_has_it.items()}


# ----- sends whose answer was lost -------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="drop", after_processing=True),
        Fault(kind="garbage", after_processing=True),
        Fault(kind="http_status", status=504, after_processing=True),
    ],
    ids=["drop", "garbage", "504"],
)
def test_sends_whose_answer_was_lost_are_in_the_history(
    sb: ProviderSandbox, http: urllib3.PoolManager, fault: Fault
) -> None:
    # Given a send the provider carried out before its answer was lost
    sb.add_fault(fault)
    try:
        http.request("POST", sb.url + "SendIM", json=body(im_sender_name="Lost", destinations=[NO_VIBER]))
    except ProtocolError:
        assert fault.kind == "drop"

    # When the client looks for it in the day's history
    answer = history(http, sb, submit_date="20240615", senderid="Lost", destination=NO_VIBER)

    # Then it is there, with the id the client never received
    [entry] = sb.ledger
    assert smsids_in(answer) == entry.smsids
    assert answer.split("|")[1] == str(entry.submission_id)


def test_sends_that_failed_before_processing_are_not(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a send dropped before the provider did anything, and one it refused
    sb.add_fault(Fault(kind="drop"))
    with pytest.raises(ProtocolError):
        http.request("POST", sb.url + "SendIM", json=body())
    http.request("POST", sb.url + "SendIM", json=body(im_text=""))

    # When the day's history is asked
    # Then neither is in it
    assert history(http, sb, submit_date="20240615") == ""
