"""End to end: what the account holds and what a send would cost, as a user of `make run` asks.

GET /account/balance and POST /messages/preview through the local front (API
key, gateway responses), answered from the provider sandbox's account; the
scheduled balance check's `Balance Low` event read from the local bus by a
consumer's own rule, as in README's walkthrough.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import names
from tests.e2e.harness import LocalService, eventually
from tests.e2e.local_service import running_local_service

PROBLEM = "urn:viber-gateway:problem:"
# local/run.py checks the balance every 30 s against a threshold of 10 euros
BALANCE_CHECK_WAIT_SECONDS = 30
# The balance is checked this often by the runner of the Balance Low test (default: every 30 s).
BALANCE_PERIOD_SECONDS = 1
GREEK_TEXT = "\N{GREEK CAPITAL LETTER ETA} \u03c0\u03b1\u03c1\u03b1\u03b3\u03b3\u03b5\u03bb\u03af\u03b1"


def _get(local: LocalService, path: str, *, api_key: str | None = None) -> tuple[int, Any]:
    response = local.http.request(
        "GET", f"{local.api_url}{path}", headers={"x-api-key": local.api_key if api_key is None else api_key}
    )
    return response.status, json.loads(response.data)


def _preview(local: LocalService, body: dict[str, Any]) -> tuple[int, Any]:
    response = local.http.request(
        "POST",
        f"{local.api_url}/messages/preview",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-api-key": local.api_key},
    )
    return response.status, json.loads(response.data)


def test_the_balance_is_the_sandbox_accounts_and_prices_an_sms_per_country(local: LocalService) -> None:
    # Given the documentation's balance in the sandbox
    local.sandbox("POST", "config", {"balance": 169.64})

    # When a user asks for the balance, for Greece, and for a country that is not one
    everywhere = _get(local, "/account/balance")
    greece = _get(local, "/account/balance?country=GR")
    by_code = _get(local, "/account/balance?country=30")
    nowhere = _get(local, "/account/balance?country=XX")

    # Then they get the balance, and for Greece the documented 4475 / 5317 SMS and their prices
    assert everywhere[0] == 200
    assert everywhere[1]["balance"] == 169.64
    assert (everywhere[1]["currency"], everywhere[1]["country"]) == ("EUR", None)
    assert greece[0] == 200
    assert greece[1]["country"] == {"calling_code": "30", "region": "GR"}
    assert (greece[1]["sms_remaining"], greece[1]["low_cost_sms_remaining"]) == (4475, 5317)
    assert (greece[1]["price_per_sms"], greece[1]["low_cost_price_per_sms"]) == (0.0379, 0.0319)
    assert by_code == greece
    # And an unknown country is a 422 naming the field
    assert nowhere[0] == 422
    assert nowhere[1]["type"] == PROBLEM + "invalid-request"
    assert [e["field"] for e in nowhere[1]["errors"]] == ["country"]


def test_the_balance_needs_the_api_key(local: LocalService) -> None:
    status, problem = _get(local, "/account/balance", api_key="not-the-key")
    # API Gateway's own answer (a gateway response), before any function runs
    assert status == 403
    assert (problem["type"], problem["status"], problem["title"]) == ("about:blank", 403, "Forbidden")


def test_a_preview_prices_the_worst_case_and_sends_nothing(local: LocalService) -> None:
    # Given an account with a balance, and a fallback text with Greek letters (UCS-2)
    local.sandbox("POST", "config", {"balance": 169.64})
    body = {
        "im_type": "IM_SMSFB",
        "im_sender_name": "MyShop",
        "im_text": "Your order shipped",
        "senderid": "MyShop",
        "sms_text": GREEK_TEXT,
        "destinations": ["+30 691 234 5671", "00306912345671", "+357 96 123456"],
    }

    # When previewed
    status, answer = _preview(local, body)

    # Then it answers the numbers as sent, the encoding, the segments and the worst-case cost
    assert status == 200, answer
    assert answer["destinations"] == ["306912345671", "35796123456"]
    assert answer["duplicates_removed"] == 1
    assert (answer["sms"]["encoding"], answer["sms"]["segments"]) == ("UCS-2", 1)
    by_region = {c["region"]: c for c in answer["countries"]}
    assert by_region["GR"]["price_per_sms"] == 0.0379
    assert answer["worst_case_cost"] == pytest.approx(
        by_region["GR"]["worst_case_cost"] + by_region["CY"]["worst_case_cost"]
    )
    # And nothing reached the provider
    assert local.ledger() == []

    # And the same body sent answers the same SMS figures
    sent = local.post_message(body)
    assert sent.status == 200, sent.data
    assert sent.json()["sms"] == answer["sms"]


def test_an_invalid_preview_is_a_422_naming_every_field(local: LocalService) -> None:
    status, problem = _preview(local, {"im_type": "IM_SMSFB", "destinations": ["12"], "im_text": "Hi"})
    assert status == 422
    assert {"destinations[0]", "senderid", "sms_text", "im_sender_name"} <= {
        e["field"] for e in problem["errors"]
    }


@pytest.fixture(scope="module")
def checked_often(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A runner of its own that checks the balance every second, not every 30 s."""
    log = tmp_path_factory.mktemp("local-run-balance") / "output.log"
    with running_local_service(
        log, extra_arguments=[f"--balance-period={BALANCE_PERIOD_SECONDS}"]
    ) as service:
        yield service


def test_a_balance_below_the_threshold_raises_one_balance_low_event(checked_often: LocalService) -> None:
    local = checked_often
    # Given a consumer of Balance Low events on the local bus
    queue_url = local.subscribe(
        f"e2e-balance-{uuid.uuid4().hex[:8]}",
        {"source": [names.EVENT_SOURCE], "detail-type": [names.DETAIL_TYPE_BALANCE_LOW]},
    )

    # When the account's balance drops below the local threshold of 10 euros
    local.sandbox("POST", "config", {"balance": 4.5})

    # Then the scheduled check raises Balance Low with the balance and the threshold
    def balance_low() -> list[dict[str, Any]] | None:
        batch = local.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        received = [json.loads(m["Body"]) for m in batch.get("Messages", [])]
        return received or None

    [event] = eventually(balance_low, timeout=BALANCE_CHECK_WAIT_SECONDS, what="a Balance Low event")
    assert event["detail"]["balance"] == 4.5
    assert event["detail"]["threshold"] == 10
    assert event["detail"]["currency"] == "EUR"
    # ...once: the checks that follow while it stays low raise no other
    time.sleep(3 * BALANCE_PERIOD_SECONDS)
    assert balance_low() is None
