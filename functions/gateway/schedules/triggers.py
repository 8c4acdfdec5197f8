"""The engine that fires each part: EventBridge Scheduler one-time schedules, or a delayed message.

A part is fired by a trigger message ({"schedule_trigger": {"id", "part"}}) on the trigger
queue, which the queue function consumes. A part due later than SCHEDULE_DIRECT_SECONDS
gets a one-time schedule (at(), UTC) in the stage's group whose target is that queue, and
that Scheduler deletes once it has run; a part due sooner is put on the queue at once,
with SQS's delay (Scheduler's precision is a minute, and an at() time already past would
never fire). Firing is idempotent (gateway.schedules.service.fire), so a trigger that
arrives twice sends once.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import clock, names
from gateway.aws import aws_client
from gateway.observability import logger

MAX_SQS_DELAY_SECONDS = 900


@dataclass(frozen=True, slots=True)
class TriggerTarget:
    """Where triggers go and what Scheduler needs to put them there (the stack sets all of it)."""

    queue_url: str
    queue_arn: str
    group: str
    role_arn: str
    dead_letter_arn: str | None


def trigger_body(schedule_id: str, part: int) -> str:
    return json.dumps({names.SCHEDULE_TRIGGER_FIELD: {"id": schedule_id, "part": part}})


def schedule_name(schedule_id: str, part: int) -> str:
    return f"{schedule_id}-{part}"


class Triggers:
    def __init__(self, target: TriggerTarget) -> None:
        self.target = target
        self.sqs: Any = aws_client("sqs")
        self.scheduler: Any = aws_client("scheduler")

    def place(self, schedule_id: str, part: int, at: datetime) -> str:
        """Arrange for the part's trigger at `at`; says how ("queue" or "scheduler")."""
        seconds = (at - clock.now()).total_seconds()
        if seconds <= names.SCHEDULE_DIRECT_SECONDS:
            delay = min(MAX_SQS_DELAY_SECONDS, max(0, math.ceil(clock.wall_seconds(seconds))))
            self.sqs.send_message(
                QueueUrl=self.target.queue_url,
                MessageBody=trigger_body(schedule_id, part),
                DelaySeconds=delay,
            )
            return "queue"
        target: dict[str, Any] = {
            "Arn": self.target.queue_arn,
            "RoleArn": self.target.role_arn,
            "Input": trigger_body(schedule_id, part),
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": names.SCHEDULER_MAX_EVENT_AGE_SECONDS,
                "MaximumRetryAttempts": names.SCHEDULER_MAX_RETRY_ATTEMPTS,
            },
        }
        if self.target.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.target.dead_letter_arn}
        # A name taken already: placed by an earlier attempt of this very request.
        with contextlib.suppress(self.scheduler.exceptions.ConflictException):
            self.scheduler.create_schedule(
                Name=schedule_name(schedule_id, part),
                GroupName=self.target.group,
                ScheduleExpression=f"at({_utc_wall(at)})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Target=target,
            )
        return "scheduler"

    def remove(self, schedule_id: str, part: int) -> None:
        """Delete the part's one-time schedule, if it has one (best effort: firing checks the state)."""
        try:
            self.scheduler.delete_schedule(Name=schedule_name(schedule_id, part), GroupName=self.target.group)
        except self.scheduler.exceptions.ResourceNotFoundException:
            pass  # fired already, or placed on the queue directly
        except Exception as error:
            logger.warning(
                "a cancelled part's schedule was not deleted", extra={"reason": type(error).__name__}
            )


def _utc_wall(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
