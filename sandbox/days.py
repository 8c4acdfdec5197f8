"""Calendar days for GetSMSHistory: which submissions fall on `submit_date`.

`submit_date` (yyyyMMdd) is a day in Athens time, the provider's own, unless the
caller gives `timezone_offset`. LiveAll does not document that parameter's format;
the sandbox takes hours east of UTC as a decimal number, optionally signed and
fractional: `2`, `+3`, `-5`, `5.5`, `5.75`, `-3.5`, between -12 and +14, a whole
number of minutes. Anything else is refused (the caller gets `Error: 59`).

Athens is EET (UTC+2) with EU summer time, EEST (UTC+3), from 01:00 UTC on the
last Sunday of March to 01:00 UTC on the last Sunday of October. The system's
time zone database is used when it has Europe/Athens; otherwise that rule.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR: Final = 3600
EET_OFFSET: Final = 2 * HOUR
EEST_OFFSET: Final = 3 * HOUR
MIN_OFFSET_HOURS: Final = Decimal(-12)
MAX_OFFSET_HOURS: Final = Decimal(14)
_OFFSET_FORMAT: Final = re.compile(r"[+-]?[0-9]{1,2}(\.[0-9]{1,2})?")
_DATE_FORMAT: Final = re.compile(r"[0-9]{8}")
# Far enough either way for any real log; the next day of 9999-12-31 is not a date.
YEARS: Final = range(1900, 9999)


def _athens_zone() -> ZoneInfo | None:
    try:
        return ZoneInfo("Europe/Athens")
    except ZoneInfoNotFoundError:  # no tz database on the machine, and no tzdata package
        return None


ATHENS: Final = _athens_zone()


def _last_sunday_0100_utc(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    day = last_day - (calendar.weekday(year, month, last_day) - calendar.SUNDAY) % 7
    return calendar.timegm((year, month, day, 1, 0, 0))


def eu_rule_athens_offset(unix: float) -> int:
    """Athens' UTC offset in seconds at a UTC instant, by the EU summer-time rule alone."""
    year = datetime.fromtimestamp(unix, UTC).year
    in_summer = _last_sunday_0100_utc(year, 3) <= unix < _last_sunday_0100_utc(year, 10)
    return EEST_OFFSET if in_summer else EET_OFFSET


def eu_rule_athens_midnight(day: date) -> int:
    """The UTC instant (unix seconds) at which `day` begins in Athens, by the EU rule alone."""
    local_midnight = calendar.timegm(day.timetuple())
    # Athens changes its clocks at 03:00/04:00 local, never at midnight: exactly one of
    # the two offsets gives an instant that has that offset.
    summer_candidate = local_midnight - EEST_OFFSET
    if eu_rule_athens_offset(summer_candidate) == EEST_OFFSET:
        return summer_candidate
    return local_midnight - EET_OFFSET


def athens_midnight(day: date) -> int:
    """The UTC instant (unix seconds) at which `day` begins in Athens."""
    if ATHENS is None:
        return eu_rule_athens_midnight(day)
    return int(datetime(day.year, day.month, day.day, tzinfo=ATHENS).timestamp())


def parse_submit_date(text: str) -> date | None:
    """`yyyyMMdd` as a date, or None when it is not one."""
    if not _DATE_FORMAT.fullmatch(text):
        return None
    if int(text[:4]) not in YEARS:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:  # e.g. 20240230
        return None


def parse_timezone_offset(text: str) -> int | None:
    """`timezone_offset` (hours east of UTC, see the module's docstring) in seconds, or None."""
    if not _OFFSET_FORMAT.fullmatch(text):
        return None
    hours = Decimal(text)  # the format above is always a valid decimal
    minutes = hours * 60
    if not MIN_OFFSET_HOURS <= hours <= MAX_OFFSET_HOURS or minutes != minutes.to_integral_value():
        return None
    return int(minutes) * 60


def day_window(day: date, offset_seconds: int | None) -> tuple[int, int]:
    """[start, end) in unix seconds of `day`: in Athens time, or at a fixed offset east of UTC."""
    if offset_seconds is None:
        return athens_midnight(day), athens_midnight(day + timedelta(days=1))
    start = calendar.timegm(day.timetuple()) - offset_seconds
    return start, start + 24 * HOUR
