"""What a careless or hostile caller sends, through the real entry points, each way it once broke.

API Gateway REST proxy events of AWS's documented shape (SAM's sample, base64
body and all) into the API handler, SQS events (binary attributes and all)
into the queue handler; moto and the provider sandbox behind them.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import boto3
import pytest

from tests.conftest import TEST_TOKEN, load_event, log_records
from tests.integration.test_api_send import PROBLEM, valid_im
from tests.integration.test_queue import IM_BODY, _record

REAL_BODY = load_event("message-im.json")


def call_api(event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    from api_handler import handler

    answer = handler(event, context)
    headers = {k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): v for k, v in (answer.get("headers") or {}).items()})
    return answer["statusCode"], headers, json.loads(answer["body"])


def base64_event(raw: bytes, **headers: str) -> dict[str, Any]:
    """SAM's POST sample (base64 body, no Content-Type), carrying `raw`."""
    event = load_event("api-post-im-base64.json")
    event["body"] = base64.b64encode(raw).decode("ascii")
    for name, value in headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def text_event(body: str, content_type: str | None = "application/json") -> dict[str, Any]:
    event = load_event("api-post-im.json")
    event["body"] = body
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type")
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    return event


def test_sams_base64_sample_is_sent(gateway_env, lambda_context) -> None:
    # Given AWS's own sample POST event: base64 body, no Content-Type header at all
    status, _, body = call_api(load_event("api-post-im-base64.json"), lambda_context)

    # Then it is read as the JSON it carries, and sent
    assert status == 200, body
    assert [m["destination"] for m in body["messages"]] == ["306912345678", "306987654321"]
    assert len(gateway_env.ledger) == 1


# ----- 2. bodies that used to become Lambda errors -------------------------------------------

BAD_BODIES = [
    ("multipart without boundary", text_event("{}", "multipart/form-data"), 415, "multipart/form-data"),
    ("text/plain", text_event(json.dumps(REAL_BODY), "text/plain"), 415, "application/json"),
    ("latin-1 charset", text_event(json.dumps(REAL_BODY), "application/json; charset=latin-1"), 415, "UTF-8"),
    ("not UTF-8", base64_event(b"\xff\xfe{}"), 400, "not valid UTF-8"),
    ("base64 flag on text", {**text_event("{}"), "isBase64Encoded": True}, 400, "not valid base64"),
    (
        "base64 of Latin-1",
        base64_event(json.dumps(REAL_BODY).replace("Your", "Y\u00f6ur").encode("latin-1")),
        400,
        "UTF-8",
    ),
    ("deep nesting", text_event("[" * 100_000 + "]" * 100_000), 400, "nested deeper"),
    ("deep nesting in a field", text_event('{"im_text": ' + "[" * 40 + "]" * 40 + "}"), 400, "nested deeper"),
    ("4301-digit integer", text_event('{"pricecat": 1' + "0" * 4300 + "}"), 400, "digits"),
    ("NaN", text_event('{"pricecat": NaN}'), 400, "NaN"),
    ("a key twice", text_event('{"im_text": "a", "im_text": "b"}'), 400, "twice"),
    ("empty", text_event(""), 400, "empty"),
]


