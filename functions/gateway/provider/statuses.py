"""GetSMSStatus answers, and what each of the provider's status codes means.

Pure: no I/O, standard library only. The parsers take the raw answer body and
either return every record or raise `ProviderAnswerError`; they never return
a partial list. A status answer is one record per id asked for, so a single
bad record means the answer was cut or is not what LIVEALL.md describes, and
none of it can be trusted: the caller asks again rather than acting on half.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

_T = TypeVar("_T")


class State(StrEnum):
    """Where a message stands, whatever channel carried it."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    SEEN = "seen"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Channel(StrEnum):
    VIBER = "viber"
    SMS = "sms"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StatusMeaning:
    state: State
    channel: Channel
    final: bool  # no further change can come


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One documented status code: the provider's own text and what it means for an `IM` message."""

    code: int
    text: str
    meaning: StatusMeaning


def _code(code: int, text: str, state: State, channel: Channel, *, final: bool) -> tuple[int, StatusCode]:
    return code, StatusCode(code, text, StatusMeaning(state, channel, final))


_SMS, _VIBER = Channel.SMS, Channel.VIBER

# Every status code LIVEALL.md documents, with its meaning for an `IM` (Viber only) message.
STATUS_CODES: Mapping[int, StatusCode] = MappingProxyType(
    dict(
        [
            _code(100001, "sent", State.SENT, _SMS, final=False),
            _code(100002, "queued at SMSC", State.QUEUED, _SMS, final=False),
            _code(100003, "undelivered", State.UNDELIVERED, _SMS, final=True),
            _code(100004, "not delivered by SMSC", State.REJECTED, _SMS, final=True),
            _code(100005, "error", State.FAILED, _SMS, final=True),
            _code(100006, "awaiting HLR", State.QUEUED, _SMS, final=False),
            _code(100007, "queued", State.QUEUED, _SMS, final=False),
            # The phone is out of reach for now; the SMSC keeps trying.
            _code(100008, "temporarily unavailable", State.SENT, _SMS, final=False),
            _code(100009, "HLR sent", State.QUEUED, _SMS, final=False),
            _code(100010, "HLR completed", State.QUEUED, _SMS, final=False),
            _code(200000, "delivered", State.DELIVERED, _SMS, final=True),
            _code(300000, "undefined", State.UNKNOWN, _VIBER, final=False),
            _code(300001, "accepted", State.QUEUED, _VIBER, final=False),
            # Not final: "seen" may follow.
            _code(300002, "delivered", State.DELIVERED, _VIBER, final=False),
            _code(300003, "expired", State.EXPIRED, _VIBER, final=True),
            _code(300004, "deleted", State.FAILED, _VIBER, final=True),
            _code(300005, "undelivered", State.UNDELIVERED, _VIBER, final=True),
            _code(300006, "rejected", State.REJECTED, _VIBER, final=True),
            _code(300007, "unknown", State.UNKNOWN, _VIBER, final=False),
            _code(300008, "seen", State.SEEN, _VIBER, final=True),
            _code(300009, "sent", State.SENT, _VIBER, final=False),
            _code(300010, "not yet sent", State.QUEUED, _VIBER, final=False),
            _code(300011, "open", State.SEEN, _VIBER, final=True),
        ]
    )
)

# Viber failures after which an `IM_SMSFB` message goes on as an SMS. "Deleted" is not one of
# them: the message was withdrawn, not failed, so no SMS follows.
_VIBER_FAILURES_WITH_FALLBACK = frozenset({State.EXPIRED, State.UNDELIVERED, State.REJECTED})
# Extended network codes (absent subscriber, call barred, ...) are the reason an SMS failed.
_NETWORK_CODES = range(1, 100000)
_NETWORK_FAILURE = StatusMeaning(State.UNDELIVERED, Channel.SMS, final=True)
_UNKNOWN = StatusMeaning(State.UNKNOWN, Channel.UNKNOWN, final=False)


