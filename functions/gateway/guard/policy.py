"""The destination policy: the countries numbers may belong to, and the kinds of number that may be messaged.

A fixed line can get neither Viber nor an SMS; a premium-rate number only costs; a
number of a country the business does not serve is most likely a mistake or abuse. A
number outside the stage's policy is refused before anything is sent, named with the
rule it breaks (context keys allowedCountries and allowedNumberTypes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.fields import FieldError
from gateway.observability import count_by, logger
from gateway.phone import mask, split_number
from gateway.settings import get_settings

# phonenumbers' kinds of number, by the names the context keys and answers use.
NUMBER_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed-line",
    # Where the numbering plan cannot tell (the US and Canada): possibly a mobile.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed-line-or-mobile",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal-number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
TYPE_NAMES = frozenset(NUMBER_TYPES.values())
assert frozenset(names.NUMBER_TYPES) == TYPE_NAMES
# A Greek business: its customers' phones in Greece and Cyprus, mobiles only (numbers that can
# have Viber and receive an SMS). `*` for countries allows every one.
DEFAULT_COUNTRIES: tuple[str, ...] = names.DEFAULT_ALLOWED_COUNTRIES
DEFAULT_NUMBER_TYPES: tuple[str, ...] = names.DEFAULT_ALLOWED_NUMBER_TYPES
ANY_COUNTRY = "*"


class Refusal:
    """A destination the policy refuses, the rule it breaks and what was found. The classes here are
    plain: on the handlers' import path a dataclass costs about 0.7 ms each."""

    __slots__ = ("destination", "found", "rule")

    def __init__(self, destination: str, rule: str, found: str) -> None:
        self.destination = destination
        self.rule = rule  # "country" or "number-type"
        self.found = found  # the country (ISO 3166) or the kind of number found

    def field_error(self, index: int, policy: DestinationPolicy) -> FieldError:
        if self.rule == "country":
            allowed = ", ".join(sorted(policy.countries or ()))
            message = (
                f"'{self.destination}' is a number of {self.found}: this stage sends only to numbers of "
                f"{allowed} (allowedCountries)"
            )
        else:
            allowed = ", ".join(sorted(policy.number_types))
            message = (
                f"'{self.destination}' is a {self.found} number: this stage sends only to {allowed} numbers "
                "(allowedNumberTypes)"
            )
        return FieldError(f"destinations[{index}]", message)

    def as_dict(self) -> dict[str, str]:
        return {"destination": self.destination, "rule": self.rule, "found": self.found}


class DestinationPolicy:
    __slots__ = ("countries", "number_types")

    def __init__(self, countries: frozenset[str] | None, number_types: frozenset[str]) -> None:
        self.countries = countries  # None: any country
        self.number_types = number_types

    @classmethod
    def of(cls, countries: Iterable[str], number_types: Iterable[str]) -> DestinationPolicy:
        chosen = frozenset(country.upper() for country in countries)
        return cls(None if ANY_COUNTRY in chosen else chosen, frozenset(number_types))

    @property
    def allows_everything(self) -> bool:
        return self.countries is None and self.number_types >= TYPE_NAMES

    def refusals(self, destinations: Iterable[str]) -> list[tuple[int, Refusal]]:
        """Each destination (digits, as the request normalised them) the policy refuses, with its index."""
        if self.allows_everything:
            return []
        found = []
        for index, destination in enumerate(destinations):
            refusal = self.refusal(destination)
            if refusal is not None:
                found.append((index, refusal))
        return found

    def refusal(self, destination: str) -> Refusal | None:
        number = split_number(destination)
        if number is None:
            return Refusal(destination, "country", "no country")
        region = phonenumbers.region_code_for_number(number)
        if self.countries is not None:
            country = region or "no country"
            if country not in self.countries:
                return Refusal(destination, "country", country)
        kind = number_kind(number, region)
        if kind not in self.number_types:
            return Refusal(destination, "number-type", kind)
        return None


