"""Times of scheduled sends: the recipient's zone from the number, and when a send window opens.

Pure functions of their arguments (the clock is passed in), so DST changes, windows across
midnight and far-away hemispheres are tested without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from gateway.fields import WEEKDAYS, SendWindow

UNKNOWN_ZONE = "Etc/Unknown"
FALLBACK_ZONE = "UTC"
# Countries over several zones whose numbers (mobiles, mostly) do not say which: the zone where
# most of their people live. A country not listed takes the zone of its example fixed-line
# number (phonenumbers' metadata), and a number of no country at all takes UTC.
MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei",
    "GL": "America/Nuuk",
    "ID": "Asia/Jakarta",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PF": "Pacific/Tahiti",
    "PG": "Pacific/Port_Moresby",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}
# A day's window is looked for from the day before (a window across midnight that opened
# yesterday may still be open) to a week ahead (every weekday once).
_DAYS_LOOKED_AT = range(-1, 8)


def zone_of(number: str) -> str:
    """The IANA zone of a number (digits with country code): its prefix's, else its country's main one."""
    try:
        parsed = phonenumbers.parse("+" + number)
    except phonenumbers.NumberParseException:
        return FALLBACK_ZONE
    zones = [zone for zone in number_zones.time_zones_for_number(parsed) if zone != UNKNOWN_ZONE]
    if len(zones) == 1 and _known(zones[0]):
        return zones[0]
    region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    return main_zone(region)


@cache
def main_zone(region: str) -> str:
    """A country's main zone (MAIN_ZONES, else the zone of its example fixed-line number)."""
    zone = MAIN_ZONES.get(region)
    if zone is None:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
        zones = [] if example is None else list(number_zones.time_zones_for_geographical_number(example))
        zones = [zone for zone in zones if zone != UNKNOWN_ZONE]
        zone = zones[0] if zones else FALLBACK_ZONE
    return zone if _known(zone) else FALLBACK_ZONE


@cache
def _known(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Opening:
    """When a window is open: [opens, closes) as instants (UTC)."""

    opens: datetime
    closes: datetime


def next_opening(at: datetime, window: SendWindow, zone: str) -> datetime:
    """The first instant at or after `at` (aware) when `window` is open in `zone`."""
    at = at.astimezone(UTC)
    later = [opening.opens for opening in openings_around(at, window, zone) if opening.opens > at]
    for opening in openings_around(at, window, zone):
        if opening.opens <= at < opening.closes:
            return at
    return min(later)


def openings_around(at: datetime, window: SendWindow, zone: str) -> list[Opening]:
    """The window's openings from the day before `at` to a week after, in the zone's local days."""
    tz = ZoneInfo(zone)
    opens_at, closes_at = _clock_time(window.opens), _clock_time(window.closes)
    crosses_midnight = closes_at <= opens_at
    today = at.astimezone(tz).date()
    days = set(window.days) if window.days else set(WEEKDAYS)
    found = []
    for offset in _DAYS_LOOKED_AT:
        day = today + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        close_day = day + timedelta(days=1) if crosses_midnight else day
        found.append(Opening(local_instant(day, opens_at, tz), local_instant(close_day, closes_at, tz)))
    return found


def local_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) when the zone's clocks show `clock` on `day`.

    A time the clocks skip (the hour lost when summer time starts) is when they jump past it:
    a window opening at 03:30 on that night in Athens opens at 04:00. A time they show twice
    (when summer time ends) is its first occurrence.
    """
    wall = datetime.combine(day, clock)
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # In a gap: the jump happens between the two readings of the wall time; find it to the second.
    early = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    late = instant
    while late - early > timedelta(seconds=1):
        middle = early + (late - early) / 2
        if middle.astimezone(tz).replace(tzinfo=None) < wall:
            early = middle
        else:
            late = middle
    whole = late.replace(microsecond=0)
    return whole if whole == late else whole + timedelta(seconds=1)


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
