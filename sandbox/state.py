"""The sandbox's account: configuration, ledger, messages and fault plan, shared safely between threads."""

from __future__ import annotations

import copy
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final, Literal

from sandbox.delivery import SMS_SENT, STATUS_TEXTS, Message, Status, delivery_path
from sandbox.model import ENDPOINTS, Endpoint, Fault, LedgerEntry
from sandbox.prices import price_for_country
from sandbox.reports import (
    HISTORY_LINE_END,
    InvalidQueryError,
    history_line,
    parse_history_query,
    parse_smsids,
    status_record,
)
from sandbox.rules import check_send_im, error_message

DataShape = Literal["objects", "ids"]
DATA_SHAPES: Final = ("objects", "ids")

COST_PER_MESSAGE: Final = 0.01  # euros deducted per destination of an accepted SendIM
DEFAULT_DELIVERY_STEP_SECONDS: Final = 1.0
FIRST_SMSID: Final = 20818588
FIRST_SUBMISSION_ID: Final = 1000
_COUNTRY_PREFIX: Final = re.compile(r"[1-9][0-9]{0,3}")
# Characters that would break the `:`/`|`-separated answers a forced text appears in.
_TEXT_BREAKERS: Final = re.compile(r"[:|\r\n]")
CONFIG_KEYS: Final = frozenset(
    {"tokens", "data_shape", "latency", "balance", "approved_senders", "delivery_step_seconds"}
)
FORCE_STATUS_KEYS: Final = frozenset({"smsid", "code", "text", "sms_count", "charge"})


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


