"""The suppression list's use cases: add, look up, remove, page through, import; and their events."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway import names
from gateway.events import iso
from gateway.failures import Failure, GatewayError
from gateway.fields import FieldError
from gateway.observability import logger
from gateway.phone import InvalidPhoneNumber, mask, normalise
from gateway.suppression.requests import EntryIn, ImportRequest
from gateway.suppression.store import CursorError, Entry, SuppressionStore

if TYPE_CHECKING:
    from gateway.events import EventPublisher

PUBLISH_SLICE = 100  # events per worker task (ten PutEvents calls)
PUBLISHERS = 8


def entry_answer(entry: Entry) -> dict[str, Any]:
    """An entry as the API answers it and its events carry it."""
    return {
        "number": entry.number,
        "reason": entry.reason,
        "sender": entry.sender,
        "note": entry.note,
        "added_at": iso(entry.added_at),
        "added_by": entry.added_by,
        "expires_at": iso(entry.expires_at),
    }


def number_from_path(raw: str) -> str:
    """The path's number, normalised as a send's destinations are; a 422 naming `number` if it is not one."""
    try:
        return normalise(raw)
    except InvalidPhoneNumber as error:
        raise GatewayError(
            Failure.INVALID_REQUEST,
            "The number is not one; see errors.",
            errors=[FieldError("number", f"{raw[:40]!r} {error}")],
        ) from None


class SuppressionList:
    def __init__(
        self,
        store: SuppressionStore,
        publisher: EventPublisher | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def add(self, number: str, entry_in: EntryIn, added_by: str) -> tuple[dict[str, Any], bool]:
        """PUT: add or update; (the entry, whether it is new or changed)."""
        entry = self._entry(number, entry_in, added_by)
        stored, changed = self.store.put(entry)
        if changed:
            self._publish(names.DETAIL_TYPE_DESTINATION_SUPPRESSED, [entry_answer(stored)])
            logger.info("suppression added", extra={"number": mask(number), "reason": stored.reason})
        return entry_answer(stored), changed

    def get(self, number: str) -> dict[str, Any]:
        entries = self.store.get(number)
        if not entries:
            raise GatewayError(Failure.NOT_FOUND, f"The number {number} is not on the suppression list.")
        return {"number": number, "entries": [entry_answer(entry) for entry in entries]}

    def remove(self, number: str, sender: str | None, removed_by: str) -> dict[str, Any]:
        """DELETE: the entry for `sender`, or every entry of the number when `sender` is None."""
        removed = self.store.delete(number, sender, every_scope=sender is None)
        if not removed:
            scope = "for every sender" if sender is None else f"for the sender {sender}"
            raise GatewayError(Failure.NOT_FOUND, f"The number {number} has no entry {scope} on the list.")
        now = iso(int(self.clock()))
        self._publish(
            names.DETAIL_TYPE_SUPPRESSION_REMOVED,
            [{**entry_answer(entry), "removed_at": now, "removed_by": removed_by} for entry in removed],
        )
        logger.info("suppression removed", extra={"number": mask(number), "entries": len(removed)})
        return {"number": number, "removed": [entry_answer(entry) for entry in removed]}

    def page(
        self, *, reason: str | None, sender: str | None, every_sender: bool, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        try:
            entries, next_cursor = self.store.page(
                reason=reason, sender=sender, every_sender_only=every_sender, cursor=cursor, limit=limit
            )
        except CursorError:
            raise GatewayError(
                Failure.INVALID_REQUEST,
                "The cursor is not one this list handed out; see errors.",
                errors=[FieldError("cursor", "must be a next_cursor from an earlier page, as it was given")],
            ) from None
        return {"entries": [entry_answer(entry) for entry in entries], "next_cursor": next_cursor}

    def import_entries(self, request: ImportRequest, added_by: str) -> dict[str, Any]:
        entries = [self._entry(item.number, item, added_by) for item in request.entries]
        unique = list({(e.number, e.scope): e for e in entries}.values())  # the last of repeats wins
        result = self.store.import_entries(unique)
        self._publish(
            names.DETAIL_TYPE_DESTINATION_SUPPRESSED,
            [entry_answer(entry) for entry in [*result.added, *result.updated]],
        )
        logger.info(
            "suppressions imported",
            extra={"added": len(result.added), "updated": len(result.updated), "unchanged": result.unchanged},
        )
        return {
            "added": len(result.added),
            "updated": len(result.updated),
            "unchanged": result.unchanged,
            "repeated": len(entries) - len(unique),
        }

    def _entry(self, number: str, entry_in: EntryIn, added_by: str) -> Entry:
        expires = None if entry_in.expires_at is None else int(entry_in.expires_at.timestamp())
        return Entry(
            number=number,
            reason=entry_in.reason.value,
            sender=entry_in.sender,
            note=entry_in.note,
            expires_at=expires,
            added_at=int(self.clock()),
            added_by=added_by,
        )

    def _publish(self, detail_type: str, details: list[dict[str, Any]]) -> None:
        """Publish, a few PutEvents calls at once: an import of 10,000 entries is 1,000 calls."""
        if self.publisher is None or not details:
            return
        from concurrent.futures import ThreadPoolExecutor

        from gateway.events import Event

        events = [Event(detail_type, detail) for detail in details]
        publisher = self.publisher
        slices = [events[i : i + PUBLISH_SLICE] for i in range(0, len(events), PUBLISH_SLICE)]
        if len(slices) == 1:
            publisher.publish(slices[0])
            return
        with ThreadPoolExecutor(max_workers=PUBLISHERS) as pool:
            list(pool.map(publisher.publish, slices))
