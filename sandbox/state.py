"""The sandbox's account: configuration, ledger and fault plan, shared safely between threads."""

from __future__ import annotations

import copy
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final, Literal

from sandbox.model import Fault, LedgerEntry
from sandbox.rules import check_send_im, error_message

DataShape = Literal["objects", "ids"]
DATA_SHAPES: Final = ("objects", "ids")

COST_PER_MESSAGE: Final = 0.01  # euros deducted per destination of an accepted SendIM
# Prices behind GetAccountBalance's remaining counts and GetSMSStatus's charge; they
# reproduce the documentation's example (169.64 -> 4475 normal, 5317 low-cost SMS).
SMS_PRICE: Final = Decimal("0.0379")
LOW_COST_SMS_PRICE: Final = Decimal("0.0319")
FIRST_SMSID: Final = 20818588
FIRST_SUBMISSION_ID: Final = 1000
DELIVERED: Final = "300002:Delivered"  # Viber status code and text
_SMSID_SEPARATORS: Final = re.compile(r"[,.^]")
_DIGITS: Final = re.compile(r"[0-9]+")
CONFIG_KEYS: Final = frozenset({"tokens", "data_shape", "latency", "balance", "approved_senders"})


def _string_set(value: object, name: str) -> frozenset[str]:
    # A bare string is iterable too, and would silently become a set of characters.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of strings")
    items = list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{name} must contain non-empty strings only")
    return frozenset(items)


def _senders(value: object) -> frozenset[str] | None:
    return None if value is None else _string_set(value, "approved_senders")


def _shape(value: object) -> DataShape:
    if value not in DATA_SHAPES:
        raise ValueError(f"data_shape must be one of {list(DATA_SHAPES)}")
    return value  # narrowed to DataShape by the membership test


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


def _seconds(value: object, name: str) -> float:
    seconds = _number(value, name)
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0")
    return seconds


def _error_line(code: int) -> str:
    """The plain-text error answer of the form-encoded endpoints."""
    return f"Error: {code} - {error_message(code)}"


@dataclass(frozen=True)
class _Config:
    tokens: frozenset[str]
    approved_senders: frozenset[str] | None  # None: any sender name is approved
    data_shape: DataShape
    latency: float
    balance: float


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int