def _integer(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    return value


def _endpoint(value: object) -> Endpoint:
    for endpoint in ENDPOINTS:
        if value == endpoint:
            return endpoint
    raise ValueError(f"endpoint must be one of {list(ENDPOINTS)}")


def _error_line(code: int) -> str:
    """The plain-text error answer of the form-encoded endpoints."""
    return f"Error: {code} - {error_message(code)}"


def _message_json(message: Message, status: Status) -> dict[str, Any]:
    """A message and its status in the JSON form of GET /_sandbox/messages."""
    return {
        "smsid": message.smsid,
        "batch_id": message.batch_id,
        "destination": message.destination,
        "sender_name": message.sender_name,
        "im_type": message.im_type,
        "submitted_at": message.submitted_at,
        "status_code": status.code,
        "status_text": status.text,
        "status_reached_at": status.reached_at,
        "sms_count": status.sms_count,
        "charge": float(status.charge),
        "forced": message.forced is not None,
        "path": [step.code for step in message.path],
    }


@dataclass(frozen=True)
class _Config:
    tokens: frozenset[str]
    approved_senders: frozenset[str] | None  # None: any sender name is approved
    data_shape: DataShape
    latency: float
    balance: float
    delivery_step_seconds: float


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int


@dataclass
class _FaultRate:
    rate: float
    fault: Fault
    rng: random.Random


class SandboxState:
    """Everything the fake provider knows, behind one lock.

    `clock` gives the unix time of submissions and of status changes; tests hand in
    a fake one to move messages along without sleeping.
    """

    def __init__(
        self,
        tokens: Iterable[str],
        approved_senders: Iterable[str] | None = None,
        data_shape: DataShape = "objects",
        latency: float = 0.0,
        balance: float = 100.0,
        delivery_step_seconds: float = DEFAULT_DELIVERY_STEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._defaults = _Config(
            tokens=_string_set(tokens, "tokens"),
            approved_senders=_senders(approved_senders),
            data_shape=_shape(data_shape),
            latency=_seconds(latency, "latency"),
            balance=_number(balance, "balance"),
            delivery_step_seconds=_seconds(delivery_step_seconds, "delivery_step_seconds"),
        )
        self._config = self._defaults
        self._clock = clock
        self._ledger: list[LedgerEntry] = []
        self._messages: dict[int, Message] = {}  # smsid -> message, in smsid order
        self._sms_charges_pending: set[int] = set()  # smsids whose fallback SMS is not charged yet
        self._requests: list[Any] = []
        self._faults: dict[Endpoint, deque[_QueuedFault]] = {endpoint: deque() for endpoint in ENDPOINTS}
        self._fault_rates: dict[Endpoint, _FaultRate] = {}
        # Ids only grow, even across reset(): a real provider never reuses them, and a
        # test must not mistake a stale id for a fresh one.
        self._next_smsid = FIRST_SMSID
        self._next_submission_id = FIRST_SUBMISSION_ID
        self._stopping = threading.Event()

    # ----- configuration -----------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        with self._lock:
            # Charges due before the change belong to the balance being replaced.
            self._settle_sms_charges()
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
        """Account balance in euros; SendIM is refused with code 18 once it is <= 0.

        Each destination costs COST_PER_MESSAGE at SendIM; a fallback SMS costs its
        charge from the moment the delivery model sends it (status 100001).
        """
        with self._lock:
            self._settle_sms_charges()
            return self._config.balance

    @balance.setter
    def balance(self, euros: float) -> None:
        self._update(balance=_number(euros, "balance"))

    @property
    def delivery_step_seconds(self) -> float:
        """Seconds between two statuses of a newly accepted message; 0 jumps to the last one."""
        return self._config.delivery_step_seconds

    @delivery_step_seconds.setter
    def delivery_step_seconds(self, seconds: float) -> None:
        self._update(delivery_step_seconds=_seconds(seconds, "delivery_step_seconds"))

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
        if "delivery_step_seconds" in changes:
            checked["delivery_step_seconds"] = _seconds(
                changes["delivery_step_seconds"], "delivery_step_seconds"
            )
        self._update(**checked)

    # ----- faults ------------------------------------------------------------------

    def add_fault(self, *faults: Fault) -> None:
        """Queue faults; each hits the next `fault.times` requests to its endpoint, in queue order."""
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError("add_fault takes Fault instances")
        with self._lock:
            for fault in faults:
                self._faults[fault.endpoint].append(_QueuedFault(fault, fault.times))

    def set_fault_rate(
        self, rate: float, fault: Fault | None, seed: int | None = None, endpoint: Endpoint | None = None
    ) -> None:
        """From now on each request to the endpoint hits `fault` with probability `rate`; 0 disables.

        The endpoint is the fault's own, or `endpoint` (SendIM by default) to switch a
        rate off without a fault. Queued faults take precedence; the random draw
        happens only for requests no queued fault applies to, so a seeded run is
        reproducible. Each endpoint draws from its own generator.
        """
        rate = _number(rate, "rate")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate > 0 and not isinstance(fault, Fault):
            raise TypeError("a fault rate above 0 needs a Fault")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError("seed must be an integer or None")
        target = _endpoint(endpoint) if endpoint is not None else None
        if isinstance(fault, Fault):
            if target is not None and target != fault.endpoint:
                raise ValueError("the fault-rate endpoint and its fault's endpoint differ")
            target = fault.endpoint
        target = target or "SendIM"
        with self._lock:
            if rate > 0 and isinstance(fault, Fault):
                rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
                self._fault_rates[target] = _FaultRate(rate, fault, rng)
            else:
                self._fault_rates.pop(target, None)

    def set_fault_rate_from_json(self, data: object) -> None:
        """set_fault_rate from `{"rate": 0.2, "fault": {...}, "seed": 1, "endpoint": "SendIM"}`."""
        if not isinstance(data, dict):
            raise TypeError("fault-rate must be a JSON object")
        unknown = set(data) - {"rate", "fault", "seed", "endpoint"}
        if unknown:
            raise ValueError(f"unknown fault-rate keys: {sorted(unknown)}")
        if "rate" not in data:
            raise ValueError("fault-rate needs a rate")
        fault = Fault.from_json(data["fault"]) if data.get("fault") is not None else None
        endpoint = _endpoint(data["endpoint"]) if data.get("endpoint") is not None else None
        self.set_fault_rate(data["rate"], fault, data.get("seed"), endpoint)

    def reset(self) -> None:
        """Forget ledger, messages, requests and faults; restore the constructor's settings."""
        with self._lock:
            self._config = self._defaults
            self._ledger.clear()
            self._messages.clear()
            self._sms_charges_pending.clear()
            self._requests.clear()
            for queue in self._faults.values():
                queue.clear()
            self._fault_rates.clear()

    # ----- forcing a status --------------------------------------------------------

    def force_status(
        self,
        smsid: int,
        code: int,
        text: str | None = None,
        sms_count: int | None = None,
        charge: float | None = None,
    ) -> None:
        """Give a message a status it keeps from now on: the delivery model stops for it.

        `text` defaults to the provider's text of `code` (required for codes LiveAll
        does not document, e.g. extended network codes); `sms_count` and `charge`
        default to what the message reports now. Forcing never changes the balance,
        and a fallback SMS not yet sent by the model is never charged.
        """
        smsid = _integer(smsid, "smsid", 0)
        code = _integer(code, "code", 1)
        if text is None:
            if code not in STATUS_TEXTS:
                raise ValueError("a status code LiveAll does not document needs a text")
            text = STATUS_TEXTS[code]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        if _TEXT_BREAKERS.search(text):
            raise ValueError("text must not contain ':', '|' or line breaks")
        if sms_count is not None:
            sms_count = _integer(sms_count, "sms_count", 0)
        exact_charge = None if charge is None else Decimal(str(_seconds(charge, "charge")))
        with self._lock:
            message = self._messages.get(smsid)
            if message is None:
                raise ValueError(f"unknown smsid {smsid}")
            now = self._clock()
            self._settle_sms_charges(now)
            current = message.status_at(now)
            message.forced = Status(
                code=code,
                text=text,
                sms_count=current.sms_count if sms_count is None else sms_count,
                charge=current.charge if exact_charge is None else exact_charge,
                reached_at=now,
            )
            self._sms_charges_pending.discard(smsid)

    def force_status_from_json(self, data: object) -> None:
        """force_status from `{"smsid": 20818588, "code": 300005, "text": ..., ...}`."""
        if not isinstance(data, dict):
            raise TypeError("status must be a JSON object")
        unknown = set(data) - FORCE_STATUS_KEYS
        if unknown:
            raise ValueError(f"unknown status keys: {sorted(unknown)}")
        if "smsid" not in data or "code" not in data:
            raise ValueError("status needs an smsid and a code")
        self.force_status(**data)

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

    def status_of(self, smsid: int) -> Status:
        """A message's current status; KeyError for an smsid the sandbox never gave out."""
        with self._lock:
            return self._messages[smsid].status_at(self._clock())

    def messages_json(self) -> list[dict[str, Any]]:
        """Every message with its current status, by smsid, for the HTTP control API."""
        with self._lock:
            now = self._clock()
            return [_message_json(message, message.status_at(now)) for message in self._messages.values()]

    # ----- the provider's side, called by the HTTP handler -------------------------

    def record_request(self, body: Any) -> Fault | None:
        """Record a received SendIM body and pick the fault, if any, that hits it."""
        with self._lock:
            self._requests.append(body)
            return self._pick_fault("SendIM")

    def pick_fault(self, endpoint: Endpoint) -> Fault | None:
        """The fault, if any, that hits this request to a read-only endpoint."""
        with self._lock:
            return self._pick_fault(endpoint)

    def _pick_fault(self, endpoint: Endpoint) -> Fault | None:
        queue = self._faults[endpoint]
        if queue:
            head = queue[0]
            head.remaining -= 1
            if head.remaining == 0:
                queue.popleft()
            return head.fault
        rate = self._fault_rates.get(endpoint)
        if rate is not None and rate.rng.random() < rate.rate:
            return rate.fault
        return None

    def _settle_sms_charges(self, now: float | None = None) -> None:
        """Deduct the fallback SMS charges the delivery model has incurred by now (lock held)."""
        if not self._sms_charges_pending:
            return
        now = self._clock() if now is None else now
        balance = self._config.balance
        for smsid in sorted(self._sms_charges_pending):
            due = self._messages[smsid].sms_charge_due(now)
            if due:
                balance = round(balance - float(due), 4)
                self._sms_charges_pending.discard(smsid)
        self._config = replace(self._config, balance=balance)

    def process_send(self, payload: Any) -> dict[str, Any]:
        """Validate a SendIM body, record it if accepted, and build the JSON answer."""
        with self._lock:
            now = self._clock()
            self._settle_sms_charges(now)
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
            entry = LedgerEntry(payload=payload, smsids=smsids, submission_id=submission_id, received_at=now)
            self._ledger.append(entry)
            for smsid, destination in zip(smsids, destinations, strict=True):
                self._add_message(entry, smsid, destination)
            # Rounded so that many 0.01 deductions do not drift into float noise.
            balance = round(config.balance - COST_PER_MESSAGE * len(destinations), 4)
            self._config = replace(config, balance=balance)
        data: list[Any]
        if config.data_shape == "ids":
            data = smsids
        else:
            data = [{"destination": d, "smsid": i} for d, i in zip(destinations, smsids, strict=True)]
        return {"success": True, "OperationErrors": None, "SubmissionID": submission_id, "data": data}

    def _add_message(self, entry: LedgerEntry, smsid: int, destination: str) -> None:
        payload = entry.payload
        im_type: str = payload["im_type"]
        pricecat: int = payload.get("pricecat") or 0
        message = Message(
            smsid=smsid,
            batch_id=entry.submission_id,
            destination=destination,
            sender_name=payload["im_sender_name"],
            im_type=im_type,
            pricecat=pricecat,
            submitted_at=entry.received_at,
            step_seconds=self._config.delivery_step_seconds,
            path=delivery_path(destination, im_type, payload.get("sms_text") or "", pricecat),
        )
        self._messages[smsid] = message
        if any(step.code == SMS_SENT for step in message.path):
            self._sms_charges_pending.add(smsid)

    def _token_error(self, token: str | None) -> int | None:
        if not token:
            return 39
        return None if token in self._config.tokens else 44

    def status_report(self, token: str | None, smsids: str | None) -> str:
        """GetSMSStatus's plain-text answer: one `:`-separated record per known id, `|`-joined."""
        code = self._token_error(token)
        if code is not None:
            return _error_line(code)
        wanted = parse_smsids(smsids)
        if wanted is None:
            return _error_line(42)
        with self._lock:
            now = self._clock()
            found = [self._messages[i] for i in wanted if i in self._messages]
            records = [status_record(message, message.status_at(now)) for message in found]
        return "|".join(records) if records else _error_line(43)

    def history_report(self, token: str | None, fields: Mapping[str, str]) -> str:
        """GetSMSHistory's plain-text answer: one CRLF-ended line per matching message."""
        code = self._token_error(token)
        if code is not None:
            return _error_line(code)
        try:
            query = parse_history_query(fields)
        except InvalidQueryError:
            return _error_line(59)
        with self._lock:
            now = self._clock()
            lines = [
                history_line(message, message.status_at(now))
                for message in self._messages.values()
                if query.matches(message)
            ]
        return "".join(line + HISTORY_LINE_END for line in lines)

    def balance_report(self, token: str | None, country_prefix: str | None) -> str:
        """GetAccountBalance's plain-text answer; the remaining counts use that country's prices."""
        code = self._token_error(token)
        if code is not None:
            return _error_line(code)
        if country_prefix and not _COUNTRY_PREFIX.fullmatch(country_prefix):
            return _error_line(59)
        balance = Decimal(str(self.balance))
        if not country_prefix:
            normal = low_cost = -1  # the provider's answer when no country is asked for
        elif balance <= 0:
            normal = low_cost = 0
        else:
            price = price_for_country(country_prefix)
            normal = int((balance / price.normal).to_integral_value(ROUND_FLOOR))
            low_cost = int((balance / price.low_cost).to_integral_value(ROUND_FLOOR))
        return f"OK Balance:{balance:.2f}|SmsRemainCount:{normal}|LCSmsRemainCount:{low_cost}"

    def pause(self, seconds: float) -> None:
        """Sleep like a slow provider, but wake at once when the sandbox stops."""
        if seconds > 0:
            self._stopping.wait(seconds)
