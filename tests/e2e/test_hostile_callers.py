"""End to end: what careless and hostile callers send to `make run`'s service over real HTTP."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3

from bench.phones import greek_mobiles
from tests.e2e.harness import LocalService

PROBLEM = "urn:viber-gateway:problem:"
VALID = {
    "im_type": "IM",
    "im_sender_name": "MyShop",
    "im_text": "Your order has shipped.",
    "destinations": ["+30 691 234 5678"],
}


def post_raw(local: LocalService, body: bytes, content_type: str = "application/json", **headers: str) -> Any:
    return local.http.request(
        "POST",
        f"{local.api_url}/messages",
        body=body,
        headers={"Content-Type": content_type, "x-api-key": local.api_key, **headers},
    )


def test_ten_thousand_destinations_under_a_key_are_sent_once_and_answered_the_same_twice(
    local: LocalService,
) -> None:
    # Given the largest request the API accepts, under an idempotency key
    body = {**VALID, "destinations": greek_mobiles(10_000)}

    # When it is posted, and posted again
    first = local.post_message(body, {"Idempotency-Key": "e2e-bulk-10000"})
    second = local.post_message(body, {"Idempotency-Key": "e2e-bulk-10000"})

    # Then LiveAll got each number exactly once, and both answers are the same 200
    assert (first.status, second.status) == (200, 200), first.data[:500]
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    sent = [d for entry in local.ledger() for d in entry["payload"]["destinations"]]
    assert sorted(sent) == sorted(body["destinations"])


BODIES = [
    ("bytes that are not UTF-8", b'{"im_text": "\xff\xfe"}', "application/json", 400, "UTF-8"),
    ("multipart without boundary", b"--x\r\n", "multipart/form-data", 415, "application/json"),
    ("deep nesting", b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "nested deeper"),
    ("5000-digit number", b'{"pricecat": 1' + b"0" * 5_000 + b"}", "application/json", 400, "digits"),
    (
        "lone surrogate",
        json.dumps({**VALID, "im_sender_name": "\udfff"}).encode(),
        "application/json",
        400,
        "not Unicode",
    ),
    ("an array of messages", json.dumps([VALID, VALID]).encode(), "application/json", 400, "one JSON object"),
]


@pytest.mark.parametrize(
    ("case", "raw", "content_type", "status", "words"), BODIES, ids=[b[0] for b in BODIES]
)
def test_a_body_that_is_not_one_json_object_gets_a_problem_not_a_502(
    local: LocalService, case: str, raw: bytes, content_type: str, status: int, words: str
) -> None:
    # When it is posted through the HTTP front (API Gateway's part: bytes that are not UTF-8 go base64)
    response = post_raw(local, raw, content_type)

    # Then the function answered a problem saying what is wrong, and nothing was sent
    assert response.status == status, response.data[:300]
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert words in problem["detail"]
    assert problem["request_id"] == response.headers["x-amzn-RequestId"]
    assert local.ledger() == []


@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8"])
def test_json_in_any_case_is_sent(local: LocalService, content_type: str) -> None:
    response = post_raw(local, json.dumps(VALID).encode(), content_type)
    assert response.status == 200, response.data
    assert len(local.ledger()) == 1


def test_fifty_concurrent_requests_get_fifty_answers(local: LocalService) -> None:
    # Given 50 callers on connections of their own, all at once
    http = urllib3.PoolManager(
        num_pools=1, maxsize=50, retries=False, timeout=urllib3.Timeout(connect=5, read=60)
    )
    body = json.dumps(VALID).encode()

    def call(number: int) -> int:
        response = http.request(
            "POST",
            f"{local.api_url}/messages",
            body=body,
            headers={"Content-Type": "application/json", "x-api-key": local.api_key},
        )
        return int(response.status)

    # When they post together
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(50)))

    # Then each got its answer (no connection reset), and each was sent once
    assert statuses == [200] * 50
    assert len(local.ledger()) == 50
