"""The sandbox account's SMS price list, per destination country.

Greece's prices reproduce the documentation's GetAccountBalance example (a balance
of 169.64 buys 4475 normal or 5317 low-cost SMS). The others are plausible, not
LiveAll's: they exist so that a client cannot assume one price everywhere.

| country | prefix | normal | low cost (pricecat 1) |
|---|---|---|---|
| Greece | 30 | 0.0379 | 0.0319 |
| Cyprus | 357 | 0.0420 | 0.0350 |
| Italy | 39 | 0.0550 | 0.0450 |
| any other | | 0.0800 | 0.0650 |
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final


@dataclass(frozen=True)
class SmsPrice:
    """Euros per SMS part to one country."""

    normal: Decimal
    low_cost: Decimal

    def for_category(self, pricecat: int) -> Decimal:
        """The price of SendIM's `pricecat`: 1 is low cost, anything else normal."""
        return self.low_cost if pricecat == 1 else self.normal


SMS_PRICES: Final[dict[str, SmsPrice]] = {
    "30": SmsPrice(Decimal("0.0379"), Decimal("0.0319")),
    "357": SmsPrice(Decimal("0.0420"), Decimal("0.0350")),
    "39": SmsPrice(Decimal("0.0550"), Decimal("0.0450")),
}
DEFAULT_SMS_PRICE: Final = SmsPrice(Decimal("0.0800"), Decimal("0.0650"))


def price_for_country(prefix: str) -> SmsPrice:
    """The price list entry of a country prefix (GetAccountBalance's `countryprefix`)."""
    return SMS_PRICES.get(prefix, DEFAULT_SMS_PRICE)


def price_for_destination(destination: str) -> SmsPrice:
    """The price of the country a number belongs to: its longest matching prefix."""
    for length in range(max(map(len, SMS_PRICES)), 0, -1):
        price = SMS_PRICES.get(destination[:length])
        if price is not None:
            return price
    return DEFAULT_SMS_PRICE
