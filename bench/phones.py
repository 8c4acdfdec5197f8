"""Distinct, valid Greek mobile numbers (3069XXXXXXXX), as many as a benchmark needs."""

from __future__ import annotations

import random

import phonenumbers

GREEK_MOBILE_PREFIX = "3069"
SUBSCRIBER_DIGITS = 8


def greek_mobiles(count: int, *, seed: int = 6) -> list[str]:
    """`count` distinct numbers that phonenumbers calls valid; the same list for the same seed."""
    generator = random.Random(seed)  # noqa: S311 - test data, not cryptography
    numbers: dict[str, None] = {}  # insertion-ordered set
    while len(numbers) < count:
        number = f"{GREEK_MOBILE_PREFIX}{generator.randrange(10**SUBSCRIBER_DIGITS):0{SUBSCRIBER_DIGITS}d}"
        if number not in numbers and phonenumbers.is_valid_number(phonenumbers.parse("+" + number)):
            numbers[number] = None
    return list(numbers)
