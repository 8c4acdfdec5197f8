"""Every way a send can fail maps to its documented status and problem type, and nothing leaks the token."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from gateway import names
from sandbox import Fault
from tests.conftest import TEST_TOKEN
from tests.integration.test_api_send import PROBLEM, post, valid_im

# (case, fault, HTTP status, problem type, provider_code or None)
PROVIDER_FAILURES = [
    ("caller: invalid destination", Fault(kind="error_code", code=13), 422, "rejected-by-provider", 13),
    ("caller: sender not approved", Fault(kind="error_code", code=56), 422, "rejected-by-provider", 56),
    ("caller: text too long", Fault(kind="error_code", code=55), 422, "rejected-by-provider", 55),
    ("caller: image", Fault(kind="error_code", code=57), 422, "rejected-by-provider", 57),
    ("caller: action", Fault(kind="error_code", code=58), 422, "rejected-by-provider", 58),
    ("caller: sender id", Fault(kind="error_code", code=2), 422, "rejected-by-provider", 2),
    ("operator: balance", Fault(kind="error_code", code=18), 503, "out-of-credit", 18),
    ("provider: internal error", Fault(kind="error_code", code=8), 502, "provider-failed", 8),
    ("provider: undocumented code", Fault(kind="error_code", code=77), 502, "provider-failed", 77),
    ("HTTP 500", Fault(kind="http_status", status=500), 504, "outcome-unknown", None),
    ("HTTP 502", Fault(kind="http_status", status=502), 504, "outcome-unknown", None),
    ("HTTP 503", Fault(kind="http_status", status=503), 503, "provider-unavailable", None),
    ("HTTP 429", Fault(kind="http_status", status=429), 503, "provider-unavailable", None),
    ("HTML body", Fault(kind="html"), 504, "outcome-unknown", None),
    ("empty body", Fault(kind="empty"), 504, "outcome-unknown", None),
    ("garbage body", Fault(kind="garbage"), 504, "outcome-unknown", None),
    ("read timeout", Fault(kind="slow", delay=3.0), 504, "outcome-unknown", None),
    ("dropped connection", Fault(kind="drop"), 504, "outcome-unknown", None),
]


@pytest.mark.parametrize(
    ("case", "fault", "status", "problem_type", "code"),
    PROVIDER_FAILURES,
    ids=[c[0] for c in PROVIDER_FAILURES],
)
def test_provider_failure_maps_to_its_problem(
    gateway_env, lambda_context, captured_logs, capsys, case, fault, status, problem_type, code
) -> None:
    # Given a provider that fails this way on the next call (read timeout is 2 s in these tests)
    gateway_env.add_fault(fault)

    # When a valid message is posted
    answer_status, headers, body = post(valid_im(), lambda_context)

    # Then the answer is the documented problem, without a stack trace or the token
    assert answer_status == status
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + problem_type
    assert body["status"] == status
    assert body.get("provider_code") == code
    assert "Traceback" not in json.dumps(body)
    if status == 503 and fault.kind == "http_status":
        assert headers["retry-after"] == "2"
    # And the provider was called exactly once: nothing is re-sent blindly
    assert len(gateway_env.requests) == 1
    for text in (json.dumps(body), captured_logs.getvalue(), capsys.readouterr().out):
        assert TEST_TOKEN not in text


def test_unreachable_provider_is_503_and_nothing_sent(gateway_env, lambda_context, monkeypatch) -> None:
    # Given a provider URL where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(names.ENV_PROVIDER_BASE_URL, f"http://127.0.0.1:{port}/")
    from tests.conftest import reset_process_caches

    reset_process_caches()

    # When a message is posted
    status, _, body = post(valid_im(), lambda_context)

    # Then the caller may retry safely
    assert status == 503
    assert body["type"] == PROBLEM + "provider-unavailable"
    assert "nothing was sent" in body["detail"]


def test_token_error_from_provider_never_echoes_the_token(gateway_env, lambda_context, captured_logs) -> None:
    # Given a provider that no longer accepts the stored token, even after a refresh
    gateway_env.set_tokens({"some-other-token"})

    # When a message is posted
    status, _, body = post(valid_im(), lambda_context)

    # Then it is a 503 for the operator, after exactly one refresh and retry
    assert status == 503
    assert body["type"] == PROBLEM + "misconfigured"
    assert body["provider_code"] == 44
    assert len(gateway_env.requests) == 2
    assert TEST_TOKEN not in json.dumps(body) + captured_logs.getvalue()


def test_missing_secret_is_503_misconfigured(gateway_env, lambda_context) -> None:
    # Given the secret was deleted
    boto3.client("secretsmanager").delete_secret(
        SecretId=names.TOKEN_SECRET_NAME, ForceDeleteWithoutRecovery=True
    )

    # When a message is posted
    status, _, body = post(valid_im(), lambda_context)

    # Then the gateway says it is misconfigured, and nothing was sent
    assert status == 503
    assert body["type"] == PROBLEM + "misconfigured"
    assert gateway_env.requests == []


def test_missing_environment_is_503_misconfigured(gateway_env, lambda_context, monkeypatch) -> None:
    # Given a function deployed without its provider URL
    monkeypatch.delenv(names.ENV_PROVIDER_BASE_URL)
    from tests.conftest import reset_process_caches

    reset_process_caches()

    # When a message is posted
    status, _, body = post(valid_im(), lambda_context)

    # Then the answer is a 503, and nothing was sent
    assert status == 503
    assert body["type"] == PROBLEM + "misconfigured"
    assert gateway_env.requests == []


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("", "JSON object"),
    ],
)
def test_malformed_body_is_400(gateway_env, lambda_context, raw, detail) -> None:
    status, headers, body = post(None, lambda_context, raw=raw)
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "malformed-request"
    assert detail in body["detail"]
    assert gateway_env.requests == []


def test_invalid_request_is_422_with_every_problem(gateway_env, lambda_context, captured_logs) -> None:
    # Given the sample invalid request (five problems, one of them a token the caller should not send)
    from api_handler import handler
    from tests.conftest import load_event

    answer = handler(load_event("api-post-invalid.json"), lambda_context)

    # Then all five are listed by field, nothing reached the provider, and the value is not echoed
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 422
    assert body["type"] == PROBLEM + "invalid-request"
    assert [e["field"] for e in body["errors"]] == [
        "im_type",
        "im_sender_name",
        "im_text",
        "destinations[0]",
        "apitoken",
    ]
    assert all(e["message"] for e in body["errors"])
    assert "do-not-send-me" not in answer["body"] + captured_logs.getvalue()
    assert gateway_env.requests == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"im_type": "SMS"}, "im_type"),
        ({"im_sender_name": " "}, "im_sender_name"),
        ({"im_text": "x" * 1001}, "im_text"),
        ({"destinations": []}, "destinations"),
        ({"destinations": ["12"]}, "destinations[0]"),
        ({"im_image_urls": ["https://a.example/1.png", "https://a.example/2.png"]}, "im_image_urls"),
        ({"im_actions": [{"caption": "", "url": "https://a.example"}]}, "im_actions[0].caption"),
        ({"im_actions": [{"caption": "Go", "url": "http://a.example"}]}, "im_actions[0].url"),
        ({"im_type": "IM_SMSFB", "sms_text": "x"}, "senderid"),
        ({"im_type": "IM_SMSFB", "senderid": "Shop"}, "sms_text"),
        ({"im_type": "IM_SMSFB", "senderid": "Shop_Shop", "sms_text": "x"}, "senderid"),
        ({"pricecat": 3}, "pricecat"),
        ({"apitoken": "x"}, "apitoken"),
    ],
)
def test_each_rule_is_a_422_naming_the_field(gateway_env, lambda_context, override, field) -> None:
    status, _, body = post(valid_im(**override), lambda_context)
    assert status == 422
    assert [e["field"] for e in body["errors"]] == [field]
    assert gateway_env.requests == []


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_a_body_not_sent_as_json_is_415(gateway_env, lambda_context, content_type) -> None:
    # Given a valid message sent with another content type (as `curl -d` does by default)
    from api_handler import handler
    from tests.conftest import load_event

    event = load_event("api-post-im.json")
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]

    # When it is posted
    answer = handler(event, lambda_context)

    # Then the problem says to send JSON, and nothing was sent
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 415
    assert body["type"] == PROBLEM + "unsupported-media-type"
    assert "application/json" in body["detail"]
    assert gateway_env.requests == []
