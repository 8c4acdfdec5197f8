"""The scheduled work on one machine: the schedules that run the scheduled function, and the event printer."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from local.functions import FunctionHost
from local.periodic import Periodic


class Schedule(Periodic):
    """EventBridge's part: the scheduled function with one task every `period` seconds, until stopped."""

    def __init__(self, functions: FunctionHost, task: str, period: float, log: logging.Logger) -> None:
        super().__init__(period, f"schedule-{task}")
        self._functions = functions
        self._task = task
        self._log = log

    def run_once(self) -> None:
        try:
            done = self._functions.invoke_scheduled({"task": self._task})
        except Exception:
            if self.stopping:
                return  # stopped in the middle of a run
            self._log.exception("the scheduled function failed (%s)", self._task)
            return
        line = summary(self._task, done)
        if line:
            self._log.info("%s", line)


def summary(task: str, done: dict[str, Any]) -> str | None:
    """One line for a run that did something; None for one that did nothing."""
    if task == "check-balance":
        low = done.get("balance_low_event")
        return f"balance {done['balance']:.2f} EUR: low, Balance Low published" if low else None
    quiet = {"skipped", "oldest_open_age_seconds", "take_in_seconds", "index_seconds", "poll_seconds"}
    quiet |= {"checked", "waiting"}
    worth = {k: v for k, v in done.items() if v and k not in quiet}
    if set(worth) <= {"provider_calls"} or done.get("skipped"):
        return None
    name = "tracker" if task == "track" else "reconciler"
    parts = (f"{k.replace('_', ' ')} {len(v) if isinstance(v, list) else v}" for k, v in worth.items())
    return f"{name} " + ", ".join(parts)


class EventPrinter:
    """Prints each event the emulated bus accepted, one line each, in the order they were published.

    Fed by the emulator's event tap (local.emulator.EventTap) through a queue in memory: printing
    never holds up the function that published.
    """

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._events: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-printer", daemon=True)

    def take(self, events: list[dict[str, Any]]) -> None:
        """The emulator's listener: keep only the gateway's events, on its bus."""
        from gateway import names

        ours = [
            event
            for event in events
            if event.get("source") == names.EVENT_SOURCE
            and event.get("event-bus-name") in (names.EVENT_BUS_NAME, None)
        ]
        if ours:
            self._events.put(ours)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._events.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (events := self._events.get()) is not None:
            for event in events:
                self._log.info("%s", event_line(event))


def event_line(event: dict[str, Any]) -> str:
    """`event Message Status Changed 20818588 delivered (sms, final) ref order-1042`."""
    detail = event.get("detail", {})
    kind = event.get("detail-type")
    if kind == "Send Outcome Resolved":
        smsids = " ".join(str(m["smsid"]) for m in detail.get("messages", [])) or "-"
        ref = f" ref {detail['reference']}" if detail.get("reference") else ""
        key = detail.get("idempotency_key") or "(no key)"
        return f"event {kind} {detail.get('outcome')} key {key} smsids {smsids}{ref}"
    if kind == "Balance Low":
        return f"event {kind} {detail.get('balance')} EUR, below {detail.get('threshold')}"
    if kind in ("Send Scheduled", "Scheduled Send Cancelled"):
        return _schedule_event_line(str(kind), detail)
    if kind == "Spend Ceiling Reached":
        return _ceiling_event_line(str(kind), detail)
    flags = ", ".join(filter(None, [detail.get("channel"), "final" if detail.get("final") else None]))
    parts = [f"event {event.get('detail-type')} {detail.get('smsid')} {detail.get('state')} ({flags})"]
    if detail.get("reason"):
        parts.append(f"reason {detail['reason']}")
    if detail.get("reference"):
        parts.append(f"ref {detail['reference']}")
    return " ".join(parts)


def _schedule_event_line(kind: str, detail: dict[str, Any]) -> str:
    """`event Send Scheduled 8f14e45f... 2 parts, 3 numbers, first at 2026-12-08T07:00:00Z ref order-1042`."""
    parts = detail.get("parts") or []
    count = detail.get("destination_count")
    numbers = f"{count} number{'' if count == 1 else 's'}"
    if kind == "Send Scheduled":
        times = sorted(str(part.get("send_at")) for part in parts if isinstance(part, dict))
        what = f"{len(parts)} part{'' if len(parts) == 1 else 's'}, {numbers}"
        if times:
            what += f", first at {times[0]}"
    else:
        cancelled = detail.get("cancelled_parts") or []
        what = f"{len(cancelled)} part{'' if len(cancelled) == 1 else 's'} cancelled, {numbers}"
    reference = f" ref {detail['reference']}" if detail.get("reference") else ""
    return f"event {kind} {detail.get('schedule_id')} {what}{reference}"


def _ceiling_event_line(kind: str, detail: dict[str, Any]) -> str:
    """`event Spend Ceiling Reached 2026-12-08: 40 EUR of worst-case spend, sends stopped until
    midnight (Europe/Athens)`."""
    ceiling = detail.get("ceiling")
    amount = f"{ceiling:g}" if isinstance(ceiling, int | float) and not isinstance(ceiling, bool) else "?"
    currency = detail.get("currency") or "EUR"
    zone = detail.get("time_zone") or "the stage's time zone"
    return (
        f"event {kind} {detail.get('day')}: {amount} {currency} of worst-case spend, "
        f"sends stopped until midnight ({zone})"
    )
