"""GetSMSHistory answers, and the Athens calendar days its `submit_date` asks about.

Pure: no I/O, standard library only. Athens time is computed from the EU
summer-time rule rather than the tz database, which Lambda images may lack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gateway.provider.statuses import (
    ProviderAnswerError,
    decode_answer,
    digits,
    excerpt,
    optional,
    parse_amount,
    parse_count,
    parse_unix_time,
    raise_if_not_data,
)


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    smsid: str
    batch_id: str  # empty when the provider gives none
    senderid: str
    destination: str
    last_status_at: datetime | None  # aware, UTC
    status_text: str
    sms_count: int | None
    charge: Decimal | None  # euros


# smsid|batch_id|senderid|destination|last_status_unix|status_text|sms_count|charge|...
_HISTORY_FIELDS = 8
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_history_answer(body: bytes | str) -> list[HistoryRecord]:
    """Every line of a GetSMSHistory answer, in the provider's order, repeats included.

    An empty answer is `[]` (nothing matched); blank lines are skipped and fields after
    the eighth are ignored. `Error: ...` raises ProviderAnswerError(code, message); an
    HTML page or any line that cannot be read raises ProviderAnswerError(None, ...), and
    nothing is returned: a log with a broken line may be cut, and cannot be trusted.
    """
    text = decode_answer(body)
    raise_if_not_data(text, "a message history")
    lines = [line.strip() for line in _LINE_BREAK.split(text)]
    return [_history_record(line, number) for number, line in enumerate(lines, start=1) if line]


def _history_record(line: str, number: int) -> HistoryRecord:
    fields = [field.strip() for field in line.split("|")]
    if len(fields) < _HISTORY_FIELDS:
        raise ProviderAnswerError(
            None,
            f"history line {number} has {len(fields)} of {_HISTORY_FIELDS} fields "
            f"(cut short?): {excerpt(line)}",
        )
    smsid, batch_id, senderid, destination, last_status, status_text, sms_count, charge = fields[
        :_HISTORY_FIELDS
    ]
    try:
        return HistoryRecord(
            smsid=digits(smsid, "smsid"),
            batch_id=digits(batch_id, "batch id") if batch_id else "",
            senderid=senderid,
            destination=digits(destination, "destination") if destination else "",
            last_status_at=parse_unix_time(last_status),
            status_text=status_text,
            sms_count=optional(parse_count, sms_count),
            charge=optional(parse_amount, charge),
        )
    except ValueError as error:
        raise ProviderAnswerError(None, f"history line {number}: {error}: {excerpt(line)}") from None


# --- Athens time ---

_EET = timedelta(hours=2)  # winter
_EEST = timedelta(hours=3)  # summer
_SWITCH_HOUR_UTC = 1  # the EU switches at 01:00 UTC, in all its time zones at once


def athens_offset(instant: datetime) -> timedelta:
    """Athens' offset from UTC at `instant` (aware), by the EU rule in force since 1996.

    Summer time (EEST, UTC+3) runs from the last Sunday of March 01:00 UTC to the last
    Sunday of October 01:00 UTC; the rest of the year is EET (UTC+2). Years before 1996
    had other rules; they are not Athens history here, only the current rule projected.
    """
    at = _utc(instant)
    summer_starts = _last_sunday_switch(at.year, 3)
    summer_ends = _last_sunday_switch(at.year, 10)
    return _EEST if summer_starts <= at < summer_ends else _EET


def athens_date(instant: datetime) -> date:
    """The calendar day in Athens at `instant` (aware)."""
    at = _utc(instant)
    return (at + athens_offset(at)).date()


def submit_dates(start: datetime, end: datetime) -> list[str]:
    """The Athens days (`yyyyMMdd`, as `submit_date` wants them) the window start..end touches.

    Both ends are included: a window ending exactly at Athens midnight touches the new
    day too, since asking one day too many costs a call and one too few loses messages.
    """
    if _utc(end) < _utc(start):
        raise ValueError("the window ends before it starts")
    first, last = athens_date(start), athens_date(end)
    return [_yyyymmdd(first + timedelta(days=n)) for n in range((last - first).days + 1)]


def _utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError("a naive datetime has no place in time; give it a time zone (e.g. UTC)")
    return instant.astimezone(UTC)


def _last_sunday_switch(year: int, month: int) -> datetime:
    # March and October both have 31 days; step back from the 31st to a Sunday (weekday 6).
    last_day = date(year, month, 31)
    sunday = last_day - timedelta(days=(last_day.weekday() + 1) % 7)
    return datetime(sunday.year, sunday.month, sunday.day, _SWITCH_HOUR_UTC, tzinfo=UTC)


def _yyyymmdd(day: date) -> str:
    # Not strftime: it does not pad years below 1000 on every platform.
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"