class SandboxState:
    """Everything the fake provider knows, behind one lock."""

    def __init__(
        self,
        tokens: Iterable[str],
        approved_senders: Iterable[str] | None = None,
        data_shape: DataShape = "objects",
        latency: float = 0.0,
        balance: float = 100.0,
    ) -> None:
        self._lock = threading.Lock()
        self._defaults = _Config(
            tokens=_string_set(tokens, "tokens"),
            approved_senders=_senders(approved_senders),
            data_shape=_shape(data_shape),
            latency=_seconds(latency, "latency"),
            balance=_number(balance, "balance"),
        )
        self._config = self._defaults
        self._ledger: list[LedgerEntry] = []
        self._sent: dict[int, tuple[LedgerEntry, str]] = {}  # smsid -> (entry, destination)
        self._requests: list[Any] = []
        self._faults: deque[_QueuedFault] = deque()
        self._fault_rate = 0.0
        self._rate_fault: Fault | None = None
        self._rng = random.Random()  # noqa: S311 - fault injection, not cryptography
        # Ids only grow, even across reset(): a real provider never reuses them, and a
        # test must not mistake a stale id for a fresh one.
        self._next_smsid = FIRST_SMSID
        self._next_submission_id = FIRST_SUBMISSION_ID
        self._stopping = threading.Event()

    # ----- configuration -----------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._config = replace(self._config, **changes)

    @property
    def tokens(self) -> frozenset[str]:
        """The API tokens the provider accepts."""
        return self._config.tokens

    def set_tokens(self, tokens: Iterable[str]) -> None:
        """Replace the accepted tokens (e.g. to model a rotated or revoked token)."""
        self._update(tokens=_string_set(tokens, "tokens"))

    @property
    def approved_senders(self) -> frozenset[str] | None:
        """Viber sender names approved for the account; None approves any."""
        return self._config.approved_senders

    @approved_senders.setter
    def approved_senders(self, senders: Iterable[str] | None) -> None:
        self._update(approved_senders=_senders(senders))

    @property
    def data_shape(self) -> DataShape:
        """Shape of `data` in SendIM answers: "objects" (documented) or "ids" (Viber example)."""
        return self._config.data_shape

    @data_shape.setter
    def data_shape(self, shape: DataShape) -> None:
        self._update(data_shape=_shape(shape))

    @property
    def latency(self) -> float:
        """Seconds the provider waits before answering each request."""
        return self._config.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._update(latency=_seconds(seconds, "latency"))

    @property
    def balance(self) -> float:
        """Account balance in euros; SendIM is refused with code 18 once it is <= 0."""
        return self._config.balance

    @balance.setter
    def balance(self, euros: float) -> None:
        self._update(balance=_number(euros, "balance"))

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply several settings at once from their JSON form; all or nothing."""
        unknown = set(changes) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        checked: dict[str, Any] = {}
        if "tokens" in changes:
            checked["tokens"] = _string_set(changes["tokens"], "tokens")
        if "approved_senders" in changes:
            checked["approved_senders"] = _senders(changes["approved_senders"])
        if "data_shape" in changes:
            checked["data_shape"] = _shape(changes["data_shape"])
        if "latency" in changes:
            checked["latency"] = _seconds(changes["latency"], "latency")
        if "balance" in changes:
            checked["balance"] = _number(changes["balance"], "balance")
        self._update(**checked)

    # ----- faults ------------------------------------------------------------------

    def add_fault(self, *faults: Fault) -> None:
        """Queue faults; each hits the next `fault.times` SendIM requests, in queue order."""
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError("add_fault takes Fault instances")
        with self._lock:
            self._faults.extend(_QueuedFault(fault, fault.times) for fault in faults)

    def set_fault_rate(self, rate: float, fault: Fault | None, seed: int | None = None) -> None:
        """From now on each SendIM hits `fault` with probability `rate`; rate 0 disables.

        Queued faults take precedence; the random draw happens only for requests no
        queued fault applies to, so a seeded run is reproducible.
        """
        rate = _number(rate, "rate")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate > 0 and not isinstance(fault, Fault):
            raise TypeError("a fault rate above 0 needs a Fault")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError("seed must be an integer or None")
        with self._lock:
            self._fault_rate = rate
            self._rate_fault = fault if rate > 0 else None
            self._rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography

    def set_fault_rate_from_json(self, data: object) -> None:
        """set_fault_rate from `{"rate": 0.2, "fault": {...}, "seed": 1}`."""
        if not isinstance(data, dict):
            raise TypeError("fault-rate must be a JSON object")
        unknown = set(data) - {"rate", "fault", "seed"}
        if unknown:
            raise ValueError(f"unknown fault-rate keys: {sorted(unknown)}")
        if "rate" not in data:
            raise ValueError("fault-rate needs a rate")
        fault = Fault.from_json(data["fault"]) if data.get("fault") is not None else None
        self.set_fault_rate(data["rate"], fault, data.get("seed"))

    def reset(self) -> None:
        """Forget ledger, requests and faults; restore the constructor's settings."""
        with self._lock:
            self._config = self._defaults
            self._ledger.clear()
            self._sent.clear()
            self._requests.clear()
            self._faults.clear()
            self._fault_rate = 0.0
            self._rate_fault = None

    # ----- what happened -----------------------------------------------------------

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Copies of the accepted (sent) SendIM requests, oldest first."""
        with self._lock:
            entries = list(self._ledger)
        return copy.deepcopy(entries)  # entries are never mutated, so copy outside the lock

    @property
    def requests(self) -> list[Any]:
        """Copies of every SendIM body received, accepted or not, in order.

        Bodies that are not JSON appear as their text.
        """
        with self._lock:
            bodies = list(self._requests)
        return copy.deepcopy(bodies)

    def ledger_json(self) -> list[dict[str, Any]]:
        """The ledger in its JSON form, for the HTTP control API."""
        return [asdict(entry) for entry in self.ledger]

    # ----- the provider's side, called by the HTTP handler -------------------------

    def record_request(self, body: Any) -> Fault | None:
        """Record a received SendIM body and pick the fault, if any, that hits it."""
        with self._lock:
            self._requests.append(body)
            if self._faults:
                head = self._faults[0]
                head.remaining -= 1
                if head.remaining == 0:
                    self._faults.popleft()
                return head.fault
            if self._rate_fault is not None and self._rng.random() < self._fault_rate:
                return self._rate_fault
            return None

    def process_send(self, payload: Any) -> dict[str, Any]:
        """Validate a SendIM body, record it if accepted, and build the JSON answer."""
        with self._lock:
            config = self._config
            rejection = check_send_im(
                payload,
                tokens=config.tokens,
                approved_senders=config.approved_senders,
                balance=config.balance,
            )
            if rejection is not None:
                return rejection.to_response()
            destinations: list[str] = payload["destinations"]
            smsids = list(range(self._next_smsid, self._next_smsid + len(destinations)))
            self._next_smsid += len(destinations)
            submission_id = self._next_submission_id
            self._next_submission_id += 1
            entry = LedgerEntry(
                payload=payload, smsids=smsids, submission_id=submission_id, received_at=time.time()
            )
            self._ledger.append(entry)
            for smsid, destination in zip(smsids, destinations, strict=True):
                self._sent[smsid] = (entry, destination)
            # Rounded so that many 0.01 deductions do not drift into float noise.
            balance = round(config.balance - COST_PER_MESSAGE * len(destinations), 4)
            self._config = replace(config, balance=balance)
        data: list[Any]
        if config.data_shape == "ids":
            data = smsids
        else:
            data = [{"destination": d, "smsid": i} for d, i in zip(destinations, smsids, strict=True)]
        return {"success": True, "OperationErrors": None, "SubmissionID": submission_id, "data": data}

    def _token_error(self, token: str | None) -> int | None:
        if not token:
            return 39
        return None if token in self._config.tokens else 44

    def status_report(self, token: str | None, smsids: str | None) -> str:
        """GetSMSStatus's plain-text answer: one `:`-separated record per known id, `|`-joined."""
        code = self._token_error(token)
        if code is not None:
            return _error_line(code)
        parts = [part.strip() for part in _SMSID_SEPARATORS.split(smsids or "")]
        if not all(_DIGITS.fullmatch(part) for part in parts):
            return _error_line(42)
        with self._lock:
            found = [(i, self._sent[i]) for i in dict.fromkeys(int(p) for p in parts) if i in self._sent]
        if not found:
            return _error_line(43)
        records = []
        for smsid, (entry, destination) in found:
            submitted = int(entry.received_at)
            records.append(f"{smsid}:{submitted}:{submitted}:{destination}:{DELIVERED}:1:{SMS_PRICE}")
        return "|".join(records)

    def balance_report(self, token: str | None, country_prefix: str | None) -> str:
        """GetAccountBalance's plain-text answer."""
        code = self._token_error(token)
        if code is not None:
            return _error_line(code)
        if country_prefix and not _DIGITS.fullmatch(country_prefix):
            return _error_line(59)
        balance = Decimal(str(self.balance))
        if not country_prefix:
            normal = low_cost = -1  # the provider's answer when no country is asked for
        elif balance <= 0:
            normal = low_cost = 0
        else:
            normal = int((balance / SMS_PRICE).to_integral_value(ROUND_FLOOR))
            low_cost = int((balance / LOW_COST_SMS_PRICE).to_integral_value(ROUND_FLOOR))
        return f"OK Balance:{balance:.2f}|SmsRemainCount:{normal}|LCSmsRemainCount:{low_cost}"

    def pause(self, seconds: float) -> None:
        """Sleep like a slow provider, but wake at once when the sandbox stops."""
        if seconds > 0:
            self._stopping.wait(seconds)
