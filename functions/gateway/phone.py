"""Destination numbers: from what callers type to the provider's digits-only form."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber

# Separators people put in numbers; everything else must be a digit or one leading '+'. The
# OpenAPI description carries the same pattern; only validity for the country it cannot say.
_SEPARATORS = str.maketrans("", "", " -.()/\t")
DESTINATION_PATTERN = r"^[ \t\-.()/]*\+?[ \t\-.()/]*[0-9][0-9 \t\-.()/]*$"
_DESTINATION = re.compile(DESTINATION_PATTERN)


class InvalidPhoneNumber(ValueError):
    """The value is not a valid international phone number."""


def normalise(raw: str) -> str:
    """Return the international number as digits only, e.g. '306912345678'.

    Accepts '+30 691 234 5678', '00306912345678' and '306912345678'. Numbers
    without a country code cannot be told apart from local ones, so they are
    refused rather than guessed.
    """
    if not _DESTINATION.fullmatch(raw):
        raise InvalidPhoneNumber(
            "must contain only digits, spaces, - . ( ) / and an optional leading + or 00"
        )
    compact = raw.translate(_SEPARATORS)
    digits = compact[2:] if compact.startswith("00") else compact.removeprefix("+")
    if not digits:
        raise InvalidPhoneNumber("is not an international phone number")
    # Fast path (bulk sends): a number already written as country code + national number needs
    # no parsing, only the validity check; anything else takes phonenumbers' full parse.
    number = _split_country_code(digits)
    if number is not None and phonenumbers.is_valid_number(number):
        return digits  # already E.164 without its '+': the number was read from exactly these digits
    number = _parse(digits)
    # E.164 without its '+' is the provider's form (it keeps Italy's leading zero).
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _split_country_code(digits: str) -> PhoneNumber | None:
    country_code_length = _country_code_length(digits)
    national = digits[country_code_length:]
    if not country_code_length or not national:
        return None
    number = PhoneNumber(country_code=int(digits[:country_code_length]), national_number=int(national))
    leading_zeros = len(national) - len(national.lstrip("0"))
    if leading_zeros:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = leading_zeros if leading_zeros > 1 else None
    return number


def _parse(digits: str) -> PhoneNumber:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("is not an international phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("is not a valid phone number for its country code")
    return number


def _country_code_length(digits: str) -> int:
    """Length of the country code at the start of `digits`, as phonenumbers reads it (1 to 3), or 0."""
    if digits.startswith("0"):
        return 0  # no country code starts with 0
    for length in (1, 2, 3):
        if int(digits[:length] or 0) in COUNTRY_CODE_TO_REGION_CODE:
            return length
    return 0


def split_number(digits: str) -> PhoneNumber | None:
    """A digits-only international number (as normalise gives) read as phonenumbers' number, or None."""
    number = _split_country_code(digits)
    if number is None and digits.isdigit():
        try:
            number = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            return None
    return number


def country_code(number: str) -> str:
    """The calling code of a digits-only international number: '30' for '306912345678' ('' if none)."""
    return number[: _country_code_length(number)]


def region(calling_code: str) -> str | None:
    """The ISO 3166 region of a calling code ('30' -> 'GR'; a shared one gives its main region), or None."""
    found = phonenumbers.region_code_for_country_code(int(calling_code)) if calling_code.isdigit() else None
    return None if found in (None, "ZZ", "001") else str(found)


def calling_code_of(country: str) -> str | None:
    """A calling code from what a caller names a country by: 'GR', 'gr', '30' or '+30'; None if neither."""
    text = country.strip().removeprefix("+")
    if text.isascii() and text.isdigit():
        return text if len(text) <= 3 and region(text) is not None else None
    code = phonenumbers.country_code_for_region(text.upper()) if text.isascii() and len(text) == 2 else 0
    return str(code) if code else None


def mask(number: str) -> str:
    """Mask a digits-only number for logs, keeping the country code and the last three digits."""
    country_code_length = _country_code_length(number)
    hidden = max(len(number) - country_code_length - 3, 0)
    return f"{number[:country_code_length]}{'*' * hidden}{number[country_code_length + hidden :]}"
