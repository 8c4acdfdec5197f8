"""SMS segments: GSM-7 or UCS-2, single or concatenated, never splitting an escape or surrogate pair."""

# Greek letters that look Latin are the subject here; where it matters which is which, they are
# written as named escapes.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.sending.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsSegments,
    count_segments,
    count_ucs2_segments,
)

# GSM 03.38, written out again as the standard's table: row = low nibble, column = high nibble
# (0x0_ to 0x7_), "␛" for the escape at 0x1B.
GSM_TABLE_COLUMNS = [
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ␛ÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
]
GREEK_CAPITALS_IN_GSM = "ΔΦΓΛΩΠΨΣΘΞ"
EMOJI = "\N{GRINNING FACE}"


def test_the_alphabet_is_the_standards_128_characters_less_the_escape() -> None:
    table = "".join(GSM_TABLE_COLUMNS)
    assert len(table) == 128
    assert set(table.replace("␛", "")) == GSM7_BASIC
    assert len(GSM7_BASIC) == 127
    assert set("\f^{}\\[~]|€") == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


# --- Known examples ---


@pytest.mark.parametrize(
    ("text", "characters", "segments", "per_segment"),
    [
        ("a" * 160, 160, 1, 160),
        ("a" * 161, 161, 2, 153),
        ("a" * 306, 306, 2, 153),
        ("a" * 307, 307, 3, 153),
        ("a" * 459, 459, 3, 153),
        ("a" * 460, 460, 4, 153),
        ("a", 1, 1, 160),
    ],
)
def test_gsm7_lengths(text: str, characters: int, segments: int, per_segment: int) -> None:
    assert count_segments(text) == SmsSegments("GSM-7", characters, segments, per_segment)


@pytest.mark.parametrize(
    ("units", "segments", "per_segment"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67)],
)
def test_ucs2_lengths(units: int, segments: int, per_segment: int) -> None:
    # Given a text of Greek lowercase letters (not in GSM-7)
    text = "α" * units
    # then it is counted in UTF-16 units, 70 to a single message and 67 to each part
    result = count_segments(text)
    assert (result.encoding, result.characters, result.segments, result.per_segment) == (
        "UCS-2",
        units,
        segments,
        per_segment,
    )


@pytest.mark.parametrize("character", sorted(GSM7_EXTENSION))
def test_extension_characters_count_double(character: str) -> None:
    assert count_segments(character).characters == 2
    assert count_segments("a" * 158 + character) == SmsSegments("GSM-7", 160, 1, 160)
    assert count_segments("a" * 159 + character) == SmsSegments("GSM-7", 161, 2, 153)


def test_euro_and_brace_count_double() -> None:
    assert count_segments("€5 {x}").characters == 2 + 1 + 1 + 2 + 1 + 2


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # Given 152 'a', then '€' at septets 153-154, then 152 'a': 306 septets, which would fit
    # two parts of 153 were the '€' split between them
    text = "a" * 152 + "€" + "a" * 152
    result = count_segments(text)
    # then the first part holds 152 septets, the '€' opens the second, and a third is needed
    assert result == SmsSegments("GSM-7", 306, 3, 153)
    # while the same length with the '€' clear of the boundary takes two
    assert count_segments("€" + "a" * 304).segments == 2


def test_152_a_and_a_euro_fill_the_first_part_exactly_up_to_the_escape() -> None:
    # 152 + 2 = 154 septets: one message on its own...
    assert count_segments("a" * 152 + "€") == SmsSegments("GSM-7", 154, 1, 160)
    # ...and in a long text, the '€' that would end on septet 154 moves to part 2.
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2  # 152 | 2 + 151 = 153
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2  # 153 | 153


def test_one_greek_lowercase_letter_switches_a_long_text_to_ucs2() -> None:
    text = "Your order has shipped. " * 6  # 144 GSM-7 septets: one segment
    assert count_segments(text).segments == 1
    result = count_segments(text + "α")
    assert result.encoding == "UCS-2"
    assert (result.characters, result.segments) == (145, 3)
    assert result.non_gsm_characters == ("α",)


def test_greek_capitals_in_the_gsm_alphabet_stay_gsm7() -> None:
    result = count_segments(GREEK_CAPITALS_IN_GSM)
    assert result == SmsSegments("GSM-7", 10, 1, 160)


@pytest.mark.parametrize(
    "character",
    [
        "\N{GREEK CAPITAL LETTER ALPHA}",
        "\N{GREEK CAPITAL LETTER BETA}",
        "\N{GREEK CAPITAL LETTER EPSILON}",
        "\N{GREEK CAPITAL LETTER KAPPA}",
        "\N{GREEK CAPITAL LETTER OMICRON}",
        "\N{GREEK CAPITAL LETTER RHO}",
        "\N{GREEK CAPITAL LETTER TAU}",
        "\N{GREEK SMALL LETTER ALPHA}",
        "\N{GREEK SMALL LETTER OMEGA}",
        "\N{GREEK SMALL LETTER ALPHA WITH TONOS}",
    ],
)
def test_greek_letters_that_look_latin_or_are_lowercase_force_ucs2(character: str) -> None:
    result = count_segments("ABC" + character)
    assert result.encoding == "UCS-2"
    assert result.non_gsm_characters == (character,)


