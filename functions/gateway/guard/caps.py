"""Caps: what a caller may send in a day, and the stage's daily spend brake, counted atomically.

Every send is counted before it goes: its messages (destinations) and its worst-case SMS
cost (the preview's figure: every destination falling back, at the price LiveAll's balance
gives for its country). The stage's day is one item of the usage table (`usage#<day>`): the
day's worst-case spend, and each caller's messages and cost (an API key; the queue and every
other source share the `queue` bucket). One conditional update raises the caller's counts and
the day's spend together, and fails when either would pass its limit: DynamoDB applies one
update of an item at a time, so functions racing for the last messages of a limit never pass
it together, and one round trip counts a send against both rules. A send refused by the
stage's ceiling engages the brake until the day turns or an operator lifts it (`lifted` on
that item), and Spend Ceiling Reached is published once. A send that sent nothing gives its
count back.

One item per day holds every caller's counts: each send writes it (DynamoDB takes about 1,000
writes a second of an item, far above the stage's API throttle and queue concurrency), and it
grows by about 70 bytes per caller counted that day (DynamoDB's 400 KB item holds the counts of
some 5,000 callers a day; callers are the stage's API keys, the queue and IAM callers).

Limits per caller are items of the usage table (`limits#<caller>`), set without a redeploy by
whoever may write the table (README: Caps); the stage's context gives the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from gateway import names
from gateway.aws import aws_client
from gateway.failures import Failure, GatewayError
from gateway.observability import NO_UNIT, count, count_by, gauge, logger
from gateway.phone import country_code
from gateway.settings import get_settings

LIMITS_CACHE_SECONDS = 30  # a changed limit takes effect within this long
PRICE_CACHE_SECONDS = 3600
UNKNOWN_PRICE = Decimal(names.UNKNOWN_SMS_PRICE_EUROS)
KEPT_DAYS = 35  # usage items outlive their day this long (DynamoDB's TTL), for the record
CENT = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Limits:
    messages: int | None = None
    cost: Decimal | None = None

    @property
    def any(self) -> bool:
        return self.messages is not None or self.cost is not None


@dataclass(frozen=True, slots=True)
class Reservation:
    day: str
    caller: str
    messages: int
    cost: Decimal


class CapReached(Exception):
    """A send refused by `rule` ("messages", "cost" or "spend-ceiling"); what the caller had used
    that day when it was refused."""

    def __init__(self, rule: str, used_messages: int = 0, used_cost: Decimal = Decimal(0)) -> None:
        super().__init__(rule)
        self.rule = rule
        self.used_messages = used_messages
        self.used_cost = used_cost


def day_key(day: str) -> dict[str, Any]:
    return {names.USAGE_KEY_ATTRIBUTE: {"S": f"usage#{day}"}}


def messages_attribute(caller: str) -> str:
    return f"messages#{caller}"


def cost_attribute(caller: str) -> str:
    return f"cost#{caller}"


class UsageStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.client: Any = aws_client("dynamodb")

    def limits(self, caller: str) -> Limits | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={names.USAGE_KEY_ATTRIBUTE: {"S": f"limits#{caller}"}}
        ).get("Item")
        if item is None:
            return None
        return Limits(_limit(item, "messages_per_day", int), _limit(item, "cost_per_day", Decimal))

    def set_limits(self, caller: str, limits: Limits) -> None:
        item: dict[str, Any] = {names.USAGE_KEY_ATTRIBUTE: {"S": f"limits#{caller}"}}
        if limits.messages is not None:
            item["messages_per_day"] = {"N": str(limits.messages)}
        if limits.cost is not None:
            item["cost_per_day"] = {"N": str(limits.cost)}
        self.client.put_item(TableName=self.table_name, Item=item)

    def add(
        self,
        day: str,
        caller: str,
        messages: int,
        cost: Decimal,
        *,
        limits: Limits,
        ceiling: Decimal | None,
        expires_at: int,
    ) -> Decimal:
        """Count a send for `caller` and for the stage on `day`, in one conditional update; the day's
        spend after it. CapReached when it would pass the caller's limits or the stage's ceiling."""
        if limits.messages is not None and messages > limits.messages:
            raise CapReached("messages", *self.usage(day, caller))
        if limits.cost is not None and cost > limits.cost:
            raise CapReached("cost", *self.usage(day, caller))
        values: dict[str, Any] = {
            ":m": {"N": str(messages)},
            ":c": {"N": str(cost)},
            ":e": {"N": str(expires_at)},
        }
        conditions = []
        if limits.messages is not None:
            conditions.append("(attribute_not_exists(#m) OR #m <= :mroom)")
            values[":mroom"] = {"N": str(limits.messages - messages)}
        if limits.cost is not None:
            conditions.append("(attribute_not_exists(#c) OR #c <= :croom)")
            values[":croom"] = {"N": str(limits.cost - cost)}
        if ceiling is not None:
            values[":true"] = {"BOOL": True}
            if cost > ceiling:
                # Alone past the ceiling: only a lifted brake lets it go.
                conditions.append("lifted = :true")
            else:
                # Once a send was refused by the ceiling the brake is on (brake_reported): every send
                # stops, even one that would fit, until the day turns or an operator lifts it.
                conditions.append(
                    "(lifted = :true OR (attribute_not_exists(brake_reported) AND "
                    "(attribute_not_exists(spend) OR (spend < :ceiling AND spend <= :room))))"
                )
                values[":ceiling"] = {"N": str(ceiling)}
                values[":room"] = {"N": str(ceiling - cost)}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": day_key(day),
            "UpdateExpression": "ADD #m :m, #c :c, spend :c SET expires_at = :e",
            "ExpressionAttributeNames": {"#m": messages_attribute(caller), "#c": cost_attribute(caller)},
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_NEW",
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            answer = self.client.update_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException as error:
            raise _refusal(error.response.get("Item", {}), caller, messages, cost, limits) from None
        return Decimal(answer.get("Attributes", {}).get("spend", {}).get("N", "0"))

    def give_back(self, reservation: Reservation, expires_at: int) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=day_key(reservation.day),
            UpdateExpression="ADD #m :m, #c :c, spend :c SET expires_at = :e",
            ExpressionAttributeNames={
                "#m": messages_attribute(reservation.caller),
                "#c": cost_attribute(reservation.caller),
            },
            ExpressionAttributeValues={
                ":m": {"N": str(-reservation.messages)},
                ":c": {"N": str(-reservation.cost)},
                ":e": {"N": str(expires_at)},
            },
        )

    def first_brake_of(self, day: str, expires_at: int) -> bool:
        """Mark the day's brake reported; True only the first time (the event and alarm fire once)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=day_key(day),
                UpdateExpression="SET brake_reported = :true, expires_at = :e",
                ConditionExpression="attribute_not_exists(brake_reported)",
                ExpressionAttributeValues={":true": {"BOOL": True}, ":e": {"N": str(expires_at)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def lift(self, day: str, expires_at: int) -> None:
        """An operator lifts the day's brake: sends go on until the day turns."""
        self.client.update_item(
            TableName=self.table_name,
            Key=day_key(day),
            UpdateExpression="SET lifted = :true, expires_at = :e",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":e": {"N": str(expires_at)}},
        )

    def usage(self, day: str, caller: str) -> tuple[int, Decimal]:
        """What `caller` has used on `day`: messages, and worst-case cost."""
        item = self.client.get_item(TableName=self.table_name, Key=day_key(day), ConsistentRead=True).get(
            "Item", {}
        )
        return _used(item, caller)


def _used(item: dict[str, Any], caller: str) -> tuple[int, Decimal]:
    messages = item.get(messages_attribute(caller), {}).get("N", "0")
    cost = item.get(cost_attribute(caller), {}).get("N", "0")
    return int(Decimal(messages)), Decimal(cost)


def _refusal(old: dict[str, Any], caller: str, messages: int, cost: Decimal, limits: Limits) -> CapReached:
    """Which rule refused a send, from the day's item as the refused update found it: the caller's
    own limits first, else the stage's ceiling."""
    used_messages, used_cost = _used(old, caller)
    if limits.messages is not None and used_messages + messages > limits.messages:
        rule = "messages"
    elif limits.cost is not None and used_cost + cost > limits.cost:
        rule = "cost"
    else:
        rule = "spend-ceiling"
    return CapReached(rule, used_messages, used_cost)


def _limit(item: dict[str, Any], name: str, kind: Callable[[str], Any]) -> Any:
    """One limit of a limits item; one an operator wrote wrong is ignored (the stage's default
    applies) and logged, never a failed send."""
    attribute = item.get(name)
    if attribute is None:
        return None
    try:
        value = kind(attribute["N"])
        if value < 0:
            raise ValueError(name)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        logger.error("a limits item holds a limit that is not one; ignored", extra={"attribute": name})
        return None
    return value


class Caps:
    def __init__(
        self,
        store: UsageStore,
        *,
        defaults: Limits,
        ceiling: Decimal | None,
        time_zone: str,
        price: Callable[[str, bool], Decimal | None] | None = None,
        clock: Callable[[], float] = time.time,
        publish: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.ceiling = ceiling
        self.zone = ZoneInfo(time_zone)
        self.price = price or (lambda code, low_cost: None)
        self.clock = clock
        self.publish = publish or _publish
        self._limits: dict[str, tuple[float, Limits]] = {}

    def day(self) -> tuple[str, datetime]:
        """The stage's day now, and when it ends (the next local midnight, as an aware instant)."""
        now = datetime.fromtimestamp(self.clock(), self.zone)
        tomorrow = date.fromordinal(now.date().toordinal() + 1)
        ends = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=self.zone)
        return now.date().isoformat(), ends

    def worst_case_cost(self, destinations: list[str], segments: int | None, low_cost: bool) -> Decimal:
        """Every destination falling back to SMS (IM only: no SMS, nothing)."""
        if not segments:
            return Decimal(0)
        by_country: dict[str, int] = {}
        for destination in destinations:
            code = country_code(destination)
            by_country[code] = by_country.get(code, 0) + 1
        total = Decimal(0)
        for code, number in by_country.items():
            total += (self.price(code, low_cost) or UNKNOWN_PRICE) * number * segments
        return total.quantize(CENT)

    def reserve(
        self, caller: str, destinations: list[str], segments: int | None, low_cost: bool
    ) -> Reservation | None:
        limits = self._limits_of(caller)
        if not limits.any and self.ceiling is None:
            return None
        day, ends = self.day()
        expires_at = int(ends.timestamp()) + KEPT_DAYS * 86_400
        retry_after = max(1, int((ends.timestamp() - self.clock()) + 0.999))
        cost = self.worst_case_cost(destinations, segments, low_cost)
        messages = len(destinations)
        try:
            spend = self.store.add(
                day, caller, messages, cost, limits=limits, ceiling=self.ceiling, expires_at=expires_at
            )
        except CapReached as reached:
            self._refused(reached.rule, caller)
            if reached.rule != "spend-ceiling":
                raise self._limit_error(reached, limits, ends, retry_after) from None
            self._brake(day, expires_at)
            raise GatewayError(
                Failure.SPEND_CEILING_REACHED,
                f"Today's worst-case spend has reached the stage's ceiling ({self.ceiling} EUR): "
                f"sends are stopped until {ends.isoformat(timespec='minutes')} ({self.zone.key}) or "
                "until an operator lifts the brake. Nothing was sent.",
                retry_after=retry_after,
                extra={"ceiling": float(self.ceiling or 0), "resets_at": ends.isoformat(timespec="seconds")},
            ) from None
        gauge(names.METRIC_DAY_SPEND, float(spend), unit=NO_UNIT)
        count_by(names.METRIC_MESSAGES_COUNTED, "caller", caller, messages)
        return Reservation(day, caller, messages, cost)

    def give_back(self, reservation: Reservation | None) -> None:
        """A send that sent nothing: its count goes back (best effort: an error only logs)."""
        if reservation is None:
            return
        _, ends = self.day()
        try:
            self.store.give_back(reservation, int(ends.timestamp()) + KEPT_DAYS * 86_400)
        except Exception as error:
            logger.error("a count was not given back", extra={"reason": type(error).__name__})

    def _limits_of(self, caller: str) -> Limits:
        now = time.monotonic()
        cached = self._limits.get(caller)
        if cached is not None and now - cached[0] < LIMITS_CACHE_SECONDS:
            return cached[1]
        own = self.store.limits(caller)
        limits = Limits(
            own.messages if own and own.messages is not None else self.defaults.messages,
            own.cost if own and own.cost is not None else self.defaults.cost,
        )
        self._limits[caller] = (now, limits)
        return limits

    def _refused(self, rule: str, caller: str) -> None:
        count_by(names.METRIC_CAP_REFUSALS, "rule", rule)
        logger.info("send refused by a cap", extra={"rule": rule, "caller": caller})

    def _limit_error(
        self, reached: CapReached, limits: Limits, ends: datetime, retry_after: int
    ) -> GatewayError:
        rule = reached.rule
        limit = limits.messages if rule == "messages" else limits.cost
        used: int | Decimal = reached.used_messages if rule == "messages" else reached.used_cost
        what = "messages" if rule == "messages" else "EUR of worst-case SMS cost"
        return GatewayError(
            Failure.LIMIT_EXCEEDED,
            f"This send would pass the daily limit of {limit} {what} ({used} used today); nothing was sent. "
            f"The limit resets at {ends.isoformat(timespec='minutes')} ({self.zone.key}).",
            retry_after=retry_after,
            extra={
                "limit": {
                    "rule": rule,
                    "per_day": float(limit) if limit is not None else None,
                    "used": float(used),
                },
                "resets_at": ends.isoformat(timespec="seconds"),
            },
        )

    def _brake(self, day: str, expires_at: int) -> None:
        try:
            first = self.store.first_brake_of(day, expires_at)
        except Exception as error:
            logger.error("the brake was not recorded", extra={"reason": type(error).__name__})
            return
        if not first:
            return
        count(names.METRIC_SPEND_CEILING_REACHED)
        logger.warning("spend ceiling reached: sends stopped for the day", extra={"day": day})
        self.publish(
            names.DETAIL_TYPE_SPEND_CEILING_REACHED,
            {"day": day, "ceiling": float(self.ceiling or 0), "currency": "EUR", "time_zone": self.zone.key},
        )


def _publish(detail_type: str, detail: dict[str, Any]) -> None:
    from gateway.events import publish_one  # loaded with the first event, not with this module

    publish_one(detail_type, detail)


class PriceBook:
    """What an SMS costs per calling code, from LiveAll's balance, kept an hour (prices rarely change)."""

    def __init__(self, ask: Callable[[str], Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.ask = ask
        self.clock = clock
        self._prices: dict[tuple[str, bool], tuple[float, Decimal | None]] = {}

    def __call__(self, code: str, low_cost: bool) -> Decimal | None:
        from gateway.provider.balance import low_cost_price_per_sms, price_per_sms

        now = self.clock()
        cached = self._prices.get((code, low_cost))
        if cached is not None and now - cached[0] < PRICE_CACHE_SECONDS:
            return cached[1]
        try:
            balance = self.ask(code)
            price = low_cost_price_per_sms(balance) if low_cost else price_per_sms(balance)
        except GatewayError:
            price = None  # the unknown price (the highest) counts instead, until LiveAll answers
        self._prices[(code, low_cost)] = (now, price)
        return price


@cache
def get_caps() -> Caps | None:
    """The stage's caps; None where the function has no usage table."""
    settings = get_settings()
    if settings.usage_table is None:
        return None
    from gateway.provider.queries import get_queries

    queries = get_queries()
    return Caps(
        UsageStore(settings.usage_table),
        defaults=Limits(
            settings.daily_message_limit,
            None
            if settings.daily_cost_limit_euros is None
            else Decimal(str(settings.daily_cost_limit_euros)),
        ),
        ceiling=None
        if settings.daily_spend_ceiling_euros is None
        else Decimal(str(settings.daily_spend_ceiling_euros)),
        time_zone=settings.stage_time_zone,
        price=PriceBook(lambda code: queries.balance(code)),
    )


def reserve_for(
    caller: str, destinations: list[str], segments: int | None, low_cost: bool
) -> Callable[[], Callable[[], None] | None]:
    """What counts a send against `caller`'s caps and the stage's ceiling just before it goes
    (GatewayError 429 if it would pass one); it returns how to give the count back."""

    def reserve() -> Callable[[], None] | None:
        caps = get_caps()
        if caps is None:
            return None
        reservation = caps.reserve(caller, destinations, segments, low_cost)
        return None if reservation is None else (lambda: caps.give_back(reservation))

    return reserve
