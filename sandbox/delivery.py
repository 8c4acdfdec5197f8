"""What happens to a message after SendIM accepted it: its LiveAll status over time.

Each destination of an accepted SendIM becomes a message whose status walks
through a path of LiveAll status codes chosen by the number's LAST DIGIT:

| last digit | who | `IM` | `IM_SMSFB` |
|---|---|---|---|
| 5-9 | Viber user who reads | 300001 → 300009 → 300002 → 300008 | same |
| 0 | Viber user who never reads | 300001 → 300009 → 300002 | same |
| 1 | no Viber | 300001 → 300005 | 300001 → 300005 → 100001 → 200000 |
| 2 | Viber message expires | 300001 → 300009 → 300003 | 300001 → 300009 → 300003 → 100001 → 200000 |
| 3 | no Viber, phone unreachable by SMS | 300001 → 300005 | 300001 → 300005 → 100001 → 100003 |
| 4 | no Viber, the SMSC refuses the SMS | 300001 → 300005 | 300001 → 300005 → 100004 |

The status moves one step every `step_seconds` after submission (a message keeps
the step it was accepted with); a step of 0 puts it at the end of its path at once.
Nothing runs in the background: the status is computed from the clock when asked.

While on the Viber path a message reports sms_count 1 and the Viber price
(COST_PER_MESSAGE, deducted at SendIM). On the SMS path it reports the fallback
SMS: sms_count is the number of SMS parts of `sms_text`, charge sms_count times the
destination country's price (low cost with `pricecat` 1); an SMS the SMSC refused
(100004) costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from sandbox.prices import price_for_destination
from sandbox.segments import sms_segments

# Every status code LiveAll documents, with the provider's text. SMS and Viber share
# some texts (Sent, Delivered, Undelivered): a text alone does not say the channel.
STATUS_TEXTS: Final[dict[int, str]] = {
    100001: "Sent",
    100002: "Queued at SMSC",
    100003: "Undelivered",
    100004: "Not delivered by SMSC",
    100005: "Error",
    100006: "Awaiting HLR",
    100007: "Queued",
    100008: "Temporarily unavailable",
    100009: "HLR sent",
    100010: "HLR completed",
    200000: "Delivered",
    300000: "Undefined",
    300001: "Accepted",
    300002: "Delivered",
    300003: "Expired",
    300004: "Deleted",
    300005: "Undelivered",
    300006: "Rejected",
    300007: "Unknown",
    300008: "Seen",
    300009: "Sent",
    300010: "Not yet sent",
    300011: "Open",
}

VIBER_PRICE: Final = Decimal("0.01")  # euros; the same as SendIM's COST_PER_MESSAGE
SMS_SENT: Final = 100001
SMSC_REFUSED: Final = 100004  # never reached the network: not charged


@dataclass(frozen=True)
class NumberRule:
    """What a destination does: its Viber path, then the SMS path a fallback takes."""

    name: str
    viber: tuple[int, ...]
    sms: tuple[int, ...] = ()  # empty: the Viber message arrived, no fallback SMS


_READS: Final = NumberRule("Viber user who reads", (300001, 300009, 300002, 300008))
_NUMBER_RULES: Final[dict[str, NumberRule]] = {
    "0": NumberRule("Viber user who never reads", (300001, 300009, 300002)),
    "1": NumberRule("no Viber", (300001, 300005), (SMS_SENT, 200000)),
    "2": NumberRule("Viber message expires", (300001, 300009, 300003), (SMS_SENT, 200000)),
    "3": NumberRule("no Viber, SMS undelivered", (300001, 300005), (SMS_SENT, 100003)),
    "4": NumberRule("no Viber, SMSC refuses the SMS", (300001, 300005), (SMSC_REFUSED,)),
    **dict.fromkeys("56789", _READS),
}


def status_text(code: int) -> str:
    """The provider's text of a status code."""
    return STATUS_TEXTS.get(code, "Unknown")


def number_rule(destination: str) -> NumberRule:
    """The delivery rule of a destination number, by its last digit."""
    return _NUMBER_RULES.get(destination[-1:], _READS)


@dataclass(frozen=True)
class Step:
    """One status on a message's path, with what the provider reports beside it."""

    code: int
    sms_count: int
    charge: Decimal


def delivery_path(destination: str, im_type: str, sms_text: str, pricecat: int) -> tuple[Step, ...]:
    """The statuses a message to `destination` goes through, in order."""
    rule = number_rule(destination)
    viber = tuple(Step(code, 1, VIBER_PRICE) for code in rule.viber)
    if im_type != "IM_SMSFB" or not rule.sms:
        return viber
    parts = sms_segments(sms_text)
    charge = parts * price_for_destination(destination).for_category(pricecat)
    sms = tuple(Step(code, parts, Decimal(0) if code == SMSC_REFUSED else charge) for code in rule.sms)
    return viber + sms


@dataclass(frozen=True)
class Status:
    """A message's status as GetSMSStatus and GetSMSHistory report it."""

    code: int
    text: str
    sms_count: int
    charge: Decimal
    reached_at: float  # unix time at which the message reached this status


@dataclass
class Message:
    """One destination of an accepted SendIM; only `forced` and `sms_charged` ever change."""

    smsid: int
    batch_id: int  # the SendIM's SubmissionID
    destination: str
    sender_name: str  # im_sender_name: GetSMSHistory's `senderid`
    im_type: str
    pricecat: int
    submitted_at: float
    step_seconds: float
    path: tuple[Step, ...]
    forced: Status | None = None
    sms_charged: bool = False

    def _index_at(self, now: float) -> int:
        last = len(self.path) - 1
        if self.step_seconds == 0:
            return last
        elapsed = now - self.submitted_at
        if elapsed <= 0:
            return 0
        return min(int(elapsed // self.step_seconds), last)

    def reached_at(self, index: int) -> float:
        """When the message reaches step `index` of its path (the model's, ignoring `forced`)."""
        return self.submitted_at + index * self.step_seconds

    def status_at(self, now: float) -> Status:
        """The status at unix time `now`: the forced one, or the model's."""
        if self.forced is not None:
            return self.forced
        index = self._index_at(now)
        step = self.path[index]
        return Status(step.code, status_text(step.code), step.sms_count, step.charge, self.reached_at(index))

    def sms_charge_due(self, now: float) -> Decimal:
        """The fallback SMS's charge once the model has sent it (100001), else 0."""
        for index, step in enumerate(self.path):
            if step.code == SMS_SENT and self.reached_at(index) <= now:
                return step.charge
        return Decimal(0)
