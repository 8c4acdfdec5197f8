"""The caps' day: the stage's local day, its midnight, across summer time; and the worst-case cost."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.guard.caps import Caps, Limits


def caps_at(instant: datetime, zone: str = "Europe/Athens", **more: Any) -> Caps:
    return Caps(None, defaults=Limits(), ceiling=None, time_zone=zone, clock=instant.timestamp, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("utc", "day", "ends"),
    [
        # Winter (UTC+2): 23:59:59 local is still the 7th; its day ends at 22:00 UTC
        (
            datetime(2026, 12, 7, 21, 59, 59, tzinfo=UTC),
            "2026-12-07",
            datetime(2026, 12, 7, 22, 0, tzinfo=UTC),
        ),
        (datetime(2026, 12, 7, 22, 0, 0, tzinfo=UTC), "2026-12-08", datetime(2026, 12, 8, 22, 0, tzinfo=UTC)),
        # Summer (UTC+3): the day turns at 21:00 UTC
        (datetime(2026, 7, 1, 20, 59, 59, tzinfo=UTC), "2026-07-01", datetime(2026, 7, 1, 21, 0, tzinfo=UTC)),
        # The day summer time starts (29 March 2026) is 23 hours long
        (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), "2026-03-29", datetime(2026, 3, 29, 21, 0, tzinfo=UTC)),
        # The day it ends (25 October 2026) is 25 hours long
        (datetime(2026, 10, 24, 21, 30, tzinfo=UTC), "2026-10-25", datetime(2026, 10, 25, 22, 0, tzinfo=UTC)),
    ],
)
def test_the_day_is_the_stages_local_day_and_ends_at_its_local_midnight(
    utc: datetime, day: str, ends: datetime
) -> None:
    found_day, found_ends = caps_at(utc).day()
    assert found_day == day
    assert found_ends == ends


def test_another_stage_time_zone_has_its_own_midnight() -> None:
    instant = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 01:00 on the 8th in Sydney (UTC+11)
    day, ends = caps_at(instant, "Australia/Sydney").day()
    assert day == "2026-12-08"
    assert ends == datetime(2026, 12, 8, 13, 0, tzinfo=UTC)


def test_the_worst_case_cost_is_every_destination_falling_back_at_its_countrys_price() -> None:
    prices = {"30": Decimal("0.0379"), "357": Decimal("0.05")}
    caps = caps_at(datetime(2026, 12, 7, tzinfo=UTC), price=lambda code, low_cost: prices.get(code))
    destinations = ["306912345678", "306912345679", "35799123456"]
    assert caps.worst_case_cost(destinations, 2, False) == Decimal("0.2516")  # (2 x 0.0379 + 0.05) x 2
    # Viber only: no SMS can follow
    assert caps.worst_case_cost(destinations, None, False) == Decimal(0)
    # A country LiveAll gives no price for counts at the unknown price (the highest)
    assert caps.worst_case_cost(["447400123456"], 1, False) == Decimal("0.1000")
