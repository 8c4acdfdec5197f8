"""The provider's error codes and its SendIM validation rules, checked in its order."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

# Messages as listed in shared/provider/LIVEALL.md; 56 uses the wording of the
# provider's own example response.
ERROR_MESSAGES: Final[dict[int, str]] = {
    0: "No error",
    1: "Empty sender id",
    2: "Invalid sender id",
    3: "Unauthorized numeric sender id",
    4: "Alphanumeric sender id too long",
    5: "Numeric sender id too long",
    6: "Internal error: no SMS type",
    7: "Internal error: no SMS text",
    8: "Internal error",
    9: "Illegal sender id",
    10: "SMS text empty",
    11: "SMS text too long",
    12: "No destination numbers",
    13: "Invalid destination number",
    14: "Invalid Greek number",
    15: "Invalid Cypriot number",
    16: "Invalid Italian number",
    17: "Buffered batch head not found",
    18: "Insufficient balance",
    19: "Internal error: buffered batch not found",
    20: "Invalid batch id",
    21: "Error creating SMS log file",
    22: "Error blacklisting",
    23: "Error getting contacts",
    24: "No contact to delete",
    25: "Record already exists",
    26: "Record does not exist",
    27: "Record changed from another session",
    **dict.fromkeys(range(28, 32), "Phonebook error"),
    32: "Empty account settings",
    33: "Invalid import file",
    34: "Insufficient or invalid parameter data",
    35: "Error importing contacts",
    36: "Duplicate cell found",
    37: "Not enough credit for HLR query",
    38: "Error submitting HLR",
    39: "API token not provided",
    40: "API token mismatch",
    41: "Invalid scheduled send-out date",
    42: "smsids parameter invalid",
    43: "No submitted SMS found",
    44: "Invalid API token",
    **dict.fromkeys(range(45, 49), "Voucher error"),
    49: "Data not found",
    50: "Token belongs to another master account",
    51: "Sub-account already assigned",
    52: "Sender id too short",
    53: "Error creating file",
    54: "Viber text empty",
    55: "Viber text too long",
    56: "Sender id for IM is not approved",
    57: "Viber image invalid",
    58: "Viber action invalid",
    59: "Empty or invalid parameters",
    60: "Data verification error",
    61: "Numeric injection in sender id detected",
    62: "SMS form error",
    63: "SMS form error",
}

# SMSErrorType: which part of the request was at fault (1 sender id, 2 text,
# 3 destination, 4 other). 56 is 4 in the provider's own example.
_SENDER_CODES: Final = frozenset({1, 2, 3, 4, 5, 9, 52, 61})
_TEXT_CODES: Final = frozenset({7, 10, 11, 54, 55})
_DESTINATION_CODES: Final = frozenset({12, 13, 14, 15, 16})

IM_TYPES: Final = frozenset({"IM", "IM_SMSFB"})
VIBER_TEXT_MAX_LENGTH: Final = 1000
SENDER_ID_MAX_LENGTH: Final = 11
# Numeric sender ids have their own limits (codes 5 "numeric sender id too long" and 52 "sender
# id too short"): GSM numeric originators, 4 to 16 ASCII digits.
NUMERIC_SENDER_ID_LENGTHS: Final = range(4, 17)
_SENDER_ID_CHARS: Final = re.compile(r"[A-Za-z0-9\-.!#%&()<> ]+")
_DIGITS: Final = re.compile(r"[0-9]+")  # str.isdigit() would also accept non-ASCII digits
DESTINATION_LENGTHS: Final = range(10, 16)
KNOWN_FIELDS: Final = frozenset(
    {
        "apitoken",
        "im_type",
        "im_sender_name",
        "im_text",
        "destinations",
        "im_image_urls",
        "im_actions",
        "senderid",
        "sms_text",
        "pricecat",
    }
)


def error_message(code: int) -> str:
    """The provider's message for an error code."""
    return ERROR_MESSAGES.get(code, "Unknown error")


def error_type(code: int) -> int:
    """The SMSErrorType the provider reports with an error code."""
    if code in _SENDER_CODES:
        return 1
    if code in _TEXT_CODES:
        return 2
    if code in _DESTINATION_CODES:
        return 3
    return 4


@dataclass(frozen=True)
class Rejection:
    """Why the provider refuses a request: an errorCode and its valueOfError."""

    code: int
    value: str = ""

    def to_response(self) -> dict[str, Any]:
        """The provider's `success: false` JSON answer for this rejection."""
        return {
            "success": False,
            "OperationErrors": [
                {
                    "errorCode": self.code,
                    "errorMessage": error_message(self.code),
                    "SMSErrorType": error_type(self.code),
                    "valueOfError": self.value,
                }
            ],
            "SubmissionID": 0,
            "data": None,
        }


