"""The stage's destination policy through the real handlers: refused before anything is sent, named."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from gateway import names
from sandbox import ProviderSandbox
from tests.conftest import LambdaContext, load_event, reset_process_caches
from tests.integration.test_suppression import api, message

GREEK_MOBILE = "306912345678"
GREEK_FIXED_LINE = "302123456789"
GREEK_PREMIUM_RATE = "309091234567"
UK_MOBILE = "447400123456"
PROBLEM = "urn:viber-gateway:problem:"


@pytest.fixture
def policy(gateway_env: ProviderSandbox, monkeypatch: pytest.MonkeyPatch) -> ProviderSandbox:
    """The stack's defaults: Greece and Cyprus, mobiles."""
    monkeypatch.setenv(names.ENV_ALLOWED_COUNTRIES, ",".join(names.DEFAULT_ALLOWED_COUNTRIES))
    monkeypatch.setenv(names.ENV_ALLOWED_NUMBER_TYPES, ",".join(names.DEFAULT_ALLOWED_NUMBER_TYPES))
    reset_process_caches()
    return gateway_env


def test_a_send_with_a_number_outside_the_policy_is_refused_whole_naming_each_and_its_rule(
    policy: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    body = message(GREEK_MOBILE, GREEK_PREMIUM_RATE, UK_MOBILE, GREEK_FIXED_LINE)
    status, _, problem = api("POST", "/messages", lambda_context, body=body)
    assert status == 422
    assert problem["type"] == PROBLEM + "destination-not-allowed"
    by_field = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(by_field) == {"destinations[1]", "destinations[2]", "destinations[3]"}
    assert "premium-rate" in by_field["destinations[1]"]
    assert "GB" in by_field["destinations[2]"]
    assert "fixed-line" in by_field["destinations[3]"]
    # Nothing was sent, not even the number the policy allows
    assert policy.ledger == []


def test_a_keyed_and_a_scheduled_send_are_refused_the_same_way(
    policy: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    status, _, problem = api(
        "POST", "/messages", lambda_context, body=message(UK_MOBILE), headers={"Idempotency-Key": "k-policy"}
    )
    assert (status, problem["type"]) == (422, PROBLEM + "destination-not-allowed")
    body = message(UK_MOBILE, send_at="2099-01-01T00:00:00Z")
    status, _, problem = api("POST", "/messages", lambda_context, body=body)
    assert (status, problem["type"]) == (422, PROBLEM + "destination-not-allowed")
    assert policy.ledger == []


def test_the_preview_shows_what_the_policy_refuses_and_prices_only_the_rest(
    policy: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    body = message(GREEK_MOBILE, GREEK_PREMIUM_RATE)
    status, _, preview = api("POST", "/messages/preview", lambda_context, body=body)
    assert status == 200, preview
    assert preview["not_allowed"] == [
        {"destination": GREEK_PREMIUM_RATE, "rule": "number-type", "found": "premium-rate"}
    ]
    assert preview["destinations"] == [GREEK_MOBILE]
    assert policy.ledger == []


def test_a_queued_message_outside_the_policy_is_parked_with_the_reason(
    policy: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    from queue_handler import handler

    record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
    record["body"] = json.dumps(message(GREEK_FIXED_LINE))
    answer: dict[str, Any] = handler({"Records": [record]}, lambda_context)
    assert answer == {"batchItemFailures": []}
    [letter] = boto3.client("sqs").receive_message(
        QueueUrl=queues["dead_letter"], MessageAttributeNames=["All"]
    )["Messages"]
    assert letter["MessageAttributes"]["ErrorType"]["StringValue"] == "destination-not-allowed"
    assert "fixed-line" in letter["MessageAttributes"]["ErrorDetail"]["StringValue"]
    assert policy.ledger == []


def test_without_a_policy_set_every_valid_number_goes(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    status, _, answer = api("POST", "/messages", lambda_context, body=message(UK_MOBILE))
    assert status == 200, answer
    assert len(gateway_env.ledger) == 1
