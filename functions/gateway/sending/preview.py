"""POST /messages/preview: every rule of a send, and what it would cost, without sending.

A fallback SMS costs one message per segment (gateway.sending.segments): one Greek
small letter makes a text UCS-2, 70 characters a segment instead of 160. The
worst case is every destination falling back, at the price per SMS the
account's balance implies in each country (GetAccountBalance with the
country's prefix; low cost for `pricecat` 1).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.failures import GatewayError
from gateway.fields import MAX_TEXT_LENGTH
from gateway.guard.policy import get_policy
from gateway.phone import country_code, region
from gateway.provider.balance import low_cost_price_per_sms, price_per_sms
from gateway.provider.queries import ProviderQueries
from gateway.sending.request import SendRequest
from gateway.sending.segments import fallback_sms

if TYPE_CHECKING:
    from gateway.suppression.store import SuppressionStore

# Countries priced per preview: each is one GetAccountBalance call.
MAX_PRICED_COUNTRIES = 10


def preview(
    request: SendRequest,
    queries: ProviderQueries | None,
    *,
    suppression: SuppressionStore | None = None,
    seconds_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    sms = fallback_sms(request)
    destinations = request.destinations
    policy = get_policy()
    not_allowed = [refusal for _, refusal in policy.refusals(destinations)] if policy is not None else []
    if not_allowed:  # a send would be refused whole; what it would cost is of the rest
        refused = {refusal.destination for refusal in not_allowed}
        destinations = [destination for destination in destinations if destination not in refused]
    suppressed = suppression.check(destinations, request.im_sender_name) if suppression is not None else []
    if suppressed:
        left_out = {item.destination for item in suppressed}
        destinations = [destination for destination in destinations if destination not in left_out]
    by_country: dict[str, int] = {}
    for destination in destinations:
        code = country_code(destination)
        by_country[code] = by_country.get(code, 0) + 1
    countries = []
    worst_case: Decimal | None = Decimal(0) if sms is not None else None
    for index, (code, count) in enumerate(sorted(by_country.items(), key=lambda item: (-item[1], item[0]))):
        entry: dict[str, Any] = {"calling_code": code, "region": region(code), "destinations": count}
        if sms is not None:
            price = (
                _price(queries, code, request.pricecat == 1, seconds_left)
                if index < MAX_PRICED_COUNTRIES
                else None
            )
            cost = None if price is None else price * count * sms["segments"]
            entry["price_per_sms"] = None if price is None else float(price)
            entry["worst_case_cost"] = None if cost is None else float(cost)
            worst_case = None if worst_case is None or cost is None else worst_case + cost
        countries.append(entry)
    answer: dict[str, Any] = {
        "destinations": destinations,
        "duplicates_removed": request.duplicates_removed,
        "countries": countries,
        "viber": {"characters": len(request.im_text), "max_characters": MAX_TEXT_LENGTH},
        "sms": sms,
        "worst_case_cost": None if worst_case is None else float(worst_case),
        "currency": "EUR",
    }
    if request.reference is not None:
        answer["reference"] = request.reference
    if suppressed:
        answer["suppressed"] = [item.as_dict() for item in suppressed]
    if not_allowed:
        answer["not_allowed"] = [refusal.as_dict() for refusal in not_allowed]
    return answer


def _price(
    queries: ProviderQueries | None, code: str, low_cost: bool, seconds_left: Callable[[], float] | None
) -> Decimal | None:
    if queries is None:
        return None
    try:
        balance = queries.balance(code, seconds_left=seconds_left() if seconds_left else None)
    except GatewayError:
        return None  # the preview stands without prices: the rules are what it is for
    return low_cost_price_per_sms(balance) if low_cost else price_per_sms(balance)
