"""The LiveAll account: its balance (and what an SMS costs, per country), and the scheduled check of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from gateway import names
from gateway.events import Event, EventPublisher, iso
from gateway.failures import Failure, GatewayError
from gateway.fields import FieldError
from gateway.observability import NO_UNIT, gauge, logger
from gateway.phone import calling_code_of, region
from gateway.provider.balance import Balance, low_cost_price_per_sms, price_per_sms
from gateway.provider.queries import ProviderQueries
from gateway.tracking.store import TrackingStore


def balance_answer(queries: ProviderQueries, country: str | None = None) -> dict[str, Any]:
    """GET /account/balance: the balance in euros, and with a country what an SMS costs there."""
    code = None
    if country is not None:
        code = calling_code_of(country)
        if code is None:
            raise GatewayError(
                Failure.INVALID_REQUEST,
                "The country is not one; see errors.",
                errors=[FieldError("country", "must be an ISO 3166 code (GR) or a calling code (30)")],
            )
    balance = queries.balance(code)
    return describe(balance, code)


def describe(balance: Balance, code: str | None) -> dict[str, Any]:
    return {
        "balance": float(balance.euros),
        "currency": "EUR",
        "country": None if code is None else {"calling_code": code, "region": region(code)},
        "sms_remaining": balance.sms_remaining,
        "low_cost_sms_remaining": balance.low_cost_sms_remaining,
        "price_per_sms": _number(price_per_sms(balance)),
        "low_cost_price_per_sms": _number(low_cost_price_per_sms(balance)),
    }


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class BalanceCheck:
    """The scheduled check: the balance as a metric; `Balance Low` once each time it drops below."""

    STATE_ID = "balance#last"

    def __init__(
        self,
        queries: ProviderQueries,
        publisher: EventPublisher | None,
        store: TrackingStore | None,
        *,
        threshold: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queries = queries
        self.publisher = publisher
        self.store = store
        self.threshold = threshold
        self.clock = clock

    def run(self) -> dict[str, Any]:
        balance = self.queries.balance()
        euros = float(balance.euros)
        gauge(names.METRIC_BALANCE, euros, unit=NO_UNIT)
        low = self.threshold is not None and euros < self.threshold
        was_low = self._was_low()
        published = False
        if low and not was_low and self.publisher is not None:
            detail = {
                "balance": euros,
                "threshold": self.threshold,
                "currency": "EUR",
                "checked_at": iso(int(self.clock())),
            }
            published = all(self.publisher.publish([Event(names.DETAIL_TYPE_BALANCE_LOW, detail)]))
        if published or not low:
            self._remember(low)
        logger.info("balance checked", extra={"balance": euros, "low": low, "event": published})
        return {"balance": euros, "low": low, "balance_low_event": published}

    def _was_low(self) -> bool:
        if self.store is None:
            return False
        return bool(self.store.get_state(self.STATE_ID).get("low"))

    def _remember(self, low: bool) -> None:
        if self.store is not None:
            self.store.put_state(self.STATE_ID, {"low": low, "checked_at": int(self.clock())})
