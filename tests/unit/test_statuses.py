"""GetSMSStatus: every documented status code's meaning, and the reading of status answers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.provider.statuses import (
    STATUS_CODES,
    Channel,
    ProviderAnswerError,
    State,
    StatusMeaning,
    StatusRecord,
    parse_provider_error,
    parse_status_answer,
    status_meaning,
)

Q, S, D, SEEN = State.QUEUED, State.SENT, State.DELIVERED, State.SEEN
UND, EXP, REJ, FAIL, UNK = State.UNDELIVERED, State.EXPIRED, State.REJECTED, State.FAILED, State.UNKNOWN
SMS, VIBER = Channel.SMS, Channel.VIBER

# The table from LIVEALL.md and the brief, written out again here rather than derived from the code.
DOCUMENTED = [
    (100001, "sent", S, SMS, False),
    (100002, "queued at SMSC", Q, SMS, False),
    (100003, "undelivered", UND, SMS, True),
    (100004, "not delivered by SMSC", REJ, SMS, True),
    (100005, "error", FAIL, SMS, True),
    (100006, "awaiting HLR", Q, SMS, False),
    (100007, "queued", Q, SMS, False),
    (100008, "temporarily unavailable", S, SMS, False),
    (100009, "HLR sent", Q, SMS, False),
    (100010, "HLR completed", Q, SMS, False),
    (200000, "delivered", D, SMS, True),
    (300000, "undefined", UNK, VIBER, False),
    (300001, "accepted", Q, VIBER, False),
    (300002, "delivered", D, VIBER, False),
    (300003, "expired", EXP, VIBER, True),
    (300004, "deleted", FAIL, VIBER, True),
    (300005, "undelivered", UND, VIBER, True),
    (300006, "rejected", REJ, VIBER, True),
    (300007, "unknown", UNK, VIBER, False),
    (300008, "seen", SEEN, VIBER, True),
    (300009, "sent", S, VIBER, False),
    (300010, "not yet sent", Q, VIBER, False),
    (300011, "open", SEEN, VIBER, True),
]
VIBER_FAILURES_THE_SMS_FOLLOWS = {300003, 300005, 300006}
UNKNOWN = StatusMeaning(State.UNKNOWN, Channel.UNKNOWN, final=False)
NETWORK_FAILURE = StatusMeaning(State.UNDELIVERED, Channel.SMS, final=True)

EXAMPLE = "20817547:1465021934:1465021977:306912456789:200000:Delivered:1:0.0379"
EXAMPLE_RECORD = StatusRecord(
    smsid="20817547",
    submitted_at=datetime(2016, 6, 4, 6, 32, 14, tzinfo=UTC),
    updated_at=datetime(2016, 6, 4, 6, 32, 57, tzinfo=UTC),
    destination="306912456789",
    code=200000,
    text="Delivered",
    sms_count=1,
    charge=Decimal("0.0379"),
)
TOKEN = "7e57c0ffee0000deadbeef00aa11bb22cc33dd44"


# --- The status vocabulary ---


def test_the_table_holds_every_documented_code_and_nothing_else() -> None:
    assert set(STATUS_CODES) == {row[0] for row in DOCUMENTED}
    assert all(STATUS_CODES[code].code == code for code in STATUS_CODES)


@pytest.mark.parametrize(("code", "text", "state", "channel", "final"), DOCUMENTED)
def test_each_documented_code_has_its_text_and_meaning_for_a_viber_only_message(
    code: int, text: str, state: State, channel: Channel, final: bool
) -> None:
    # Given a documented code, when it is looked up for an IM message
    meaning = status_meaning(code, sms_fallback=False)
    # then it has the meaning the table gives, and the table keeps the provider's text
    assert meaning == StatusMeaning(state, channel, final)
    assert STATUS_CODES[code].text == text
    assert STATUS_CODES[code].meaning == meaning


@pytest.mark.parametrize("code", sorted(VIBER_FAILURES_THE_SMS_FOLLOWS))
def test_a_viber_failure_is_not_final_when_an_sms_may_follow(code: int) -> None:
    without = status_meaning(code, sms_fallback=False)
    with_fallback = status_meaning(code, sms_fallback=True)
    assert without.final
    assert not with_fallback.final
    # Only finality changes: it still says what happened on Viber.
    assert (with_fallback.state, with_fallback.channel) == (without.state, without.channel)


@pytest.mark.parametrize("code", sorted(set(STATUS_CODES) - VIBER_FAILURES_THE_SMS_FOLLOWS))
def test_the_fallback_changes_nothing_else(code: int) -> None:
    assert status_meaning(code, sms_fallback=True) == status_meaning(code, sms_fallback=False)


def test_a_deleted_viber_message_stays_final_with_a_fallback() -> None:
    assert status_meaning(300004, sms_fallback=True) == StatusMeaning(FAIL, VIBER, final=True)


@pytest.mark.parametrize("code", [1, 6, 27, 1234, 99999])
@pytest.mark.parametrize("sms_fallback", [False, True])
def test_extended_network_codes_are_a_final_sms_failure(code: int, sms_fallback: bool) -> None:
    assert status_meaning(code, sms_fallback=sms_fallback) == NETWORK_FAILURE


@pytest.mark.parametrize("code", [None, 0, -1, 100000, 100011, 199999, 200001, 299999, 300012, 10**12])
@pytest.mark.parametrize("sms_fallback", [False, True])
def test_undocumented_codes_and_none_are_unknown_and_not_final(code: int | None, sms_fallback: bool) -> None:
    assert status_meaning(code, sms_fallback=sms_fallback) == UNKNOWN


@given(code=st.one_of(st.none(), st.integers()), sms_fallback=st.booleans())
def test_any_code_has_a_meaning_and_never_raises(code: int | None, sms_fallback: bool) -> None:
    meaning = status_meaning(code, sms_fallback=sms_fallback)
    assert isinstance(meaning, StatusMeaning)
    if code is None or (code not in STATUS_CODES and not 0 < code < 100000):
        assert meaning == UNKNOWN


def test_states_and_channels_are_their_lowercase_names() -> None:
    assert [str(s) for s in State] == [
        "queued", "sent", "delivered", "seen", "undelivered", "expired", "rejected", "failed", "unknown",
    ]  # fmt: skip
    assert [str(c) for c in Channel] == ["viber", "sms", "unknown"]


# --- Error answers ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Error: 44 - Invalid API token", (44, "Invalid API token")),
        ("  Error: 44 - Invalid API token\r\n", (44, "Invalid API token")),
        ("Error:44-x", (44, "x")),
        ("Error: 43", (43, "")),
        ("Error: 43 -", (43, "")),
        ("Error: 43 - ", (43, "")),
        ("ERROR: 8 - internal", (8, "internal")),
        ("Error: 59 - Empty - or invalid parameters", (59, "Empty - or invalid parameters")),
        ("Error: 59 Empty parameters", (59, "Empty parameters")),
        ("Error: 8 - line one\r\nline two", (8, "line one line two")),
    ],
)
def test_provider_errors_are_recognised(text: str, expected: tuple[int, str]) -> None:
    assert parse_provider_error(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Error",
        "Error:",
        "Error: - no code",
        "Error: 4x4 - bad",
        "Error: -3 - negative",
        "Error: \u0664\u0664 - not ASCII digits",
        "Error: 1234567890 - ten digits",
        "Failure: 4",
        "The error: 44 - x",
        EXAMPLE,
        "OK Balance:1|SmsRemainCount:1|LCSmsRemainCount:1",
    ],
)
def test_other_text_is_not_a_provider_error(text: str) -> None:
    assert parse_provider_error(text) is None


def test_a_provider_message_is_shortened_and_a_token_in_it_masked() -> None:
    code, message = parse_provider_error(f"Error: 44 - token {TOKEN} is invalid {'x' * 1000}") or (0, "")
    assert code == 44
    assert TOKEN not in message
    assert message.startswith("token [masked] is invalid")
    assert len(message) < 250


def test_an_error_answer_raises_with_the_providers_code_and_message() -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_status_answer(b"Error: 42 - smsids parameter invalid\r\n")
    assert (caught.value.code, caught.value.message) == (42, "smsids parameter invalid")
    assert "42" in str(caught.value)


# --- Status answers ---


def test_the_documented_example_is_read_field_by_field() -> None:
    assert parse_status_answer(EXAMPLE) == [EXAMPLE_RECORD]
    assert EXAMPLE_RECORD.submitted_at is not None
    assert EXAMPLE_RECORD.submitted_at.tzinfo is UTC


def test_bytes_and_text_read_the_same() -> None:
    assert parse_status_answer(EXAMPLE.encode()) == parse_status_answer(EXAMPLE)


def test_several_records_come_back_in_the_providers_order_with_repeats() -> None:
    second = "20817548:1465021934::306987654321:300001:Accepted::"
    answer = f"{EXAMPLE}|{second}|{EXAMPLE}"
    records = parse_status_answer(answer)
    assert [r.smsid for r in records] == ["20817547", "20817548", "20817547"]
    assert records[1] == StatusRecord("20817548", EXAMPLE_RECORD.submitted_at, None, "306987654321",
                                      300001, "Accepted", None, None)  # fmt: skip


@pytest.mark.parametrize(
    "answer",
    [
        f"{EXAMPLE}|",
        f"{EXAMPLE}|\r\n",
        f"  {EXAMPLE}  ",
        f"\r\n{EXAMPLE}\r\n",
        f"\ufeff{EXAMPLE}",
        f"{EXAMPLE} | ",
        f"|{EXAMPLE}||",
    ],
)
def test_whitespace_crlf_byte_order_mark_and_blank_records_are_tolerated(answer: str) -> None:
    assert parse_status_answer(answer) == [EXAMPLE_RECORD]
    assert parse_status_answer(answer.encode()) == [EXAMPLE_RECORD]


def test_spaces_around_fields_are_tolerated() -> None:
    spaced = " 20817547 : 1465021934 : 1465021977 : 306912456789 : 200000 : Delivered : 1 : 0.0379 "
    assert parse_status_answer(spaced) == [EXAMPLE_RECORD]


def test_records_on_separate_lines_are_read_as_separate_records() -> None:
    # Without this a record after a line break would be swallowed into the status text.
    records = parse_status_answer(f"{EXAMPLE}\r\n{EXAMPLE.replace('20817547', '20817548')}\r\n")
    assert [r.smsid for r in records] == ["20817547", "20817548"]
    assert all(r.text == "Delivered" for r in records)


@pytest.mark.parametrize(
    ("status_text", "expected"),
    [
        ("Failed: absent subscriber", "Failed: absent subscriber"),
        ("a:b:c", "a:b:c"),
        ("", ""),
        ("Delivered at 12:30:01", "Delivered at 12:30:01"),
    ],
)
def test_a_status_text_holding_colons_is_kept_whole(status_text: str, expected: str) -> None:
    answer = f"20817547:1465021934:1465021977:306912456789:27:{status_text}:1:0.0379"
    [record] = parse_status_answer(answer)
    assert record.text == expected
    assert (record.code, record.sms_count, record.charge) == (27, 1, Decimal("0.0379"))


def test_empty_numeric_fields_are_none() -> None:
    [record] = parse_status_answer("20817547:::::::")
    assert record == StatusRecord("20817547", None, None, "", None, "", None, None)


def test_a_zero_time_is_none_rather_than_1970() -> None:
    [record] = parse_status_answer("20817547:1465021934:0:306912456789:300001:Accepted:1:0")
    assert record.updated_at is None
    assert record.charge == Decimal(0)


def test_a_charge_keeps_its_exact_decimal_value() -> None:
    [record] = parse_status_answer("1:1465021934:1465021977:306912456789:200000:Delivered:3:0.1137")
    assert record.charge == Decimal("0.1137")
    assert isinstance(record.charge, Decimal)


MALFORMED = [
    ("HTML", b"<html><body>500 Internal Server Error</body></html>", "HTML"),
    ("HTML after whitespace", b"\r\n  <!DOCTYPE html>", "HTML"),
    ("truncated record", EXAMPLE[:40].encode(), "fields"),
    ("one field missing", EXAMPLE.rsplit(":", 1)[0].encode(), "7 of 8 fields"),
    ("truncated second record", f"{EXAMPLE}|20817548:1465021934:146".encode(), "record 2"),
    ("non-numeric smsid", EXAMPLE.replace("20817547", "2081754x").encode(), "smsid"),
    ("empty smsid", EXAMPLE.replace("20817547", "").encode(), "smsid"),
    ("non-numeric time", EXAMPLE.replace("1465021934", "yesterday").encode(), "whole number"),
    ("negative time", EXAMPLE.replace("1465021934", "-5").encode(), "whole number"),
    ("time out of range", EXAMPLE.replace("1465021934", "9" * 15).encode(), "out of range"),
    ("huge number", EXAMPLE.replace("1465021934", "9" * 5000).encode(), "too large"),
    ("non-numeric destination", EXAMPLE.replace("306912456789", "+30691245678x").encode(), "destination"),
    ("non-numeric status code", EXAMPLE.replace("200000", "OK").encode(), "whole number"),
    ("non-numeric count", EXAMPLE.replace(":1:", ":one:").encode(), "whole number"),
    ("comma in charge", EXAMPLE.replace("0.0379", "0,0379").encode(), "amount"),
    ("not a number charge", EXAMPLE.replace("0.0379", "NaN").encode(), "amount"),
    ("not UTF-8", EXAMPLE.encode() + b"\xff\xfe", "UTF-8"),
    ("Latin-1 status text", EXAMPLE.replace("Delivered", "Παραδόθηκε").encode("iso-8859-7"), "UTF-8"),
    ("error without code", b"Error: something broke", "without an error code"),
    ("unrelated text", b"Service temporarily unavailable", "fields"),
]


@pytest.mark.parametrize(
    "body", [b"", b" \r\n ", b"|||", b" | \r\n|"], ids=["empty", "blank", "bars", "both"]
)
def test_an_answer_without_records_means_liveall_knows_none_of_the_ids(body: bytes) -> None:
    # LiveAll leaves out the ids it does not know: none known is an answer with no record
    assert parse_status_answer(body) == []


@pytest.mark.parametrize(("body", "why"), [(b, w) for _, b, w in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_a_malformed_answer_raises_without_a_provider_code(body: bytes, why: str) -> None:
    with pytest.raises(ProviderAnswerError) as caught:
        parse_status_answer(body)
    assert caught.value.code is None
    assert why in caught.value.message


def test_one_bad_record_fails_the_whole_answer() -> None:
    # Given nine good records and one cut short in the middle
    good = [EXAMPLE.replace("20817547", str(20817547 + i)) for i in range(10)]
    good[5] = good[5][:30]
    # when the answer is read, then nothing is returned: a cut answer is not trusted
    with pytest.raises(ProviderAnswerError, match="record 6"):
        parse_status_answer("|".join(good))


def test_an_error_message_quotes_only_a_short_excerpt_and_masks_a_token() -> None:
    body = f"<html>{TOKEN} {'x' * 10_000}</html>"
    with pytest.raises(ProviderAnswerError) as caught:
        parse_status_answer(body)
    assert TOKEN not in caught.value.message
    assert TOKEN not in str(caught.value)
    assert len(caught.value.message) < 200


records = st.builds(
    StatusRecord,
    smsid=st.integers(min_value=0, max_value=10**12).map(str),
    submitted_at=st.none() | st.integers(1, 2**33).map(lambda s: datetime.fromtimestamp(s, tz=UTC)),
    updated_at=st.none() | st.integers(1, 2**33).map(lambda s: datetime.fromtimestamp(s, tz=UTC)),
    destination=st.from_regex(r"[0-9]{0,15}", fullmatch=True),
    code=st.none() | st.integers(min_value=0, max_value=999_999),
    # Any text without a record separator; ':' and inner spaces must survive, the ends are stripped.
    text=st.text(st.characters(exclude_characters="|\r\n", exclude_categories=["Cs"])).map(str.strip),
    sms_count=st.none() | st.integers(min_value=0, max_value=1000),
    charge=st.none() | st.decimals(min_value=-100, max_value=100, places=4),
)


def _format(record: StatusRecord) -> str:
    def unix(at: datetime | None) -> str:
        return "" if at is None else str(int(at.timestamp()))

    def plain(value: object) -> str:
        return "" if value is None else str(value)

    return ":".join(
        [record.smsid, unix(record.submitted_at), unix(record.updated_at), record.destination,
         plain(record.code), record.text, plain(record.sms_count), plain(record.charge)]
    )  # fmt: skip


@given(st.lists(records, min_size=1, max_size=20), st.sampled_from(["|", "|\r\n", " | "]), st.booleans())
def test_any_well_formed_answer_reads_back_exactly(
    written: list[StatusRecord], separator: str, trailing: bool
) -> None:
    body = separator.join(_format(r) for r in written) + (separator if trailing else "")
    assert parse_status_answer(body.encode()) == written


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"Error: 44")
@example(EXAMPLE.encode())
def test_any_answer_either_reads_or_raises_provider_answer_error(body: bytes) -> None:
    outcome = _read(body)
    if isinstance(outcome, ProviderAnswerError):
        assert len(outcome.message) < 400
    else:
        # No record only when there was nothing but blanks and separators
        assert outcome or not body.decode().replace("|", "").strip()
        assert all(isinstance(r, StatusRecord) for r in outcome)


def _read(body: bytes) -> list[StatusRecord] | ProviderAnswerError:
    try:
        return parse_status_answer(body)
    except ProviderAnswerError as error:
        return error
