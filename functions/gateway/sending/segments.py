"""How many SMS segments a fallback text costs: GSM-7 where it can be, else UCS-2.

Pure: no I/O, standard library only. The GSM 03.38 default alphabet and its
extension table only; national language shift tables (Turkish, Portuguese, ...)
are not used, since nothing says the provider's SMSC would use them.

The text is counted as given: a letter written decomposed (`e` + U+0301 rather
than `é`) is not GSM-7, and the Greek capitals that look Latin (alpha, beta,
epsilon, ...) are other code points than A, B, E: they force UCS-2 unless the
caller transliterates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from gateway.sending.request import SendRequest

# GSM 03.38 default alphabet, in code order 0x00-0x7F, without 0x1B (the escape to the extension
# table, never a character of its own). The Greek capitals in it are those unlike any Latin letter.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)  # fmt: skip
# The extension table: each is sent as the escape plus one septet, so it counts 2.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160  # septets in a message of one segment
GSM7_PART = 153  # septets in each part of a longer one (7 go to the concatenation header)
UCS2_SINGLE = 70  # UTF-16 code units
UCS2_PART = 67
NON_GSM_SHOWN = 5  # how many of the characters that forced UCS-2 are named


@dataclass(frozen=True, slots=True)
class SmsSegments:
    encoding: Literal["GSM-7", "UCS-2"]
    # The length as the SMS counts it: septets for GSM-7 (an extension character is 2),
    # UTF-16 code units for UCS-2 (a character beyond the BMP, like most emoji, is 2).
    characters: int
    segments: int
    per_segment: int  # 160 or 153 (GSM-7), 70 or 67 (UCS-2): single message or concatenated parts
    # The first few distinct characters that forced UCS-2, in order of appearance, so a caller
    # can be told which; empty for GSM-7.
    non_gsm_characters: tuple[str, ...] = ()


def count_segments(text: str) -> SmsSegments:
    """What `text` costs as an SMS: GSM-7 if every character is in it, else UCS-2.

    An empty text is 0 characters and 0 segments: nothing would be sent (an empty
    SMS is refused anyway), so nothing is charged.
    """
    non_gsm = _non_gsm_characters(text)
    if non_gsm:
        return _pack("UCS-2", _utf16_units(text), UCS2_SINGLE, UCS2_PART, non_gsm)
    septets = [2 if character in GSM7_EXTENSION else 1 for character in text]
    return _pack("GSM-7", septets, GSM7_SINGLE, GSM7_PART, ())


def count_ucs2_segments(text: str) -> SmsSegments:
    """What `text` costs sent as UCS-2 even where GSM-7 would do (as some senders force)."""
    return _pack("UCS-2", _utf16_units(text), UCS2_SINGLE, UCS2_PART, _non_gsm_characters(text))


def _utf16_units(text: str) -> list[int]:
    # A character beyond the BMP is a surrogate pair: two units that never go in different parts.
    return [2 if ord(character) > 0xFFFF else 1 for character in text]


def _non_gsm_characters(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for character in text:
        if character not in GSM7_BASIC and character not in GSM7_EXTENSION and character not in found:
            found.append(character)
            if len(found) == NON_GSM_SHOWN:
                break
    return tuple(found)


def _pack(
    encoding: Literal["GSM-7", "UCS-2"],
    costs: list[int],
    single: int,
    part: int,
    non_gsm: tuple[str, ...],
) -> SmsSegments:
    """Segments for characters costing 1 or 2 units each; a 2-unit character is never split."""
    total = sum(costs)
    if total <= single:
        return SmsSegments(encoding, total, 1 if total else 0, single, non_gsm)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:  # so a part may hold one unit less than it could
            parts, used = parts + 1, 0
        used += cost
    return SmsSegments(encoding, total, parts, part, non_gsm)


def fallback_sms(request: SendRequest) -> dict[str, Any] | None:
    """The fallback SMS's encoding, length and segments (per destination that falls back); None for IM."""
    if request.im_type != "IM_SMSFB" or request.sms_text is None:
        return None
    segments = count_segments(request.sms_text)
    return {
        "encoding": segments.encoding,
        "characters": segments.characters,
        "segments": segments.segments,
        "characters_per_segment": segments.per_segment,
        "non_gsm_characters": list(segments.non_gsm_characters),
    }