@pytest.mark.parametrize(("case", "event", "status", "words"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_a_body_that_is_not_one_json_object_is_a_problem_not_a_crash(
    gateway_env, lambda_context, case, event, status, words
) -> None:
    # When the API function gets it
    answer_status, headers, body = call_api(event, lambda_context)

    # Then it is the documented problem, saying what is wrong, with the request id; nothing was sent
    assert answer_status == status
    assert headers["content-type"] == "application/problem+json"
    assert body["status"] == status
    assert words in body["detail"]
    assert body["request_id"] == event["requestContext"]["requestId"]
    assert gateway_env.requests == []


@pytest.mark.parametrize("field", ["im_sender_name", "sms_text", "im_text"])
def test_a_lone_surrogate_is_a_problem_naming_the_field(gateway_env, lambda_context, field) -> None:
    # Given a JSON body whose text holds "\udfff" (valid JSON escape, not a character)
    body = {**REAL_BODY, "im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "ok", field: "Hi \udfff"}

    # When posted (json.dumps writes the escape, as any JSON encoder would)
    status, _, problem = call_api(text_event(json.dumps(body)), lambda_context)

    # Then a 400 names the field and says why
    assert status == 400
    assert problem["errors"] == [{"field": field, "message": problem["errors"][0]["message"]}]
    assert "lone surrogate" in problem["errors"][0]["message"]
    assert gateway_env.requests == []


def test_an_unexpected_exception_is_a_500_problem_with_the_request_id(
    gateway_env, lambda_context, monkeypatch, captured_logs
) -> None:
    # Given a defect deep in the send path
    from gateway.sending import send

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(send.Sender, "send", broken)

    # When a valid message is posted
    event = load_event("api-post-im.json")
    status, headers, body = call_api(event, lambda_context)

    # Then API Gateway gets a 500 problem, not a Lambda error; no stack trace in the answer
    assert status == 500
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "internal-error"
    assert body["request_id"] == event["requestContext"]["requestId"]
    assert "ZeroDivisionError" in body["detail"]
    assert "Traceback" not in json.dumps(body)
    # And the log has the reason for an operator
    assert any(r.get("reason") == "ZeroDivisionError" for r in log_records(captured_logs))


def test_even_a_failure_outside_the_resolver_is_a_500_problem(
    gateway_env, lambda_context, monkeypatch
) -> None:
    # Given a defect in what runs around the resolver (the decorators: logging, tracing, metrics)
    import api_handler

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("flush failed")

    monkeypatch.setattr(api_handler, "_handle", broken)

    # When a message is posted, then the last resort still answers a problem with the request id
    event = load_event("api-post-im.json")
    status, headers, body = call_api(event, lambda_context)
    assert status == 500
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "internal-error"
    assert body["request_id"] == event["requestContext"]["requestId"]


# ----- 4, 5. arrays, media type case ----------------------------------------------------------


def test_a_json_array_of_messages_is_refused_not_half_sent(gateway_env, lambda_context) -> None:
    # Given two messages in an array (Powertools alone would send the first)
    event = text_event(json.dumps([REAL_BODY, valid_im()]))

    # Then it is a 400 saying to send one message per request, and nothing was sent
    status, _, body = call_api(event, lambda_context)
    assert status == 400
    assert "one JSON object" in body["detail"]
    assert gateway_env.requests == []


@pytest.mark.parametrize(
    "content_type",
    ["Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/json;charset=utf-8", None],
)
@pytest.mark.parametrize("header_name", ["Content-Type", "content-type", "CONTENT-TYPE"])
def test_media_types_are_case_insensitive(gateway_env, lambda_context, content_type, header_name) -> None:
    # Given a valid body labelled application/json in any case, with any header-name case
    event = text_event(json.dumps(REAL_BODY), None)
    if content_type is not None:
        event["headers"][header_name] = content_type
        event["multiValueHeaders"][header_name] = [content_type]

    # Then it is sent
    status, _, body = call_api(event, lambda_context)
    assert status == 200, body
    assert len(gateway_env.ledger) == 1


# ----- 6. answers within Lambda's limit --------------------------------------------------------


def test_ten_thousand_bad_destinations_give_a_small_problem(gateway_env, lambda_context) -> None:
    # Given 10,000 long invalid destinations
    bad = [f"+30 691 234 {n:04d} {'9' * 40}" for n in range(10_000)]
    event = text_event(json.dumps(valid_im(destinations=bad)))

    # When posted
    from api_handler import handler

    answer = handler(event, lambda_context)

    # Then the problem lists 100, counts the rest, and stays far under Lambda's 6 MB response limit
    problem = json.loads(answer["body"])
    assert answer["statusCode"] == 422
    assert len(problem["errors"]) == 100
    assert problem["omitted_errors"] == 9_900
    assert "10000 problems" in problem["detail"]
    assert len(answer["body"]) < 64 * 1024


# ----- 7. what is forwarded is what was checked -----------------------------------------------

BAD_URLS = [
    "https://example.com/a.png\n",
    "https://example.com/\ta.png",
    " https://example.com/a.png",
    "https:\\\\example.com\\a.png",
    "https:example.com/a.png",
    "https:/example.com/a.png",
    "https://user@example.com/a.png",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("where", ["image", "action"])
def test_a_url_a_browser_would_rewrite_is_refused(gateway_env, lambda_context, url, where) -> None:
    body = (
        valid_im(im_image_urls=[url])
        if where == "image"
        else valid_im(im_actions=[{"caption": "Open", "url": url}])
    )
    status, _, problem = call_api(text_event(json.dumps(body)), lambda_context)
    assert status == 422
    field = "im_image_urls[0]" if where == "image" else "im_actions[0].url"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert gateway_env.requests == []


def test_urls_are_sent_in_the_form_that_was_checked(gateway_env, lambda_context) -> None:
    # Given URLs with an upper-case scheme and host, and an international host and path
    body = valid_im(
        im_image_urls=["HTTPS://EXAMPLE.COM/Offer.png"],
        im_actions=[{"caption": "Open", "url": "https://ex\u00e4mple.com/caf\u00e9"}],
    )

    # When sent, then the provider got their normalised forms, the ones the rules checked
    assert call_api(text_event(json.dumps(body)), lambda_context)[0] == 200
    [entry] = gateway_env.ledger
    assert entry.payload["im_image_urls"] == ["https://example.com/Offer.png"]
    assert entry.payload["im_actions"] == [{"caption": "Open", "url": "https://xn--exmple-cua.com/caf%C3%A9"}]


# ----- 8. rule gaps ----------------------------------------------------------------------------

FALLBACK = {"im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "Your order has shipped."}
RULE_GAPS = [
    (
        "Arabic-Indic digits as sender id",
        {**FALLBACK, "senderid": "\u0663\u0664\u0665\u0666\u0667"},
        "senderid",
    ),
    ("digits and spaces as sender id", {**FALLBACK, "senderid": "12 34"}, "senderid"),
    ("zero-width sender name", {"im_sender_name": "\u200b\u200c\u200d"}, "im_sender_name"),
    ("Viber text of spaces", {"im_text": "     "}, "im_text"),
    ("SMS text of a BOM", {**FALLBACK, "sms_text": "\ufeff"}, "sms_text"),
    ("control character in a name", {"im_sender_name": "My\nShop"}, "im_sender_name"),
    ("pricecat true", {"pricecat": True}, "pricecat"),
    ("pricecat false", {"pricecat": False}, "pricecat"),
    ("pricecat 1.0", {"pricecat": 1.0}, "pricecat"),
]


@pytest.mark.parametrize(("case", "override", "field"), RULE_GAPS, ids=[c[0] for c in RULE_GAPS])
def test_what_the_provider_would_refuse_is_refused_first(
    gateway_env, lambda_context, case, override, field
) -> None:
    status, _, problem = call_api(text_event(json.dumps(valid_im(**override))), lambda_context)
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == [field]
    assert gateway_env.requests == []


@pytest.mark.parametrize("sender_id", ["1234", "123456789012", "1234567890123456"])
def test_numeric_sender_ids_of_up_to_16_digits_reach_the_provider_and_pass(
    gateway_env, lambda_context, sender_id
) -> None:
    # The README's rule and the sandbox (LIVEALL.md codes 5 and 52: numeric ids have their own limit)
    status, _, body = call_api(
        text_event(json.dumps(valid_im(**{**FALLBACK, "senderid": sender_id}))), lambda_context
    )
    assert status == 200, body
    assert gateway_env.ledger[0].payload["senderid"] == sender_id


# ----- 3, 8. the queue: poison records are parked at once, with the reason ---------------------


def _dead_letters(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )


def _binary(text: bytes) -> dict[str, Any]:
    # As Lambda delivers a Binary attribute: binaryValue in base64 and no stringValue key at all.
    return {
        "binaryValue": base64.b64encode(text).decode("ascii"),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }


POISON = [
    ("deep nesting", '{"im_text": ' + "[" * 5_000 + "]" * 5_000 + "}", "malformed-request"),
    ("lone surrogate", json.dumps({**IM_BODY, "im_sender_name": "\udfff"}), "malformed-request"),
    ("array", json.dumps([IM_BODY, IM_BODY]), "malformed-request"),
    ("4301-digit integer", '{"pricecat": 1' + "0" * 4300 + "}", "malformed-request"),
    ("spaces as Viber text", json.dumps({**IM_BODY, "im_text": "   "}), "invalid-request"),
]


@pytest.mark.parametrize(("case", "body", "reason"), POISON, ids=[c[0] for c in POISON])
def test_a_poison_record_is_parked_at_once_with_its_reason(
    gateway_env, lambda_context, queues, captured_logs, case, body, reason
) -> None:
    from queue_handler import handler

    # When the queue function gets it
    answer = handler({"Records": [_record(body, "m-poison")]}, lambda_context)

    # Then it is not retried but parked with the reason, logged, and nothing was sent
    assert answer == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    assert parked["MessageAttributes"]["ErrorType"]["StringValue"] == reason
    assert parked["Body"] == body
    lines = log_records(captured_logs)
    assert any(
        r.get("message") == "parked in the dead-letter queue" and r.get("failure_type") == reason
        for r in lines
    )
    assert gateway_env.requests == []


def test_a_binary_idempotency_key_is_read_as_its_text(gateway_env, lambda_context, queues) -> None:
    from queue_handler import handler

    # Given the same message twice, keyed once by a String and once by a Binary attribute
    by_string = _record(IM_BODY, "m-string", {"IdempotencyKey": "order-9"})
    by_binary = _record(IM_BODY, "m-binary")
    by_binary["messageAttributes"] = {"IdempotencyKey": _binary(b"order-9")}

    # When they come one after the other
    assert handler({"Records": [by_string]}, lambda_context) == {"batchItemFailures": []}
    assert handler({"Records": [by_binary]}, lambda_context) == {"batchItemFailures": []}

    # Then the binary key is the same key: sent once
    assert len(gateway_env.ledger) == 1
    assert _dead_letters(queues["dead_letter"]) == []


@pytest.mark.parametrize(
    ("attribute", "why"),
    [
        (_binary("ключ".encode()), "Binary attribute must hold ASCII text"),
        ({"stringValue": "abc\n", "dataType": "String"}, "printable ASCII"),
        ({"stringValue": "x" * 256, "dataType": "String"}, "printable ASCII"),
    ],
    ids=["binary not ASCII", "trailing newline", "too long"],
)
def test_an_unusable_queue_key_is_parked_as_invalid(
    gateway_env, lambda_context, queues, attribute, why
) -> None:
    from queue_handler import handler

    record = _record(IM_BODY, "m-bad-key")
    record["messageAttributes"] = {"IdempotencyKey": attribute}
    assert handler({"Records": [record]}, lambda_context) == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    assert parked["MessageAttributes"]["ErrorType"]["StringValue"] == "invalid-request"
    assert why in parked["MessageAttributes"]["ErrorDetail"]["StringValue"]
    assert gateway_env.requests == []


def test_a_defect_on_the_queue_parks_the_record_with_the_reason(
    gateway_env, lambda_context, queues, monkeypatch
) -> None:
    from gateway.sending import send
    from queue_handler import handler

    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a defect")

    monkeypatch.setattr(send.Sender, "send", broken)
    assert handler({"Records": [_record(IM_BODY, "m-defect")]}, lambda_context) == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert attributes["ErrorType"] == "internal-error"
    assert "KeyError" in attributes["ErrorDetail"]


def test_a_failure_around_the_batch_retries_every_record(
    gateway_env, lambda_context, queues, monkeypatch
) -> None:
    import queue_handler

    def broken() -> None:
        raise RuntimeError("cannot make clients")

    monkeypatch.setattr(queue_handler, "_prepare_shared_clients", broken)
    event = {"Records": [_record(IM_BODY, "m-1"), _record(IM_BODY, "m-2")]}

    # Then no Lambda error: each record is reported failed, for SQS to deliver again
    assert queue_handler.handler(event, lambda_context) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]
    }


def test_nothing_here_leaks_the_token(gateway_env, lambda_context, captured_logs) -> None:
    # A last check over one of each: the token appears in no answer and no log line
    for _, event, _, _ in BAD_BODIES:
        call_api(copy.deepcopy(event), lambda_context)
    assert TEST_TOKEN not in captured_logs.getvalue()
