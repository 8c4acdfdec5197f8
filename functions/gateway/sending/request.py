"""The send request: the provider's SendIM fields without `apitoken`, and every rule they follow.

Each value is normalised first, then checked (gateway.fields), and the checked value is
what the provider gets (`provider_payload`): numbers as digits only, URLs in their
normalised form. Every rule that JSON Schema can say is said in the OpenAPI description
too, from the same patterns the validators use.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.fields import (
    Destination,
    HttpsUrl,
    Name,
    Reference,
    SendAt,
    Text,
    WindowChoice,
)

MAX_DESTINATIONS = 10_000
MAX_ALPHANUMERIC_SENDER_ID = 11
NUMERIC_SENDER_ID_LENGTH = (4, 16)
# LIVEALL.md: at most 11 characters of this alphabet, or a numeric id (its own limit: 4 to 16
# digits here, as GSM numeric originators allow). An id of digits and spaces only is neither.
_SENDER_ALPHABET = r"A-Za-z0-9\-.!#%&()<> "
_SENDER_NON_DIGIT = r"A-Za-z\-.!#%&()<>"
NUMERIC_SENDER_ID_PATTERN = "^[0-9]{{{},{}}}$".format(*NUMERIC_SENDER_ID_LENGTH)
ALPHANUMERIC_SENDER_ID_PATTERN = f"^[{_SENDER_ALPHABET}]*[{_SENDER_NON_DIGIT}][{_SENDER_ALPHABET}]*$"
_NUMERIC_SENDER_ID = re.compile(NUMERIC_SENDER_ID_PATTERN)
_ALPHANUMERIC_SENDER_ID = re.compile(ALPHANUMERIC_SENDER_ID_PATTERN)


def _price_category(value: Any) -> int:
    # Strict: true, 1.0 and "1" are not price categories, as no other field takes look-alikes.
    if type(value) is not int or value not in (0, 1):
        raise PydanticCustomError("price_category", "must be the integer 0 or 1 (0 normal, 1 low cost)")
    return value


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
    _positions: list[int] = PrivateAttr(default_factory=list)

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
        first: dict[str, int] = {}
        for position, destination in enumerate(self.destinations):
            first.setdefault(destination, position)
        self._duplicates_removed = len(self.destinations) - len(first)
        self._positions = list(first.values())
        self.destinations = list(first)
        return self

    def position_of(self, index: int) -> int:
        """Where the destination now at `index` was in the request as sent (before duplicates left)."""
        return self._positions[index] if index < len(self._positions) else index

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
