"""Caps through the real handlers, moto's usage table and the sandbox: limits per key, the brake, races.

A send that would pass its key's daily limit (messages, or worst-case SMS cost) sends
nothing and is answered 429 with Retry-After until the stage's midnight; a queued one waits
on the queue; the stage's spend ceiling stops every send and publishes its event once.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from gateway import names
from sandbox import Fault, ProviderSandbox
from tests.conftest import LambdaContext, load_event, reset_process_caches, schedule_environment
from tests.integration.test_suppression import events_on_the_bus

GREEK = [f"30691234{n:04d}" for n in range(40)]
PROBLEM = "urn:viber-gateway:problem:"
SMSFB = {"im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "Shipped."}


def body(*destinations: str, **more: Any) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": "Hi.",
        "destinations": list(destinations),
        **more,
    }


def send_as(key_id: str, payload: dict[str, Any], context: LambdaContext) -> tuple[int, dict[str, str], Any]:
    from api_handler import handler

    event = load_event("api-post-im.json")
    event["body"] = json.dumps(payload)
    event["requestContext"] = {**event["requestContext"], "identity": {**event["requestContext"]["identity"]}}
    event["requestContext"]["identity"]["apiKeyId"] = key_id
    answer = handler(event, context)
    headers = {k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], headers, json.loads(answer["body"])


def stage_limits(
    monkeypatch: pytest.MonkeyPatch,
    *,
    messages: str | None = None,
    cost: str | None = None,
    ceiling: str | None = None,
) -> None:
    """The stage's default limits and ceiling (its context), as the functions read them at start."""
    for name, value in (
        (names.ENV_DAILY_MESSAGE_LIMIT, messages),
        (names.ENV_DAILY_COST_LIMIT_EUROS, cost),
        (names.ENV_DAILY_SPEND_CEILING_EUROS, ceiling),
    ):
        if value is not None:
            monkeypatch.setenv(name, value)
    reset_process_caches()


@pytest.fixture
def usage_table(aws: Any) -> str:
    """The usage table, as provision (the stack's twin) made it."""
    return names.USAGE_TABLE_NAME


@pytest.fixture
def capped(
    gateway_env: ProviderSandbox, usage_table: str, monkeypatch: pytest.MonkeyPatch
) -> ProviderSandbox:
    monkeypatch.setenv(names.ENV_USAGE_TABLE, usage_table)
    monkeypatch.setenv(names.ENV_EVENT_BUS_NAME, names.EVENT_BUS_NAME)
    stage_limits(monkeypatch, messages="5")
    return gateway_env


