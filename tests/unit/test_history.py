"""GetSMSHistory answers, and Athens days computed without the tz database, checked against it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.provider.history import (
    HistoryRecord,
    athens_date,
    athens_offset,
    parse_history_answer,
    submit_dates,
)
from gateway.provider.statuses import ProviderAnswerError

ATHENS = ZoneInfo("Europe/Athens")
LINE = "20817547|1001|MyShop|306912456789|1465021977|Delivered|1|0.0379"
RECORD = HistoryRecord(
    smsid="20817547",
    batch_id="1001",
    senderid="MyShop",
    destination="306912456789",
    last_status_at=datetime(2016, 6, 4, 6, 32, 57, tzinfo=UTC),
    status_text="Delivered",
    sms_count=1,
    charge=Decimal("0.0379"),
)
SECOND = LINE.replace("20817547", "20817548")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- History answers ---


def test_a_line_is_read_field_by_field() -> None:
    assert parse_history_answer(LINE) == [RECORD]
    assert parse_history_answer(LINE.encode()) == [RECORD]


@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n", b"\r\n\r\n  \n", "", "\ufeff"])
def test_an_empty_answer_means_nothing_matched(body: bytes | str) -> None:
    assert parse_history_answer(body) == []


@pytest.mark.parametrize(
    "body",
    [
        f"{LINE}\n{SECOND}",
        f"{LINE}\r\n{SECOND}\r\n",
        f"\r\n{LINE}\r\n\r\n{SECOND}\r\n\r\n",
        f"  {LINE}  \n\t{SECOND}\n",
        f"{LINE}\r{SECOND}",
    ],
)
def test_lines_blank_lines_crlf_and_whitespace(body: str) -> None:
    assert [r.smsid for r in parse_history_answer(body)] == ["20817547", "20817548"]


@pytest.mark.parametrize("extra", ["|", "|x", "|x|y|z", "|123|2016-06-04|"])
def test_fields_after_the_eighth_are_ignored(extra: str) -> None:
    assert parse_history_answer(LINE + extra) == [RECORD]


def test_duplicated_lines_come_back_as_they_came() -> None:
    assert parse_history_answer(f"{LINE}\n{SECOND}\n{LINE}") == [
        RECORD,
        parse_history_answer(SECOND)[0],
        RECORD,
    ]


def test_empty_fields_are_empty_or_none() -> None:
    [record] = parse_history_answer("20817547|||||||")
    assert record == HistoryRecord("20817547", "", "", "", None, "", None, None)


def test_a_sender_id_and_status_text_keep_spaces_and_colons_inside() -> None:
    [record] = parse_history_answer("1|2|My Shop|306912456789|1465021977|Failed: absent subscriber|1|0")
    assert (record.senderid, record.status_text) == ("My Shop", "Failed: absent subscriber")


def test_an_error_answer_raises_with_the_providers_code() -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_history_answer(b"Error: 44 - Invalid API token\r\n")
    assert (caught.value.code, caught.value.message) == (44, "Invalid API token")


MALFORMED = [
    ("HTML", b"<html><body>Internal Server Error</body></html>", "HTML"),
    ("too few fields", b"20817547|1001|MyShop|306912456789", "line 1 has 4 of 8"),
    ("second line cut", f"{LINE}\n{LINE[:30]}".encode(), "line 2"),
    ("non-numeric smsid", LINE.replace("20817547", "abc").encode(), "smsid"),
    ("non-numeric batch id", LINE.replace("1001", "b-1").encode(), "batch id"),
    ("non-numeric destination", LINE.replace("306912456789", "+3069").encode(), "destination"),
    ("bad time", LINE.replace("1465021977", "2016-06-04").encode(), "whole number"),
    ("bad count", LINE.replace("|1|", "|x|").encode(), "whole number"),
    ("bad charge", LINE.replace("0.0379", "€0.04").encode(), "amount"),
    ("not UTF-8", b"\xff" + LINE.encode(), "UTF-8"),
    ("error line without code", b"Error - unknown", "without an error code"),
    ("error in the middle", f"{LINE}\nError: 8 - internal".encode(), "line 2"),
]


@pytest.mark.parametrize(("body", "why"), [(b, w) for _, b, w in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_a_malformed_answer_raises_without_a_provider_code(body: bytes, why: str) -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_history_answer(body)
    assert caught.value.code is None
    assert why in caught.value.message


history_records = st.builds(
    HistoryRecord,
    smsid=st.integers(0, 10**12).map(str),
    batch_id=st.just("") | st.integers(0, 10**9).map(str),
    senderid=st.from_regex(r"[A-Za-z0-9 .!#%&()<>-]{0,11}", fullmatch=True).map(str.strip),
    destination=st.from_regex(r"[0-9]{0,15}", fullmatch=True),
    last_status_at=st.none() | st.integers(1, 2**33).map(lambda s: datetime.fromtimestamp(s, tz=UTC)),
    status_text=st.text(st.characters(exclude_characters="|\r\n", exclude_categories=["Cs"])).map(str.strip),
    sms_count=st.none() | st.integers(0, 1000),
    charge=st.none() | st.decimals(min_value=-100, max_value=100, places=4),
)


def _line(record: HistoryRecord) -> str:
    def plain(value: object) -> str:
        return "" if value is None else str(value)

    at = "" if record.last_status_at is None else str(int(record.last_status_at.timestamp()))
    fields = [record.smsid, record.batch_id, record.senderid, record.destination, at, record.status_text]
    return "|".join([*fields, plain(record.sms_count), plain(record.charge)])


@given(st.lists(history_records, max_size=20), st.sampled_from(["\n", "\r\n"]))
def test_any_well_formed_history_reads_back_exactly(written: list[HistoryRecord], newline: str) -> None:
    body = newline.join(_line(r) for r in written) + newline
    assert parse_history_answer(body.encode()) == written


# --- Athens time ---


@pytest.mark.parametrize(
    ("instant", "expected_day"),
    [
        # Winter (UTC+2): Athens midnight is 22:00 UTC.
        (utc(2024, 1, 15, 21, 59, 59), date(2024, 1, 15)),
        (utc(2024, 1, 15, 22, 0), date(2024, 1, 16)),
        # Summer (UTC+3): Athens midnight is 21:00 UTC.
        (utc(2024, 7, 15, 20, 59, 59), date(2024, 7, 15)),
        (utc(2024, 7, 15, 21, 0), date(2024, 7, 16)),
        # New Year in Athens, two hours before UTC's.
        (utc(2024, 12, 31, 21, 59), date(2024, 12, 31)),
        (utc(2024, 12, 31, 22, 0), date(2025, 1, 1)),
    ],
)
def test_the_athens_day_changes_at_athens_midnight(instant: datetime, expected_day: date) -> None:
    assert athens_date(instant) == expected_day
    assert instant.astimezone(ATHENS).date() == expected_day  # the reference agrees


@pytest.mark.parametrize(
    ("instant", "hours"),
    [
        # 2024: summer from Sunday 31 March 01:00 UTC to Sunday 27 October 01:00 UTC.
        (utc(2024, 3, 31, 0, 59, 59), 2),
        (utc(2024, 3, 31, 1, 0), 3),
        (utc(2024, 10, 27, 0, 59, 59), 3),
        (utc(2024, 10, 27, 1, 0), 2),
        # 2025: 30 March and 26 October.
        (utc(2025, 3, 30, 0, 59, 59), 2),
        (utc(2025, 3, 30, 1, 0), 3),
        (utc(2025, 10, 26, 0, 59, 59), 3),
        (utc(2025, 10, 26, 1, 0), 2),
        # A year whose last March Sunday is the 31st and last October Sunday the 25th.
        (utc(2026, 3, 29, 1, 0), 3),
        (utc(2026, 10, 25, 0, 59), 3),
        (utc(2026, 10, 25, 1, 0), 2),
    ],
)
def test_the_offset_switches_at_01_00_utc_on_the_last_sundays(instant: datetime, hours: int) -> None:
    assert athens_offset(instant) == timedelta(hours=hours)
    assert instant.astimezone(ATHENS).utcoffset() == timedelta(hours=hours)


def test_the_day_around_the_switches_follows_the_offset() -> None:
    # 21:30 UTC on the Saturday before each switch: the offset at that moment decides the day.
    assert athens_date(utc(2024, 3, 30, 21, 30)) == date(2024, 3, 30)  # 23:30 EET
    assert athens_date(utc(2024, 10, 26, 21, 30)) == date(2024, 10, 27)  # 00:30 EEST


def test_an_instant_in_another_zone_is_the_same_instant() -> None:
    new_york = datetime(2024, 7, 15, 17, 0, tzinfo=timezone(timedelta(hours=-4)))  # 21:00 UTC
    assert athens_date(new_york) == date(2024, 7, 16)
    assert athens_offset(new_york) == timedelta(hours=3)


instants = st.datetimes(
    min_value=datetime(1996, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)
zones = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(instant=instants, zone=zones)
@example(instant=utc(2024, 3, 31, 1, 0), zone=UTC)
@example(instant=utc(2024, 10, 27, 0, 59, 59, 999999), zone=UTC)
@example(instant=utc(2000, 2, 29, 22, 0), zone=UTC)
def test_offset_and_day_agree_with_the_tz_database(instant: datetime, zone: timezone) -> None:
    seen_from = instant.astimezone(zone)  # the same instant, written in any zone
    in_athens = instant.astimezone(ATHENS)
    assert athens_offset(seen_from) == in_athens.utcoffset()
    assert athens_date(seen_from) == in_athens.date()


# The nights of the last week of March and October, where the switches fall, in any year.
switch_nights = st.builds(
    lambda year, month, day, seconds: utc(year, month, day) + timedelta(seconds=seconds),
    year=st.integers(1996, 2200),
    month=st.sampled_from([3, 10]),
    day=st.integers(24, 31),
    seconds=st.integers(-3 * 3600, 3 * 3600),
)


@given(instant=switch_nights)
def test_offset_and_day_agree_with_the_tz_database_around_the_switches(instant: datetime) -> None:
    in_athens = instant.astimezone(ATHENS)
    assert athens_offset(instant) == in_athens.utcoffset()
    assert athens_date(instant) == in_athens.date()


@given(start=instants, length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
def test_submit_dates_are_every_athens_day_from_start_to_end(start: datetime, length: timedelta) -> None:
    end = start + length
    first, last = start.astimezone(ATHENS).date(), end.astimezone(ATHENS).date()
    expected = [(first + timedelta(days=n)).strftime("%Y%m%d") for n in range((last - first).days + 1)]
    assert submit_dates(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2024, 1, 15, 10), utc(2024, 1, 15, 11), ["20240115"]),
        (utc(2024, 1, 15, 10), utc(2024, 1, 15, 10), ["20240115"]),
        # Winter: 21:59 UTC is still the 15th in Athens, 22:00 is the 16th.
        (utc(2024, 1, 15, 12), utc(2024, 1, 15, 21, 59), ["20240115"]),
        (utc(2024, 1, 15, 12), utc(2024, 1, 15, 22, 0), ["20240115", "20240116"]),
        # Summer: the same at 20:59 / 21:00 UTC.
        (utc(2024, 7, 15, 12), utc(2024, 7, 15, 20, 59), ["20240715"]),
        (utc(2024, 7, 15, 12), utc(2024, 7, 15, 21, 0), ["20240715", "20240716"]),
        # A UTC day that is two Athens days.
        (utc(2024, 7, 15, 0), utc(2024, 7, 15, 23, 59), ["20240715", "20240716"]),
        # Across the spring switch and the year's end.
        (utc(2024, 3, 30, 21, 0), utc(2024, 3, 31, 21, 0), ["20240330", "20240331", "20240401"]),
        (utc(2024, 12, 31, 12), utc(2025, 1, 1, 12), ["20241231", "20250101"]),
    ],
)
def test_submit_dates_examples(start: datetime, end: datetime, expected: list[str]) -> None:
    assert submit_dates(start, end) == expected


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        submit_dates(utc(2024, 1, 2), utc(2024, 1, 1))


@pytest.mark.parametrize(
    "call",
    [
        lambda: athens_offset(datetime(2024, 7, 1, 12)),
        lambda: athens_date(datetime(2024, 7, 1, 12)),
        lambda: submit_dates(datetime(2024, 7, 1), utc(2024, 7, 2)),
        lambda: submit_dates(utc(2024, 7, 1), datetime(2024, 7, 2)),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()
