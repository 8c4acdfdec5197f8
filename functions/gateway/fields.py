"""The vocabulary of requests: the values they are made of, their rules, and how a refusal names them.

Names, texts, references, https URLs, phone numbers, instants (send_at) and send windows,
each a pydantic type that normalises then checks, with the same patterns in the OpenAPI
description; and FieldError, the field and the rule a refused value broke. The send
request (gateway.sending.request), the suppression list's requests and the settings are
made of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictStr,
    Tag,
    TypeAdapter,
    UrlConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.phone import DESTINATION_PATTERN, InvalidPhoneNumber, normalise

MAX_TEXT_LENGTH = 1000
MAX_DESTINATION_LENGTH = 32  # digits and separators: '+30 (691) 234-5678' with room to spare
MAX_NAME_LENGTH = 100  # Viber sender names and button captions: the gateway's own bound
MAX_REFERENCE_LENGTH = 256
MAX_URL_LENGTH = 2048
# An idempotency key (header, queue attribute or field): printable ASCII, as HTTP header values are.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"

# Characters that show nothing: whitespace, controls, format characters (zero-width spaces and
# joiners, bidi marks, the BOM), fillers and private use. A name or text must hold one other.
_INVISIBLE = (
    r"\s\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\ue000-\uf8ff"
)
_LINE_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # controls but tab, line feed, return
_ALL_CONTROLS = r"\x00-\x1f\x7f-\x9f"
# One visible character among allowed ones; ECMA-262 and Python read these patterns alike.
NAME_PATTERN = f"^[^{_ALL_CONTROLS}]*[^{_INVISIBLE}][^{_ALL_CONTROLS}]*$"
TEXT_PATTERN = f"^[^{_LINE_CONTROLS}]*[^{_INVISIBLE}][^{_LINE_CONTROLS}]*$"
# An absolute https URL with nothing a browser would silently strip or rewrite.
URL_PATTERN = r"^[hH][tT][tT][pP][sS]://[^\s\\/?#@]+(?:[/?#][^\s\\]*)?$"

# send_at: RFC 3339 (a date, a time and an offset; "Z" or "+02:00"). An instant without an
# offset would be read in some zone the caller did not choose.
SEND_AT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# A send window's times: 24-hour local wall-clock time, minutes.
LOCAL_TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_NAME = re.compile(NAME_PATTERN)
_SEND_AT = re.compile(SEND_AT_PATTERN)
_LOCAL_TIME = re.compile(LOCAL_TIME_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)
_URL = re.compile(URL_PATTERN)
_https_url = TypeAdapter(Annotated[AnyUrl, UrlConstraints(allowed_schemes=["https"], host_required=True)])


def _unicode(value: str) -> str:
    # A lone surrogate (JSON's "\udfff") is not a character: it cannot be sent as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "lone_surrogate", "must be Unicode text: it holds a lone surrogate, which is not a character"
        ) from None
    return value


def _matching(pattern: re.Pattern[str], error_type: str, message: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(_unicode(value)):
            raise PydanticCustomError(error_type, message)
        return value

    return check


def _https(value: str) -> str:
    """The URL as normalised (host in lower case and punycode, path escaped); it must stay clean."""
    if not _URL.fullmatch(_unicode(value)):
        raise PydanticCustomError(
            "https_url",
            "must be an absolute https:// URL without spaces, control characters or backslashes",
        )
    try:
        normalised = str(_https_url.validate_python(value))
    except ValueError:
        raise PydanticCustomError("https_url", "must be an absolute https URL with a valid host") from None
    if not _URL.fullmatch(normalised) or len(normalised) > MAX_URL_LENGTH:
        raise PydanticCustomError("https_url", "must be an absolute https URL of at most 2048 characters")
    return normalised


def _destination(value: str) -> str:
    try:
        return normalise(value)
    except InvalidPhoneNumber as error:
        raise PydanticCustomError(
            "phone_number", "'{number}' {reason}", {"number": value, "reason": str(error)}
        ) from None


def _send_at(value: Any) -> datetime:
    if not isinstance(value, str) or not _SEND_AT.fullmatch(value):
        raise PydanticCustomError(
            "send_at", "must be an RFC 3339 date and time with an offset, such as 2026-12-08T10:00:00+02:00"
        )
    text = value.upper()
    fraction = re.search(r"\.([0-9]+)", text)
    if fraction and len(fraction.group(1)) > 6:  # datetime keeps microseconds; more is noise
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError(
            "send_at", "is not a date and time that exists (check the day and month)"
        ) from None


# Names, captions and references: no controls, and a visible character.
_NAME_CHECK = AfterValidator(
    _matching(_NAME, "blank", "must not be blank: it needs a visible character, and no controls")
)
_NAME_SCHEMA: dict[str, Any] = {"pattern": NAME_PATTERN}
Name = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=_NAME_SCHEMA), _NAME_CHECK
]
Reference = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_REFERENCE_LENGTH, json_schema_extra=_NAME_SCHEMA),
    _NAME_CHECK,
]
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_TEXT_LENGTH, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(
        _matching(
            _TEXT,
            "blank",
            "must not be blank: it needs a visible character, and no controls but tab and line breaks",
        )
    ),
]
HttpsUrl = Annotated[
    StrictStr,
    Field(
        max_length=MAX_URL_LENGTH,
        json_schema_extra={"pattern": URL_PATTERN, "format": "uri"},
        examples=["https://example.com/offer.png"],
    ),
    AfterValidator(_https),
]
Destination = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_DESTINATION_LENGTH,
        json_schema_extra={"pattern": DESTINATION_PATTERN},
        examples=["+30 691 234 5678", "306912345679"],
    ),
    AfterValidator(_destination),
]
SendAt = Annotated[
    datetime,
    BeforeValidator(_send_at),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": SEND_AT_PATTERN,
            "examples": ["2026-12-08T10:00:00+02:00"],
        }
    ),
]
LocalTime = Annotated[
    StrictStr,
    Field(json_schema_extra={"pattern": LOCAL_TIME_PATTERN}, examples=["09:00"]),
    AfterValidator(
        _matching(_LOCAL_TIME, "local_time", "must be a 24-hour local time HH:MM, such as 09:00 or 21:30")
    ),
]


class SendWindow(BaseModel):
    """When messages may reach a phone, in the recipient's own time zone (taken from the number)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True, frozen=True)

    opens: LocalTime = Field(
        alias="from", description="Local time the window opens (HH:MM, 24-hour).", examples=["09:00"]
    )
    closes: LocalTime = Field(
        alias="to",
        description="Local time it closes (HH:MM); earlier than `from` for a window across midnight.",
        examples=["21:00"],
    )
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = Field(
        default=None,
        min_length=1,
        max_length=7,
        description="Days on which the window opens (local); every day if left out.",
        examples=[["mon", "tue", "wed", "thu", "fri"]],
    )

    @model_validator(mode="after")
    def _a_real_window(self) -> SendWindow:
        if self.opens == self.closes:
            raise PydanticCustomError(
                "window", "from and to must differ: the window would be empty or always open"
            )
        if self.days is not None and len(set(self.days)) != len(self.days):
            raise PydanticCustomError("window", "days must not repeat a day")
        return self

    def as_setting(self) -> dict[str, Any]:
        """The window as requests and the stage's setting write it."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _window_kind(value: Any) -> str | None:
    # A window, or exactly false (not 0, not "false"); the tag is blank so that errors read
    # "window.from", not the union's inner names.
    if isinstance(value, dict | SendWindow):
        return ""
    if value is False:
        return "off"
    return None


WindowChoice = Annotated[
    Annotated[SendWindow, Tag("")] | Annotated[Literal[False], Tag("off")],
    Discriminator(
        _window_kind,
        custom_error_type="window",
        custom_error_message="must be an object with from and to (HH:MM), or false to send at any time",
    ),
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a request: where it is and what is wrong, in words."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def describe_errors(errors: Iterable[Any], *, strip_prefix: frozenset[str] = frozenset()) -> list[FieldError]:
    """Turn pydantic error entries into field paths and sentences, without the offending input.

    `strip_prefix` names leading locations to drop, such as "body" added by the API layer.
    """
    described = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if loc and loc[0] in strip_prefix:
            loc = loc[1:]
        path = _field_path(loc)
        described.append(FieldError(path, _message(error["type"], path, error.get("msg", "is invalid"))))
    return described


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # A key may be anything a caller typed: keep it printable and short in the answer.
            part = _printable(str(part))
            if not part:  # a union's blank tag (WindowChoice): not a place in the request
                continue
            path += f".{part}" if path else part
    return path or "(body)"


def _printable(text: str, limit: int = 64) -> str:
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in shown)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _message(error_type: str, path: str, default: str) -> str:
    if error_type == "extra_forbidden":
        if path == "apitoken":
            return "must not be sent: the gateway supplies the provider token itself"
        return "is not a known field"
    if error_type == "missing":
        return "is required"
    return default
