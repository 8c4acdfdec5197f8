"""EventBridge Scheduler's part: fires the one-time schedules the emulator stores.

moto's `scheduler` keeps schedules (create, get, list, delete) but never runs one. This
thread does what Scheduler would: every quarter of a second it lists the schedules of every
group, and for each `at(...)` schedule whose time has come on the schedules' clock, it
sends the target's Input to the SQS queue the target names, then (ActionAfterCompletion
DELETE) deletes the schedule. A delivery that fails goes to the target's dead-letter queue,
at once rather than after Scheduler's retries. Recurring schedules (rate, cron) are left
alone: the gateway makes none.

Under `make run --clock-scale N` the clock is the functions' (gateway.clock): N times faster
than the wall clock from its origin, so that a schedule an hour ahead fires in 3600/N s.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import BotoCoreError, ClientError

from local.periodic import Periodic

PERIOD_SECONDS: Final = 0.25
AT_EXPRESSION: Final = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
SQS_ARN: Final = re.compile(r"arn:aws[\w-]*:sqs:[\w-]+:(\d{12}):([\w.-]+)")
NOT_FOUND: Final = "ResourceNotFoundException"
# For an SQS target without Input, Scheduler sends an empty object: SQS takes no empty body.
EMPTY_INPUT: Final = "{}"


@dataclass(frozen=True, slots=True)
class Clock:
    """The schedules' clock: `origin + (wall - origin) * scale` in epoch seconds (scale 1: the wall clock)."""

    scale: float = 1.0
    origin: float = 0.0

    def now(self, wall: float | None = None) -> float:
        """The clock's reading at the wall time `wall` (default: now)."""
        wall = time.time() if wall is None else wall
        if self.scale == 1:
            return wall
        return self.origin + (wall - self.origin) * self.scale

    def wall_time(self, instant: float) -> float:
        """The wall time at which the clock reads `instant`."""
        if self.scale == 1:
            return instant
        return self.origin + (instant - self.origin) / self.scale


class ExpressionError(ValueError):
    """A schedule expression or time zone this scheduler cannot read."""


def parse_at(expression: str, timezone: str | None = None) -> datetime | None:
    """The instant an `at(yyyy-mm-ddThh:mm:ss)` expression names in `timezone` (default UTC), in UTC.

    None for the recurring kinds (rate, cron); ExpressionError for anything else it cannot read.
    """
    text = expression.strip()
    if text.startswith(("rate(", "cron(")):
        return None
    match = AT_EXPRESSION.fullmatch(text)
    if match is None:
        raise ExpressionError(f"not a schedule expression: {expression!r}")
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ExpressionError(f"unknown time zone: {timezone!r}") from error
    try:
        local = datetime.fromisoformat(match.group(1))
    except ValueError as error:
        raise ExpressionError(f"not a date and time: {expression!r}") from error
    return local.replace(tzinfo=zone).astimezone(UTC)


def is_due(at: datetime, clock: Clock, wall: float | None = None) -> bool:
    """Whether the clock has reached `at` (at the wall time `wall`, default now)."""
    return clock.now(wall) >= at.timestamp()


def sqs_queue_of(arn: str) -> tuple[str, str] | None:
    """(account, queue name) of an SQS queue's ARN; None for any other ARN."""
    match = SQS_ARN.fullmatch(arn)
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True, slots=True)
class _Seen:
    """A schedule as last read: the summary's key tells whether it changed since."""

    key: tuple[str, str, str]  # group, name, last modification
    at: datetime | None  # None: recurring or unreadable, never fired here
    details: dict[str, Any]


