"""What a message forwarded to LiveAll must look like, checked independently of the gateway's own rules."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_URL = re.compile(r"https://[^\s\\/]+/[^\s\\]*")
_SENDER_ID = re.compile(r"[A-Za-z0-9\-.!#%&()<> ]{1,11}|[0-9]{4,16}")
_DESTINATION = re.compile(r"[1-9][0-9]{6,14}")
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})


def _visible(text: str) -> bool:
    return any(unicodedata.category(char) not in _INVISIBLE_CATEGORIES for char in text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def forwarding_problems(payload: dict[str, Any]) -> list[str]:
    """Why `payload` (a SendIM body without the token) should not have reached the provider; [] if clean."""
    problems = []
    for name in ("im_sender_name", "im_text", "sms_text"):
        value = payload.get(name)
        if value is not None and not (isinstance(value, str) and _visible(value) and _encodable(value)):
            problems.append(f"{name} {value!r} is not visible, encodable text")
    for url in payload.get("im_image_urls") or []:
        if not _URL.fullmatch(url):
            problems.append(f"image URL {url!r} is not a clean absolute https URL")
    for action in payload.get("im_actions") or []:
        if not _URL.fullmatch(action["url"]):
            problems.append(f"action URL {action['url']!r} is not a clean absolute https URL")
        if not _visible(action["caption"]):
            problems.append(f"action caption {action['caption']!r} is not visible text")
    sender_id = payload.get("senderid")
    if sender_id is not None and not (_SENDER_ID.fullmatch(sender_id) and sender_id.strip()):
        problems.append(f"senderid {sender_id!r} breaks the provider's alphabet or lengths")
    pricecat = payload.get("pricecat")
    if pricecat is not None and (type(pricecat) is not int or pricecat not in (0, 1)):
        problems.append(f"pricecat {pricecat!r} is not the integer 0 or 1")
    for destination in payload["destinations"]:
        if not _DESTINATION.fullmatch(destination):
            problems.append(f"destination {destination!r} is not international digits")
    return problems
