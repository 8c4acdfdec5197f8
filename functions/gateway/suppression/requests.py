"""What callers send to the suppression list's API, and its rules (the OpenAPI description says them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gateway import names
from gateway.fields import Destination, Name, Reference
from gateway.suppression.rules import Reason

Note = Reference  # free text of a reference's rules: a visible character, no controls, 256 at most


class EntryIn(BaseModel):
    """An entry of the list: why a number must not be messaged, by every sender or one."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    reason: Reason = Field(description="opt-out, bounced, complaint or manual.")
    sender: Name | None = Field(
        default=None,
        description="A Viber sender name (im_sender_name): the entry stops only that sender's sends. "
        "Absent or null: every sender.",
        examples=["MyShop"],
    )
    note: Note | None = Field(default=None, description="Your own words: a ticket, how it came.")
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="RFC 3339 with an offset, in the future: the entry ends then (and is erased). "
        "Absent or null: it stays until deleted.",
        examples=["2027-06-30T00:00:00+03:00"],
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.timestamp() <= datetime.now(value.tzinfo).timestamp():
            raise ValueError("must be in the future")
        return value


class ImportedEntry(EntryIn):
    number: Destination = Field(description="Any number format a send takes; it is stored normalised.")


class ImportRequest(BaseModel):
    """Up to 10,000 entries, checked all together: one bad entry refuses the whole import, naming it."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    entries: Annotated[list[ImportedEntry], Field(min_length=1, max_length=names.MAX_SUPPRESSION_IMPORT)]
