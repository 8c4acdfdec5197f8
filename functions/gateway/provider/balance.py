"""GetAccountBalance answers, and the price per SMS they imply.

Pure: no I/O, standard library only. The answer looks like
`OK Balance:169.64|SmsRemainCount:4475|LCSmsRemainCount:5317`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

from gateway.provider.statuses import (
    ProviderAnswerError,
    decode_answer,
    excerpt,
    parse_amount,
    parse_count,
    raise_if_not_data,
)


@dataclass(frozen=True, slots=True)
class Balance:
    euros: Decimal  # may be negative
    # SMS the balance still pays for, normal and low cost, in the country asked about;
    # None when no country was asked (the provider answers -1).
    sms_remaining: int | None
    low_cost_sms_remaining: int | None


_BALANCE = "balance"
_SMS_REMAINING = "smsremaincount"
_LOW_COST_SMS_REMAINING = "lcsmsremaincount"
_NO_COUNTRY = "-1"


def parse_balance_answer(body: bytes | str) -> Balance:
    """The balance in a GetAccountBalance answer.

    Tolerates whitespace and CRLF around the parts, any key order, any letter case in
    the keys, and keys it does not know (ignored). `Error: ...` raises
    ProviderAnswerError(code, message); anything else that is not the documented
    answer, or misses one of its three values, raises ProviderAnswerError(None, ...).
    """
    text = decode_answer(body)
    raise_if_not_data(text, "a balance answer")
    stripped = text.strip()
    if stripped[:2].upper() != "OK":
        what = "an empty balance answer" if not stripped else f"not a balance answer: {excerpt(stripped)}"
        raise ProviderAnswerError(None, what)
    values = _values(stripped[2:], stripped)
    missing = [key for key in (_BALANCE, _SMS_REMAINING, _LOW_COST_SMS_REMAINING) if key not in values]
    if missing:
        raise ProviderAnswerError(None, f"the balance answer lacks {', '.join(missing)}: {excerpt(stripped)}")
    try:
        return Balance(
            euros=parse_amount(values[_BALANCE]),
            sms_remaining=_remaining(values[_SMS_REMAINING]),
            low_cost_sms_remaining=_remaining(values[_LOW_COST_SMS_REMAINING]),
        )
    except ValueError as error:
        raise ProviderAnswerError(None, f"balance answer: {error}: {excerpt(stripped)}") from None


def _values(parts: str, answer: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for part in (part.strip() for part in parts.split("|")):
        if not part:
            continue
        key, colon, value = part.partition(":")
        key = key.strip().lower()
        if not colon or not key:
            raise ProviderAnswerError(None, f"{excerpt(part, 30)} is not key:value: {excerpt(answer)}")
        if key in values:
            raise ProviderAnswerError(None, f"{key} appears twice: {excerpt(answer)}")
        values[key] = value.strip()
    return values


def _remaining(field: str) -> int | None:
    return None if field == _NO_COUNTRY else parse_count(field)


# Prices to a hundredth of a cent, like the provider's charges (0.0379), rounded half up.
PRICE_PLACES = Decimal("0.0001")


def price_per_sms(balance: Balance) -> Decimal | None:
    """What one normal SMS costs in the country asked about, as the balance implies it.

    Balance ÷ remaining count, to 4 places, rounded half up. The provider rounds the
    count down, so this is at most price ÷ count above the true price. None when there
    is no count (no country asked, or 0 left) or no credit, which imply no price.
    """
    return _price(balance.euros, balance.sms_remaining)


def low_cost_price_per_sms(balance: Balance) -> Decimal | None:
    """As `price_per_sms`, for the low-cost category (`pricecat` 1)."""
    return _price(balance.euros, balance.low_cost_sms_remaining)


def _price(euros: Decimal, count: int | None) -> Decimal | None:
    if not count or euros <= 0:
        return None
    # Divide to ample digits, cutting rather than rounding, so the one rounding is half up.
    with localcontext() as context:
        context.prec = 60
        context.rounding = ROUND_DOWN
        return (euros / count).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
