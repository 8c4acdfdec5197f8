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

import json
from functools import cache
from typing import Any

import boto3
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from gateway import names
from gateway.request import SendRequest
from tests.conftest import TEST_TOKEN, log_records, make_lambda_context, reset_process_caches
from tests.fuzz.oracle import forwarding_problems
from tests.fuzz.strategies import api_event, sqs_event, suppression_event

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
