"""Metrics the gateway emits (CloudWatch EMF on stdout), and time budgets that fit the invocation."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway import names
from local.functions import lambda_context, reset_process_caches
from sandbox import Fault
from tests.integration.test_api_send import PROBLEM, post, valid_im


def emitted_metrics(output: str) -> list[dict[str, Any]]:
    """Each EMF document printed: its metric values and dimensions."""
    documents = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            documents.append(json.loads(line))
    return documents


def metric_values(documents: list[dict[str, Any]], name: str) -> list[tuple[float, dict[str, str]]]:
    found = []
    for document in documents:
        if name in document:
            directive = document["_aws"]["CloudWatchMetrics"][0]
            dimensions = {key: document[key] for key in directive["Dimensions"][0]}
            values = document[name] if isinstance(document[name], list) else [document[name]]
            found.extend((value, dimensions) for value in values)
    return found


def test_a_send_counts_the_message_and_its_destinations(gateway_env, lambda_context, capsys) -> None:
    # Given a two-destination message, when it is sent
    assert post(valid_im(destinations=["306912345678", "306912345679"]), lambda_context)[0] == 200

    # Then the accepted message and both destinations are counted, under the service dimension
    documents = emitted_metrics(capsys.readouterr().out)
    assert metric_values(documents, "MessagesAccepted") == [(1.0, {"service": "viber-gateway"})]
    assert metric_values(documents, "DestinationsSent") == [(2.0, {"service": "viber-gateway"})]
    assert documents[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ViberGatewayTest"


def test_a_validation_failure_is_counted_by_type(gateway_env, lambda_context, capsys) -> None:
    assert post(valid_im(im_text=""), lambda_context)[0] == 422
    documents = emitted_metrics(capsys.readouterr().out)
    assert metric_values(documents, "ValidationFailures") == [(1.0, {"service": "viber-gateway"})]
    assert metric_values(documents, "Failures") == [
        (1.0, {"service": "viber-gateway", "failure_type": "invalid-request"})
    ]


def test_a_provider_refusal_is_counted_by_code(gateway_env, lambda_context, capsys) -> None:
    # Given the provider refusing the sender
    gateway_env.add_fault(Fault(kind="error_code", code=56))
    assert post(valid_im(), lambda_context)[0] == 422

    # Then the provider error is counted overall (the alarm's metric) and by its code
    documents = emitted_metrics(capsys.readouterr().out)
    assert metric_values(documents, "ProviderErrors") == [(1.0, {"service": "viber-gateway"})]
    assert metric_values(documents, "ProviderErrorsByCode") == [
        (1.0, {"service": "viber-gateway", "provider_code": "56"})
    ]


def test_too_little_time_left_sends_nothing(gateway_env) -> None:
    # Given an invocation with 300 ms left
    context = lambda_context(timeout_seconds=0.3)

    # When a message is posted, then the gateway does not start a call it cannot finish
    status, _, body = post(valid_im(), context)
    assert status == 503
    assert body["type"] == PROBLEM + "provider-unavailable"
    assert gateway_env.requests == []


def test_the_provider_call_ends_within_the_time_left(gateway_env, monkeypatch) -> None:
    # Given a 10 s read timeout, an invocation with 2 s left, and a provider that takes 5 s
    monkeypatch.setenv(names.ENV_PROVIDER_READ_TIMEOUT, "10")
    reset_process_caches()
    gateway_env.add_fault(Fault(kind="slow", delay=5.0, after_processing=True))
    context = lambda_context(timeout_seconds=2.0)

    # When a message is posted
    started = time.monotonic()
    status, _, body = post(valid_im(), context)
    elapsed = time.monotonic() - started

    # Then the gateway gives up in time to answer (keeping its margin), saying the outcome is unknown
    assert status == 504
    assert body["type"] == PROBLEM + "outcome-unknown"
    assert elapsed < 2.0
