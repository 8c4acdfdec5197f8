"""Scheduled sends through the real handlers: create, list, cancel, idempotent create, firing.

moto holds the schedules table, the trigger queue, the schedule group and the bus as the
stack makes them; the sandbox is LiveAll. moto's Scheduler keeps schedules but never fires
them: a test fires a part by handing the queue function the trigger Scheduler would send.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from gateway import names
from local.emulator import Resources
from sandbox import Fault, ProviderSandbox
from tests.conftest import LambdaContext, load_event, reset_process_caches, schedule_environment
from tests.integration.test_suppression import api, events_on_the_bus, message, sent_destinations

ATHENS = ZoneInfo("Europe/Athens")
GREEK = "306912345678"
GREEK_2 = "306912345679"
CYPRIOT = "35799123456"  # Asia/Nicosia: the same offset as Athens all year
AUSTRALIAN = "61412345678"  # Australia/Sydney (its main zone: mobiles do not say)
PROBLEM = "urn:viber-gateway:problem:"


@pytest.fixture
def scheduling(
    gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch
) -> ProviderSandbox:
    """The functions with the schedules, the suppression list, tracking-free sends and the bus."""
    environment = {**schedule_environment(aws), names.ENV_SUPPRESSION_TABLE: names.SUPPRESSION_TABLE_NAME}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    reset_process_caches()
    return gateway_env


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="seconds")


def one_time_schedules(aws: Resources) -> dict[str, dict[str, Any]]:
    scheduler = boto3.client("scheduler")
    listed = scheduler.list_schedules(GroupName=aws.schedule_group_name)["Schedules"]
    return {
        item["Name"]: scheduler.get_schedule(Name=item["Name"], GroupName=aws.schedule_group_name)
        for item in listed
    }


def trigger_event(aws: Resources, schedule_id: str, part: int, message_id: str = "t-1") -> dict[str, Any]:
    """The SQS event the queue function gets when Scheduler's trigger reaches the trigger queue."""
    event = load_event("sqs-batch.json")
    record = copy.deepcopy(event["Records"][0])
    record.update(
        messageId=message_id,
        body=json.dumps({names.SCHEDULE_TRIGGER_FIELD: {"id": schedule_id, "part": part}}),
        eventSourceARN=aws.schedule_queue_arn,
    )
    return {"Records": [record]}


def queue_event(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    event = load_event("sqs-batch.json")
    record = copy.deepcopy(event["Records"][0])
    record.update(messageId=message_id, body=json.dumps(body))
    return {"Records": [record]}


def fire(aws: Resources, context: LambdaContext, schedule_id: str, part: int = 0) -> dict[str, Any]:
    from queue_handler import handler

    answer: dict[str, Any] = handler(trigger_event(aws, schedule_id, part), context)
    return answer


def local_window_around(now: datetime, *, opens_in: timedelta, lasts: timedelta) -> dict[str, str]:
    """A window of Athens wall-clock time, opening `opens_in` from now."""
    opens = (now + opens_in).astimezone(ATHENS)
    closes = opens + lasts
    return {"from": opens.strftime("%H:%M"), "to": closes.strftime("%H:%M")}


def test_a_send_at_is_scheduled_with_one_eventbridge_schedule_and_answered_202(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a message to send in two hours
    send_at = later(hours=2)
    # When it is posted
    status, headers, answer = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=send_at))
    # Then it is accepted for later, with the schedule's id, its state and where to find it
    assert status == 202, answer
    assert answer["state"] == "scheduled"
    assert len(answer["id"]) == 32
    assert headers["location"] == f"/prod/schedules/{answer['id']}"
    assert answer["send_at"] == send_at.replace("+00:00", "Z")
    assert [part["destinations"] for part in answer["parts"]] == [[GREEK]]
    # And nothing reached LiveAll
    assert scheduling.ledger == []
    # And Scheduler holds one one-time schedule at that time (UTC), aimed at the trigger queue
    schedules = one_time_schedules(aws)
    assert list(schedules) == [f"{answer['id']}-0"]
    made = schedules[f"{answer['id']}-0"]
    assert made["ScheduleExpression"] == f"at({send_at.removesuffix('+00:00')})"
    assert made["ScheduleExpressionTimezone"] == "UTC"
    assert made["ActionAfterCompletion"] == "DELETE"
    assert made["Target"]["Arn"] == aws.schedule_queue_arn
    assert made["Target"]["DeadLetterConfig"]["Arn"] == aws.schedule_dead_letter_queue_arn
    assert json.loads(made["Target"]["Input"]) == {"schedule_trigger": {"id": answer["id"], "part": 0}}
    # And the bus heard Send Scheduled, without the numbers
    scheduled = [e for e in events_on_the_bus(aws) if e["detail-type"] == names.DETAIL_TYPE_SEND_SCHEDULED]
    assert len(scheduled) == 1
    assert scheduled[0]["detail"]["schedule_id"] == answer["id"]
    assert GREEK not in json.dumps(scheduled[0])
    # And GET says the same
    status, _, found = api("GET", f"/schedules/{answer['id']}", lambda_context)
    assert status == 200
    assert found == answer


