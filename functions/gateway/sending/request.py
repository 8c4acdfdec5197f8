"""The send request: the provider's SendIM fields without `apitoken`, and every rule they follow.

Each value is normalised first, then checked, and the checked value is what
the provider gets (`provider_payload`): numbers as digits only, URLs in their
normalised form. Every rule that JSON Schema can say is said in the OpenAPI
description too, from the same patterns the validators use.
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
    PlainValidator,
    PrivateAttr,
    StrictStr,
    Tag,
    TypeAdapter,
    UrlConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.phone import DESTINATION_PATTERN, InvalidPhoneNumber, normalise

MAX_TEXT_LENGTH = 1000
MAX_DESTINATIONS = 10_000
MAX_DESTINATION_LENGTH = 32  # digits and separators: '+30 (691) 234-5678' with room to spare
MAX_NAME_LENGTH = 100  # Viber sender names and button captions: the gateway's own bound
MAX_REFERENCE_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_ALPHANUMERIC_SENDER_ID = 11
# An idempotency key (header, queue attribute or field): printable ASCII, as HTTP header values are.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
NUMERIC_SENDER_ID_LENGTH = (4, 16)

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
# LIVEALL.md: at most 11 characters of this alphabet, or a numeric id (its own limit: 4 to 16
# digits here, as GSM numeric originators allow). An id of digits and spaces only is neither.
_SENDER_ALPHABET = r"A-Za-z0-9\-.!#%&()<> "
_SENDER_NON_DIGIT = r"A-Za-z\-.!#%&()<>"
NUMERIC_SENDER_ID_PATTERN = "^[0-9]{{{},{}}}$".format(*NUMERIC_SENDER_ID_LENGTH)
ALPHANUMERIC_SENDER_ID_PATTERN = f"^[{_SENDER_ALPHABET}]*[{_SENDER_NON_DIGIT}][{_SENDER_ALPHABET}]*$"
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
_NUMERIC_SENDER_ID = re.compile(NUMERIC_SENDER_ID_PATTERN)
_ALPHANUMERIC_SENDER_ID = re.compile(ALPHANUMERIC_SENDER_ID_PATTERN)
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


def _price_category(value: Any) -> int:
    # Strict: true, 1.0 and "1" are not price categories, as no other field takes look-alikes.
    if type(value) is not int or value not in (0, 1):
        raise PydanticCustomError("price_category", "must be the integer 0 or 1 (0 normal, 1 low cost)")
    return value


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
PriceCategory = Annotated[int, PlainValidator(_price_category), WithJsonSchema({"enum": [0, 1]})]
_SENDER_ID_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": NUMERIC_SENDER_ID_PATTERN},
        {
            "type": "string",
            "pattern": ALPHANUMERIC_SENDER_ID_PATTERN,
            "maxLength": MAX_ALPHANUMERIC_SENDER_ID,
        },
        {"type": "null"},
    ]
}


class Action(BaseModel):
    """A button under the Viber message that opens `url` in the phone's browser."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    caption: Name = Field(description="Text on the button.", examples=["See the offer"])
    url: HttpsUrl = Field(description="Absolute https URL the button opens (sent in its normalised form).")


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