def test_a_key_sends_its_limit_then_is_refused_with_retry_after_and_another_key_is_not(
    capped: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    for number in GREEK[:5]:
        assert send_as("key-a", body(number), lambda_context)[0] == 200
    status, headers, problem = send_as("key-a", body(GREEK[5]), lambda_context)
    assert status == 429, problem
    assert problem["type"] == PROBLEM + "limit-exceeded"
    assert problem["limit"] == {"rule": "messages", "per_day": 5.0, "used": 5.0}
    assert 0 < int(headers["retry-after"]) <= 86_400
    assert len(capped.ledger) == 5
    # Another key has a day of its own
    assert send_as("key-b", body(GREEK[6]), lambda_context)[0] == 200


def test_a_send_of_several_numbers_that_would_pass_the_limit_sends_none_of_them(
    capped: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    assert send_as("key-a", body(*GREEK[:3]), lambda_context)[0] == 200
    status, _, _ = send_as("key-a", body(*GREEK[3:6]), lambda_context)
    assert status == 429
    assert [d for e in capped.ledger for d in e.payload["destinations"]] == GREEK[:3]
    # What still fits goes
    assert send_as("key-a", body(*GREEK[3:5]), lambda_context)[0] == 200


def test_a_keys_own_limit_in_the_table_beats_the_stage_default_without_a_redeploy(
    capped: ProviderSandbox, usage_table: str, lambda_context: LambdaContext
) -> None:
    boto3.client("dynamodb").put_item(
        TableName=usage_table,
        Item={names.USAGE_KEY_ATTRIBUTE: {"S": "limits#key:key-small"}, "messages_per_day": {"N": "2"}},
    )
    assert send_as("key-small", body(GREEK[0]), lambda_context)[0] == 200
    assert send_as("key-small", body(GREEK[1]), lambda_context)[0] == 200
    assert send_as("key-small", body(GREEK[2]), lambda_context)[0] == 429


def test_a_cost_limit_counts_the_worst_case_sms_cost(
    capped: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GR costs 0.0379 an SMS at the sandbox's balance: two one-segment fallbacks fit in 0.1, three do not
    stage_limits(monkeypatch, messages="1000", cost="0.1")
    assert send_as("key-c", body(*GREEK[:2], **SMSFB), lambda_context)[0] == 200
    status, _, problem = send_as("key-c", body(GREEK[2], **SMSFB), lambda_context)
    assert status == 429
    assert problem["limit"]["rule"] == "cost"
    # Viber only costs no SMS: it still goes
    assert send_as("key-c", body(GREEK[3]), lambda_context)[0] == 200


def test_a_send_that_sent_nothing_gives_its_count_back(
    capped: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    capped.add_fault(Fault(kind="http_status", status=503))
    assert send_as("key-d", body(*GREEK[:5]), lambda_context)[0] == 503
    assert send_as("key-d", body(*GREEK[:5]), lambda_context)[0] == 200


def test_a_replay_under_its_key_is_not_counted_again(
    capped: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    from api_handler import handler
    from tests.integration.test_api_fast_path import post_event

    for _ in range(3):
        event = post_event(body(*GREEK[:5]), {"Idempotency-Key": "once"})
        event["requestContext"]["identity"]["apiKeyId"] = "key-e"
        assert handler(event, lambda_context)["statusCode"] == 200
    assert len(capped.ledger) == 1


def test_two_functions_racing_for_the_last_messages_never_pass_the_limit_together(
    capped: ProviderSandbox, usage_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB applies one update of an item at a time; moto does not lock: its update is made so here
    import moto.dynamodb.models as dynamodb_models

    from gateway.guard.caps import Caps, Limits, UsageStore

    lock = threading.Lock()
    update = dynamodb_models.DynamoDBBackend.update_item

    def one_at_a_time(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return update(self, *args, **kwargs)

    monkeypatch.setattr(dynamodb_models.DynamoDBBackend, "update_item", one_at_a_time)
    # Given two functions (each its own store and client), a limit of 47, 40 used: 7 left
    functions = [
        Caps(UsageStore(usage_table), defaults=Limits(47, None), ceiling=None, time_zone="Europe/Athens")
        for _ in range(2)
    ]
    functions[0].reserve("key-f", GREEK[:40], None, False)
    granted: list[int] = []
    refused: list[int] = []

    def race(caps: Caps) -> None:
        for _ in range(10):
            try:
                caps.reserve("key-f", GREEK[:1], None, False)
            except Exception:
                refused.append(1)
            else:
                granted.append(1)

    threads = [threading.Thread(target=race, args=(caps,)) for caps in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly the 7 left were granted, and the count is the limit
    assert (len(granted), len(refused)) == (7, 13)
    day, _ = functions[0].day()
    assert UsageStore(usage_table).usage(day, "key-f") == (47, Decimal(0))


@pytest.fixture
def queue_record(queues: dict[str, str]) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = queues["queue"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body(*GREEK[:6])))
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
    record.update(
        messageId=message["MessageId"],
        receiptHandle=message["ReceiptHandle"],
        body=message["Body"],
        eventSourceARN=arn,
    )
    return record


def test_a_queued_message_over_the_limit_waits_on_the_queue_until_the_day_turns(
    capped: ProviderSandbox,
    lambda_context: LambdaContext,
    queues: dict[str, str],
    queue_record: dict[str, Any],
) -> None:
    from queue_handler import handler

    # When the queue's bucket (limit 5) gets a message of six numbers
    answer = handler({"Records": [queue_record]}, lambda_context)
    # Then it is reported failed (not parked, not lost), nothing is sent, and it stays hidden for
    # hours (the queue's own visibility is 0 here: without the postponement it would be back at once)
    assert answer == {"batchItemFailures": [{"itemIdentifier": queue_record["messageId"]}]}
    assert capped.ledger == []
    sqs = boto3.client("sqs")
    assert sqs.receive_message(QueueUrl=queues["queue"]).get("Messages", []) == []
    assert sqs.receive_message(QueueUrl=queues["dead_letter"]).get("Messages", []) == []
    waiting = sqs.get_queue_attributes(
        QueueUrl=queues["queue"], AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert waiting["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_the_spend_ceiling_stops_every_send_and_says_so_once_until_lifted(
    capped: ProviderSandbox,
    usage_table: str,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    aws: Any,
) -> None:
    stage_limits(monkeypatch, messages="1000", ceiling="0.1")
    events_on_the_bus(aws)
    # Two fallback sends fit (0.0758), the third would pass 0.1
    assert send_as("key-g", body(*GREEK[:2], **SMSFB), lambda_context)[0] == 200
    status, headers, problem = send_as("key-h", body(GREEK[2], **SMSFB), lambda_context)
    assert status == 429
    assert problem["type"] == PROBLEM + "spend-ceiling-reached"
    assert int(headers["retry-after"]) > 0
    # Refused again: the event was published once
    assert send_as("key-h", body(GREEK[3], **SMSFB), lambda_context)[0] == 429
    reached = [
        e for e in events_on_the_bus(aws) if e["detail-type"] == names.DETAIL_TYPE_SPEND_CEILING_REACHED
    ]
    assert len(reached) == 1
    assert reached[0]["detail"]["ceiling"] == 0.1
    # An operator lifts the brake: sends go on
    from gateway.guard.caps import get_caps

    caps = get_caps()
    assert caps is not None
    day, ends = caps.day()
    caps.store.lift(day, int(ends.timestamp()) + 86_400)
    assert send_as("key-h", body(GREEK[3], **SMSFB), lambda_context)[0] == 200
    assert len(capped.ledger) == 2


def test_a_scheduled_part_over_the_limit_waits_for_the_day_and_sends_nothing(
    capped: ProviderSandbox, lambda_context: LambdaContext, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_schedules import fire, later

    for name, value in schedule_environment(aws).items():
        monkeypatch.setenv(name, value)
    reset_process_caches()
    # Given a scheduled send of six numbers, and the queue's bucket limited to five a day
    status, _, made = send_as("key-s", body(*GREEK[:6], send_at=later(hours=1)), lambda_context)
    assert status == 202, made
    # When its part fires
    answer = fire(aws, lambda_context, made["id"])
    # Then nothing is sent, the trigger goes back (to wait for the day), and the part says why
    assert answer["batchItemFailures"]
    assert capped.ledger == []
    from gateway.schedules.service import get_schedules

    part = get_schedules().get(made["id"])["parts"][0]
    assert part["state"] == "sending"
    assert part["problem"]["type"] == PROBLEM + "limit-exceeded"


def test_once_the_brake_is_on_even_a_send_that_would_fit_stops(
    capped: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_limits(monkeypatch, messages="1000", ceiling="0.1")
    assert send_as("key-i", body(*GREEK[:2], **SMSFB), lambda_context)[0] == 200  # 0.0758
    assert send_as("key-i", body(*GREEK[2:4], **SMSFB), lambda_context)[0] == 429  # would be 0.1516
    # One more SMS would fit under 0.1 (0.1137 would not, but a Viber-only one costs nothing): both stop
    assert send_as("key-i", body(GREEK[4]), lambda_context)[0] == 429
    assert len(capped.ledger) == 1


def test_a_counted_send_is_one_update_of_the_days_item_for_the_caller_and_the_stage(
    capped: ProviderSandbox, usage_table: str, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a caller's limits and the stage's ceiling both set
    stage_limits(monkeypatch, cost="10", ceiling="100")
    assert send_as("key-j", body(GREEK[0], **SMSFB), lambda_context)[0] == 200  # warm: limits, prices
    from gateway.guard.caps import get_caps

    caps = get_caps()
    assert caps is not None
    operations: list[str] = []
    caps.store.client.meta.events.register(
        "before-send.dynamodb", lambda event_name, **_: operations.append(event_name.split(".")[-1])
    )
    # When a send is counted
    assert send_as("key-j", body(*GREEK[1:3], **SMSFB), lambda_context)[0] == 200
    # Then one UpdateItem counted it against both (the limits are cached), and the day's item holds both
    assert operations == ["UpdateItem"]
    day, _ = caps.day()
    item = boto3.client("dynamodb").get_item(
        TableName=usage_table, Key={names.USAGE_KEY_ATTRIBUTE: {"S": f"usage#{day}"}}
    )["Item"]
    assert item["messages#key:key-j"] == {"N": "3"}
    assert Decimal(item["cost#key:key-j"]["N"]) == Decimal(item["spend"]["N"]) == Decimal("0.1137")


def test_a_send_that_alone_passes_the_ceiling_is_refused_on_a_fresh_day(
    capped: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ceiling of 0.05 EUR and nothing spent today
    stage_limits(monkeypatch, messages="1000", ceiling="0.05")
    # When the day's first send alone would cost more (two fallbacks: 0.0758)
    status, _, problem = send_as("key-k", body(*GREEK[:2], **SMSFB), lambda_context)
    # Then it is refused by the ceiling and nothing is sent
    assert (status, problem["type"]) == (429, PROBLEM + "spend-ceiling-reached")
    assert capped.ledger == []


def test_a_caller_over_its_limit_under_a_ceiling_is_told_its_own_rule_and_use(
    capped: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_limits(monkeypatch, ceiling="100")
    assert send_as("key-l", body(*GREEK[:4], **SMSFB), lambda_context)[0] == 200
    status, _, problem = send_as("key-l", body(*GREEK[4:6], **SMSFB), lambda_context)
    assert status == 429
    assert problem["type"] == PROBLEM + "limit-exceeded"
    assert problem["limit"] == {"rule": "messages", "per_day": 5.0, "used": 4.0}
    # The refused send left the stage's spend as it was: the next one that fits still goes
    assert send_as("key-m", body(GREEK[6], **SMSFB), lambda_context)[0] == 200
