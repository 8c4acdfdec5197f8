"""The send request: the provider's SendIM fields without `apitoken`, and every rule they follow."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    TypeAdapter,
    UrlConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.phone import InvalidPhoneNumber, normalise

MAX_TEXT_LENGTH = 1000
MAX_DESTINATIONS = 10_000
MAX_ALPHANUMERIC_SENDER_ID = 11
NUMERIC_SENDER_ID_LENGTH = (4, 16)
# The provider's alphabet for SMS sender ids (LIVEALL.md, "SMS sender ids").
_SENDER_ID_ALPHABET = re.compile(r"[A-Za-z0-9\-.!#%&()<> ]+")

_https_url = TypeAdapter(Annotated[AnyUrl, UrlConstraints(allowed_schemes=["https"], host_required=True)])


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _https(value: str) -> str:
    # Validate as a URL but pass the caller's exact text on to the provider.
    try:
        _https_url.validate_python(value)
    except ValueError:
        raise PydanticCustomError("https_url", "must be an absolute https URL") from None
    return value


def _destination(value: str) -> str:
    try:
        return normalise(value)
    except InvalidPhoneNumber as error:
        raise PydanticCustomError(
            "phone_number", "'{number}' {reason}", {"number": value, "reason": str(error)}
        ) from None


NonBlankText = Annotated[StrictStr, AfterValidator(_not_blank)]
HttpsUrl = Annotated[StrictStr, AfterValidator(_https), Field(examples=["https://example.com/offer.png"])]
Destination = Annotated[
    StrictStr, AfterValidator(_destination), Field(examples=["+30 691 234 5678", "306912345679"])
]


class Action(BaseModel):
    """A button under the Viber message that opens `url` in the phone's browser."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    caption: NonBlankText = Field(description="Text on the button.", examples=["See the offer"])
    url: HttpsUrl = Field(description="Absolute https URL the button opens.")


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
            ]
        },
    )

    im_type: Literal["IM", "IM_SMSFB"] = Field(
        description="IM: Viber only. IM_SMSFB: Viber, or an SMS where the phone cannot get Viber."
    )
    im_sender_name: NonBlankText = Field(description="Viber sender name approved by the provider.")
    im_text: StrictStr = Field(min_length=1, max_length=MAX_TEXT_LENGTH, description="The Viber message.")
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
    senderid: StrictStr | None = Field(
        default=None,
        validate_default=True,
        description="SMS sender id, required for IM_SMSFB: up to 11 characters from A-Z a-z 0-9 "
        "- . ! # % & ( ) < > and space, or 4 to 16 digits.",
    )
    sms_text: StrictStr | None = Field(
        default=None, validate_default=True, description="Fallback SMS text, required for IM_SMSFB."
    )
    pricecat: Literal[0, 1] | None = Field(
        default=None, description="SMS price category: 0 normal, 1 low cost."
    )

    _duplicates_removed: int = PrivateAttr(default=0)

    @field_validator("senderid")
    @classmethod
    def _sender_id_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _require_for_fallback(info, "the SMS sender id")
            return None
        if value.isdigit():
            low, high = NUMERIC_SENDER_ID_LENGTH
            if not low <= len(value) <= high:
                raise PydanticCustomError(
                    "sender_id_length",
                    "a numeric sender id must have {low} to {high} digits",
                    {"low": low, "high": high},
                )
            return value
        if not _SENDER_ID_ALPHABET.fullmatch(value) or not value.strip():
            raise PydanticCustomError(
                "sender_id_characters",
                "may only use the letters A-Z a-z, digits, space and - . ! # % & ( ) < >",
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
    def _sms_text_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            _require_for_fallback(info, "the fallback SMS text")
            return None
        return _not_blank(value)

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
        """The SendIM body: the token first, then the fields the caller set."""
        return {"apitoken": token, **self.model_dump(exclude_none=True)}


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
            path += f".{part}" if path else str(part)
    return path or "(body)"


def _message(error_type: str, path: str, default: str) -> str:
    if error_type == "extra_forbidden":
        if path == "apitoken":
            return "must not be sent: the gateway supplies the provider token itself"
        return "is not a known field"
    if error_type == "missing":
        return "is required"
    return default
