"""GetAccountBalance answers, and the price per SMS they imply."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.provider.balance import Balance, low_cost_price_per_sms, parse_balance_answer, price_per_sms
from gateway.provider.statuses import ProviderAnswerError

EXAMPLE = "OK Balance:169.64|SmsRemainCount:4475|LCSmsRemainCount:5317"
EXAMPLE_BALANCE = Balance(Decimal("169.64"), 4475, 5317)


def test_the_documented_example() -> None:
    assert parse_balance_answer(EXAMPLE) == EXAMPLE_BALANCE
    assert parse_balance_answer(EXAMPLE.encode()) == EXAMPLE_BALANCE


@pytest.mark.parametrize(
    "body",
    [
        f"{EXAMPLE}\r\n",
        f"  \r\n{EXAMPLE}  ",
        f"\ufeff{EXAMPLE}",
        "OK  Balance : 169.64 | SmsRemainCount : 4475 | LCSmsRemainCount : 5317 ",
        "OK Balance:169.64|\r\nSmsRemainCount:4475|\r\nLCSmsRemainCount:5317|",
        "OKBalance:169.64|SmsRemainCount:4475|LCSmsRemainCount:5317",
        "OK LCSmsRemainCount:5317|Balance:169.64|SmsRemainCount:4475",
        "ok balance:169.64|smsremaincount:4475|LCSMSREMAINCOUNT:5317",
        "OK Balance:169.64|Currency:EUR|SmsRemainCount:4475|LCSmsRemainCount:5317",
    ],
)
def test_whitespace_crlf_order_case_and_unknown_keys_are_tolerated(body: str) -> None:
    assert parse_balance_answer(body) == EXAMPLE_BALANCE


def test_without_a_country_the_counts_are_none() -> None:
    answer = "OK Balance:169.64|SmsRemainCount:-1|LCSmsRemainCount:-1"
    assert parse_balance_answer(answer) == Balance(Decimal("169.64"), None, None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("OK Balance:-3.50|SmsRemainCount:0|LCSmsRemainCount:0", Balance(Decimal("-3.50"), 0, 0)),
        ("OK Balance:0|SmsRemainCount:0|LCSmsRemainCount:0", Balance(Decimal(0), 0, 0)),
        ("OK Balance:12|SmsRemainCount:316|LCSmsRemainCount:-1", Balance(Decimal(12), 316, None)),
    ],
)
def test_negative_zero_and_whole_balances(body: str, expected: Balance) -> None:
    assert parse_balance_answer(body) == expected


def test_the_balance_is_an_exact_decimal() -> None:
    balance = parse_balance_answer(EXAMPLE)
    assert isinstance(balance.euros, Decimal)
    assert str(balance.euros) == "169.64"


def test_an_error_answer_raises_with_the_providers_code() -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_balance_answer(b"Error: 44 - Invalid API token\r\n")
    assert (caught.value.code, caught.value.message) == (44, "Invalid API token")


MALFORMED = [
    ("empty", b"", "empty"),
    ("blank", b" \r\n", "empty"),
    ("HTML", b"<html>502 Bad Gateway</html>", "HTML"),
    ("no OK", b"Balance:169.64|SmsRemainCount:4475|LCSmsRemainCount:5317", "not a balance answer"),
    ("OK alone", b"OK", "lacks balance, smsremaincount, lcsmsremaincount"),
    ("cut short", b"OK Balance:169.64|SmsRemainCount:44", "lacks lcsmsremaincount"),
    ("part without colon", b"OK Balance 169.64|SmsRemainCount:4475|LCSmsRemainCount:5317", "key:value"),
    ("part without key", b"OK :169.64|SmsRemainCount:4475|LCSmsRemainCount:5317", "key:value"),
    ("twice", b"OK Balance:1|Balance:2|SmsRemainCount:4475|LCSmsRemainCount:5317", "twice"),
    ("comma decimal", b"OK Balance:169,64|SmsRemainCount:4475|LCSmsRemainCount:5317", "amount"),
    ("empty balance", b"OK Balance:|SmsRemainCount:4475|LCSmsRemainCount:5317", "amount"),
    ("count not a number", b"OK Balance:1|SmsRemainCount:many|LCSmsRemainCount:5317", "whole number"),
    ("other negative count", b"OK Balance:1|SmsRemainCount:-2|LCSmsRemainCount:5317", "whole number"),
    ("fractional count", b"OK Balance:1|SmsRemainCount:4.5|LCSmsRemainCount:5317", "whole number"),
    ("not UTF-8", b"OK Balance:\xff|SmsRemainCount:1|LCSmsRemainCount:1", "UTF-8"),
    ("error without code", b"Error - no token", "without an error code"),
]


@pytest.mark.parametrize(("body", "why"), [(b, w) for _, b, w in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_anything_else_raises_without_a_provider_code(body: bytes, why: str) -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_balance_answer(body)
    assert caught.value.code is None
    assert why in caught.value.message


# --- Price per SMS ---


def test_the_example_implies_its_prices() -> None:
    # 169.64 / 4475 = 0.037908..., 169.64 / 5317 = 0.031905...
    assert price_per_sms(EXAMPLE_BALANCE) == Decimal("0.0379")
    assert low_cost_price_per_sms(EXAMPLE_BALANCE) == Decimal("0.0319")


def test_halves_round_up() -> None:
    # 0.0005 / 2 = 0.00025: half up gives 0.0003 where banker's rounding would give 0.0002.
    assert price_per_sms(Balance(Decimal("0.0005"), 2, None)) == Decimal("0.0003")
    assert price_per_sms(Balance(Decimal("0.0007"), 2, None)) == Decimal("0.0004")  # 0.00035
    assert price_per_sms(Balance(Decimal("0.00049"), 2, None)) == Decimal("0.0002")  # 0.000245


def test_a_price_has_four_places() -> None:
    price = price_per_sms(Balance(Decimal(10), 4, 4))
    assert price == Decimal("2.5")
    assert str(price) == "2.5000"


@pytest.mark.parametrize(
    "balance",
    [
        Balance(Decimal("169.64"), None, None),  # no country asked
        Balance(Decimal("169.64"), 0, 0),  # nothing left
        Balance(Decimal(0), 10, 10),  # no credit
        Balance(Decimal("-3.50"), 10, 10),  # in debt
    ],
)
def test_no_price_without_a_count_or_credit(balance: Balance) -> None:
    assert price_per_sms(balance) is None
    assert low_cost_price_per_sms(balance) is None


def test_each_price_uses_its_own_count() -> None:
    balance = Balance(Decimal(100), 2000, None)
    assert price_per_sms(balance) == Decimal("0.05")
    assert low_cost_price_per_sms(balance) is None


def _half_up(value: Fraction, places: int = 4) -> Fraction:
    scaled = value * 10**places
    return Fraction(int(scaled + Fraction(1, 2)), 10**places)  # value > 0, so floor is int()


@given(
    euros=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**7), places=4),
    count=st.integers(min_value=1, max_value=10**7),
)
def test_the_price_is_the_exact_quotient_rounded_half_up(euros: Decimal, count: int) -> None:
    price = price_per_sms(Balance(euros, count, count))
    assert price is not None
    assert Fraction(price) == _half_up(Fraction(euros) / count)
    assert price.as_tuple().exponent == -4


@given(
    euros=st.decimals(min_value=-(10**6), max_value=10**6, places=2),
    sms=st.integers(min_value=-1, max_value=10**6),
    low_cost=st.integers(min_value=-1, max_value=10**6),
)
def test_any_written_balance_reads_back(euros: Decimal, sms: int, low_cost: int) -> None:
    body = f"OK Balance:{euros}|SmsRemainCount:{sms}|LCSmsRemainCount:{low_cost}\r\n"
    assert parse_balance_answer(body.encode()) == Balance(
        euros, None if sms == -1 else sms, None if low_cost == -1 else low_cost
    )