def status_meaning(code: int | None, *, sms_fallback: bool) -> StatusMeaning:
    """What a status code means for a message sent as `IM_SMSFB` (`sms_fallback`) or `IM`.

    Never raises: an undocumented code, 0, a negative one or None is unknown and not
    final, so whoever tracks the message keeps asking rather than settling on a guess.
    """
    if code is None:
        return _UNKNOWN
    documented = STATUS_CODES.get(code)
    if documented is not None:
        meaning = documented.meaning
        if (
            sms_fallback
            and meaning.channel is Channel.VIBER
            and meaning.state in _VIBER_FAILURES_WITH_FALLBACK
        ):
            return StatusMeaning(meaning.state, meaning.channel, final=False)
        return meaning
    if code in _NETWORK_CODES:
        return _NETWORK_FAILURE
    return _UNKNOWN


@dataclass(frozen=True, slots=True)
class StatusRecord:
    smsid: str
    submitted_at: datetime | None  # aware, UTC
    updated_at: datetime | None  # aware, UTC: when the status last changed
    destination: str
    code: int | None
    text: str
    sms_count: int | None
    charge: Decimal | None  # euros


class ProviderAnswerError(Exception):
    """The provider answered with an error, or with something that is not the documented answer.

    `code` is the provider's error code (`Error: <code> - <message>`), None when the
    answer is malformed. `message` says what was wrong, with at most a short excerpt of
    the answer, in which anything shaped like an API token is masked.
    """

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message if code is None else f"provider error {code}: {message}")
        self.code = code
        self.message = message


# --- Shared by the readers of the provider's plain-text answers (history, balance) ---

EXCERPT_LENGTH = 60
PROVIDER_MESSAGE_LENGTH = 200
# The apitoken is a long hex string; the parsers never see it, but a provider echo could hold one.
_TOKEN_LIKE = re.compile(r"[0-9A-Fa-f]{32,}")
_PROVIDER_ERROR = re.compile(r"error\s*:\s*([0-9]{1,9})(?:\s*-\s*|\s+|$)(.*)", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def mask_token_like(text: str) -> str:
    return _TOKEN_LIKE.sub("[masked]", text)


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """A short, quoted, printable excerpt of provider text, for error messages."""
    text = mask_token_like(text)
    cut = text[:limit]
    return repr(cut) + ("..." if len(text) > limit else "")


def parse_provider_error(text: str) -> tuple[int, str] | None:
    """(code, message) of an `Error: <code> - <message>` answer; None for any other text.

    Tolerates surrounding whitespace and CRLF, a missing message, and no spaces
    (`Error:44-x`). The message is collapsed to one line, shortened, and token-like
    strings in it are masked.
    """
    found = _PROVIDER_ERROR.fullmatch(text.strip())
    if found is None:
        return None
    message = _WHITESPACE.sub(" ", found.group(2)).strip()
    message = mask_token_like(message)
    if len(message) > PROVIDER_MESSAGE_LENGTH:
        message = message[:PROVIDER_MESSAGE_LENGTH] + "..."
    return int(found.group(1)), message


def decode_answer(body: bytes | str) -> str:
    """The answer as text: UTF-8 (a byte order mark is dropped), else ProviderAnswerError."""
    if isinstance(body, str):
        return body.removeprefix("\ufeff")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProviderAnswerError(
            None, f"the answer is not UTF-8 text: {excerpt(body.decode('utf-8', 'replace'))}"
        ) from None


def raise_if_not_data(text: str, what: str) -> None:
    """Raise for an `Error: ...` answer or an HTML page, which no plain-text answer ever starts with."""
    stripped = text.strip()
    if stripped[:5].lower() == "error":
        error = parse_provider_error(stripped)
        if error is None:
            raise ProviderAnswerError(None, f"an error answer without an error code: {excerpt(stripped)}")
        raise ProviderAnswerError(*error)
    if stripped.startswith("<"):
        raise ProviderAnswerError(None, f"an HTML or XML page, not {what}: {excerpt(stripped)}")


def parse_unix_time(field: str) -> datetime | None:
    """Unix seconds as an aware UTC datetime; empty or 0 (a placeholder, not 1970) is None."""
    if not field:
        return None
    seconds = parse_count(field)
    if seconds == 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time {field!r} is out of range") from None


_MAX_DIGITS = 18  # far beyond any id, time or count; keeps int() away from huge inputs


def parse_count(field: str) -> int:
    if not (field.isascii() and field.isdigit()):
        raise ValueError(f"{excerpt(field, 20)} is not a whole number")
    if len(field) > _MAX_DIGITS:
        raise ValueError(f"{excerpt(field, 20)} is too large")
    return int(field)


_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)