def test_a_part_due_within_a_minute_goes_on_the_trigger_queue_with_a_delay_not_to_scheduler(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # When a message is scheduled 30 seconds ahead
    status, _, _answer = api(
        "POST", "/messages", lambda_context, body=message(GREEK, send_at=later(seconds=30))
    )
    # Then no Scheduler schedule is made, and the trigger waits on the queue
    assert status == 202
    assert one_time_schedules(aws) == {}
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.schedule_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


@pytest.mark.parametrize(
    ("send_at", "rule"),
    [
        ("past", "must be in the future"),
        ("far", "must be at most 30 days ahead"),
        ("2026-12-08T10:00:00", "RFC 3339 date and time with an offset"),
        ("2026-02-30T10:00:00Z", "exists"),
        (1796000000, "RFC 3339"),
    ],
)
def test_a_send_at_that_cannot_be_kept_is_refused_naming_the_field_and_the_rule(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources, send_at: Any, rule: str
) -> None:
    value = {"past": later(seconds=-1), "far": later(days=31)}.get(send_at, send_at)
    status, _, problem = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=value))
    assert status == 422, problem
    assert problem["errors"][0]["field"] == "send_at"
    assert rule in problem["errors"][0]["message"]
    assert one_time_schedules(aws) == {}
    assert scheduling.ledger == []


