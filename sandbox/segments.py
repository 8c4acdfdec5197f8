"""How many SMS a text takes, counted the way an SMSC bills it (GSM 03.38 / 3GPP TS 23.038).

Written here rather than imported from the gateway, so the sandbox can catch the
gateway's own counting mistakes.

- GSM-7 when every character is in the default alphabet or its extension table:
  160 septets in one SMS, 153 per part of a longer one (the rest is the UDH).
  Extension characters (^ { } \\ [ ~ ] | € and form feed) are an escape plus a
  character: 2 septets, and a part never ends between the two.
- Otherwise UCS-2: 70 UTF-16 code units in one SMS, 67 per part; a character
  outside the BMP is a surrogate pair (2 units) that a part never splits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# The default alphabet without ESC (0x1B), which only introduces extension characters.
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67


def is_gsm7(text: str) -> bool:
    """Whether the text can go out in the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _parts(widths: Iterable[int], single: int, part: int) -> int:
    widths = list(widths)
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        # A character that does not fit whole starts the next part: never split it.
        if used + width > part:
            parts, used = parts + 1, 0
        used += width
    return parts


def sms_segments(text: str) -> int:
    """The number of SMS the text is sent as (1 for an empty text)."""
    if is_gsm7(text):
        return _parts((2 if ch in GSM7_EXTENSION else 1 for ch in text), GSM7_SINGLE, GSM7_PART)
    return _parts((2 if ord(ch) > 0xFFFF else 1 for ch in text), UCS2_SINGLE, UCS2_PART)
