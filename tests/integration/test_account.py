"""The account's money: GET /account/balance, the scheduled balance check, the preview and what sends cost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import names
from sandbox import Fault
from tests.conftest import EVENTS, load_event, make_lambda_context, reset_process_caches
from tests.integration.conftest import Tracking
from tests.integration.test_api_send import PROBLEM, post, valid_im

SMSFB = {"im_type": "IM_SMSFB", "senderid": "MyShop"}
# "Your order was sent." in Greek: 26 characters, UCS-2 for its small letters.
GREEK_TEXT = (
    "\u0397 \u03c0\u03b1\u03c1\u03b1\u03b3\u03b3\u03b5\u03bb\u03af\u03b1 "
    "\u03c3\u03b1\u03c2 \u03c3\u03c4\u03ac\u03bb\u03b8\u03b7\u03ba\u03b5."
)


def get_balance(country: str | None = None) -> tuple[int, dict[str, Any]]:
    from api_handler import handler

    event = load_event("api-get-balance.json")
    event["queryStringParameters"] = {"country": country} if country is not None else None
    event["multiValueQueryStringParameters"] = {"country": [country]} if country is not None else None
    answer = handler(event, make_lambda_context())
    return answer["statusCode"], json.loads(answer["body"])


def preview(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from api_handler import handler

    event = load_event("api-post-preview.json")
    event["body"] = json.dumps(body)
    answer = handler(event, make_lambda_context())
    return answer["statusCode"], json.loads(answer["body"])


# ----- the balance -------------------------------------------------------------------------------


@pytest.mark.parametrize("country", ["GR", "gr", "30", "+30"])
def test_the_balance_and_the_price_of_an_sms_in_a_country(gateway_env, country: str) -> None:
    # Given the sandbox's account at the documentation's example balance
    gateway_env.balance = 169.64

    # When the balance is asked for Greece, however the country is written
    status, answer = get_balance(country)

    # Then the documented counts, and the price they imply
    assert status == 200
    assert answer == {
        "balance": 169.64,
        "currency": "EUR",
        "country": {"calling_code": "30", "region": "GR"},
        "sms_remaining": 4475,
        "low_cost_sms_remaining": 5317,
        "price_per_sms": 0.0379,
        "low_cost_price_per_sms": 0.0319,
    }


def test_the_balance_without_a_country(gateway_env) -> None:
    status, answer = get_balance()
    assert status == 200
    assert answer["country"] is None
    assert (answer["sms_remaining"], answer["price_per_sms"]) == (None, None)


@pytest.mark.parametrize("country", ["XX", "999", "G", "GRC"])
def test_a_country_that_is_not_one_is_a_422(gateway_env, country: str) -> None:
    status, problem = get_balance(country)
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["country"]


@pytest.mark.parametrize(
    ("fault", "status", "problem_type"),
    [
        (Fault(kind="error_code", code=44, endpoint="GetAccountBalance"), 503, "misconfigured"),
        (Fault(kind="html", endpoint="GetAccountBalance"), 502, "provider-failed"),
        (Fault(kind="drop", endpoint="GetAccountBalance", times=3), 503, "provider-unavailable"),
    ],
    ids=["Error: 44 (twice: the secret is read again once)", "HTML", "dropped"],
)
def test_the_providers_failures_go_through_the_taxonomy(gateway_env, fault, status, problem_type) -> None:
    gateway_env.add_fault(fault, fault) if fault.kind == "error_code" else gateway_env.add_fault(fault)
    answer_status, problem = get_balance("GR")
    assert (answer_status, problem["type"]) == (status, PROBLEM + problem_type)


def test_the_scheduled_check_publishes_balance_low_once_when_it_drops(
    tracking: Tracking, monkeypatch, capsys
) -> None:
    from scheduled_handler import handler

    monkeypatch.setenv(names.ENV_LOW_BALANCE_EUROS, "20")
    reset_process_caches()

    def check() -> dict[str, Any]:
        return dict(
            handler({"task": names.TASK_CHECK_BALANCE}, make_lambda_context("viber-gateway-scheduled"))
        )

    def balance_low_events() -> list[dict[str, Any]]:
        return [e["detail"] for e in tracking.events() if e["detail-type"] == names.DETAIL_TYPE_BALANCE_LOW]

    # Given a balance above the threshold: the metric, and no event
    tracking.provider.balance = 50
    assert check()["low"] is False
    assert names.METRIC_BALANCE in capsys.readouterr().out
    assert balance_low_events() == []

    # When it drops below: one Balance Low event, and not again while it stays low
    tracking.provider.balance = 12.5
    assert check()["balance_low_event"] is True
    assert check()["balance_low_event"] is False
    [event] = balance_low_events()
    assert (event["balance"], event["threshold"], event["currency"]) == (12.5, 20.0, "EUR")
    # (the documented example has the same members)
    assert set(event) == set(json.loads((EVENTS / "event-balance-low.json").read_text())["detail"])

    # And after a top-up, a new drop is news again
    tracking.provider.balance = 100
    check()
    tracking.provider.balance = 5
    assert check()["balance_low_event"] is True


# ----- the preview and what sends cost -----------------------------------------------------------


def test_a_preview_applies_every_rule_and_prices_the_worst_case(gateway_env) -> None:
    # Given the documentation's balance, and a fallback text with one Greek small letter (UCS-2)
    gateway_env.balance = 169.64
    body = valid_im(
        **SMSFB,
        sms_text=GREEK_TEXT,
        destinations=["+30 691 234 5671", "00306912345672", "306912345671", "+357 96 123456"],
        reference="order-1",
    )

    # When previewed
    status, answer = preview(body)

    # Then the numbers as they would be sent, duplicates out, per country, and the worst-case cost
    assert status == 200
    assert answer["destinations"] == ["306912345671", "306912345672", "35796123456"]
    assert answer["duplicates_removed"] == 1
    assert answer["sms"] == {
        "encoding": "UCS-2",
        "characters": 26,
        "segments": 1,
        "characters_per_segment": 70,
        # The capital eta looks Latin but is not GSM-7's: only capitals unlike any Latin letter are
        "non_gsm_characters": ["\N{GREEK CAPITAL LETTER ETA}", *"\u03c0\u03b1\u03c1\u03b3"],
    }
    greece, cyprus = answer["countries"]
    assert greece == {
        "calling_code": "30",
        "region": "GR",
        "destinations": 2,
        "price_per_sms": 0.0379,
        "worst_case_cost": pytest.approx(0.0758),
    }
    assert (cyprus["calling_code"], cyprus["region"], cyprus["destinations"]) == ("357", "CY", 1)
    assert answer["worst_case_cost"] == pytest.approx(0.0758 + cyprus["price_per_sms"])
    assert answer["reference"] == "order-1"
    # And nothing was sent
    assert gateway_env.requests == []


def test_a_long_gsm_text_costs_more_segments_and_low_cost_is_cheaper(gateway_env) -> None:
    gateway_env.balance = 169.64
    text = "Your order has shipped. " * 10  # 240 GSM-7 characters: 2 parts of 153
    status, answer = preview(valid_im(**SMSFB, sms_text=text, pricecat=1))
    assert status == 200
    assert (answer["sms"]["encoding"], answer["sms"]["segments"]) == ("GSM-7", 2)
    [greece] = answer["countries"]
    assert greece["price_per_sms"] == 0.0319
    assert greece["worst_case_cost"] == pytest.approx(2 * 0.0319)


def test_a_viber_only_preview_has_no_sms(gateway_env) -> None:
    status, answer = preview(valid_im())
    assert status == 200
    assert (answer["sms"], answer["worst_case_cost"]) == (None, None)
    assert "price_per_sms" not in answer["countries"][0]


def test_a_preview_without_a_price_still_answers_the_rules(gateway_env) -> None:
    gateway_env.add_fault(Fault(kind="http_status", status=503, endpoint="GetAccountBalance"))
    status, answer = preview(valid_im(**SMSFB, sms_text="Hello"))
    assert status == 200
    assert answer["countries"][0]["price_per_sms"] is None
    assert answer["worst_case_cost"] is None


def test_an_invalid_preview_is_a_422_naming_the_fields(gateway_env) -> None:
    status, problem = preview(valid_im(im_type="IM_SMSFB", destinations=["12"]))
    assert status == 422
    assert {e["field"] for e in problem["errors"]} == {"destinations[0]", "senderid", "sms_text"}


def test_a_send_answers_the_same_segment_figures(gateway_env, lambda_context) -> None:
    body = valid_im(**SMSFB, sms_text="Hello {name} €5")  # { } € count two septets each
    _, previewed = preview(body)
    status, _, sent = post(body, lambda_context)
    assert status == 200
    assert sent["sms"] == previewed["sms"]
    assert (sent["sms"]["encoding"], sent["sms"]["characters"]) == ("GSM-7", 18)
