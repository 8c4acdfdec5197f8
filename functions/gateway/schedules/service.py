"""Scheduled sends: create, look up, list, cancel, and fire.

`create` plans the parts (gateway.schedules.times), writes the schedule, then sets a
trigger per part (gateway.schedules.triggers). `fire` is what a trigger runs: the part
moves from scheduled to sending under the item's version, then goes through the send
path under an idempotency key of its own, so a trigger delivered twice, or a retry after
a crash, sends once. A cancel moves the parts still scheduled to cancelled under the same
versioning: whichever of a cancel and a trigger writes first wins, and the other sees it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import ValidationError

from gateway import clock, names
from gateway.failures import Failure, GatewayError, QueueAction, invalid_request
from gateway.fields import FieldError, SendWindow, describe_errors
from gateway.guard.caps import reserve_for
from gateway.observability import count, count_by, logger
from gateway.schedules.model import (
    Part,
    Schedule,
    State,
    derived_state,
    fingerprint,
    iso,
    schedule_id_for,
)
from gateway.schedules.store import AlreadyExists, CursorError, ScheduleStore
from gateway.schedules.times import next_opening, zone_of
from gateway.schedules.triggers import Triggers, TriggerTarget
from gateway.sending.request import SendRequest
from gateway.sending.segments import fallback_sms
from gateway.sending.send import Answer
from gateway.settings import Settings, get_settings

# GET /schedules without from/to: schedules whose first part goes out from this long ago
# (as long as the table keeps them) to the horizon plus the week a window may add.
LIST_LOOKBACK = timedelta(days=names.SCHEDULE_RETENTION_DAYS)
WINDOW_SLACK = timedelta(days=8)
_FIRING_FIELDS_LEFT_OUT = frozenset({"send_at", "window", "destinations"})


@dataclass(frozen=True, slots=True)
class PlannedPart:
    send_at: datetime
    zone: str | None
    destinations: tuple[str, ...]


class Schedules:
    def __init__(
        self,
        store: ScheduleStore,
        triggers: Triggers,
        *,
        horizon_days: int,
        stage_window: SendWindow | None,
        now: Callable[[], datetime] = clock.now,
        publish: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.triggers = triggers
        self.horizon = timedelta(days=horizon_days)
        self.horizon_days = horizon_days
        self.stage_window = stage_window
        self.now = now
        self.publish = publish or _publish

    # ----- planning -------------------------------------------------------------------------

    def window_for(self, request: SendRequest) -> SendWindow | None:
        if request.window is False:
            return None
        return request.window or self.stage_window

    def plan(self, request: SendRequest, now: datetime) -> list[PlannedPart] | None:
        """The parts a request goes out in; None when it goes out now, whole (an ordinary send)."""
        if request.send_at is not None:
            self._check_send_at(request.send_at, now)
        start = request.send_at or now
        window = self.window_for(request)
        if window is None:
            if request.send_at is None:
                return None
            return [PlannedPart(start, None, tuple(request.destinations))]
        by_zone: dict[str, list[str]] = {}
        for number in request.destinations:
            by_zone.setdefault(zone_of(number), []).append(number)
        parts = sorted(
            (
                PlannedPart(next_opening(start, window, zone), zone, tuple(numbers))
                for zone, numbers in by_zone.items()
            ),
            key=lambda part: (part.send_at, part.zone or ""),
        )
        if request.send_at is None and all(part.send_at <= now for part in parts):
            return None
        return parts

    def _check_send_at(self, send_at: datetime, now: datetime) -> None:
        if send_at <= now:
            raise invalid_request(
                [FieldError("send_at", f"must be in the future (the gateway's clock reads {iso(now)})")]
            )
        if send_at > now + self.horizon:
            raise invalid_request(
                [
                    FieldError(
                        "send_at",
                        f"must be at most {self.horizon_days} days ahead (until {iso(now + self.horizon)})",
                    )
                ]
            )

    # ----- the use cases ------------------------------------------------------------------

    def create(self, request: SendRequest, *, store_key: str | None, origin: str) -> Answer | None:
        """Schedule `request` (202 answer), or None when it should simply be sent now."""
        now = self.now()
        planned = self.plan(request, now)
        if planned is None:
            return None
        document = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        schedule = Schedule(
            id=schedule_id_for(store_key) if store_key else uuid.uuid4().hex,
            created_at=iso(now),
            send_at=iso(request.send_at) if request.send_at else None,
            request={key: value for key, value in document.items() if key != "destinations"},
            parts=tuple(
                Part(number, iso(part.send_at), part.zone, part.destinations)
                for number, part in enumerate(planned)
            ),
            origin=origin,
            fingerprint=fingerprint(document),
        )
        try:
            self.store.create(schedule)
        except AlreadyExists:
            return self._replay(schedule)
        try:
            for part in schedule.parts:
                self.triggers.place(schedule.id, part.number, _instant(part.send_at))
        except Exception as error:
            self._undo(schedule, error)
        count(names.METRIC_SCHEDULES_CREATED)
        logger.info(
            "send scheduled",
            extra={"schedule_id": schedule.id, "parts": len(schedule.parts), "first": schedule.first_send_at},
        )
        self.publish(names.DETAIL_TYPE_SEND_SCHEDULED, scheduled_detail(schedule))
        return Answer(schedule.view(), replayed=False, status=202, schedule_id=schedule.id)

    def _replay(self, schedule: Schedule) -> Answer:
        existing = self.store.get(schedule.id)
        if existing is None:  # made and undone between our two reads: the caller may try again
            raise GatewayError(Failure.IN_PROGRESS, "A schedule under this idempotency key is being made.")
        if existing.fingerprint != schedule.fingerprint:
            raise GatewayError(
                Failure.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was used for a different scheduled message; use a new key.",
            )
        # The first attempt may have stopped before every trigger was set: set them again
        # (a second trigger of a part fires nothing twice).
        for part in existing.parts:
            if part.state is State.SCHEDULED:
                self.triggers.place(existing.id, part.number, _instant(part.send_at))
        return Answer(existing.view(), replayed=True, status=202, schedule_id=existing.id)

    def _undo(self, schedule: Schedule, error: Exception) -> None:
        logger.error("the send could not be scheduled", extra={"reason": type(error).__name__})
        for part in schedule.parts:
            self.triggers.remove(schedule.id, part.number)
        try:
            self.store.delete(schedule)
        except Exception as failed:
            logger.error("an unscheduled send was not removed", extra={"reason": type(failed).__name__})
        raise GatewayError(
            Failure.SCHEDULING_FAILED,
            "The scheduler did not take the send; nothing will be sent. Try again.",
        ) from None

    def get(self, schedule_id: str) -> dict[str, Any]:
        schedule = self.store.get(schedule_id) if _valid_id(schedule_id) else None
        if schedule is None:
            raise _not_found(schedule_id)
        return schedule.view()

    def page(
        self,
        *,
        state: str | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        now = self.now()
        # Schedules exist only between these instants (the table keeps them LIST_LOOKBACK after
        # their last part; none goes out later than the horizon and a window's week): a range
        # is cut to them, so a query never walks months where nothing can be.
        earliest, latest = now - LIST_LOOKBACK - WINDOW_SLACK, now + self.horizon + WINDOW_SLACK
        if start is not None and end is not None and end < start:
            raise invalid_request([FieldError("to", "must not be before from")])
        start = max(start or earliest, earliest)
        end = min(end or latest, latest)
        if end < start:
            return {"schedules": [], "next_cursor": None}
        try:
            found, next_cursor = self.store.page(
                start=start, end=end, state=State(state) if state else None, limit=limit, cursor=cursor
            )
        except CursorError:
            raise invalid_request([FieldError("cursor", "is not a cursor this list handed out")]) from None
        return {
            "schedules": [schedule.view(with_destinations=False) for schedule in found],
            "next_cursor": next_cursor,
        }

    def cancel(self, schedule_id: str) -> dict[str, Any]:
        """Cancel every part not yet fired; 409 if none is left, 404 if there is no such schedule."""

        def cancelled(schedule: Schedule) -> Schedule | None:
            waiting = [part for part in schedule.parts if part.state is State.SCHEDULED]
            if not waiting:
                return None
            parts = tuple(
                dataclasses.replace(part, state=State.CANCELLED) if part.state is State.SCHEDULED else part
                for part in schedule.parts
            )
            return dataclasses.replace(schedule, parts=parts, state=derived_state(parts))

        if not _valid_id(schedule_id):
            raise _not_found(schedule_id)
        before, after = self.store.change(schedule_id, cancelled)
        if before is None or after is None:
            raise _not_found(schedule_id)
        if before.version == after.version:
            raise GatewayError(
                Failure.SCHEDULE_NOT_CANCELLABLE,
                f"Schedule {schedule_id} is {after.state.value}: every part has fired or was cancelled "
                "already, so there is nothing left to cancel.",
                extra={"schedule": after.view(with_destinations=False)},
            )
        newly = [
            part.number
            for old, part in zip(before.parts, after.parts, strict=True)
            if old.state is State.SCHEDULED and part.state is State.CANCELLED
        ]
        for number in newly:
            self.triggers.remove(schedule_id, number)
        logger.info("scheduled send cancelled", extra={"schedule_id": schedule_id, "parts": newly})
        self.publish(
            names.DETAIL_TYPE_SCHEDULE_CANCELLED,
            {
                "schedule_id": schedule_id,
                "state": after.state.value,
                "reference": after.reference,
                "cancelled_parts": newly,
                "destination_count": sum(len(after.parts[n].destinations) for n in newly),
            },
        )
        return after.view()

    def fire(
        self, schedule_id: str, number: int, *, seconds_left: Callable[[], float] | None
    ) -> dict[str, Any]:
        """Send part `number` if it is due to go and has not gone; raise what the queue must retry."""
        fired_at = iso(self.now())
        if not _valid_id(schedule_id):
            count_by(names.METRIC_SCHEDULED_PARTS_FIRED, "outcome", "skipped")
            logger.warning("trigger of no possible schedule ignored", extra={"part": number})
            return {"schedule_id": None, "part": number, "skipped": "not a schedule id"}

        def started(schedule: Schedule) -> Schedule | None:
            part = _part(schedule, number)
            if part is None or part.state is not State.SCHEDULED:
                return None
            return schedule.with_part(dataclasses.replace(part, state=State.SENDING, fired_at=fired_at))

        _, schedule = self.store.change(schedule_id, started)
        part = None if schedule is None else _part(schedule, number)
        if schedule is None or part is None or part.state is not State.SENDING:
            reason = "no such schedule" if part is None else f"part is {part.state.value}"
            count_by(names.METRIC_SCHEDULED_PARTS_FIRED, "outcome", "skipped")
            logger.info(
                "trigger ignored", extra={"schedule_id": schedule_id, "part": number, "reason": reason}
            )
            return {"schedule_id": schedule_id, "part": number, "skipped": reason}
        # A part in `sending` is this trigger's, or one an earlier attempt left unfinished: the
        # idempotency key below lets it be sent at most once either way.
        from gateway.sending.idempotency import get_idempotent_sender

        key = f"schedule:{schedule_id}:{number}"
        try:
            request = _request_of(schedule, part)
            answer = get_idempotent_sender().send(
                request,
                key=key,
                seconds_left=seconds_left,
                origin="queue",
                message_id=key,
                reserve=_counted(request),
            )
        except GatewayError as error:
            if error.failure.info.queue_action is QueueAction.RETRY:
                self._finish(schedule_id, number, State.SENDING, problem=error.problem())
                raise
            self._finish(schedule_id, number, State.FAILED, problem=error.problem())
            count_by(names.METRIC_SCHEDULED_PARTS_FIRED, "outcome", "failed")
            return error.problem()
        self._finish(schedule_id, number, State.SENT, answer=answer.body)
        count_by(names.METRIC_SCHEDULED_PARTS_FIRED, "outcome", "sent")
        return answer.body

    def _finish(
        self,
        schedule_id: str,
        number: int,
        state: State,
        *,
        answer: dict[str, Any] | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        def finished(schedule: Schedule) -> Schedule | None:
            part = _part(schedule, number)
            if part is None or part.state is not State.SENDING:
                return None
            return schedule.with_part(dataclasses.replace(part, state=state, answer=answer, problem=problem))

        try:
            self.store.change(schedule_id, finished)
        except Exception as error:
            # Sent is sent: the schedule's record lags, the send's own records (tracking, the
            # idempotency store) hold the truth, and the next trigger of the part replays it.
            logger.error(
                "a scheduled part's outcome was not recorded", extra={"reason": type(error).__name__}
            )
            if state is not State.SENDING:
                raise


def scheduled_detail(schedule: Schedule) -> dict[str, Any]:
    """The Send Scheduled event: when each part goes, how many numbers (not which: events stay small)."""
    return {
        "schedule_id": schedule.id,
        "state": schedule.state.value,
        "send_at": schedule.send_at,
        "reference": schedule.reference,
        "destination_count": schedule.destination_count,
        "parts": [part.view(with_destinations=False) for part in schedule.parts],
    }


def _request_of(schedule: Schedule, part: Part) -> SendRequest:
    document = {key: value for key, value in schedule.request.items() if key not in _FIRING_FIELDS_LEFT_OUT}
    try:
        return SendRequest.model_validate({**document, "destinations": list(part.destinations)})
    except ValidationError as error:  # a rule that changed since it was scheduled
        raise invalid_request(describe_errors(error.errors())) from None


def _counted(request: SendRequest) -> Callable[[], Callable[[], None] | None]:
    """A fired part counts against the caps of the queue's bucket, when it goes (gateway.guard.caps)."""
    sms = fallback_sms(request)
    segments = sms["segments"] if sms else None
    return reserve_for(names.QUEUE_CALLER, request.destinations, segments, request.pricecat == 1)