class SendRequest(BaseModel):
    """A Viber message, optionally with SMS fallback, to one or more phones."""

    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        json_schema_extra={
            "examples": [
                {
                    "im_type": "IM",
                    "im_sender_name": "MyShop",
                    "im_text": "Your order 1042 has shipped.",
                    "destinations": ["+30 691 234 5678"],
                }
            ],
            # The fallback's fields are required for IM_SMSFB (OpenAPI 3.1 is JSON Schema 2020-12).
            "if": {"properties": {"im_type": {"const": "IM_SMSFB"}}, "required": ["im_type"]},
            "then": {
                "required": ["senderid", "sms_text"],
                "properties": {"senderid": {"type": "string"}, "sms_text": {"type": "string"}},
            },
        },
    )

    im_type: Literal["IM", "IM_SMSFB"] = Field(
        description="IM: Viber only. IM_SMSFB: Viber, or an SMS where the phone cannot get Viber."
    )
    im_sender_name: Name = Field(description="Viber sender name approved by the provider.")
    im_text: Text = Field(description="The Viber message.")
    destinations: list[Destination] = Field(
        min_length=1,
        max_length=MAX_DESTINATIONS,
        description="Mobile numbers in international form: '+30 691 234 5678', '0030...' or '30...'. "
        "They are normalised to digits only; exact duplicates are dropped.",
    )
    im_image_urls: list[HttpsUrl] | None = Field(
        default=None, max_length=1, description="At most one image, by absolute https URL."
    )
    im_actions: list[Action] | None = Field(default=None, max_length=1, description="At most one button.")
    senderid: Annotated[StrictStr | None, WithJsonSchema(_SENDER_ID_SCHEMA)] = Field(
        default=None,
        validate_default=True,
        description="SMS sender id, required for IM_SMSFB: up to 11 characters from A-Z a-z 0-9 "
        "- . ! # % & ( ) < > and space with at least one that is not a digit or space, or 4 to 16 digits.",
    )
    sms_text: Text | None = Field(
        default=None,
        validate_default=True,
        description="Fallback SMS text, required for IM_SMSFB.",
    )
    pricecat: PriceCategory | None = Field(
        default=None, description="SMS price category: 0 normal, 1 low cost."
    )
    reference: Reference | None = Field(
        default=None,
        description="Your own reference (an order or ticket id): never sent to the provider, echoed in "
        "the answer, in every status event and in status lookups of these messages.",
        examples=["order-1042"],
    )

    send_at: SendAt | None = Field(
        default=None,
        description="Send later: when (RFC 3339 with an offset), in the future and within the stage's "
        "horizon (30 days unless set otherwise). The answer is 202 with a schedule to look up or cancel.",
    )
    window: WindowChoice | None = Field(
        default=None,
        description="Send only within this window of the recipient's local time (the zone their number "
        "gives). Overrides the stage's default window; false turns that default off for this request.",
    )

    _duplicates_removed: int = PrivateAttr(default=0)

    @field_validator("senderid")
    @classmethod
    def _sender_id_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _require_for_fallback(info, "the SMS sender id")
            return None
        if value.isascii() and value.isdigit():
            if not _NUMERIC_SENDER_ID.fullmatch(value):
                low, high = NUMERIC_SENDER_ID_LENGTH
                raise PydanticCustomError(
                    "sender_id_length",
                    "a numeric sender id must have {low} to {high} digits",
                    {"low": low, "high": high},
                )
            return value
        if not _ALPHANUMERIC_SENDER_ID.fullmatch(value):
            raise PydanticCustomError(
                "sender_id_characters",
                "may only use the letters A-Z a-z, digits, space and - . ! # % & ( ) < >, "
                "with at least one that is not a digit or space",
            )
        if len(value) > MAX_ALPHANUMERIC_SENDER_ID:
            raise PydanticCustomError(
                "sender_id_length",
                "an alphanumeric sender id must have at most {limit} characters",
                {"limit": MAX_ALPHANUMERIC_SENDER_ID},
            )
        return value

    @field_validator("sms_text")
    @classmethod
    def _sms_text_required_for_fallback(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _require_for_fallback(info, "the fallback SMS text")
        return value

    @model_validator(mode="after")
    def _drop_duplicate_destinations(self) -> SendRequest:
        unique = list(dict.fromkeys(self.destinations))
        self._duplicates_removed = len(self.destinations) - len(unique)
        self.destinations = unique
        return self

    @property
    def duplicates_removed(self) -> int:
        """How many destinations were dropped as duplicates of an earlier one."""
        return self._duplicates_removed

    def provider_payload(self, token: str) -> dict[str, Any]:
        """The SendIM body: the token first, then the checked values the caller set (not `reference`)."""
        return {"apitoken": token, **self.model_dump(exclude_none=True, exclude=NOT_FOR_PROVIDER)}


# The gateway's own fields: what it does with a message, never sent to LiveAll.
NOT_FOR_PROVIDER = {"reference", "send_at", "window"}


def _require_for_fallback(info: ValidationInfo, what: str) -> None:
    if info.data.get("im_type") == "IM_SMSFB":
        raise PydanticCustomError(
            "required_for_fallback", "is required when im_type is IM_SMSFB ({what})", {"what": what}
        )


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