class LocalScheduler(Periodic):
    """Fires due one-time schedules from a thread until stopped (see the module's docstring)."""

    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        clock: Clock,
        log: logging.Logger,
        *,
        period: float = PERIOD_SECONDS,
    ) -> None:
        super().__init__(period, "local-scheduler")
        self._scheduler = scheduler
        self._sqs = sqs
        self._clock = clock
        self._log = log
        self._seen: dict[tuple[str, str, str], _Seen] = {}
        self._fired: set[tuple[str, str, str]] = set()  # kept after completion (ActionAfterCompletion NONE)
        self._queue_urls: dict[str, str] = {}

    def run_once(self) -> None:
        try:
            self.tick()
        except (BotoCoreError, ClientError) as error:
            if self.stopping:
                return  # stopped with the emulator
            self._log.warning("scheduler: cannot read the schedules (%s); trying again", error)
        except Exception:
            self._log.exception("scheduler: a pass failed; trying again")

    def tick(self, wall: float | None = None) -> list[str]:
        """One pass: fire what is due at the wall time `wall` (default now); the names fired."""
        fired = []
        current: set[tuple[str, str, str]] = set()
        for summary in self._summaries():
            key = (summary["GroupName"], summary["Name"], str(summary.get("LastModificationDate")))
            current.add(key)
            if key in self._fired:
                continue
            seen = self._seen.get(key) or self._read(key)
            if seen is None:
                continue  # deleted meanwhile
            self._seen[key] = seen
            if seen.at is not None and is_due(seen.at, self._clock, wall) and self._fire(seen):
                fired.append(f"{key[0]}/{key[1]}")
        # Forget what is gone (deleted, or changed and read again under its new key).
        self._seen = {key: seen for key, seen in self._seen.items() if key in current}
        self._fired &= current
        return fired

    def _summaries(self) -> list[dict[str, Any]]:
        paginator = self._scheduler.get_paginator("list_schedules")
        return [
            summary for page in paginator.paginate(State="ENABLED") for summary in page.get("Schedules", [])
        ]

    def _read(self, key: tuple[str, str, str]) -> _Seen | None:
        group, name, _ = key
        try:
            details = self._scheduler.get_schedule(GroupName=group, Name=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == NOT_FOUND:
                return None
            raise
        expression = details.get("ScheduleExpression", "")
        try:
            at = parse_at(expression, details.get("ScheduleExpressionTimezone"))
        except ExpressionError as error:
            self._log.warning("scheduler: %s/%s is never fired here: %s", group, name, error)
            at = None
        else:
            if at is None:
                self._log.warning(
                    "scheduler: %s/%s is recurring (%s): not fired here", group, name, expression
                )
        return _Seen(key=key, at=at, details=details)

    def _fire(self, seen: _Seen) -> bool:
        """Deliver the target's input; False if the schedule was deleted before it could fire."""
        group, name, _ = seen.key
        details = seen.details
        delete = details.get("ActionAfterCompletion") == "DELETE"
        if delete:
            # Deleting first claims the schedule: a cancel that deletes it at the same moment
            # either wins (nothing is sent) or finds it gone (it has fired), never both.
            try:
                self._scheduler.delete_schedule(GroupName=group, Name=name)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == NOT_FOUND:
                    return False
                raise
        else:
            self._fired.add(seen.key)
        target = details.get("Target", {})
        expression = details.get("ScheduleExpression")
        zone = details.get("ScheduleExpressionTimezone") or "UTC"
        try:
            queue = self._deliver(target)
        except (BotoCoreError, ClientError, ValueError) as error:
            where = self._dead_letter(target, error)
            self._log.warning(
                "scheduler %s/%s %s %s: delivery failed (%s); %s", group, name, expression, zone, error, where
            )
            return True
        after = "schedule deleted" if delete else "schedule kept"
        self._log.info(
            "scheduler %s/%s %s %s fired%s: input sent to %s, %s",
            group,
            name,
            expression,
            zone,
            self._clock_reading(),
            queue,
            after,
        )
        return True

    def _clock_reading(self) -> str:
        """` (clock 2026-12-07T10:00:12Z)` on a scaled clock, where the wall time misleads; else nothing."""
        if self._clock.scale == 1:
            return ""
        return f" (clock {datetime.fromtimestamp(self._clock.now(), UTC):%Y-%m-%dT%H:%M:%SZ})"

    def _deliver(self, target: dict[str, Any]) -> str:
        """Send the target's input to its queue; the queue's name."""
        arn = str(target.get("Arn", ""))
        queue = sqs_queue_of(arn)
        if queue is None:
            raise ValueError(f"only SQS targets are run locally, not {arn}")
        message: dict[str, Any] = {
            "QueueUrl": self._queue_url(arn),
            "MessageBody": target.get("Input") or EMPTY_INPUT,
        }
        group_id = target.get("SqsParameters", {}).get("MessageGroupId")
        if group_id:
            message["MessageGroupId"] = group_id
        self._sqs.send_message(**message)
        return queue[1]

    def _dead_letter(self, target: dict[str, Any], error: Exception) -> str:
        """Put the undelivered input on the target's dead-letter queue, as Scheduler does; where it went."""
        arn = target.get("DeadLetterConfig", {}).get("Arn")
        if not arn:
            return "no dead-letter queue: it is lost"
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        attributes = {
            "ERROR_CODE": code or type(error).__name__,
            "ERROR_MESSAGE": str(error)[:256] or "-",
            "TARGET_ARN": str(target.get("Arn")) or "-",
        }
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url(arn),
                MessageBody=target.get("Input") or EMPTY_INPUT,
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )
        except (BotoCoreError, ClientError, ValueError) as dead_letter_error:
            return f"its dead-letter queue failed too ({dead_letter_error}): it is lost"
        return f"sent to the dead-letter queue {arn}"

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            queue = sqs_queue_of(arn)
            if queue is None:
                raise ValueError(f"not an SQS queue: {arn}")
            account, name = queue
            answer = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._queue_urls[arn] = str(answer["QueueUrl"])
        return self._queue_urls[arn]
