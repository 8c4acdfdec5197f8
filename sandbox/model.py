"""Value types of the sandbox: the faults it can inject and its record of accepted sends."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

FaultKind = Literal["error_code", "http_status", "html", "empty", "garbage", "slow", "drop"]
FAULT_KINDS: Final[frozenset[str]] = frozenset(
    {"error_code", "http_status", "html", "empty", "garbage", "slow", "drop"}
)
Endpoint = Literal["SendIM", "GetSMSStatus", "GetSMSHistory", "GetAccountBalance"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = ("SendIM", "GetSMSStatus", "GetSMSHistory", "GetAccountBalance")

# `code` of a "garbage" fault: which kind of unusable 200 the provider answers.
GARBAGE_TRUNCATED: Final = 0  # the answer cut off halfway (SendIM's: not JSON at all)
GARBAGE_WRONG_SHAPE: Final = 1  # well-formed JSON that is not the documented envelope


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `true` in a JSON fault must not pass for 1.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the provider, on the requests to one `endpoint` (SendIM by default).

    `after_processing=True` models "the provider sent it but the answer was lost":
    the message is validated and, if valid, recorded in the ledger before the fault
    hits. With False the provider did nothing, so nothing is recorded. The other
    endpoints only read, so for them it decides only whether a slow answer is
    computed before or after the delay.
    """

    kind: FaultKind
    code: int = 0
    status: int = 500
    delay: float = 0.0
    after_processing: bool = False
    times: int = 1
    endpoint: Endpoint = "SendIM"

    def __post_init__(self) -> None:
        # Checked here rather than in from_json so Python callers get the same errors.
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"fault endpoint must be one of {list(ENDPOINTS)}")
        if not (_is_int(self.code) and _is_int(self.status) and _is_int(self.times)):
            raise TypeError("fault code, status and times must be integers")
        if not isinstance(self.after_processing, bool):
            raise TypeError("fault after_processing must be a boolean")
        if not (isinstance(self.delay, int | float) and not isinstance(self.delay, bool)):
            raise TypeError("fault delay must be a number")
        if not math.isfinite(self.delay) or self.delay < 0:
            raise ValueError("fault delay must be a finite number of seconds >= 0")
        if self.times < 1:
            raise ValueError("fault times must be >= 1")
        if self.kind == "error_code" and self.code < 1:
            raise ValueError("an error_code fault needs a provider error code >= 1")
        if self.kind == "http_status" and not 400 <= self.status <= 599:
            raise ValueError("an http_status fault needs a status between 400 and 599")
        if self.kind == "garbage" and self.code not in (GARBAGE_TRUNCATED, GARBAGE_WRONG_SHAPE):
            raise ValueError("a garbage fault takes code 0 (truncated answer) or 1 (wrong shape)")

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build a fault from its JSON form (the dataclass fields); raise ValueError/TypeError."""
        if not isinstance(data, dict):
            raise TypeError("a fault must be a JSON object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        return cls(**data)


@dataclass(frozen=True)
class LedgerEntry:
    """A SendIM request the sandbox accepted, i.e. a message the provider sent."""

    payload: dict[str, Any]  # the exact JSON body received, apitoken included
    smsids: list[int]  # one per destination, in the order of payload["destinations"]
    submission_id: int
    received_at: float  # time.time() when it was accepted
