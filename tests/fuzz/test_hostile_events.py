"""Hostile and careless input through the real entry points, in AWS's event shapes (hypothesis).

The API handler gets REST proxy events and the queue handler SQS events built
by tests/fuzz/strategies.py. Whatever they carry, the promises hold: never an
exception (a Lambda error), never a 5xx while the provider and AWS are well,
every answer documented by the API's own OpenAPI description, no problem body
over Lambda's response limit, nothing sent unless the answer says so, what is
sent is exactly what was checked, and every queue record is either sent once
or parked with its reason and a log line.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import jsonschema
import phonenumbers
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, note, reject, settings

from gateway import names
from gateway.phone import normalise
from gateway.sending.request import SendRequest
from local.emulator import Resources
from sandbox import ProviderSandbox
from sandbox.prices import price_for_destination
from tests.conftest import (
    TEST_TOKEN,
    load_event,
    log_records,
    make_lambda_context,
    reset_process_caches,
    schedule_environment,
)
from tests.fuzz.oracle import forwarding_problems
from tests.fuzz.strategies import (
    KNOWN_CURSOR,
    KNOWN_SCHEDULE,
    LIMIT_ATTRIBUTES,
    VALID_BODY,
    api_event,
    caller_identity_event,
    encoded_cursor,
    limits_item,
    policy_send_event,
    scheduled_send_event,
    schedules_event,
    sqs_event,
    suppression_event,
    trigger_event,
)

EXAMPLES = 300
SENDER_NOT_APPROVED = 56
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@cache
def _description() -> dict[str, Any]:
    from api_handler import openapi_json

    return dict(json.loads(openapi_json()))


def _documented_statuses(path: str, method: str = "post") -> set[int]:
    responses = _description()["paths"][path][method]["responses"]
    return {int(status) for status in responses}


def _problem_schema() -> dict[str, Any]:
    document = _description()
    return {**document["components"]["schemas"]["Problem"], "components": document["components"]}


def _headers(answer: dict[str, Any]) -> dict[str, str]:
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    headers.update({k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()})
    return headers


@FUZZ_SETTINGS
@given(case=api_event())
def test_any_api_event_gets_a_documented_answer(gateway_env, case) -> None:
    from api_handler import handler

    event, raw = case
    sent_before = len(gateway_env.ledger)

    # When the API function gets the event (a raise here is a Lambda error: API Gateway's 502)
    answer = handler(event, make_lambda_context())

    # Then the answer is documented, well formed and within Lambda's response limit
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    assert status in _documented_statuses(event["path"])
    assert len(answer["body"].encode()) < LAMBDA_RESPONSE_LIMIT_BYTES
    assert TEST_TOKEN not in answer["body"]
    body = json.loads(answer["body"])
    sent = gateway_env.ledger[sent_before:]
    if status == 200:
        assert _headers(answer)["content-type"] == "application/json"
        # And an accepted body was a JSON object
        assert isinstance(json.loads(raw.decode("utf-8")), dict)
        if event["path"] == "/messages/preview":
            assert sent == []  # a preview never sends
            return
        # And the provider got exactly what the rules checked, and never the caller's reference
        if _headers(answer).get("idempotent-replayed") == "true":
            assert sent == []
            return
        [entry] = sent
        assert "reference" not in entry.payload
        forwarded = {k: v for k, v in entry.payload.items() if k != "apitoken"}
        assert SendRequest.model_validate(forwarded).model_dump(exclude_none=True) == forwarded
        assert forwarding_problems(forwarded) == []
    else:
        assert _headers(answer)["content-type"] == "application/problem+json"
        jsonschema.validate(body, _problem_schema())
        assert body["status"] == status
        # And the gateway's rules refuse what LiveAll would (all but the sender approval, only LiveAll knows)
        if body["type"].endswith(":rejected-by-provider"):
            assert body["provider_code"] == SENDER_NOT_APPROVED, body
        # And a refused request sent nothing
        assert sent == []


def _parked(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    taken = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        taken.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return taken


@FUZZ_SETTINGS
@given(event=sqs_event())
def test_any_queue_record_is_sent_once_or_parked_with_a_reason(
    gateway_env, queues, captured_logs, event
) -> None:
    from queue_handler import handler

    sent_before = len(gateway_env.ledger)
    captured_logs.truncate(0)
    captured_logs.seek(0)

    # When the queue function gets the batch (a raise here fails and redelivers the whole batch)
    answer = handler(event, make_lambda_context())

    # Then nothing is left to blind retries while the provider and AWS are well
    assert answer == {"batchItemFailures": []}
    parked = _parked(queues["dead_letter"])
    sent = gateway_env.ledger[sent_before:]
    # And each record was either sent once, parked with its reason (logged), or replayed a send
    assert len(parked) + len(sent) <= len(event["Records"])
    for entry in sent:
        assert "reference" not in entry.payload
        assert forwarding_problems({k: v for k, v in entry.payload.items() if k != "apitoken"}) == []
    for message in parked:
        assert message["MessageAttributes"]["ErrorType"]["StringValue"]
    parked_lines = [
        r for r in log_records(captured_logs) if r.get("message") == "parked in the dead-letter queue"
    ]
    assert len(parked_lines) == len(parked)
    assert TEST_TOKEN not in captured_logs.getvalue()


@pytest.fixture
def listed_env(gateway_env, monkeypatch):
    """The functions with the suppression list (moto's table, as the stack makes it)."""
    monkeypatch.setenv(names.ENV_SUPPRESSION_TABLE, names.SUPPRESSION_TABLE_NAME)
    reset_process_caches()
    return gateway_env


@FUZZ_SETTINGS
@given(event=suppression_event())
def test_any_suppression_list_event_gets_a_documented_answer(listed_env, event) -> None:
    from api_handler import handler

    # When the API function gets a hostile PUT /suppressions/{number} or POST /suppressions/import
    answer = handler(event, make_lambda_context())

    # Then the answer is documented for the route and well formed, and nothing was sent to LiveAll
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    route = "/suppressions/{number}" if event["httpMethod"] == "PUT" else "/suppressions/import"
    assert status in _documented_statuses(route, event["httpMethod"].lower())
    body = json.loads(answer["body"])
    if status != 200:
        assert _headers(answer)["content-type"] == "application/problem+json"
        jsonschema.validate(body, _problem_schema())
        assert body["status"] == status
    assert listed_env.ledger == []


# ----- scheduled sends --------------------------------------------------------------------------

# A list request reads one index partition per month between from and to. Schedules exist only
# from the retention (30 days) before now to the longest horizon (365 days) and a window's week
# after it: about 14 months. A request that reads more than this reads months that can hold nothing.
MAX_LIST_QUERIES = 24
# Where a schedule's parts may go: within the horizon (30 days here), plus the week a window may add.
LATEST_PART = timedelta(days=30 + 8)


class _Runaway(Exception):
    """A list request kept querying past MAX_LIST_QUERIES (raised from the client's own hook)."""


class ListQueries:
    """The schedules store's DynamoDB Query calls, counted per request, and their ExclusiveStartKey
    checked as DynamoDB checks it (moto does not): on an index, the start key must hold exactly the
    table's and the index's key attributes, of their types, and lie within the key condition."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        client.meta.events.register("before-parameter-build.dynamodb.Query", self._before)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        self.count += 1
        if self.count > MAX_LIST_QUERIES:
            raise _Runaway(f"more than {MAX_LIST_QUERIES} DynamoDB queries for one list request")
        start = params.get("ExclusiveStartKey")
        if start is None or params.get("IndexName") != names.SCHEDULE_LIST_INDEX:
            return
        problem = _start_key_problem(start, params.get("ExpressionAttributeValues") or {})
        if problem is not None:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": problem}}, "Query")


def _start_key_problem(start: Any, values: dict[str, Any]) -> str | None:
    """What DynamoDB says of a Query's ExclusiveStartKey on the list index, or None if it takes it."""
    invalid = "The provided starting key is invalid: The provided key element does not match the schema"
    keys = {
        names.SCHEDULE_KEY_ATTRIBUTE,
        names.SCHEDULE_LIST_PARTITION_ATTRIBUTE,
        names.SCHEDULE_LIST_SORT_ATTRIBUTE,
    }
    if not isinstance(start, dict) or set(start) != keys:
        return invalid
    if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in start.values()):
        return invalid
    month = start[names.SCHEDULE_LIST_PARTITION_ATTRIBUTE]["S"]
    fires = start[names.SCHEDULE_LIST_SORT_ATTRIBUTE]["S"]
    if month != values.get(":month", {}).get("S"):
        return "The provided starting key is invalid: it does not match the hash key condition"
    low, high = values.get(":low", {}).get("S"), values.get(":high", {}).get("S")
    if not (low is not None and high is not None and low <= fires <= high):
        return "The provided starting key does not match the range key predicate"
    return None


