"""POST /messages is served by api_handler itself; the resolver's twin of the route answers alike.

The handler checks the body, the Idempotency-Key header and the request rules
without Powertools' resolver (which every other route goes through): the send
path pays neither for loading it nor for its per-request work. The resolver
still declares the route (the OpenAPI description is made from it). Here the
same events, AWS-shaped and hostile ones generated as the fuzz tier makes them,
go down both paths, and the answers must be the same: status, headers and body.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import api_handler
from gateway.failures import GatewayError
from gateway.problems import internal_error, problem_parts
from sandbox import ProviderSandbox
from tests.conftest import APPROVED_SENDER, LambdaContext, load_event
from tests.fuzz.strategies import accepted_body, api_event, mutated_body

REPLAYED = "Idempotent-Replayed"


def through_the_resolver(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The route as Powertools' resolver serves it (api_routes), after the same body boundary."""
    try:
        canonical = api_handler.with_canonical_body(event)
    except GatewayError as refused:
        return api_handler._proxy_answer(*problem_parts(refused, api_handler._request_id(event)))
    try:
        return api_handler.resolve(canonical, context)
    except Exception as error:  # as api_handler.handler's last resort answers it
        return api_handler._proxy_answer(
            *problem_parts(internal_error(error), api_handler._request_id(event))
        )


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with what two sends cannot share (their message ids) and the replay mark set aside."""
    headers = {name: values for name, values in answer["multiValueHeaders"].items() if name != REPLAYED}
    body = json.loads(answer["body"])
    if answer["statusCode"] == 200 and isinstance(body, dict) and "messages" in body:
        body = {**body, "submission_id": "*", "messages": [{**m, "smsid": "*"} for m in body["messages"]]}
        body.pop("submission_ids", None)
    return {
        "statusCode": answer["statusCode"],
        "headers": headers,
        "body": body,
        "base64": answer["isBase64Encoded"],
    }


def post_event(body: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    event = load_event("api-post-im.json")
    event["body"] = json.dumps(body)
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = value if isinstance(value, list) else [value]
    return event


def assert_same_answer(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The resolver first: with a usable Idempotency-Key, the handler's answer is then the replay of it.
    twin = through_the_resolver(copy.deepcopy(event), context)
    answer = api_handler.handler(copy.deepcopy(event), context)
    assert comparable(answer) == comparable(twin)
    return answer


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Idempotency-Key": "k" * 256},
        {"Idempotency-Key": ""},
        {"Idempotency-Key": "caf\u00e9"},
        {"idempotency-key": "abc\n"},
        {"IDEMPOTENCY-KEY": ["first", "second"]},
        {"Idempotency-Key": []},
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        {"im_type": "IM"},
        {"im_type": "IM_SMSFB", "im_sender_name": APPROVED_SENDER, "im_text": "t", "destinations": ["1"]},
        {"im_type": "IM", "im_sender_name": " ", "im_text": "\u200b", "destinations": [], "apitoken": "x"},
        {"im_type": "IM", "im_sender_name": "S", "im_text": "t", "destinations": ["123"] * 150},
        {
            "im_type": "IM",
            "im_sender_name": "S",
            "im_text": "t",
            "destinations": ["+30 691 234 5678"],
            "pricecat": True,
        },
    ],
)
def test_a_refused_request_gets_the_same_problem_on_both_paths(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, body: dict[str, Any], headers: dict[str, Any]
) -> None:
    # Given a body or a header some rule refuses
    answer = assert_same_answer(post_event(body, headers), lambda_context)
    # Then the answer names what is wrong (the same problem through the resolver, checked above)
    assert answer["statusCode"] == 422
    assert gateway_env.ledger == []


@pytest.mark.parametrize(
    "headers", [{}, {"Idempotency-Key": "fast-path-twin-1"}, {"idempotency-key": ["k-2"]}]
)
def test_a_send_is_answered_alike_on_both_paths(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, headers: dict[str, Any]
) -> None:
    body = {
        "im_type": "IM_SMSFB",
        "im_sender_name": APPROVED_SENDER,
        "im_text": "Your order has shipped.",
        "destinations": ["+30 691 234 5678", "306912345678", "00306987654321"],
        "senderid": "MyShop",
        "sms_text": "Shipped.",
        "reference": "order-1042",
    }
    answer = assert_same_answer(post_event(body, headers), lambda_context)
    assert answer["statusCode"] == 200
    # Each path sent once, or the keyed second answered from the store
    assert len(gateway_env.ledger) == (1 if headers else 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=st.one_of(api_event(), st.tuples(mutated_body() | accepted_body(), st.just(b""))))
def test_generated_events_get_the_same_answer_on_both_paths(
    gateway_env: ProviderSandbox, lambda_context: LambdaContext, generated: tuple[Any, bytes]
) -> None:
    # Given an event as AWS delivers it (any body encoding, media type and header case), or a body
    # varied around the rules
    event, _ = generated
    if "httpMethod" not in event:
        event = post_event(event)
    event["resource"] = event["path"] = "/messages"
    # Then the handler's own path answers as the resolver would
    assert_same_answer(event, lambda_context)
