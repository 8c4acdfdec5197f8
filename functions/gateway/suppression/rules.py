"""Suppression entries and the rules they follow; pure, no I/O.

An entry is one normalised number (as sends normalise it), a reason, and a scope:
every sender (`*`) or one Viber sender name (opt-outs are often per brand). It
may expire. The send path reads the list by bucket: every entry of a bucket is
one line of the bucket's item (number, scope, reason, expiry), so that a send of
one number reads one item, and one of 10,000 numbers a few BatchGetItem calls.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum

from gateway import names

ALL_SENDERS = "*"
_SENDER_PREFIX = "sender:"


class Reason(StrEnum):
    OPT_OUT = "opt-out"
    BOUNCED = "bounced"
    COMPLAINT = "complaint"
    MANUAL = "manual"


def scope_of(sender: str | None) -> str:
    """The stored scope of an entry for `sender` (None: every sender)."""
    return ALL_SENDERS if sender is None else _SENDER_PREFIX + sender


def sender_of(scope: str) -> str | None:
    """The Viber sender name a scope is limited to; None for every sender."""
    return None if scope == ALL_SENDERS else scope.removeprefix(_SENDER_PREFIX)


def bucket_of(number: str) -> int:
    """Which bucket holds a number's entries: stable across processes and releases."""
    return zlib.crc32(number.encode("ascii")) % names.SUPPRESSION_BUCKETS


@dataclass(frozen=True, slots=True)
class Member:
    """What the send path needs of one entry: it lives in its bucket's item, one line each."""

    number: str
    scope: str
    reason: str
    expires_at: int | None = None  # unix seconds

    def applies(self, sender: str, now: float) -> bool:
        """Whether this entry stops a send by `sender` now."""
        if self.expires_at is not None and self.expires_at <= now:
            return False
        return self.scope == ALL_SENDERS or self.scope == _SENDER_PREFIX + sender

    def line(self) -> str:
        expires = "" if self.expires_at is None else str(self.expires_at)
        return f"{self.number}\t{self.scope}\t{self.reason}\t{expires}"


def parse_members(text: str, wanted: set[str] | None = None) -> dict[str, list[Member]]:
    """A bucket's lines by number (only the `wanted` numbers, when given)."""
    found: dict[str, list[Member]] = {}
    for line in text.split("\n"):
        if not line:
            continue
        number, _, rest = line.partition("\t")
        if wanted is not None and number not in wanted:
            continue
        scope, reason, expires = rest.split("\t")
        member = Member(number, scope, reason, int(expires) if expires else None)
        found.setdefault(number, []).append(member)
    return found


def members_text(members: dict[tuple[str, str], Member]) -> str:
    """A bucket's lines, in a stable order (so an unchanged bucket is written the same)."""
    return "\n".join(members[key].line() for key in sorted(members))


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A destination a send left out, and why: what the answer's `suppressed` lists."""

    destination: str
    reason: str
    sender: str | None  # the entry's scope: None for every sender

    def as_dict(self) -> dict[str, str | None]:
        return {"destination": self.destination, "reason": self.reason, "sender": self.sender}


def suppressed_by(
    destinations: list[str], members: dict[str, list[Member]], sender: str, now: float
) -> list[Suppressed]:
    """The destinations the list stops, in request order; an every-sender entry wins over a sender's."""
    found = []
    for destination in destinations:
        applying = [m for m in members.get(destination, ()) if m.applies(sender, now)]
        if applying:
            chosen = min(applying, key=lambda m: m.scope != ALL_SENDERS)
            found.append(Suppressed(destination, chosen.reason, sender_of(chosen.scope)))
    return found