@dataclass
class Scheduling:
    provider: ProviderSandbox
    aws: Resources
    queries: ListQueries
    known_schedule: str  # a schedule in the table (the strategies' KNOWN_SCHEDULE stands for it)
    known_cursor: str  # a cursor the list handed out (KNOWN_CURSOR)
    fresh_answers: dict[str, list[int]] = field(default_factory=dict)  # per Idempotency-Key


def _schedule_env(monkeypatch: pytest.MonkeyPatch, aws: Resources) -> None:
    for name, value in schedule_environment(aws).items():
        monkeypatch.setenv(name, value)
    reset_process_caches()


@pytest.fixture
def scheduling(gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Scheduling:
    """The functions with the schedules (as tests/integration/test_schedules.py sets them up), two
    schedules in the table and a cursor the list handed out."""
    from gateway.schedules.service import get_schedules

    _schedule_env(monkeypatch, aws)
    made = []
    for days in (2, 3):
        event = load_event("api-post-im.json")
        send_at = (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="seconds")
        event["body"] = json.dumps({**json.loads(event["body"]), "send_at": send_at})
        answer = _api(event)
        assert answer["statusCode"] == 202, answer["body"]
        made.append(json.loads(answer["body"])["id"])
    page = json.loads(_api(_list_event({"limit": ["1"]}))["body"])
    assert page["next_cursor"], page
    queries = ListQueries(get_schedules().store.client)
    return Scheduling(gateway_env, aws, queries, made[0], page["next_cursor"])


def _api(event: dict[str, Any]) -> dict[str, Any]:
    from api_handler import handler

    answer: dict[str, Any] = handler(event, make_lambda_context())  # type: ignore[arg-type]
    return answer


def _list_event(query: dict[str, list[str]]) -> dict[str, Any]:
    """GET /schedules with `query`, as API Gateway delivers it (the last value of each in the
    single-value map, all of them in the multi-value one)."""
    event = load_event("api-post-im.json")
    event.update(
        httpMethod="GET",
        resource="/schedules",
        path="/schedules",
        body=None,
        queryStringParameters={name: values[-1] for name, values in query.items()} or None,
        multiValueQueryStringParameters=query or None,
    )
    return event


def _one_schedule_event(method: str, schedule_id: str) -> dict[str, Any]:
    event = load_event("api-post-im.json")
    event.update(
        httpMethod=method,
        resource="/schedules/{schedule_id}",
        path=f"/schedules/{schedule_id}",
        pathParameters={"schedule_id": schedule_id},
        body=None,
    )
    return event


def _schema(name: str) -> dict[str, Any]:
    document = _description()
    return {**document["components"]["schemas"][name], "components": document["components"]}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@FUZZ_SETTINGS
@given(case=scheduled_send_event())
def test_any_scheduled_send_gets_a_documented_answer_and_sends_only_when_it_says_so(
    scheduling: Scheduling, case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    event, body = case
    key = event["headers"].get("Idempotency-Key")
    note(f"body {body!r}, Idempotency-Key {key!r}")
    sent_before = len(scheduling.provider.ledger)
    asked_at = datetime.now(UTC).replace(microsecond=0)

    # When the API function gets a POST /messages with send_at and/or window, hostile or valid
    answer = _api(event)

    # Then the answer is documented for the route and well formed
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    assert status in _documented_statuses("/messages")
    assert TEST_TOKEN not in answer["body"]
    document = json.loads(answer["body"])
    headers = _headers(answer)
    replayed = headers.get("idempotent-replayed") == "true"
    sent = scheduling.provider.ledger[sent_before:]
    if key is not None and status in (200, 202) and not replayed:
        # And one key makes one thing happen, once: a schedule or a send
        scheduling.fresh_answers.setdefault(key, []).append(status)
        assert len(scheduling.fresh_answers[key]) == 1, (key, scheduling.fresh_answers[key])
    if status == 202:
        # A schedule: nothing sent now, where to find it, its parts after now and within the horizon
        assert sent == []
        assert headers["content-type"] == "application/json"
        jsonschema.validate(document, _schema("ScheduleResponse"))
        assert headers["location"] == f"/prod/schedules/{document['id']}"
        assert document["state"] == "scheduled"
        assert (body.get("send_at") is not None) == (document["send_at"] is not None)
        if not replayed:
            for part in document["parts"]:
                assert asked_at <= _instant(part["send_at"]) <= asked_at + LATEST_PART, part
            if document["send_at"] is not None:
                first = min(_instant(part["send_at"]) for part in document["parts"])
                assert first >= _instant(document["send_at"])
            found = _api(_one_schedule_event("GET", document["id"]))
            assert found["statusCode"] == 200
            assert json.loads(found["body"]) == document
    elif status == 200:
        # An ordinary send: only when no time was asked for (a window open now, or none)
        assert body.get("send_at") is None
        if replayed:
            assert sent == []
            return
        [entry] = sent
        for own in ("reference", "send_at", "window"):
            assert own not in entry.payload
        forwarded = {k: v for k, v in entry.payload.items() if k != "apitoken"}
        assert forwarding_problems(forwarded) == []
    else:
        assert headers["content-type"] == "application/problem+json"
        jsonschema.validate(document, _problem_schema())
        assert document["status"] == status
        assert sent == []


@pytest.mark.parametrize("first", ["scheduled", "sent"])
def test_one_idempotency_key_either_schedules_or_sends_never_both(scheduling: Scheduling, first: str) -> None:
    # The fuzzing above meets this now and then (three keys over 300 requests); here it always does.
    event = load_event("api-post-im.json")
    event["headers"]["Idempotency-Key"] = "campaign-9"
    event["multiValueHeaders"]["Idempotency-Key"] = ["campaign-9"]
    message = json.loads(event["body"])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    bodies = {
        "scheduled": {**message, "send_at": later},
        "sent": {**message, "im_text": "Another message, to send now."},
    }
    second = "sent" if first == "scheduled" else "scheduled"
    # Given a message scheduled (or sent) under a key
    event["body"] = json.dumps(bodies[first])
    assert _api(event)["statusCode"] == (202 if first == "scheduled" else 200)
    sent_before = len(scheduling.provider.ledger)

    # When the same key comes with another message, to be sent now (or scheduled)
    event["body"] = json.dumps(bodies[second])
    answer = _api(event)

    # Then it is refused as a key used for another message, and nothing more is sent or scheduled
    assert answer["statusCode"] == 409, answer["body"][:300]
    assert scheduling.provider.ledger[sent_before:] == []


def _athens_window(now: datetime, *, opens_in: timedelta) -> dict[str, str]:
    opens = (now + opens_in).astimezone(ZoneInfo("Europe/Athens"))
    return {"from": opens.strftime("%H:%M"), "to": (opens + timedelta(hours=3)).strftime("%H:%M")}


def test_a_retry_under_its_key_once_the_window_opened_replays_the_schedule_and_sends_nothing(
    scheduling: Scheduling, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stage's send window closed, and a send (to Greek numbers) under a key: scheduled
    now = datetime.now(UTC)
    monkeypatch.setenv(names.ENV_SEND_WINDOW, json.dumps(_athens_window(now, opens_in=timedelta(hours=3))))
    reset_process_caches()
    event = load_event("api-post-im.json")
    event["headers"]["Idempotency-Key"] = "campaign-10"
    event["multiValueHeaders"]["Idempotency-Key"] = ["campaign-10"]
    first = _api(event)
    assert first["statusCode"] == 202, first["body"][:300]
    sent_before = len(scheduling.provider.ledger)

    # When the caller retries the very same request once the window is open
    monkeypatch.setenv(names.ENV_SEND_WINDOW, json.dumps(_athens_window(now, opens_in=-timedelta(hours=1))))
    reset_process_caches()
    again = _api(event)

    # Then it gets the schedule again, replayed, and nothing is sent besides it
    assert (again["statusCode"], _headers(again).get("idempotent-replayed")) == (202, "true"), again["body"]
    assert scheduling.provider.ledger[sent_before:] == []


def _with_known(event: dict[str, Any], scheduling: Scheduling) -> dict[str, Any]:
    """The event with the strategies' stand-ins replaced by a real schedule's id and a real cursor."""
    text = json.dumps(event)
    text = text.replace(KNOWN_SCHEDULE, scheduling.known_schedule)
    text = text.replace(KNOWN_CURSOR, scheduling.known_cursor)
    replaced: dict[str, Any] = json.loads(text)
    return replaced


def _forged(month: Any, key: Any) -> dict[str, Any]:
    return _list_event({"cursor": [encoded_cursor({"month": month, "key": key})]})


@FUZZ_SETTINGS
# Found by the strategies below, kept so that every run tries them (see the report of each).
@example(event=_list_event({"to": ["9999-12-31T23:59:59Z"]}))  # loops for ever
@example(event=_list_event({"from": ["1970-01-01T00:00:00Z"]}))  # a query per month since 1970
@example(event=_forged("0001-01", None))  # a query per month since year 1
@example(event=_list_event({"from": ["0001-01-01T00:00:00Z"]}))  # ValueError
@example(event=_list_event({"from": ["0001-01-01T00:00:00+01:00"]}))  # OverflowError
@example(event=_list_event({"to": ["9999-12-31T23:59:59-01:00"]}))  # OverflowError
@example(event=_forged("2026-12", {"id": {"S": 5}}))  # ParamValidationError
@example(event=_forged("2026-12", {"id": {"S": "x"}}))  # DynamoDB: ValidationException
@given(event=schedules_event())
def test_any_schedules_route_event_gets_a_documented_answer(
    scheduling: Scheduling, event: dict[str, Any]
) -> None:
    event = _with_known(event, scheduling)
    note(f"{event['httpMethod']} {event['path']!r} {event['multiValueQueryStringParameters']!r}")
    sent_before = len(scheduling.provider.ledger)
    scheduling.queries.count = 0

    # When the API function gets a hostile GET or DELETE /schedules/{id}, or GET /schedules
    answer = _api(event)

    # Then a list read a bounded number of the index's partitions (not one per month of any range)
    assert scheduling.queries.count <= MAX_LIST_QUERIES, f"{scheduling.queries.count} DynamoDB queries"
    # And the answer is documented for the route and well formed, and nothing was sent
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    assert status in _documented_statuses(event["resource"], event["httpMethod"].lower())
    document = json.loads(answer["body"])
    if status == 200:
        assert _headers(answer)["content-type"] == "application/json"
        schema = "SchedulePage" if event["resource"] == "/schedules" else "ScheduleResponse"
        jsonschema.validate(document, _schema(schema))
    else:
        assert _headers(answer)["content-type"] == "application/problem+json"
        jsonschema.validate(document, _problem_schema())
        assert document["status"] == status
    assert scheduling.provider.ledger[sent_before:] == []


@FUZZ_SETTINGS
@given(event=trigger_event())
def test_any_record_on_the_trigger_queue_sends_nothing_and_is_skipped_or_retried(
    queues: dict[str, str], scheduling: Scheduling, event: dict[str, Any]
) -> None:
    from queue_handler import handler

    for record in event["Records"]:
        record["eventSourceARN"] = scheduling.aws.schedule_queue_arn
    note(f"bodies {[record['body'] for record in event['Records']]!r}")
    sent_before = len(scheduling.provider.ledger)

    # When the queue function gets a batch of hostile triggers (a raise here fails the whole batch)
    answer = handler(event, make_lambda_context())  # type: ignore[arg-type]

    # Then each record is skipped or handed back to the queue, nothing is sent, nothing parked
    identifiers = {record["messageId"] for record in event["Records"]}
    assert set(answer) == {"batchItemFailures"}
    assert {item["itemIdentifier"] for item in answer["batchItemFailures"]} <= identifiers
    assert scheduling.provider.ledger[sent_before:] == []
    assert _parked(queues["dead_letter"]) == []


# ----- caps and the destination policy ------------------------------------------------------------

PROBLEM = "urn:viber-gateway:problem:"
# Defaults of the stage (the context's): what applies where a caller's own limit does not.
DEFAULT_MESSAGES_PER_DAY = 1_000_000
SPEND_CEILING_EUROS = 1_000_000
_callers = itertools.count()


@pytest.fixture
def capped(gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch) -> ProviderSandbox:
    """The functions with caps on (moto's usage table, as the stack makes it): a high daily limit of
    messages per caller, no default cost limit, a high spend ceiling."""
    dynamodb = boto3.client("dynamodb")
    if names.USAGE_TABLE_NAME not in dynamodb.list_tables()["TableNames"]:
        from local.emulator import create_usage_table

        create_usage_table(dynamodb)
    monkeypatch.setenv(names.ENV_USAGE_TABLE, names.USAGE_TABLE_NAME)
    monkeypatch.setenv(names.ENV_DAILY_MESSAGE_LIMIT, str(DEFAULT_MESSAGES_PER_DAY))
    monkeypatch.setenv(names.ENV_DAILY_SPEND_CEILING_EUROS, str(SPEND_CEILING_EUROS))
    reset_process_caches()
    return gateway_env


def _number(attribute: Any) -> Decimal | None:
    """What a limits item's attribute says as a number, if it is one DynamoDB holds (N), else None."""
    if not isinstance(attribute, dict) or set(attribute) != {"N"}:
        return None
    try:
        value = Decimal(attribute["N"])
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _stored(item: dict[str, Any]) -> bool:
    """Put the limits item; False where DynamoDB (moto) refuses to hold it, so no table can have it."""
    try:
        boto3.client("dynamodb").put_item(TableName=names.USAGE_TABLE_NAME, Item=item)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            return False
        raise
    return True


@FUZZ_SETTINGS
@example(limits={"messages_per_day": {"N": "1.5"}})
@example(limits={"messages_per_day": {"N": "-1"}, "cost_per_day": {"N": "-0.5"}})
@example(limits={"messages_per_day": {"S": "5"}, "cost_per_day": {"BOOL": True}})
@example(limits={"messages_per_day": {"N": "9" * 45}, "cost_per_day": {"N": "1E+125"}})
@example(limits={"messages_per_day": {"N": "0"}})
@example(limits={"cost_per_day": {"N": "0.0001"}})
@given(limits=limits_item)
def test_a_hostile_limits_item_applies_or_is_ignored_and_logged_never_a_500(
    capped: ProviderSandbox, captured_logs: Any, limits: dict[str, Any] | None
) -> None:
    # Given a caller whose limits item (limits#<caller>) an operator wrote with anything in it
    caller = f"fuzz-limits-{next(_callers)}"
    # (API Gateway's key ids are letters and digits; the caps count a key as key:<id>)
    if limits is not None and not _stored(
        {names.USAGE_KEY_ATTRIBUTE: {"S": f"limits#key:{caller}"}, **limits}
    ):
        reject()
    note(f"limits#key:{caller}: {limits!r}")
    captured_logs.truncate(0)
    captured_logs.seek(0)
    sent_before = len(capped.ledger)

    # When the caller sends one Greek mobile, with an SMS fallback (its worst case costs one SMS)
    event = load_event("api-post-im.json")
    event["body"] = json.dumps(VALID_BODY)
    event["requestContext"]["identity"]["apiKeyId"] = caller
    answer = _api(event)

    # Then it is sent or refused by a limit, never a 500
    status = answer["statusCode"]
    assert status in (200, 429), answer["body"][:500]
    document = json.loads(answer["body"])
    errors = [
        json.dumps(record)
        for record in log_records(captured_logs)
        if str(record.get("level")).upper() in ("ERROR", "CRITICAL")
    ]
    logged = {name for name in LIMIT_ATTRIBUTES if any(name in line for line in errors)}
    present = {name: (limits or {}).get(name) for name in LIMIT_ATTRIBUTES if name in (limits or {})}
    price = price_for_destination("306912345678").for_category(0)
    needs = {"messages_per_day": Decimal(1), "cost_per_day": price}
    sent = capped.ledger[sent_before:]
    if status == 200:
        # And each limit the item holds either let the send go, or was ignored with an error logged
        assert len(sent) == 1
        for name, attribute in present.items():
            value = _number(attribute)
            assert name in logged or (value is not None and value >= needs[name]), (name, attribute, errors)
    else:
        # And a refusal names the limit the item holds, which the send would pass; nothing was sent
        assert sent == []
        assert document["type"] == PROBLEM + "limit-exceeded", document
        name = f"{document['limit']['rule']}_per_day"
        value = _number(present.get(name))
        assert name not in logged, (document, limits, errors)
        assert value is not None, (document, limits)
        assert value < needs[name], (document, limits)
        assert document["limit"]["per_day"] == pytest.approx(float(value)), (document, limits)
        assert 0 < int(_headers(answer)["retry-after"]) <= 25 * 60 * 60


def _with_key_id(key_id: Any) -> dict[str, Any]:
    event = load_event("api-post-im.json")
    event["requestContext"]["identity"]["apiKeyId"] = key_id
    return event


@FUZZ_SETTINGS
# Found by the strategies below, kept so that every run tries them (see the report of each).
@example(event=_with_key_id("k" * 2100))  # DynamoDB: ValidationException, the key passes 2048 bytes
@example(event=_with_key_id("a\udfffb"))  # UnicodeEncodeError
@given(event=caller_identity_event())
def test_any_api_key_id_gets_a_documented_answer_with_caps_on(
    capped: ProviderSandbox, event: dict[str, Any]
) -> None:
    identity = (event.get("requestContext") or {}).get("identity")
    key_id = identity.get("apiKeyId", "<missing>") if isinstance(identity, dict) else "<no identity map>"
    note(f"identity {identity!r:.300}, apiKeyId {key_id!r:.300}")
    sent_before = len(capped.ledger)

    # When a send comes with a hostile, odd or missing key id (who the caps count it against)
    answer = _api(event)

    # Then it gets a documented answer, never a 500; one refused sent nothing
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    assert status in _documented_statuses("/messages")
    assert TEST_TOKEN not in answer["body"]
    document = json.loads(answer["body"])
    sent = capped.ledger[sent_before:]
    if status == 200:
        assert len(sent) == 1
    else:
        assert _headers(answer)["content-type"] == "application/problem+json"
        jsonschema.validate(document, _problem_schema())
        assert document["status"] == status
        assert sent == []


def test_viber_only_sends_under_a_spend_ceiling_are_sent_every_time(capped: ProviderSandbox) -> None:
    # Given caps with a spend ceiling, and sends that cost no SMS (Viber only: worst case 0 EUR)
    answers = [_api(_with_key_id("k1a2b3c4d5")) for _ in range(3)]

    # Then each is sent: the stage's spend, counted unchanged, is no reason to fail (it was a KeyError)
    assert [answer["statusCode"] for answer in answers] == [200, 200, 200], answers[-1]["body"][:500]
    assert len(capped.ledger) == 3


@pytest.fixture
def policy(gateway_env: ProviderSandbox, monkeypatch: pytest.MonkeyPatch) -> ProviderSandbox:
    """The functions with a destination policy: Greece and Cyprus, mobiles (the stack's defaults)."""
    monkeypatch.setenv(names.ENV_ALLOWED_COUNTRIES, "GR,CY")
    monkeypatch.setenv(names.ENV_ALLOWED_NUMBER_TYPES, ",".join(names.DEFAULT_ALLOWED_NUMBER_TYPES))
    reset_process_caches()
    return gateway_env


def _allowed(digits: str) -> bool:
    """Whether a number (digits only, as sent) is a Greek or Cypriot mobile, by phonenumbers alone."""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(number)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return phonenumbers.region_code_for_number(number) in ("GR", "CY") and mobile


_QUOTED = re.compile(r"'([^']*)'")


def _send_to(*destinations: str) -> dict[str, Any]:
    event = load_event("api-post-im.json")
    event["body"] = json.dumps({**VALID_BODY, "destinations": list(destinations)})
    return event


@FUZZ_SETTINGS
# A number given twice (in one spelling or two) before a refused one: the refused one's own index.
@example(event=_send_to("306912345678", "306912345678", "447400123456"))
@example(event=_send_to("+30 691 234 5678", "306912345678", "302123456789", "447400123456"))
@given(event=policy_send_event())
def test_any_destinations_against_a_policy_get_a_documented_answer_naming_each_refused_field(
    policy: ProviderSandbox, event: dict[str, Any]
) -> None:
    destinations = json.loads(event["body"])["destinations"]
    note(f"destinations {destinations!r:.1000}")
    sent_before = len(policy.ledger)

    # When a send's destinations are checked against a policy of Greece and Cyprus, mobiles
    answer = _api(event)

    # Then the answer is documented, never a 500
    status = answer["statusCode"]
    assert status < 500, answer["body"][:500]
    assert status in _documented_statuses("/messages")
    document = json.loads(answer["body"])
    sent = policy.ledger[sent_before:]
    if status == 200:
        # And only numbers the policy allows were sent
        if _headers(answer).get("idempotent-replayed") == "true":
            return
        [entry] = sent
        assert all(_allowed(number) for number in entry.payload["destinations"]), entry.payload
        return
    assert sent == []
    jsonschema.validate(document, _problem_schema())
    if document["type"] != PROBLEM + "destination-not-allowed":
        return
    # And a refusal names each refused number by its own field: destinations[i] of the caller's list
    assert status == 422
    fields = [error["field"] for error in document["errors"]]
    assert len(set(fields)) == len(fields), fields
    for error in document["errors"]:
        found = re.fullmatch(r"destinations\[(\d+)\]", error["field"])
        assert found is not None, error
        index = int(found.group(1))
        assert index < len(destinations), (error, destinations)
        quoted = _QUOTED.search(error["message"])
        assert quoted is not None, error
        # The number the message quotes is the one the caller wrote at that index
        assert normalise(destinations[index]) == quoted.group(1), (error, destinations)
        assert not _allowed(quoted.group(1)), error
    # And every number outside the policy is named (under one of its spellings at least)
    named = {normalise(destinations[int(re.findall(r"\d+", field)[0])]) for field in fields}
    outside = {number for number in map(normalise, destinations) if not _allowed(number)}
    assert named == outside, (fields, destinations)
