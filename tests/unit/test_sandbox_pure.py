"""The sandbox's pure functions: SMS parts, the price list, Athens days, the delivery rules."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

import sandbox.days
from sandbox.days import (
    ATHENS,
    athens_midnight,
    day_window,
    eu_rule_athens_midnight,
    eu_rule_athens_offset,
    parse_submit_date,
    parse_timezone_offset,
)
from sandbox.delivery import STATUS_TEXTS, delivery_path, number_rule, status_text
from sandbox.prices import DEFAULT_SMS_PRICE, SMS_PRICES, price_for_country, price_for_destination
from sandbox.reports import parse_smsids
from sandbox.segments import is_gsm7, sms_segments

ALPHA = "\N{GREEK SMALL LETTER ALPHA}"  # outside GSM-7, one UTF-16 unit


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    """Unix seconds of a UTC date and time."""
    return calendar.timegm((year, month, day, hour, minute, second))


# ----- SMS parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param("a" * 160, 1, id="gsm-160"),
        pytest.param("a" * 161, 2, id="gsm-161"),
        pytest.param("a" * 306, 2, id="gsm-2x153"),
        pytest.param("a" * 307, 3, id="gsm-307"),
        pytest.param("€" * 80, 1, id="extension-160-septets"),
        pytest.param("€" * 81, 2, id="extension-162-septets"),
        pytest.param("a" * 159 + "^", 2, id="extension-last-needs-2"),
        pytest.param("\f" * 80, 1, id="form-feed-is-2"),
        # 306 septets would fill two parts exactly, but the escape pair may not straddle them.
        pytest.param("a" * 152 + "€" + "a" * 152, 3, id="escape-pair-not-split"),
        pytest.param("ΔΦΓΛΩΠΨΣΘΞ" * 16, 1, id="greek-capitals-in-gsm"),
        pytest.param(ALPHA * 70, 1, id="ucs2-70"),
        pytest.param(ALPHA * 71, 2, id="ucs2-71"),
        pytest.param(ALPHA * 134, 2, id="ucs2-2x67"),
        pytest.param(ALPHA * 135, 3, id="ucs2-135"),
        pytest.param("a" * 159 + "ç", 3, id="one-non-gsm-char-makes-ucs2"),
        pytest.param("😀" * 35, 1, id="surrogates-70-units"),
        pytest.param("😀" * 36, 2, id="surrogates-72-units"),
        # 134 units would fill two parts exactly, but the surrogate pair may not straddle them.
        pytest.param(ALPHA * 66 + "😀" + ALPHA * 66, 3, id="surrogate-pair-not-split"),
    ],
)
def test_sms_segments(text: str, parts: int) -> None:
    # Given a fallback SMS text
    # When its parts are counted
    # Then the count is the one an SMSC bills
    assert sms_segments(text) == parts


def test_gsm7_alphabet_edges() -> None:
    # Given characters at the edges of the GSM-7 alphabet
    # Then capitals with accents in the table pass, their lower-case or Greek small letters do not
    assert is_gsm7("ÇÉÄÖÑÜäöñüàèéùìò@£$¥§¿¡ΔΦΓΛΩΠΨΣΘΞ^{}\\[~]|€\f\r\n")
    assert not is_gsm7("ç")
    assert not is_gsm7(ALPHA)
    assert not is_gsm7("\x1b")  # the escape itself is not a character one can send


# ----- prices -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "country"),
    [
        ("306912345678", "30"),
        ("35799123456", "357"),
        ("393471234567", "39"),
        ("447700900123", None),
        ("35123456789", None),  # Portugal: 351, not Cyprus's 357
    ],
)
def test_price_for_destination_uses_the_country_prefix(destination: str, country: str | None) -> None:
    # Given a destination number
    # When its SMS price is looked up
    price = price_for_destination(destination)

    # Then it is its country's, or the default for countries not in the list
    assert price == (SMS_PRICES[country] if country else DEFAULT_SMS_PRICE)


def test_price_categories() -> None:
    # Given Greece's prices
    greece = price_for_country("30")

    # Then pricecat 1 is low cost, anything else normal, as in the documentation's example
    assert (greece.for_category(0), greece.for_category(1)) == (Decimal("0.0379"), Decimal("0.0319"))
    assert price_for_country("1") == DEFAULT_SMS_PRICE


# ----- Athens days --------------------------------------------------------------------


@pytest.mark.skipif(ATHENS is None, reason="no time zone database to compare with")
def test_eu_rule_matches_the_time_zone_database() -> None:
    # Given the fallback rule and the system's Europe/Athens
    assert ATHENS is not None
    day = date(2000, 1, 1)

    # When every day's midnight from 2000 to 2040 is computed both ways
    while day < date(2041, 1, 1):
        from_database = int(datetime(day.year, day.month, day.day, tzinfo=ATHENS).timestamp())

        # Then they agree
        assert eu_rule_athens_midnight(day) == from_database, day
        day += timedelta(days=1)


@pytest.mark.skipif(ATHENS is None, reason="no time zone database to compare with")
@pytest.mark.parametrize("year", range(2000, 2041))
def test_eu_rule_offset_matches_the_database_around_each_change(year: int) -> None:
    # Given the instants around both clock changes of a year
    assert ATHENS is not None
    for month in (3, 10):
        last_sunday = max(
            week[calendar.SUNDAY] for week in calendar.monthcalendar(year, month) if week[calendar.SUNDAY]
        )
        change = utc(year, month, last_sunday, 1, 0, 0)
        for instant in (change - 1, change, change + 1):
            # When the offset is computed both ways
            expected = datetime.fromtimestamp(instant, ATHENS).utcoffset()
            assert expected is not None

            # Then they agree
            assert eu_rule_athens_offset(instant) == int(expected.total_seconds())


@pytest.mark.parametrize(
    ("day", "start", "hours"),
    [
        pytest.param(date(2024, 1, 15), utc(2024, 1, 14, 22, 0, 0), 24, id="winter"),
        pytest.param(date(2024, 6, 15), utc(2024, 6, 14, 21, 0, 0), 24, id="summer"),
        pytest.param(date(2024, 3, 31), utc(2024, 3, 30, 22, 0, 0), 23, id="spring-forward"),
        pytest.param(date(2024, 10, 27), utc(2024, 10, 26, 21, 0, 0), 25, id="fall-back"),
        pytest.param(date(2025, 3, 30), utc(2025, 3, 29, 22, 0, 0), 23, id="spring-forward-2025"),
    ],
)
@pytest.mark.parametrize("source", ["database", "eu-rule"])
def test_athens_day_windows(
    monkeypatch: pytest.MonkeyPatch, day: date, start: int, hours: int, source: str
) -> None:
    # Given a calendar day in Athens, and a machine with or without Europe/Athens
    if source == "eu-rule":
        monkeypatch.setattr(sandbox.days, "ATHENS", None)
    elif ATHENS is None:
        pytest.skip("no time zone database")

    # When its window is computed
    window = day_window(day, None)

    # Then it starts at local midnight and lasts 23, 24 or 25 hours
    assert window == (start, start + hours * 3600)
    assert athens_midnight(day) == start


def test_fixed_offset_day_window() -> None:
    # Given a day and an offset 5.5 hours east of UTC
    # When its window is computed
    # Then it is 24 hours from 18:30 UTC the day before, DST playing no part
    assert day_window(date(2024, 3, 31), 19800) == (utc(2024, 3, 30, 18, 30, 0), utc(2024, 3, 31, 18, 30, 0))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2", 7200),
        ("+3", 10800),
        ("-5", -18000),
        ("5.5", 19800),
        ("5.75", 20700),
        ("-3.5", -12600),
        ("0", 0),
        ("-0", 0),
        ("14", 50400),
        ("-12", -43200),
        ("02", 7200),
        ("2.0", 7200),
        ("2.1", 7560),
    ],
)
def test_timezone_offset_is_decimal_hours(text: str, seconds: int) -> None:
    # Given a well-formed timezone_offset
    # When it is parsed
    # Then it is that many hours east of UTC
    assert parse_timezone_offset(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "15", "-13", "14.5", "5.33", "2h", "+-2", "2.", ".5", "02:00", "1e1", " 2", "2,5", "\u0662", "100"],
)
def test_malformed_timezone_offset_is_refused(text: str) -> None:
    # Given a timezone_offset the sandbox does not understand
    # When it is parsed
    # Then it is refused
    assert parse_timezone_offset(text) is None


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("20240229", date(2024, 2, 29)),
        ("20230229", None),
        ("20241301", None),
        ("2024-03-01", None),
        ("2024031", None),
        ("202403011", None),
        ("99991231", None),
        ("18991231", None),
        ("", None),
    ],
)
def test_submit_date(text: str, day: date | None) -> None:
    # Given a submit_date
    # When it is parsed
    # Then real yyyyMMdd dates pass and the rest is refused
    assert parse_submit_date(text) == day


# ----- the delivery rules and the smsids parameter ------------------------------------


def test_every_documented_status_has_its_text() -> None:
    # Given LiveAll's documented codes
    documented = [*range(100001, 100011), 200000, *range(300000, 300012)]

    # Then each has a text, and nothing else is in the table
    assert sorted(STATUS_TEXTS) == documented
    assert status_text(200000) == "Delivered"
    assert status_text(300008) == "Seen"
    assert status_text(12345) == "Unknown"


def test_rules_go_by_the_last_digit() -> None:
    # Given numbers that differ in their last digit only
    # Then the rule follows that digit
    assert [number_rule(f"30691234567{d}").name for d in "0123"] == [
        "Viber user who never reads",
        "no Viber",
        "Viber message expires",
        "no Viber, SMS undelivered",
    ]
    assert {number_rule(f"30691234567{d}").name for d in "56789"} == {"Viber user who reads"}


def test_fallback_path_carries_the_sms_parts_and_charge() -> None:
    # Given a two-part fallback SMS to a Cypriot number without Viber, at low cost
    path = delivery_path("35799123451", "IM_SMSFB", "a" * 200, pricecat=1)

    # Then the Viber steps cost the Viber price, the SMS steps two low-cost Cypriot SMS
    assert [(s.code, s.sms_count, s.charge) for s in path] == [
        (300001, 1, Decimal("0.01")),
        (300005, 1, Decimal("0.01")),
        (100001, 2, Decimal("0.0700")),
        (200000, 2, Decimal("0.0700")),
    ]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("1", [1]),
        ("1,2.3^4", [1, 2, 3, 4]),
        (" 1 , 2 ", [1, 2]),
        ("2,1,2", [2, 1]),
        ("", None),
        ("1,,2", None),
        ("1;2", None),
        ("-1", None),
        ("1,", None),
    ],
)
def test_parse_smsids(text: str, ids: list[int] | None) -> None:
    # Given an smsids parameter
    # When it is parsed
    # Then ids come out in order without repeats, or it is malformed
    assert parse_smsids(text) == ids
