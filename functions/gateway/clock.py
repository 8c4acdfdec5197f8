"""The schedules' clock: the wall clock, or under `make run --clock-scale` a faster one.

Only what decides when a scheduled part goes out reads it (send_at checks, send windows,
trigger delays); every other time in the gateway is the wall clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gateway.settings import get_settings


def now() -> datetime:
    """The current instant (UTC) on the schedules' clock."""
    return datetime.fromtimestamp(now_seconds(), UTC)


def now_seconds() -> float:
    settings = get_settings()
    wall = time.time()
    if settings.clock_scale == 1 or settings.clock_origin is None:
        return wall
    return settings.clock_origin + (wall - settings.clock_origin) * settings.clock_scale


def wall_seconds(seconds: float) -> float:
    """How long `seconds` of the schedules' clock take on the wall clock."""
    return seconds / get_settings().clock_scale