def test_a_greek_text_names_the_characters_that_forced_ucs2() -> None:
    result = count_segments("ΓΕΙΑ ΣΑΣ, το δέμα σας")  # "hello, your parcel"
    assert result.encoding == "UCS-2"
    # The first five distinct, in order: Γ and Σ are GSM-7; the others are Greek, not Latin.
    assert result.non_gsm_characters == (
        "\N{GREEK CAPITAL LETTER EPSILON}",
        "\N{GREEK CAPITAL LETTER IOTA}",
        "\N{GREEK CAPITAL LETTER ALPHA}",
        "\N{GREEK SMALL LETTER TAU}",
        "\N{GREEK SMALL LETTER OMICRON}",
    )


@pytest.mark.parametrize(
    ("character", "encoding"),
    [
        ("¤", "GSM-7"),
        ("$", "GSM-7"),
        ("Ç", "GSM-7"),
        ("ç", "UCS-2"),
        ("`", "UCS-2"),
        ("á", "UCS-2"),
        ("e\u0301", "UCS-2"),  # é decomposed
        ("\t", "UCS-2"),
        ("\x1b", "UCS-2"),  # a bare escape is not a character of the alphabet
        ("\r\n", "GSM-7"),
    ],
)
def test_characters_at_the_alphabets_edge(character: str, encoding: str) -> None:
    assert count_segments(character).encoding == encoding


def test_emoji_count_two_units() -> None:
    result = count_segments(EMOJI)
    assert (result.encoding, result.characters, result.segments) == ("UCS-2", 2, 1)
    assert result.non_gsm_characters == (EMOJI,)
    assert count_segments(EMOJI * 35).segments == 1  # 70 units
    assert count_segments(EMOJI * 36).segments == 2  # 72 units


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    # 66 units, then an emoji at units 67-68: it opens part 2 rather than straddle.
    assert count_segments("α" * 66 + EMOJI + "α" * 66) == SmsSegments("UCS-2", 134, 3, 67, ("α", EMOJI))
    assert count_segments(EMOJI + "α" * 132).segments == 2


def test_an_empty_text_costs_nothing() -> None:
    assert count_segments("") == SmsSegments("GSM-7", 0, 0, 160)
    assert count_ucs2_segments("") == SmsSegments("UCS-2", 0, 0, 70)


def test_forced_ucs2_counts_a_gsm_text_in_utf16_units() -> None:
    assert count_ucs2_segments("a" * 71 + "€") == SmsSegments("UCS-2", 72, 2, 67)


# --- Properties ---

gsm_characters = st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION))
any_characters = gsm_characters | st.sampled_from(["α", "ά", "Ω", "Ε", EMOJI, "\U0001f1ec", "ç", "中"])
gsm_texts = st.text(gsm_characters, max_size=800)
mixed_texts = st.text(any_characters, max_size=800)


def _reference_segments(text: str) -> SmsSegments:
    """The same count by another road: the stream of units, cut every `part` units, moving the
    cut back by one wherever it would fall between an escape (or high surrogate) and its pair."""
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    stream: list[str] = []  # "lead" marks the first of a pair
    for c in text:
        pair = (c in GSM7_EXTENSION) if gsm else (ord(c) > 0xFFFF)
        stream += ["lead", "tail"] if pair else ["unit"]
    single, part = (160, 153) if gsm else (70, 67)
    if len(stream) <= single:
        return SmsSegments("GSM-7" if gsm else "UCS-2", len(stream), 1 if stream else 0, single)
    start, parts = 0, 0
    while start < len(stream):
        end = start + part
        if end < len(stream) and stream[end - 1] == "lead":
            end -= 1
        start, parts = end, parts + 1
    return SmsSegments("GSM-7" if gsm else "UCS-2", len(stream), parts, part)


@given(mixed_texts)
@example("a" * 152 + "€" + "a" * 152)
@example("α" * 66 + EMOJI + "α" * 66)
def test_the_count_agrees_with_a_reference_that_cuts_the_unit_stream(text: str) -> None:
    result = count_segments(text)
    expected = _reference_segments(text)
    assert (result.encoding, result.characters, result.segments, result.per_segment) == (
        expected.encoding,
        expected.characters,
        expected.segments,
        expected.per_segment,
    )


@given(mixed_texts, st.data())
def test_a_longer_text_never_costs_fewer_segments(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    assert count_segments(text[:cut]).segments <= count_segments(text).segments


@given(gsm_texts)
def test_gsm7_never_costs_more_than_the_same_text_in_ucs2(text: str) -> None:
    as_gsm = count_segments(text)
    assert as_gsm.encoding == "GSM-7"
    assert as_gsm.segments <= count_ucs2_segments(text).segments


@given(mixed_texts)
def test_the_segments_hold_the_characters_with_at_most_one_unit_lost_per_part(text: str) -> None:
    result = count_segments(text)
    assert result.characters <= result.segments * result.per_segment
    if result.segments > 1:
        assert result.characters > (result.segments - 1) * (result.per_segment - 1)
    assert (result.segments == 0) == (text == "")


@given(mixed_texts)
def test_ucs2_exactly_when_a_character_is_outside_gsm7(text: str) -> None:
    result = count_segments(text)
    outside = [c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION]
    assert (result.encoding == "UCS-2") == bool(outside)
    assert result.non_gsm_characters == tuple(dict.fromkeys(outside))[:5]
    if result.encoding == "UCS-2":
        assert result.characters == len(text.encode("utf-16-le")) // 2
