"""Destination numbers: from what callers type to the provider's digits-only form."""

from __future__ import annotations

import phonenumbers

# Separators people put in numbers; everything else must be a digit or a leading '+'.
_SEPARATORS = str.maketrans("", "", " -.()/\t")


class InvalidPhoneNumber(ValueError):
    """The value is not a valid international phone number."""


def normalise(raw: str) -> str:
    """Return the international number as digits only, e.g. '306912345678'.

    Accepts '+30 691 234 5678', '00306912345678' and '306912345678'. Numbers
    without a country code cannot be told apart from local ones, so they are
    refused rather than guessed.
    """
    compact = raw.translate(_SEPARATORS)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        compact = "+" + compact
    if not compact[1:].isdigit():
        raise InvalidPhoneNumber("must contain only digits, spaces and an optional leading + or 00")
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("is not an international phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("is not a valid phone number for its country code")
    # E.164 without its '+' is the provider's form (it keeps Italy's leading zero).
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def mask(number: str) -> str:
    """Mask a number for logs, keeping the country code and the last three digits."""
    digits = number.lstrip("+")
    try:
        country_code = str(phonenumbers.parse("+" + digits, None).country_code)
    except phonenumbers.NumberParseException:
        country_code = ""
    hidden = max(len(digits) - len(country_code) - 3, 0)
    return f"{country_code}{'*' * hidden}{digits[len(country_code) + hidden :]}"