def number_kind(number: PhoneNumber, region: str | None) -> str:
    """phonenumbers.number_type(number), by its name here, for a number of `region` (as
    phonenumbers.region_code_for_number gives it): the same answer, about three times faster."""
    return _kinds_of(number.country_code, region)(phonenumbers.national_significant_number(number))


class _Description:
    """One of phonenumbers' descriptions of a kind of number: its lengths, its pattern compiled once."""

    __slots__ = ("lengths", "pattern")

    def __init__(self, description: Any) -> None:
        present = description is not None and bool(description.national_number_pattern)
        # Empty: any length the region's general description allows.
        self.lengths = frozenset(description.possible_length) if present else frozenset()
        self.pattern = re.compile(description.national_number_pattern) if present else None

    def matches(self, national: str) -> bool:
        if self.pattern is None or (self.lengths and len(national) not in self.lengths):
            return False
        return self.pattern.fullmatch(national) is not None


class _Kinds:
    """phonenumbers' _number_type_helper for one region, with its patterns compiled once: it asks
    phonenumbers' regex cache for every pattern of every number, which is most of its time."""

    __slots__ = ("fixed_line", "general", "mobile", "ordered", "same_mobile_and_fixed_line")

    def __init__(self, metadata: Any) -> None:
        self.general = _Description(metadata.general_desc)
        # The kinds tried before fixed line and mobile, in phonenumbers' order.
        self.ordered = tuple(
            (NUMBER_TYPES[kind], _Description(getattr(metadata, attribute)))
            for attribute, kind in _ORDERED_KINDS
        )
        self.fixed_line = _Description(metadata.fixed_line)
        self.mobile = _Description(metadata.mobile)
        self.same_mobile_and_fixed_line = bool(metadata.same_mobile_and_fixed_line_pattern)

    def __call__(self, national: str) -> str:
        if not self.general.matches(national):
            return "unknown"
        for kind, description in self.ordered:
            if description.matches(national):
                return kind
        if self.fixed_line.matches(national):
            if self.same_mobile_and_fixed_line or self.mobile.matches(national):
                return "fixed-line-or-mobile"
            return "fixed-line"
        if not self.same_mobile_and_fixed_line and self.mobile.matches(national):
            return "mobile"
        return "unknown"


# phonenumbers' order: the first kind whose description matches is the number's.
_ORDERED_KINDS = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


@cache
def _kinds_of(calling_code: int, region: str | None) -> Callable[[str], str]:
    metadata = (
        None if region is None else PhoneMetadata.metadata_for_region_or_calling_code(calling_code, region)
    )
    if metadata is None:
        return lambda national: "unknown"
    return _Kinds(metadata)


@cache
def get_policy() -> DestinationPolicy | None:
    """The stage's policy (ALLOWED_COUNTRIES, ALLOWED_NUMBER_TYPES); None where the function has none."""
    settings = get_settings()
    if settings.allowed_countries is None and settings.allowed_number_types is None:
        return None
    return DestinationPolicy.of(
        settings.allowed_countries or (ANY_COUNTRY,),
        settings.allowed_number_types or tuple(TYPE_NAMES),
    )


def check_destinations(
    destinations: list[str], position_of: Callable[[int], int] = lambda index: index
) -> None:
    """Refuse (destination-not-allowed, before anything is sent) numbers outside the stage's policy;
    `position_of` gives where each was in the request as sent, for the errors' field names."""
    policy = get_policy()
    if policy is None:
        return
    refusals = policy.refusals(destinations)
    if not refusals:
        return
    for rule in sorted({refusal.rule for _, refusal in refusals}):
        count_by(names.METRIC_POLICY_REFUSALS, "rule", rule)
    logger.info(
        "destinations outside the policy",
        extra={"count": len(refusals), "destinations": [mask(r.destination) for _, r in refusals[:10]]},
    )
    many = "destination is" if len(refusals) == 1 else "destinations are"
    raise GatewayError(
        Failure.DESTINATION_NOT_ALLOWED,
        f"{len(refusals)} {many} outside this stage's policy; nothing was sent. errors names each and "
        "the rule it breaks.",
        errors=[refusal.field_error(position_of(index), policy) for index, refusal in refusals],
    )
