"""Models of what the API answers, for the OpenAPI description (the handlers build plain dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Documented(BaseModel):
    # Only the OpenAPI description needs these schemas, and it is made at synthesis (and once by
    # the local front): the deployed function never builds them, which saves its cold start.
    model_config = ConfigDict(defer_build=True)


class SentMessageModel(_Documented):
    destination: str = Field(description="The number as sent to the provider.", examples=["306912345678"])
    smsid: int | str = Field(
        description="The provider's message id, for status look-ups.", examples=[20818588]
    )


class FallbackSms(_Documented):
    """What the fallback SMS costs for each destination that gets it."""

    encoding: Literal["GSM-7", "UCS-2"] = Field(
        description="GSM-7 when every character is in it (with its extension table), else UCS-2."
    )
    characters: int = Field(description="Its length as the SMS counts it (septets or UTF-16 units).")
    segments: int = Field(description="SMS messages charged for it.")
    characters_per_segment: int = Field(description="160 or 153 (GSM-7), 70 or 67 (UCS-2).")
    non_gsm_characters: list[str] = Field(description="The first characters that made it UCS-2.")


class CountryCost(_Documented):
    calling_code: str = Field(examples=["30"])
    region: str | None = Field(description="ISO 3166 code.", examples=["GR"])
    destinations: int
    price_per_sms: float | None = Field(
        default=None, description="Euros, from the account's balance there (low cost for pricecat 1)."
    )
    worst_case_cost: float | None = Field(default=None, description="Euros if every destination falls back.")


class PreviewResponse(_Documented):
    """Every rule applied, nothing sent."""

    destinations: list[str] = Field(description="Normalised, duplicates removed, as they would be sent.")
    duplicates_removed: int
    countries: list[CountryCost]
    viber: dict[str, int] = Field(description="characters and max_characters of the Viber text.")
    sms: FallbackSms | None = Field(description="IM_SMSFB only.")
    worst_case_cost: float | None = Field(
        description="Euros if every destination falls back to SMS; null where a price is unknown."
    )
    currency: Literal["EUR"]
    reference: str | None = None
    suppressed: list[SuppressedModel] | None = Field(
        default=None, description="Destinations the suppression list would leave out, and why."
    )
    not_allowed: list[NotAllowedModel] | None = Field(
        default=None,
        description="Destinations outside the stage's policy (countries, kinds of number): a send with any "
        "of them is refused whole (422 destination-not-allowed).",
    )


class BalanceResponse(_Documented):
    balance: float = Field(description="Euros.", examples=[169.64])
    currency: Literal["EUR"]
    country: dict[str, str | None] | None = Field(description="calling_code and region, when asked.")
    sms_remaining: int | None = Field(description="Normal SMS the balance pays for there (with a country).")
    low_cost_sms_remaining: int | None
    price_per_sms: float | None = Field(description="Balance / remaining, euros (with a country).")
    low_cost_price_per_sms: float | None


class NotAllowedModel(_Documented):
    destination: str
    rule: Literal["country", "number-type"]
    found: str = Field(description="The number's country (ISO 3166), or its kind (premium-rate, ...).")


class SuppressedModel(_Documented):
    destination: str = Field(examples=["306912345678"])
    reason: Literal["opt-out", "bounced", "complaint", "manual"]
    sender: str | None = Field(description="The entry's sender; null: it applies to every sender.")


class SuppressionEntry(_Documented):
    """An entry of the suppression list."""

    number: str = Field(description="Normalised, as sends normalise destinations.", examples=["306912345678"])
    reason: Literal["opt-out", "bounced", "complaint", "manual"]
    sender: str | None = Field(description="The Viber sender name it is limited to; null: every sender.")
    note: str | None
    added_at: str = Field(description="ISO 8601 UTC.", examples=["2026-12-06T10:00:00Z"])
    added_by: str = Field(description="The API key's id, or the source (delivery-tracking).")
    expires_at: str | None = Field(description="ISO 8601 UTC; null: until deleted.")


class SuppressionEntries(_Documented):
    number: str
    entries: list[SuppressionEntry]


class SuppressionRemoved(_Documented):
    number: str
    removed: list[SuppressionEntry]


class SuppressionPage(_Documented):
    entries: list[SuppressionEntry]
    next_cursor: str | None = Field(description="Pass it as cursor for the next page; null: the last page.")


class SuppressionImported(_Documented):
    added: int
    updated: int
    unchanged: int = Field(
        description="Already listed with the same reason, note and expiry: left as they were."
    )
    repeated: int = Field(description="Entries given twice (same number and sender): the last one counted.")


class SendResponse(_Documented):
    """The provider accepted the message for every destination."""

    submission_id: int | str | None = Field(description="The provider's submission id.")
    messages: list[SentMessageModel] = Field(description="One entry per destination, in request order.")
    duplicates_removed: int = Field(description="Destinations dropped as duplicates of an earlier one.")
    submission_ids: list[int | str | None] | None = Field(
        default=None, description="One per provider request, when the list was sent as several."
    )
    reference: str | None = Field(default=None, description="The reference the request carried.")
    sms: FallbackSms | None = Field(default=None, description="IM_SMSFB: the fallback SMS, per destination.")
    suppressed: list[SuppressedModel] | None = Field(
        default=None, description="Destinations the suppression list left out, and why (absent when none)."
    )


class MessageStatus(_Documented):
    """Where a message stands: LiveAll's status in one vocabulary, whatever channel carried it.

    The same fields are the detail of every event on the bus (with `previous_state`).
    """

    smsid: int = Field(description="The provider's message id, as the send answered it.", examples=[20818588])
    destination: str = Field(examples=["306912345678"])
    reference: str | None = Field(description="The send's reference, where the gateway knows it.")
    channel: Literal["viber", "sms", "unknown"] = Field(description="What carried it last.")
    state: Literal[
        "queued", "sent", "delivered", "seen", "undelivered", "expired", "rejected", "failed", "unknown"
    ]
    final: bool = Field(description="True when no further change can come.")
    provider_code: int | None = Field(description="LiveAll's status code (undocumented ones kept as given).")
    provider_text: str | None = Field(description="LiveAll's status text.")
    submitted_at: str | None = Field(description="ISO 8601 UTC.", examples=["2026-11-30T06:00:00Z"])
    updated_at: str | None = Field(description="ISO 8601 UTC: when LiveAll last changed the status.")
    sms_count: int | None = Field(description="SMS parts charged (for an SMS), as LiveAll reports it.")
    charge: float | None = Field(description="What LiveAll charged, in euros.")


class MessageEventDetail(MessageStatus):
    """The detail of every event on the bus (source `viber-gateway`): `Message Accepted`, `Message
    Status Changed`, `Message Tracking Ended`. Its JSON Schema is events/schemas/message-event-detail.json.
    """

    previous_state: (
        Literal[
            "queued", "sent", "delivered", "seen", "undelivered", "expired", "rejected", "failed", "unknown"
        ]
        | None
    ) = Field(description="Where it stood before this event (null for Message Accepted).")
    reason: Literal["window-ended"] | None = Field(
        default=None, description="Message Tracking Ended: why tracking stopped before the message was final."
    )


class LookupResponse(_Documented):
    messages: list[MessageStatus] = Field(description="One per id LiveAll knows, in the order asked.")
    not_found: list[int] = Field(description="Ids LiveAll does not know for this account.")


class FieldErrorModel(_Documented):
    field: str = Field(examples=["destinations[1]"])
    message: str = Field(examples=["'123' is not a valid phone number for its country code"])


class NotSentModel(_Documented):
    destination: str = Field(examples=["306912345678"])
    type: str = Field(
        description="The problem type of why it was not sent (outcome-unknown: it may have been).",
        examples=["urn:viber-gateway:problem:provider-failed"],
    )


class Problem(_Documented):
    """An RFC 9457 problem (media type application/problem+json), from the gateway or from API Gateway.

    API Gateway's own answers (missing key, throttling, too large) have type `about:blank`.
    """

    type: str = Field(examples=["urn:viber-gateway:problem:invalid-request"])
    title: str
    status: int
    detail: str
    request_id: str | None = Field(default=None, description="Quote it when asking about this request.")
    errors: list[FieldErrorModel] | None = Field(
        default=None, description="Validation problems, one per field (at most 100)."
    )
    omitted_errors: int | None = Field(default=None, description="How many problems errors does not list.")
    provider_code: int | None = Field(default=None, description="The provider's errorCode, when it refused.")
    provider_message: str | None = Field(default=None, description="The provider's errorMessage.")
    submission_ids: list[int | str | None] | None = Field(
        default=None, description="partially-sent: the provider's submission ids of what was sent."
    )
    messages: list[SentMessageModel] | None = Field(
        default=None, description="partially-sent: the destinations that were sent, with their ids."
    )
    not_sent: list[NotSentModel] | None = Field(
        default=None, description="partially-sent: the destinations that were not sent, and why."
    )
    suppressed: list[SuppressedModel] | None = Field(
        default=None,
        description="all-suppressed, partially-sent: destinations the suppression list left out.",
    )


class SchedulePart(_Documented):
    """One time a scheduled send goes out: all of it, or the recipients of one zone (a window)."""

    part: int
    send_at: str = Field(description="When it goes out (UTC, RFC 3339).", examples=["2026-12-08T08:00:00Z"])
    zone: str | None = Field(description="The recipients' time zone, when a window placed it.")
    state: Literal["scheduled", "sending", "sent", "failed", "cancelled"]
    destination_count: int
    destinations: list[str] | None = Field(default=None, description="Not in lists.")
    fired_at: str | None = None
    answer: SendResponse | None = Field(default=None, description="The send's answer, once sent.")
    problem: Problem | None = Field(
        default=None, description="Why it failed; while retrying, the last attempt's problem."
    )


class ScheduleResponse(_Documented):
    """A scheduled send: 202 when made, then its state as it goes."""

    id: str = Field(description="32 hex digits.", examples=["8f14e45fceea167a5a36dedd4bea2543"])
    state: Literal["scheduled", "sending", "sent", "failed", "cancelled"] = Field(
        description="scheduled (waiting), sending (fired, or some parts have), sent (all sent), "
        "failed (a part failed for good), cancelled (cancelled before it fired)."
    )
    send_at: str | None = Field(description="The send_at asked for (null: the window alone placed it).")
    created_at: str
    reference: str | None = None
    destination_count: int
    window: dict[str, object] | None = Field(default=None, description="The window the request gave.")
    parts: list[SchedulePart]


class SchedulePage(_Documented):
    schedules: list[ScheduleResponse] = Field(description="In the order their first part goes out.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end.")
