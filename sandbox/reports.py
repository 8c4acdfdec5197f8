"""The plain-text answers of GetSMSStatus and GetSMSHistory, and the parsing of their queries.

GetSMSStatus: one `smsid:submitted_unix:last_status_unix:destination:status_code:
status_text:sms_count:charge` record per known id, records joined by `|`.

GetSMSHistory: one line per message, each ended by CRLF, ordered by smsid:
`smsid|batch_id|senderid|destination|last_status_unix|status_text|sms_count|charge|im_type|pricecat`.
The last two fields are the sandbox's own additions (LiveAll's `...`): the SendIM's
`im_type` and `pricecat`. Clients must ignore whatever follows the charge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sandbox.days import day_window, parse_submit_date, parse_timezone_offset
from sandbox.delivery import Message, Status

_SMSID_SEPARATORS: Final = re.compile(r"[,.^]")
_DIGITS: Final = re.compile(r"[0-9]+")
HISTORY_LINE_END: Final = "\r\n"


def parse_smsids(text: str | None) -> list[int] | None:
    """GetSMSStatus's `smsids`: ids joined by `,` `.` or `^`, in order, without repeats; None if malformed."""
    parts = [part.strip() for part in _SMSID_SEPARATORS.split(text or "")]
    if not all(_DIGITS.fullmatch(part) for part in parts):
        return None
    return list(dict.fromkeys(int(part) for part in parts))


def _charge(status: Status) -> str:
    return f"{status.charge:.4f}"


def status_record(message: Message, status: Status) -> str:
    """One GetSMSStatus record."""
    return ":".join(
        str(field)
        for field in (
            message.smsid,
            int(message.submitted_at),
            int(status.reached_at),
            message.destination,
            status.code,
            status.text,
            status.sms_count,
            _charge(status),
        )
    )


def history_line(message: Message, status: Status) -> str:
    """One GetSMSHistory line, without its line end."""
    return "|".join(
        str(field)
        for field in (
            message.smsid,
            message.batch_id,
            message.sender_name,
            message.destination,
            int(status.reached_at),
            status.text,
            status.sms_count,
            _charge(status),
            message.im_type,
            message.pricecat,
        )
    )


@dataclass(frozen=True)
class HistoryQuery:
    """GetSMSHistory's filters: the day's window [start, end) and the optional exact matches."""

    start: int
    end: int
    senderid: str | None = None
    destination: str | None = None
    sms_id: int | None = None
    batch_id: int | None = None
    gt_sms_id: int | None = None

    def matches(self, message: Message) -> bool:
        """Whether the message belongs in the answer."""
        return (
            self.start <= message.submitted_at < self.end
            and self.senderid in (None, message.sender_name)
            and self.destination in (None, message.destination)
            and self.sms_id in (None, message.smsid)
            and self.batch_id in (None, message.batch_id)
            and (self.gt_sms_id is None or message.smsid > self.gt_sms_id)
        )


class InvalidQueryError(ValueError):
    """A GetSMSHistory parameter is missing or malformed: the provider's error 59."""


def _number(fields: Mapping[str, str], name: str) -> int | None:
    value = fields.get(name, "")
    if value == "":
        return None
    if not _DIGITS.fullmatch(value):
        raise InvalidQueryError(name)
    return int(value)


def parse_history_query(fields: Mapping[str, str]) -> HistoryQuery:
    """The filters of a GetSMSHistory form; an optional field sent empty counts as absent."""
    day = parse_submit_date(fields.get("submit_date", "").strip())
    if day is None:
        raise InvalidQueryError("submit_date")
    offset_text = fields.get("timezone_offset", "").strip()
    offset = None
    if offset_text:
        offset = parse_timezone_offset(offset_text)
        if offset is None:
            raise InvalidQueryError("timezone_offset")
    destination = fields.get("destination", "")
    if destination and not _DIGITS.fullmatch(destination):
        raise InvalidQueryError("destination")
    start, end = day_window(day, offset)
    return HistoryQuery(
        start=start,
        end=end,
        senderid=fields.get("senderid") or None,
        destination=destination or None,
        sms_id=_number(fields, "sms_id"),
        batch_id=_number(fields, "batch_id"),
        gt_sms_id=_number(fields, "gt_sms_id"),
    )