def check_send_im(
    payload: object,
    *,
    tokens: Collection[str],
    approved_senders: Collection[str] | None,
    balance: float,
) -> Rejection | None:
    """Apply the SendIM rules in the provider's order; None means the request is accepted."""
    if not isinstance(payload, dict):
        return Rejection(34)
    token = payload.get("apitoken")
    if token is None or token == "":
        return Rejection(39)
    if not isinstance(token, str) or token not in tokens:
        return Rejection(44)  # valueOfError stays empty: the token is never echoed
    if balance <= 0:
        return Rejection(18)
    checks: tuple[Callable[[dict[str, Any]], Rejection | None], ...] = (
        _check_im_type,
        lambda p: _check_sender_name(p, approved_senders),
        _check_text,
        _check_destinations,
        _check_images,
        _check_actions,
        _check_fallback,
        _check_pricecat,
        _check_fields,
    )
    for check in checks:
        rejection = check(payload)
        if rejection is not None:
            return rejection
    return None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_im_type(payload: dict[str, Any]) -> Rejection | None:
    im_type = payload.get("im_type")
    if im_type not in IM_TYPES:
        return Rejection(59, im_type if isinstance(im_type, str) else "im_type")
    return None


def _check_sender_name(payload: dict[str, Any], approved: Collection[str] | None) -> Rejection | None:
    name = payload.get("im_sender_name")
    if _blank(name):
        return Rejection(1)
    if not isinstance(name, str):
        return Rejection(59, "im_sender_name")
    if approved is not None and name not in approved:
        return Rejection(56, name)
    return None


def _check_text(payload: dict[str, Any]) -> Rejection | None:
    text = payload.get("im_text")
    if _blank(text):
        return Rejection(54)
    if not isinstance(text, str):
        return Rejection(59, "im_text")
    if len(text) > VIBER_TEXT_MAX_LENGTH:
        return Rejection(55)
    return None


def _check_destinations(payload: dict[str, Any]) -> Rejection | None:
    destinations = payload.get("destinations")
    if destinations is None or destinations == []:
        return Rejection(12)
    if not isinstance(destinations, list):
        return Rejection(59, "destinations")
    for destination in destinations:
        if (
            not isinstance(destination, str)
            or not _DIGITS.fullmatch(destination)
            or destination.startswith("0")
            or len(destination) not in DESTINATION_LENGTHS
        ):
            return Rejection(13, str(destination))
        # Greek mobiles only: 30 69x xxx xxxx.
        if destination.startswith("30") and not (destination.startswith("3069") and len(destination) == 12):
            return Rejection(14, destination)
    return None


def _is_web_url(value: object) -> bool:
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_images(payload: dict[str, Any]) -> Rejection | None:
    urls = payload.get("im_image_urls")
    if urls is None:
        return None
    if not isinstance(urls, list) or len(urls) > 1:
        return Rejection(57)
    for url in urls:
        if not _is_web_url(url):
            return Rejection(57, str(url))
    return None


def _check_actions(payload: dict[str, Any]) -> Rejection | None:
    actions = payload.get("im_actions")
    if actions is None:
        return None
    if not isinstance(actions, list) or len(actions) > 1:
        return Rejection(58)
    for action in actions:
        if not isinstance(action, dict) or _blank(action.get("caption")) or _blank(action.get("url")):
            return Rejection(58)
        if not isinstance(action["caption"], str) or not isinstance(action["url"], str):
            return Rejection(58)
    return None


def _check_fallback(payload: dict[str, Any]) -> Rejection | None:
    if payload.get("im_type") != "IM_SMSFB":
        return None
    sender_id = payload.get("senderid")
    if _blank(sender_id):
        return Rejection(1)
    if not isinstance(sender_id, str):
        return Rejection(59, "senderid")
    if _DIGITS.fullmatch(sender_id):
        if len(sender_id) > NUMERIC_SENDER_ID_LENGTHS[-1]:
            return Rejection(5, sender_id)
        if len(sender_id) < NUMERIC_SENDER_ID_LENGTHS[0]:
            return Rejection(52, sender_id)
    elif len(sender_id) > SENDER_ID_MAX_LENGTH:
        return Rejection(4, sender_id)
    if not _SENDER_ID_CHARS.fullmatch(sender_id):
        return Rejection(2, sender_id)
    sms_text = payload.get("sms_text")
    if _blank(sms_text):
        return Rejection(10)
    if not isinstance(sms_text, str):
        return Rejection(59, "sms_text")
    return None


def _check_pricecat(payload: dict[str, Any]) -> Rejection | None:
    pricecat = payload.get("pricecat")
    if pricecat is None:
        return None
    if isinstance(pricecat, bool) or not isinstance(pricecat, int) or pricecat not in (0, 1):
        return Rejection(59, str(pricecat))
    return None


def _check_fields(payload: dict[str, Any]) -> Rejection | None:
    unknown = sorted(set(payload) - KNOWN_FIELDS)
    if unknown:
        return Rejection(59, unknown[0])
    return None
