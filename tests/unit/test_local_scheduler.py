"""make run's stand-in for EventBridge Scheduler (local.scheduler): reading at(), the scaled clock, firing."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.scheduler import Clock, ExpressionError, LocalScheduler, is_due, parse_at, sqs_queue_of

ORIGIN = 1_800_000_000.0  # 2027-01-15T08:00:00Z
TRIGGERS_ARN = "arn:aws:sqs:eu-central-1:123456789012:viber-gateway-schedule-triggers"
DEAD_LETTERS_ARN = "arn:aws:sqs:eu-central-1:123456789012:viber-gateway-schedule-triggers-dlq"


@pytest.mark.parametrize(
    ("expression", "zone", "expected"),
    [
        ("at(2026-12-07T10:00:00)", "UTC", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
        ("at(2026-12-07T10:00:00)", None, datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
        # Athens is UTC+2 in winter, UTC+3 in summer
        ("at(2026-12-07T10:00:00)", "Europe/Athens", datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
        ("at(2026-07-07T10:00:00)", "Europe/Athens", datetime(2026, 7, 7, 7, 0, tzinfo=UTC)),
        (" at(2026-12-07T23:59:59) ", "UTC", datetime(2026, 12, 7, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_an_at_expression_names_an_instant_in_its_time_zone(
    expression: str, zone: str | None, expected: datetime
) -> None:
    assert parse_at(expression, zone) == expected


@pytest.mark.parametrize("expression", ["rate(5 minutes)", "cron(0 10 * * ? *)"])
def test_recurring_expressions_are_not_fired_here(expression: str) -> None:
    assert parse_at(expression, "UTC") is None


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("at(2026-12-07 10:00:00)", "UTC"),  # Scheduler's format has the T
        ("at(2026-12-07T10:00)", "UTC"),  # and seconds
        ("at(2026-12-07T10:00:00Z)", "UTC"),  # and no offset: the zone is a parameter
        ("at(2026-02-30T10:00:00)", "UTC"),  # a day that does not exist
        ("in(2026-12-07T10:00:00)", "UTC"),
        ("at(2026-12-07T10:00:00)", "Mars/Olympus_Mons"),
    ],
)
def test_anything_else_is_refused(expression: str, zone: str) -> None:
    with pytest.raises(ExpressionError):
        parse_at(expression, zone)


def test_the_wall_clock_is_the_clock_at_scale_one() -> None:
    clock = Clock()
    assert clock.now(ORIGIN + 12.5) == ORIGIN + 12.5
    assert clock.wall_time(ORIGIN + 12.5) == ORIGIN + 12.5


def test_a_scaled_clock_starts_at_its_origin_and_runs_faster() -> None:
    clock = Clock(scale=3600, origin=ORIGIN)
    assert clock.now(ORIGIN) == ORIGIN
    # one wall second is an hour on the clock
    assert clock.now(ORIGIN + 1) == ORIGIN + 3600
    assert clock.now(ORIGIN + 2.5) == ORIGIN + 9000
    # and the wall time at which it reads a given instant is the inverse
    assert clock.wall_time(ORIGIN + 9000) == pytest.approx(ORIGIN + 2.5)
    assert clock.now(clock.wall_time(ORIGIN + 86_400)) == pytest.approx(ORIGIN + 86_400)


def test_a_schedule_is_due_once_the_clock_has_reached_it() -> None:
    at = datetime.fromtimestamp(ORIGIN + 3600, UTC)  # an hour after the origin, on the clock
    wall = Clock()
    fast = Clock(scale=600, origin=ORIGIN)  # an hour in 6 s
    assert not is_due(at, wall, ORIGIN + 6)
    assert is_due(at, wall, ORIGIN + 3600)
    assert not is_due(at, fast, ORIGIN + 5.99)
    assert is_due(at, fast, ORIGIN + 6)
    assert is_due(at, fast, ORIGIN + 60)


def test_only_sqs_arns_name_a_queue() -> None:
    assert sqs_queue_of(TRIGGERS_ARN) == ("123456789012", "viber-gateway-schedule-triggers")
    assert sqs_queue_of("arn:aws:sqs:eu-central-1:123456789012:orders.fifo") == (
        "123456789012",
        "orders.fifo",
    )
    assert sqs_queue_of("arn:aws:lambda:eu-central-1:123456789012:function:f") is None
    assert sqs_queue_of("viber-gateway-schedule-triggers") is None


# The scheduler's passes, against in-memory stand-ins for the two clients.


def _not_found(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, operation)


class _Paginator:
    def __init__(self, schedules: dict[str, dict[str, Any]]) -> None:
        self._schedules = schedules

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        listed = [
            {"GroupName": s["GroupName"], "Name": s["Name"], "LastModificationDate": s["Modified"]}
            for s in self._schedules.values()
            if s.get("State", "ENABLED") == kwargs.get("State", "ENABLED")
        ]
        return [{"Schedules": listed[:2]}, {"Schedules": listed[2:]}]  # two pages


class FakeScheduler:
    def __init__(self) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}
        self.gets = 0

    def add(self, name: str, at: str, *, zone: str = "UTC", after: str = "DELETE", **target: Any) -> None:
        self.schedules[name] = {
            "GroupName": "viber-gateway",
            "Name": name,
            "Modified": "2026-12-06",
            "ScheduleExpression": at,
            "ScheduleExpressionTimezone": zone,
            "ActionAfterCompletion": after,
            "Target": {
                "Arn": TRIGGERS_ARN,
                "Input": json.dumps({"schedule_trigger": {"id": name}}),
                **target,
            },
        }

    def get_paginator(self, operation: str) -> _Paginator:
        assert operation == "list_schedules"
        return _Paginator(self.schedules)

    def get_schedule(self, *, GroupName: str, Name: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.gets += 1
        if Name not in self.schedules:
            raise _not_found("GetSchedule")
        return dict(self.schedules[Name])

    def delete_schedule(self, *, GroupName: str, Name: str) -> None:  # noqa: N803
        if self.schedules.pop(Name, None) is None:
            raise _not_found("DeleteSchedule")


class FakeSqs:
    def __init__(self, *, failing: set[str] | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failing = failing or set()

    def get_queue_url(self, *, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:  # noqa: N803
        if QueueName in self.failing:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "GetQueueUrl")
        return {"QueueUrl": f"http://sqs/{QueueOwnerAWSAccountId}/{QueueName}"}

    def send_message(self, *, QueueUrl: str, MessageBody: str, **kwargs: Any) -> None:  # noqa: N803
        self.sent.append((QueueUrl.rsplit("/", 1)[-1], MessageBody))


def _at(seconds_after_origin: float) -> str:
    return f"at({datetime.fromtimestamp(ORIGIN + seconds_after_origin, UTC):%Y-%m-%dT%H:%M:%S})"


def _scheduler(scheduler: FakeScheduler, sqs: FakeSqs, scale: float = 3600) -> LocalScheduler:
    return LocalScheduler(scheduler, sqs, Clock(scale=scale, origin=ORIGIN), logging.getLogger("test"))


def test_a_due_schedule_sends_its_input_to_its_queue_once_and_is_deleted() -> None:
    # Given two schedules, one and three hours ahead on a clock where an hour takes a second
    scheduler, sqs = FakeScheduler(), FakeSqs()
    scheduler.add("a-0", _at(3600))
    scheduler.add("b-0", _at(3 * 3600))
    local = _scheduler(scheduler, sqs)

    # When passes run before, at and after the first one's time
    assert local.tick(ORIGIN + 0.9) == []
    assert local.tick(ORIGIN + 1.0) == ["viber-gateway/a-0"]
    assert local.tick(ORIGIN + 1.5) == []

    # Then its trigger went to the trigger queue once, and the schedule is gone; the other waits
    assert sqs.sent == [("viber-gateway-schedule-triggers", json.dumps({"schedule_trigger": {"id": "a-0"}}))]
    assert set(scheduler.schedules) == {"b-0"}
    # ...and each schedule was read once, not at every pass
    assert scheduler.gets == 2


def test_a_schedule_in_a_time_zone_fires_at_that_zone_s_time() -> None:
    scheduler, sqs = FakeScheduler(), FakeSqs()
    # 10:00 in Athens (UTC+2 in January) is 08:00 UTC, the origin itself
    scheduler.add("athens-0", "at(2027-01-15T10:00:00)", zone="Europe/Athens")
    local = _scheduler(scheduler, sqs, scale=1)
    assert local.tick(ORIGIN - 1) == []
    assert local.tick(ORIGIN) == ["viber-gateway/athens-0"]


def test_one_kept_after_completion_fires_only_once() -> None:
    scheduler, sqs = FakeScheduler(), FakeSqs()
    scheduler.add("kept-0", _at(60), after="NONE")
    local = _scheduler(scheduler, sqs)
    assert local.tick(ORIGIN + 1) == ["viber-gateway/kept-0"]
    assert local.tick(ORIGIN + 2) == []
    assert len(sqs.sent) == 1
    assert set(scheduler.schedules) == {"kept-0"}


def test_a_schedule_deleted_before_its_time_never_fires() -> None:
    # Given a schedule read by one pass, then cancelled (deleted) before its time
    scheduler, sqs = FakeScheduler(), FakeSqs()
    scheduler.add("c-0", _at(3600))
    local = _scheduler(scheduler, sqs)
    local.tick(ORIGIN)
    scheduler.delete_schedule(GroupName="viber-gateway", Name="c-0")
    # When its time passes, then nothing is sent
    assert local.tick(ORIGIN + 10) == []
    assert sqs.sent == []


def test_a_cancel_racing_the_firing_wins_or_loses_but_never_both() -> None:
    # Given a due schedule that a cancel deletes between the scheduler's read and its firing
    scheduler, sqs = FakeScheduler(), FakeSqs()
    scheduler.add("r-0", _at(3600))
    local = _scheduler(scheduler, sqs)
    original_delete = scheduler.delete_schedule

    def cancelled_first(*, GroupName: str, Name: str) -> None:  # noqa: N803
        original_delete(GroupName=GroupName, Name=Name)  # the cancel
        original_delete(GroupName=GroupName, Name=Name)  # the scheduler's claim: not found

    scheduler.delete_schedule = cancelled_first  # type: ignore[method-assign]
    # Then the scheduler finds it gone and sends nothing
    assert local.tick(ORIGIN + 2) == []
    assert sqs.sent == []


def test_an_undeliverable_input_goes_to_the_dead_letter_queue() -> None:
    scheduler, sqs = FakeScheduler(), FakeSqs(failing={"viber-gateway-schedule-triggers"})
    scheduler.add("d-0", _at(60), DeadLetterConfig={"Arn": DEAD_LETTERS_ARN})
    local = _scheduler(scheduler, sqs)
    assert local.tick(ORIGIN + 1) == ["viber-gateway/d-0"]
    assert sqs.sent == [
        ("viber-gateway-schedule-triggers-dlq", json.dumps({"schedule_trigger": {"id": "d-0"}}))
    ]
    assert scheduler.schedules == {}


def test_recurring_and_unreadable_schedules_are_left_alone() -> None:
    scheduler, sqs = FakeScheduler(), FakeSqs()
    scheduler.add("every-5", "rate(5 minutes)")
    scheduler.add("odd", "at(tomorrow)")
    local = _scheduler(scheduler, sqs)
    assert local.tick(ORIGIN + 1000) == []
    assert sqs.sent == []
    assert set(scheduler.schedules) == {"every-5", "odd"}


# make run's console line for the schedules' events (local.tracking.event_line).


def test_send_scheduled_prints_its_parts_and_first_time() -> None:
    from local.tracking import event_line

    detail = {
        "schedule_id": "8f14e45fceea167a5a36dedd4bea2543",
        "state": "scheduled",
        "reference": "order-1042",
        "destination_count": 3,
        "parts": [
            {"part": 0, "send_at": "2026-12-08T08:00:00Z"},
            {"part": 1, "send_at": "2026-12-08T07:00:00Z"},
        ],
    }
    line = event_line({"detail-type": "Send Scheduled", "detail": detail})
    assert line == (
        "event Send Scheduled 8f14e45fceea167a5a36dedd4bea2543 2 parts, 3 numbers, "
        "first at 2026-12-08T07:00:00Z ref order-1042"
    )


def test_scheduled_send_cancelled_prints_what_was_cancelled() -> None:
    from local.tracking import event_line

    detail = {"schedule_id": "8f14e45f", "state": "cancelled", "cancelled_parts": [0], "destination_count": 1}
    line = event_line({"detail-type": "Scheduled Send Cancelled", "detail": detail})
    assert line == "event Scheduled Send Cancelled 8f14e45f 1 part cancelled, 1 number"


# make run's flags for the schedules' clock and the stage's window (local.run).


def _resources() -> Any:
    from local.emulator import SCHEDULER_ROLE_ARN, Resources

    return Resources(
        queue_url="http://aws/123456789012/viber-gateway-messages",
        queue_arn="arn:aws:sqs:eu-central-1:123456789012:viber-gateway-messages",
        dead_letter_queue_url="http://aws/123456789012/viber-gateway-messages-dlq",
        events_sink_url=None,
        schedule_queue_url="http://aws/123456789012/viber-gateway-schedule-triggers",
        schedule_queue_arn=TRIGGERS_ARN,
        schedule_dead_letter_queue_url="http://aws/123456789012/viber-gateway-schedule-triggers-dlq",
        schedule_dead_letter_queue_arn=DEAD_LETTERS_ARN,
        schedule_group_name="viber-gateway",
        scheduler_role_arn=SCHEDULER_ROLE_ARN,
    )


def test_the_functions_are_told_where_the_schedules_are_and_which_clock_to_read() -> None:
    from gateway import names
    from local.run import function_environment

    environment = function_environment(
        {},
        "http://aws",
        "http://provider",
        _resources(),
        clock=Clock(scale=3600, origin=ORIGIN),
        send_window='{"from":"09:00","to":"21:00"}',
        verbose=False,
    )
    assert environment[names.ENV_SCHEDULE_TABLE] == names.SCHEDULE_TABLE_NAME
    assert environment[names.ENV_SCHEDULE_GROUP] == names.SCHEDULE_GROUP_NAME
    assert environment[names.ENV_SCHEDULE_QUEUE_ARN] == TRIGGERS_ARN
    assert environment[names.ENV_SCHEDULER_DEAD_LETTER_ARN] == DEAD_LETTERS_ARN
    assert environment[names.ENV_SCHEDULER_ROLE_ARN].startswith("arn:aws:iam::123456789012:role/")
    assert float(environment[names.ENV_CLOCK_SCALE]) == 3600
    assert float(environment[names.ENV_CLOCK_ORIGIN]) == ORIGIN
    assert environment[names.ENV_SEND_WINDOW] == '{"from":"09:00","to":"21:00"}'


def test_on_the_wall_clock_and_without_a_window_the_functions_are_told_neither() -> None:
    from gateway import names
    from local.run import function_environment

    environment = function_environment(
        {}, "http://aws", "http://p", _resources(), clock=Clock(), verbose=False
    )
    assert not {names.ENV_CLOCK_SCALE, names.ENV_CLOCK_ORIGIN, names.ENV_SEND_WINDOW} & set(environment)


@pytest.mark.parametrize(("given", "scale"), [([], 1.0), (["--clock-scale", "3600"], 3600.0)])
def test_the_clock_scale_flag(given: list[str], scale: float, monkeypatch: pytest.MonkeyPatch) -> None:
    from local.run import _parser

    monkeypatch.delenv("CLOCK_SCALE", raising=False)
    assert _parser().parse_args(given).clock_scale == scale


@pytest.mark.parametrize("scale", ["0.5", "0", "-2", "nan", "inf", "2000000", "fast"])
def test_a_clock_scale_below_one_or_absurd_is_refused(scale: str) -> None:
    from local.run import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(["--clock-scale", scale])


def test_a_send_window_is_checked_and_passed_on_compact() -> None:
    from local.run import send_window_setting

    given = '{"from": "09:00", "to": "21:00", "days": ["mon", "fri"]}'
    assert send_window_setting(given) == '{"from":"09:00","to":"21:00","days":["mon","fri"]}'
    assert send_window_setting(None) is None
    assert send_window_setting("  ") is None


@pytest.mark.parametrize(
    "given",
    [
        "09:00-21:00",  # not JSON
        '["09:00", "21:00"]',  # not an object
        '{"from": "9am", "to": "21:00"}',
        '{"from": "09:00", "to": "09:00"}',
        '{"from": "09:00", "to": "21:00", "days": ["monday"]}',
    ],
)
def test_a_send_window_that_is_not_one_is_refused_with_the_reason(given: str) -> None:
    from local.run import send_window_setting

    with pytest.raises(ValueError, match="--send-window"):
        send_window_setting(given)


def test_the_clock_origin_comes_from_the_environment_when_set() -> None:
    from local.run import clock_origin_from

    assert clock_origin_from({}) is None
    assert clock_origin_from({"CLOCK_ORIGIN": "1800000000.5"}) == 1_800_000_000.5
    with pytest.raises(ValueError, match="CLOCK_ORIGIN"):
        clock_origin_from({"CLOCK_ORIGIN": "yesterday"})
