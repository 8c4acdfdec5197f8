"""Times of scheduled sends: send_at offsets and horizon, zones from numbers, windows, DST, midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.failures import GatewayError
from gateway.fields import SendWindow, describe_errors
from gateway.schedules.model import Part, State, derived_state
from gateway.schedules.service import Schedules
from gateway.schedules.times import local_instant, main_zone, next_opening, zone_of
from gateway.sending.request import SendRequest

ATHENS = ZoneInfo("Europe/Athens")
SYDNEY = ZoneInfo("Australia/Sydney")


def window(opens: str, closes: str, days: list[str] | None = None) -> SendWindow:
    return SendWindow.model_validate({"from": opens, "to": closes, **({"days": days} if days else {})})


def request(**more: Any) -> SendRequest:
    body = {"im_type": "IM", "im_sender_name": "Shop", "im_text": "Hi", "destinations": ["306912345678"]}
    return SendRequest.model_validate({**body, **more})


def planner(horizon_days: int = 30, stage_window: SendWindow | None = None) -> Schedules:
    return Schedules(None, None, horizon_days=horizon_days, stage_window=stage_window)  # type: ignore[arg-type]


# ----- send_at ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-12-08T10:00:00+02:00", datetime(2026, 12, 8, 8, 0, tzinfo=UTC)),
        ("2026-12-08T10:00:00Z", datetime(2026, 12, 8, 10, 0, tzinfo=UTC)),
        ("2026-12-08t10:00:00z", datetime(2026, 12, 8, 10, 0, tzinfo=UTC)),
        ("2026-12-08T10:00:00-05:30", datetime(2026, 12, 8, 15, 30, tzinfo=UTC)),
        ("2026-12-08T10:00:00.123456789+14:00", datetime(2026, 12, 7, 20, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_send_at_takes_any_offset_and_means_that_instant(text: str, utc: datetime) -> None:
    assert request(send_at=text).send_at == utc


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-08T10:00:00",
        "2026-12-08 10:00:00Z",
        "2026-12-08",
        "10:00",
        "2026-13-01T00:00:00Z",
        "tomorrow",
        0,
    ],
)
def test_send_at_without_an_offset_or_not_rfc_3339_is_refused_naming_the_field(text: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        request(send_at=text)
    [error] = describe_errors(refused.value.errors())
    assert error.field == "send_at"


def test_send_at_must_be_in_the_future_and_within_the_horizon() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    schedules = planner(horizon_days=30)
    with pytest.raises(GatewayError) as past:
        schedules.plan(request(send_at="2026-12-06T14:00:00+02:00"), now)  # exactly now
    assert "in the future" in past.value.errors[0].message
    with pytest.raises(GatewayError) as far:
        schedules.plan(request(send_at="2027-01-05T12:00:01Z"), now)
    assert "at most 30 days ahead" in far.value.errors[0].message
    [part] = schedules.plan(request(send_at="2027-01-05T12:00:00Z"), now) or []
    assert part.send_at == datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
    assert part.zone is None


# ----- zones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("306912345678", "Europe/Athens"),
        ("35799123456", "Asia/Nicosia"),
        ("12125550123", "America/New_York"),  # the prefix says which of the country's zones
        ("14155550123", "America/Los_Angeles"),
        ("61412345678", "Australia/Sydney"),  # a mobile says no zone: the country's main one
        ("79161234567", "Europe/Moscow"),
        ("447700900123", "Europe/London"),  # a number of no known range: its country's zone
        ("4915123456789", "Europe/Berlin"),
    ],
)
def test_a_numbers_zone_comes_from_its_prefix_else_its_countrys_main_zone(number: str, zone: str) -> None:
    assert zone_of(number) == zone


def test_every_countrys_main_zone_is_a_zone_the_runtime_knows() -> None:
    import phonenumbers

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        ZoneInfo(main_zone(region))


# ----- windows ------------------------------------------------------------------------------


def test_a_send_inside_the_window_goes_now_and_outside_waits_for_the_next_opening() -> None:
    nine_to_nine = window("09:00", "21:00")
    at_noon_athens = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # 12:00 EET
    assert next_opening(at_noon_athens, nine_to_nine, "Europe/Athens") == at_noon_athens
    at_night = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # 23:00 EET
    assert next_opening(at_night, nine_to_nine, "Europe/Athens") == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
    # The closing minute itself is outside
    at_close = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)  # 21:00 EET
    assert next_opening(at_close, nine_to_nine, "Europe/Athens") == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)


def test_a_window_across_midnight_is_open_on_both_sides_of_it() -> None:
    nights = window("22:00", "06:00")
    before_midnight = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)  # 23:30 EET
    after_midnight = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)  # 04:00 EET
    assert next_opening(before_midnight, nights, "Europe/Athens") == before_midnight
    assert next_opening(after_midnight, nights, "Europe/Athens") == after_midnight
    midday = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    assert next_opening(midday, nights, "Europe/Athens") == datetime(2026, 12, 8, 20, 0, tzinfo=UTC)


def test_days_of_the_week_are_the_recipients_local_days() -> None:
    weekdays = window("09:00", "17:00", ["mon", "tue", "wed", "thu", "fri"])
    # Friday 2026-12-11 18:00 in Sydney (07:00 UTC): closed until Monday 09:00 AEDT
    friday_evening = datetime(2026, 12, 11, 7, 0, tzinfo=UTC)
    opening = next_opening(friday_evening, weekdays, "Australia/Sydney")
    assert opening.astimezone(SYDNEY) == datetime(2026, 12, 14, 9, 0, tzinfo=SYDNEY)
    # A window across midnight that opened on Friday is still open early on Saturday
    late = window("22:00", "02:00", ["fri"])
    saturday_1am = datetime(2026, 12, 12, 1, 0, tzinfo=ATHENS)
    assert next_opening(saturday_1am, late, "Europe/Athens") == saturday_1am.astimezone(UTC)


def test_athens_summer_time_changes_move_the_window_with_the_local_clock() -> None:
    nine = window("09:00", "21:00")
    # The night before summer time (Sunday 2026-03-29): 09:00 EEST is 06:00 UTC, the day before 07:00
    saturday_night = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert next_opening(saturday_night, nine, "Europe/Athens") == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    friday_night = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
    assert next_opening(friday_night, nine, "Europe/Athens") == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    # An opening in the skipped hour (03:30 that night) opens when the clocks jump to 04:00
    skipped = window("03:30", "05:00")
    assert next_opening(saturday_night, skipped, "Europe/Athens") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # An opening in the repeated hour (03:30 on 2026-10-25) is its first occurrence (EEST)
    repeated = window("03:30", "05:00")
    before = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    assert next_opening(before, repeated, "Europe/Athens") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_sydney_summer_time_in_the_other_hemisphere_moves_its_window_the_other_way() -> None:
    nine = window("09:00", "21:00")
    # Summer time starts there on Sunday 2026-10-04 (02:00 -> 03:00): 09:00 is 23:00 UTC before, 22:00 after
    assert next_opening(datetime(2026, 10, 2, 12, 0, tzinfo=UTC), nine, "Australia/Sydney") == datetime(
        2026, 10, 2, 23, 0, tzinfo=UTC
    )
    assert next_opening(datetime(2026, 10, 4, 12, 0, tzinfo=UTC), nine, "Australia/Sydney") == datetime(
        2026, 10, 4, 22, 0, tzinfo=UTC
    )
    # And ends on Sunday 2026-04-05 (03:00 -> 02:00): 09:00 is 22:00 UTC before, 23:00 after
    assert next_opening(datetime(2026, 4, 3, 12, 0, tzinfo=UTC), nine, "Australia/Sydney") == datetime(
        2026, 4, 3, 22, 0, tzinfo=UTC
    )
    assert next_opening(datetime(2026, 4, 5, 12, 0, tzinfo=UTC), nine, "Australia/Sydney") == datetime(
        2026, 4, 5, 23, 0, tzinfo=UTC
    )


def test_local_instant_reads_the_zones_clock_both_in_gaps_and_folds() -> None:
    assert local_instant(date(2026, 3, 29), time(3, 0), ATHENS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_instant(date(2026, 10, 25), time(3, 0), ATHENS) == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert local_instant(date(2026, 10, 4), time(2, 30), SYDNEY) == datetime(2026, 10, 3, 16, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    opens=st.tuples(st.integers(0, 23), st.integers(0, 59)),
    closes=st.tuples(st.integers(0, 23), st.integers(0, 59)),
    days=st.none()
    | st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True),
    zone=st.sampled_from(
        ["Europe/Athens", "Australia/Sydney", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
    ),
)
def test_the_next_opening_is_never_earlier_than_asked_is_within_a_week_and_is_inside_the_window(
    at: datetime, opens: tuple[int, int], closes: tuple[int, int], days: list[str] | None, zone: str
) -> None:
    if opens == closes:
        return
    chosen = window(f"{opens[0]:02d}:{opens[1]:02d}", f"{closes[0]:02d}:{closes[1]:02d}", days)
    opening = next_opening(at, chosen, zone)
    assert at <= opening <= at + timedelta(days=8)
    # At the opening, the same question answers the same instant: it is open then
    assert next_opening(opening, chosen, zone) == opening


def test_a_bulk_send_is_split_by_zone_each_at_its_own_opening_and_an_open_window_sends_now() -> None:
    nine = window("09:00", "21:00")
    schedules = planner()
    # 06:00 UTC: 08:00 in Athens (closed), 17:00 in Sydney (open)
    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    numbers = ["306912345678", "61412345678", "306912345679"]
    parts = schedules.plan(request(destinations=numbers, window=nine.as_setting()), now) or []
    assert [(p.zone, p.destinations, p.send_at) for p in parts] == [
        ("Australia/Sydney", ("61412345678",), now),
        ("Europe/Athens", ("306912345678", "306912345679"), datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),
    ]
    # All open: an ordinary send
    assert schedules.plan(request(destinations=["61412345678"], window=nine.as_setting()), now) is None


def test_the_stage_window_applies_unless_the_request_gives_its_own_or_false() -> None:
    now = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)  # 01:00 in Athens
    schedules = planner(stage_window=window("09:00", "21:00"))
    [part] = schedules.plan(request(), now) or []
    assert part.send_at == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
    assert schedules.plan(request(window=False), now) is None
    assert schedules.plan(request(window={"from": "00:00", "to": "23:59"}), now) is None


def test_a_window_with_send_at_waits_from_send_at_not_from_now() -> None:
    schedules = planner()
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    [part] = (
        schedules.plan(
            request(send_at="2026-12-09T22:00:00+02:00", window={"from": "09:00", "to": "21:00"}), now
        )
        or []
    )
    assert part.send_at == datetime(2026, 12, 10, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"from": "9:00", "to": "21:00"}, "window.from"),
        ({"from": "09:00", "to": "24:00"}, "window.to"),
        ({"from": "09:00", "to": "09:00"}, "window"),
        ({"from": "09:00", "to": "21:00", "days": []}, "window.days"),
        ({"from": "09:00", "to": "21:00", "days": ["monday"]}, "window.days[0]"),
        ({"from": "09:00", "to": "21:00", "days": ["mon", "mon"]}, "window"),
        ({"from": "09:00"}, "window.to"),
        ({"from": "09:00", "to": "21:00", "zone": "UTC"}, "window.zone"),
        (0, "window"),
        (True, "window"),
        ("09:00-21:00", "window"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        request(window=value)
    assert [error.field for error in describe_errors(refused.value.errors())] == [field]


def test_a_schedules_state_follows_its_parts() -> None:
    def parts(*states: State) -> tuple[Part, ...]:
        return tuple(Part(n, "2026-12-08T08:00:00Z", None, ("30",), state) for n, state in enumerate(states))

    assert derived_state(parts(State.SCHEDULED, State.SCHEDULED)) is State.SCHEDULED
    assert derived_state(parts(State.SENT, State.SCHEDULED)) is State.SENDING
    assert derived_state(parts(State.SENDING)) is State.SENDING
    assert derived_state(parts(State.SENT, State.SENT)) is State.SENT
    assert derived_state(parts(State.SENT, State.CANCELLED)) is State.SENT
    assert derived_state(parts(State.SENT, State.FAILED)) is State.FAILED
    assert derived_state(parts(State.CANCELLED, State.CANCELLED)) is State.CANCELLED