def parse_amount(field: str) -> Decimal:
    """A decimal amount written with a point (`0.0379`, `-3.50`); nothing else is guessed at."""
    if _AMOUNT.fullmatch(field) is None:
        raise ValueError(f"{excerpt(field, 20)} is not an amount")
    return Decimal(field)


def optional(parse_field: Callable[[str], _T], field: str) -> _T | None:
    """An empty field is None (the provider leaves out what it does not know yet)."""
    return None if field == "" else parse_field(field)


def digits(field: str, what: str) -> str:
    if not (field.isascii() and field.isdigit()):
        raise ValueError(f"{what} {excerpt(field, 20)} is not numeric")
    return field


# --- GetSMSStatus ---

# smsid:submitted_unix:last_status_unix:destination:status_code:status_text:sms_count:charge
_STATUS_FIELDS = 8
_LEFT_FIELDS = 5  # before the status text, which may itself hold ':'
_RIGHT_FIELDS = 2  # after it
# Records are joined by '|'. A line break is taken as a separator too: a status text never
# holds one, and a record split across lines must not be read as one long status text.
_RECORD_SEPARATOR = re.compile(r"[|\r\n]")


def parse_status_answer(body: bytes | str) -> list[StatusRecord]:
    """Every record of a GetSMSStatus answer, in the provider's order (repeats included).

    Blank records (a trailing `|`, surrounding whitespace) are skipped. LiveAll leaves out
    the ids it does not know, so an empty answer is none known: []. An `Error: ...` answer
    raises ProviderAnswerError(code, message). An HTML page, or any record that cannot be
    read, raises ProviderAnswerError(None, ...): one bad record fails the whole answer,
    because a cut answer cannot be trusted.

    The format has no end marker, so an answer cut inside the last record's final field
    (`0.03` of `0.0379`) still reads; a caller should check that every id it asked for
    came back, which catches a cut anywhere else.
    """
    text = decode_answer(body)
    raise_if_not_data(text, "a status answer")
    pieces = [piece.strip() for piece in _RECORD_SEPARATOR.split(text)]
    records = [piece for piece in pieces if piece]
    return [_status_record(record, index) for index, record in enumerate(records, start=1)]


def _status_record(record: str, index: int) -> StatusRecord:
    fields = record.split(":")
    if len(fields) < _STATUS_FIELDS:
        raise ProviderAnswerError(
            None,
            f"status record {index} has {len(fields)} of {_STATUS_FIELDS} fields "
            f"(cut short?): {excerpt(record)}",
        )
    smsid, submitted, updated, destination, code = (field.strip() for field in fields[:_LEFT_FIELDS])
    sms_count, charge = (field.strip() for field in fields[-_RIGHT_FIELDS:])
    # Only the text's own ends are stripped: the spaces after its colons are part of it.
    text = ":".join(fields[_LEFT_FIELDS:-_RIGHT_FIELDS]).strip()
    try:
        return StatusRecord(
            smsid=digits(smsid, "smsid"),
            submitted_at=parse_unix_time(submitted),
            updated_at=parse_unix_time(updated),
            destination=digits(destination, "destination") if destination else "",
            code=optional(parse_count, code),
            text=text,
            sms_count=optional(parse_count, sms_count),
            charge=optional(parse_amount, charge),
        )
    except ValueError as error:
        raise ProviderAnswerError(None, f"status record {index}: {error}: {excerpt(record)}") from None
