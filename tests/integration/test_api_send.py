"""POST /messages through the API handler, with moto's Secrets Manager and the sandbox over HTTP."""

from __future__ import annotations

import json
from typing import Any

from api_handler import handler
from tests.conftest import APPROVED_SENDER, TEST_TOKEN, LambdaContext, load_event, log_records

PROBLEM = "urn:viber-gateway:problem:"


def post(body: Any, context: LambdaContext, *, raw: str | None = None) -> tuple[int, dict[str, str], Any]:
    event = load_event("api-post-im.json")
    event["body"] = raw if raw is not None else json.dumps(body)
    answer = handler(event, context)
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    if answer.get("multiValueHeaders"):
        headers.update({k.lower(): v[0] for k, v in answer["multiValueHeaders"].items()})
    return answer["statusCode"], headers, json.loads(answer["body"]) if answer["body"] else None


def valid_im(**overrides: Any) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": APPROVED_SENDER,
        "im_text": "Your order has shipped.",
        "destinations": ["+30 691 234 5678"],
        **overrides,
    }


def test_im_send_reaches_the_sandbox_exactly_as_documented(gateway_env, lambda_context) -> None:
    # Given the sample IM event (numbers typed two ways)
    event = load_event("api-post-im.json")

    # When the API handler serves it
    answer = handler(event, lambda_context)

    # Then the provider got the documented SendIM body: token from the secret, numbers normalised
    assert answer["statusCode"] == 200
    [entry] = gateway_env.ledger
    assert entry.payload == {
        "apitoken": TEST_TOKEN,
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": "Your order 1042 has shipped and arrives tomorrow.",
        "destinations": ["306912345678", "306987654321"],
    }
    body = json.loads(answer["body"])
    assert body == {
        "submission_id": entry.submission_id,
        "messages": [
            {"destination": "306912345678", "smsid": entry.smsids[0]},
            {"destination": "306987654321", "smsid": entry.smsids[1]},
        ],
        "duplicates_removed": 0,
    }
    assert answer["multiValueHeaders"]["Content-Type"] == ["application/json"]


def test_fallback_send_with_image_and_action_reaches_the_sandbox_exactly(gateway_env, lambda_context) -> None:
    # Given the IM_SMSFB sample with an image, an action and a repeated number
    event = load_event("api-post-im-smsfb.json")

    # When it is sent
    answer = handler(event, lambda_context)

    # Then every documented field reached the provider, the duplicate once only
    assert answer["statusCode"] == 200, answer["body"]
    [entry] = gateway_env.ledger
    assert entry.payload == {
        "apitoken": TEST_TOKEN,
        "im_type": "IM_SMSFB",
        "im_sender_name": "MyShop",
        "im_text": "Black Friday: 30% off everything until midnight.",
        "destinations": ["306912345678", "306912345679"],
        "im_image_urls": ["https://example.com/black-friday.png"],
        "im_actions": [{"caption": "See the offers", "url": "https://example.com/offers"}],
        "senderid": "MyShop",
        "sms_text": "Black Friday: 30% off everything until midnight. example.com/offers",
        "pricecat": 0,
    }
    assert json.loads(answer["body"])["duplicates_removed"] == 1


def test_both_success_shapes_give_the_same_answer(gateway_env, lambda_context) -> None:
    # Given the provider answering once with objects and once with a bare list of ids
    for shape in ("objects", "ids"):
        gateway_env.reset()
        gateway_env.data_shape = shape

        # When a two-destination message is posted
        status, _, body = post(valid_im(destinations=["306912345678", "306912345679"]), lambda_context)

        # Then the 200 body is the same, built from the ids the provider assigned
        [entry] = gateway_env.ledger
        assert status == 200
        assert body == {
            "submission_id": entry.submission_id,
            "messages": [
                {"destination": "306912345678", "smsid": entry.smsids[0]},
                {"destination": "306912345679", "smsid": entry.smsids[1]},
            ],
            "duplicates_removed": 0,
        }


def test_openapi_description_is_served_from_the_models(gateway_env, lambda_context) -> None:
    # Given the sample GET /openapi.json event
    answer = handler(load_event("api-get-openapi.json"), lambda_context)

    # Then it is an OpenAPI document describing POST /messages with the request model
    assert answer["statusCode"] == 200
    spec = json.loads(answer["body"])
    assert spec["openapi"].startswith("3.")
    operation = spec["paths"]["/messages"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "422", "502", "503", "504"}
    schema = spec["components"]["schemas"]["SendRequest"]
    assert set(schema["required"]) == {"im_type", "im_sender_name", "im_text", "destinations"}
    assert "apitoken" not in schema["properties"]
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"


def test_logs_carry_the_request_id_and_mask_numbers(gateway_env, lambda_context, captured_logs) -> None:
    # Given a send from the sample event
    event = load_event("api-post-im.json")

    # When it is served
    handler(event, lambda_context)

    # Then its log lines carry the API request id, and numbers only masked
    records = log_records(captured_logs)
    sent = next(r for r in records if r["message"] == "message sent")
    assert sent["correlation_id"] == event["requestContext"]["requestId"]
    assert sent["destinations"] == ["30*******678", "30*******321"]
    text = captured_logs.getvalue()
    assert "306912345678" not in text
    assert "6912345678" not in text
    assert TEST_TOKEN not in text