def test_every_rule_of_a_send_is_checked_when_it_is_scheduled(
    scheduling: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    # A bad number in a scheduled send is refused now, not when it would have fired
    body = message(GREEK, "12", send_at=later(hours=1))
    status, _, problem = api("POST", "/messages", lambda_context, body=body)
    assert status == 422
    assert problem["errors"][0]["field"] == "destinations[1]"


def test_the_same_idempotency_key_gets_the_same_schedule_never_a_second(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a scheduled send under a key
    body = message(GREEK, send_at=later(hours=3))
    key = {"Idempotency-Key": "campaign-42"}
    status, first_headers, first = api("POST", "/messages", lambda_context, body=body, headers=key)
    assert status == 202
    assert "idempotent-replayed" not in first_headers
    # When the caller retries it
    status, headers, again = api("POST", "/messages", lambda_context, body=body, headers=key)
    # Then it gets the same schedule, marked as replayed, and Scheduler still has one
    assert status == 202
    assert again["id"] == first["id"]
    assert headers["idempotent-replayed"] == "true"
    assert headers["location"] == first_headers["location"]
    assert list(one_time_schedules(aws)) == [f"{first['id']}-0"]
    # And the same key with another message is refused
    other = message(GREEK_2, send_at=later(hours=3))
    status, _, problem = api("POST", "/messages", lambda_context, body=other, headers=key)
    assert status == 409
    assert problem["type"] == PROBLEM + "idempotency-key-reused"


def test_a_trigger_delivered_twice_sends_once_and_the_schedule_keeps_the_answer(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a scheduled send
    _, _, made = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    # When its trigger arrives, and arrives again
    first = fire(aws, lambda_context, made["id"])
    second = fire(aws, lambda_context, made["id"])
    # Then LiveAll got it once, and neither delivery failed
    assert first == {"batchItemFailures": []}
    assert second == {"batchItemFailures": []}
    assert sent_destinations(scheduling) == [GREEK]
    # And the schedule says sent, with the send's answer
    _, _, found = api("GET", f"/schedules/{made['id']}", lambda_context)
    assert found["state"] == "sent"
    part = found["parts"][0]
    assert part["answer"]["messages"][0]["destination"] == GREEK
    assert part["fired_at"] is not None


def test_a_part_left_in_sending_by_a_crash_is_sent_at_most_once_by_the_next_trigger(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a part whose send went out, but whose function stopped before the schedule said so
    _, _, made = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    from gateway.schedules.service import get_schedules

    schedules = get_schedules()
    finish = schedules._finish
    schedules._finish = lambda *args, **kwargs: None  # type: ignore[method-assign]
    fire(aws, lambda_context, made["id"])
    schedules._finish = finish  # type: ignore[method-assign]
    assert api("GET", f"/schedules/{made['id']}", lambda_context)[2]["state"] == "sending"
    # When the trigger comes again
    fire(aws, lambda_context, made["id"])
    # Then nothing is sent again, and the schedule catches up with the answer
    assert sent_destinations(scheduling) == [GREEK]
    assert api("GET", f"/schedules/{made['id']}", lambda_context)[2]["state"] == "sent"


def test_a_cancelled_schedule_never_sends_and_cannot_be_cancelled_twice(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a scheduled send
    _, _, made = api(
        "POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1), reference="r-7")
    )
    events_on_the_bus(aws)
    # When it is cancelled
    status, _, cancelled = api("DELETE", f"/schedules/{made['id']}", lambda_context)
    # Then it says so, its Scheduler schedule is gone, and the bus heard it
    assert status == 200, cancelled
    assert cancelled["state"] == "cancelled"
    assert one_time_schedules(aws) == {}
    heard = [e for e in events_on_the_bus(aws) if e["detail-type"] == names.DETAIL_TYPE_SCHEDULE_CANCELLED]
    assert [e["detail"]["reference"] for e in heard] == ["r-7"]
    # And a trigger that was already on its way sends nothing
    assert fire(aws, lambda_context, made["id"]) == {"batchItemFailures": []}
    assert scheduling.ledger == []
    # And a second cancel is a clear 409
    status, _, problem = api("DELETE", f"/schedules/{made['id']}", lambda_context)
    assert status == 409
    assert problem["type"] == PROBLEM + "schedule-not-cancellable"
    assert "cancelled" in problem["detail"]


def test_a_sent_schedule_cannot_be_cancelled_and_an_unknown_one_is_404(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    _, _, made = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    fire(aws, lambda_context, made["id"])
    status, _, problem = api("DELETE", f"/schedules/{made['id']}", lambda_context)
    assert status == 409
    assert "sent" in problem["detail"]
    for unknown in ("0" * 32, "not-an-id"):
        status, _, problem = api("GET", f"/schedules/{unknown}", lambda_context)
        assert status == 404
        assert problem["type"] == PROBLEM + "schedule-not-found"
        status, _, problem = api("DELETE", f"/schedules/{unknown}", lambda_context)
        assert status == 404


def test_the_suppression_list_applies_when_the_part_fires_not_when_it_was_scheduled(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a send scheduled to two numbers
    _, _, made = api(
        "POST", "/messages", lambda_context, body=message(GREEK, GREEK_2, send_at=later(hours=1))
    )
    # And one of them opts out before it fires
    api("PUT", f"/suppressions/{GREEK}", lambda_context, body={"reason": "opt-out"})
    # When it fires
    fire(aws, lambda_context, made["id"])
    # Then only the other number is sent, and the answer kept says why
    assert sent_destinations(scheduling) == [GREEK_2]
    _, _, found = api("GET", f"/schedules/{made['id']}", lambda_context)
    assert found["state"] == "sent"
    assert found["parts"][0]["answer"]["suppressed"][0]["destination"] == GREEK


def test_a_part_whose_every_number_opted_out_fails_with_the_problem_and_sends_nothing(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    _, _, made = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    api("PUT", f"/suppressions/{GREEK}", lambda_context, body={"reason": "opt-out"})
    assert fire(aws, lambda_context, made["id"]) == {"batchItemFailures": []}
    assert scheduling.ledger == []
    _, _, found = api("GET", f"/schedules/{made['id']}", lambda_context)
    assert found["state"] == "failed"
    assert found["parts"][0]["problem"]["type"] == PROBLEM + "all-suppressed"


def test_a_provider_outage_at_firing_time_retries_the_trigger_and_then_sends_once(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    _, _, made = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    # When LiveAll answers 503 to the first trigger
    scheduling.add_fault(Fault(kind="http_status", status=503))
    answer = fire(aws, lambda_context, made["id"])
    # Then the trigger goes back to the queue, and the schedule says why it waits
    assert answer == {"batchItemFailures": [{"itemIdentifier": "t-1"}]}
    _, _, found = api("GET", f"/schedules/{made['id']}", lambda_context)
    assert found["state"] == "sending"
    assert found["parts"][0]["problem"]["type"] == PROBLEM + "provider-unavailable"
    # And the retry sends it once
    fire(aws, lambda_context, made["id"])
    assert sent_destinations(scheduling) == [GREEK]
    assert api("GET", f"/schedules/{made['id']}", lambda_context)[2]["state"] == "sent"


def test_a_queue_message_with_send_at_is_scheduled_once_even_when_delivered_twice(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    from queue_handler import handler

    body = message(GREEK, send_at=later(hours=2))
    # When the same SQS message is delivered twice
    for _ in range(2):
        assert handler(queue_event(body, "m-1"), lambda_context) == {"batchItemFailures": []}
    # Then one schedule exists, and nothing was sent yet
    assert len(one_time_schedules(aws)) == 1
    assert scheduling.ledger == []
    _, _, page = api("GET", "/schedules", lambda_context)
    assert len(page["schedules"]) == 1
    assert page["schedules"][0]["state"] == "scheduled"


def test_schedules_are_listed_in_time_order_filtered_by_state_and_paginated(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given five schedules over two months, one cancelled
    made = []
    for days in (40 - 15, 3, 1, 2, 28):
        _, _, answer = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(days=days)))
        made.append(answer)
    api("DELETE", f"/schedules/{made[1]['id']}", lambda_context)
    # When they are listed two at a time
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, _, page = api("GET", "/schedules", lambda_context, query=query)
        assert status == 200, page
        assert len(page["schedules"]) <= 2
        seen += page["schedules"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then every one comes once, in the order they go out, without numbers
    by_time = sorted(made, key=lambda schedule: schedule["parts"][0]["send_at"])
    assert [s["id"] for s in seen] == [s["id"] for s in by_time]
    assert all("destinations" not in part for s in seen for part in s["parts"])
    # And the state filter keeps the cancelled one alone
    _, _, cancelled = api("GET", "/schedules", lambda_context, query={"state": "cancelled"})
    assert [s["id"] for s in cancelled["schedules"]] == [made[1]["id"]]
    # And a time range keeps those it covers
    _, _, soon = api(
        "GET", "/schedules", lambda_context, query={"from": later(hours=1), "to": later(days=2, hours=1)}
    )
    assert {s["id"] for s in soon["schedules"]} == {made[2]["id"], made[3]["id"]}
    # And a cursor it did not hand out is refused, naming it
    status, _, problem = api("GET", "/schedules", lambda_context, query={"cursor": "bm90LWEtY3Vyc29y"})
    assert status == 422
    assert problem["errors"][0]["field"] == "cursor"


def test_a_window_closed_now_holds_each_zone_until_its_own_opening(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given a window of Athens time that opens in two hours
    now = datetime.now(UTC)
    window = local_window_around(now, opens_in=timedelta(hours=2), lasts=timedelta(hours=1))
    # When a send to Greece, Cyprus and Australia asks for it
    body = message(GREEK, CYPRIOT, AUSTRALIAN, window=window)
    status, _, answer = api("POST", "/messages", lambda_context, body=body)
    # Then it is scheduled in a part per zone, each at its zone's opening
    assert status == 202, answer
    assert answer["send_at"] is None
    parts = {part["zone"]: part for part in answer["parts"]}
    assert set(parts) == {"Europe/Athens", "Asia/Nicosia", "Australia/Sydney"}
    athens_opening = datetime.fromisoformat(parts["Europe/Athens"]["send_at"].replace("Z", "+00:00"))
    assert athens_opening.astimezone(ATHENS).strftime("%H:%M") == window["from"]
    assert timedelta(hours=1, minutes=58) < athens_opening - now <= timedelta(hours=2)
    sydney = datetime.fromisoformat(parts["Australia/Sydney"]["send_at"].replace("Z", "+00:00"))
    assert sydney.astimezone(ZoneInfo("Australia/Sydney")).strftime("%H:%M") == window["from"]
    assert parts["Australia/Sydney"]["destinations"] == [AUSTRALIAN]
    # And the parts are in the order they go out; nothing is sent now
    assert [p["send_at"] for p in answer["parts"]] == sorted(p["send_at"] for p in answer["parts"])
    assert scheduling.ledger == []
    assert len(one_time_schedules(aws)) == 3


def test_a_window_open_now_sends_at_once_and_false_turns_the_stage_default_off(
    scheduling: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    open_now = local_window_around(now, opens_in=timedelta(hours=-1), lasts=timedelta(hours=2))
    # A window open now: an ordinary send
    status, _, answer = api("POST", "/messages", lambda_context, body=message(GREEK, window=open_now))
    assert status == 200, answer
    assert sent_destinations(scheduling) == [GREEK]
    # Given a stage default that is closed now
    closed = local_window_around(now, opens_in=timedelta(hours=3), lasts=timedelta(hours=1))
    monkeypatch.setenv(names.ENV_SEND_WINDOW, json.dumps(closed))
    reset_process_caches()
    # Then a plain send waits for it
    status, _, answer = api("POST", "/messages", lambda_context, body=message(GREEK_2))
    assert status == 202
    # And a request that says window false goes now
    status, _, answer = api("POST", "/messages", lambda_context, body=message(GREEK_2, window=False))
    assert status == 200
    assert sent_destinations(scheduling) == [GREEK, GREEK_2]


def test_without_a_schedules_table_a_scheduled_send_is_refused_as_misconfigured(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    status, _, problem = api("POST", "/messages", lambda_context, body=message(GREEK, send_at=later(hours=1)))
    assert status == 503
    assert problem["type"] == PROBLEM + "misconfigured"
    assert gateway_env.ledger == []


def test_a_scheduled_send_is_answered_alike_by_the_fast_path_and_the_resolver(
    scheduling: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    from tests.integration.test_api_fast_path import assert_same_answer, post_event

    # Given a keyed scheduled send (the resolver's twin makes it, the handler's path replays it)
    event = post_event(message(GREEK, send_at=later(hours=1)), {"Idempotency-Key": "twin-schedule"})
    answer = assert_same_answer(event, lambda_context)
    # Then both answered 202 with the same schedule and Location
    assert answer["statusCode"] == 202
    body = json.loads(answer["body"])
    assert answer["multiValueHeaders"]["Location"] == [f"/prod/schedules/{body['id']}"]