def _part(schedule: Schedule, number: int) -> Part | None:
    return next((part for part in schedule.parts if part.number == number), None)


def _instant(text: str) -> datetime:
    from gateway.schedules.model import parse_iso

    return parse_iso(text)


def _valid_id(schedule_id: str) -> bool:
    return len(schedule_id) == 32 and all(char in "0123456789abcdef" for char in schedule_id)


def _not_found(schedule_id: str) -> GatewayError:
    shown = schedule_id if _valid_id(schedule_id) else "this id"
    return GatewayError(Failure.SCHEDULE_NOT_FOUND, f"There is no schedule {shown} (ids are 32 hex digits).")


def _publish(detail_type: str, detail: dict[str, Any]) -> None:
    from gateway.events import publish_one  # loaded with the first event, not with this module

    publish_one(detail_type, detail)


def from_settings(settings: Settings) -> Schedules:
    """The schedules of this stage; GatewayError (misconfigured) if it has none."""
    missing = [
        name
        for name, value in (
            (names.ENV_SCHEDULE_TABLE, settings.schedule_table),
            (names.ENV_SCHEDULE_QUEUE_URL, settings.schedule_queue_url),
            (names.ENV_SCHEDULE_QUEUE_ARN, settings.schedule_queue_arn),
            (names.ENV_SCHEDULER_ROLE_ARN, settings.scheduler_role_arn),
        )
        if not value
    ]
    if missing:
        logger.error("scheduling is not configured", extra={"missing": missing})
        raise GatewayError(Failure.MISCONFIGURED, "Scheduled sends are not configured on this stage.")
    return Schedules(
        ScheduleStore(str(settings.schedule_table)),
        Triggers(
            TriggerTarget(
                queue_url=str(settings.schedule_queue_url),
                queue_arn=str(settings.schedule_queue_arn),
                group=settings.schedule_group,
                role_arn=str(settings.scheduler_role_arn),
                dead_letter_arn=settings.scheduler_dead_letter_arn,
            )
        ),
        horizon_days=settings.schedule_horizon_days,
        stage_window=settings.send_window,
    )


@cache
def get_schedules() -> Schedules:
    return from_settings(get_settings())
