"""Reconciliation: for each send whose outcome is unknown, find out from LiveAll whether it went out.

For each unsettled provider request (gateway.tracking.store.UnknownSend) the reconciler
asks GetSMSHistory for the Athens days its time window touches (by sender, and
by destination when they are few), then GetSMSStatus for when each candidate
was submitted. The matching rules, per destination:

- a candidate is a history line with that destination and sender, submitted
  within the window the send ran in (`started_at` - skew .. `finished_at` + skew);
- candidates already matched to another send, in this run or earlier, are not
  candidates again; sends are matched oldest first, and each takes the earliest
  unmatched candidate;
- a send whose destinations each have exactly one candidate, all of one batch
  (one SendIM is one batch), was **sent**, with those ids;
- a send none of whose destinations has a candidate once the grace period has
  passed since it ran was **not sent** (before that, it waits: the history may lag);
- anything else (more candidates than the send has destinations: another system
  sending to the same number, or a retry; some destinations found and not others;
  several batches) is **ambiguous**: never guessed, reported with its candidates,
  counted (an alarm), and looked at again by each run until an operator dismisses it.

Then, for a send that was sent: its idempotency record becomes the true answer
(a retry replays the 200 with the ids), its messages enter delivery tracking,
its dead letter (queue) is deleted. For one that was not sent: its record is
removed (a retry sends), or says so if other parts of the send went out, and
its dead letter goes back to the queue, where it is sent once. Each settled
send is a `Send Outcome Resolved` event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway import names
from gateway.events import Event, EventPublisher, iso
from gateway.failures import Failure, GatewayError, record_failure
from gateway.observability import COUNT, count_by, gauge, logger
from gateway.provider.client import SendResult, SentMessage
from gateway.provider.history import HistoryRecord, submit_dates
from gateway.provider.queries import ProviderQueries
from gateway.tracking.store import RECONCILE_LEASE_ID, TrackingStore, UnknownSend

SENT, NOT_SENT, WAIT, AMBIGUOUS = "sent", "not-sent", "wait", "ambiguous"
# Destinations up to this many are looked up one by one; more, by sender only, matched here.
MAX_DESTINATION_QUERIES = 10
STATUS_BATCH = 100


@dataclass(frozen=True, slots=True)
class Candidate:
    smsid: str
    destination: str
    batch_id: str
    submitted_at: float | None  # unix seconds, from GetSMSStatus


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # SENT, NOT_SENT, WAIT or AMBIGUOUS
    smsids: dict[str, str] = field(default_factory=dict)  # destination -> smsid, when sent
    batch_id: str | None = None
    candidates: list[Candidate] = field(default_factory=list)  # when ambiguous
    why: str = ""


def judge(
    sends: list[UnknownSend],
    candidates: list[Candidate],
    *,
    now: float,
    grace_seconds: float,
    skew_seconds: float,
    claimed: set[str] | None = None,
) -> dict[str, Verdict]:
    """The verdict for each send (by id), by the rules above. Pure: the reconciler feeds it."""
    taken = set(claimed or ())
    verdicts: dict[str, Verdict] = {}
    ordered = sorted(sends, key=lambda send: (send.started_at, send.chunk_index, send.id))
    for send in ordered:
        low, high = send.started_at - skew_seconds, send.finished_at + skew_seconds
        mine: dict[str, list[Candidate]] = {
            destination: sorted(
                (
                    c
                    for c in candidates
                    if c.destination == destination
                    and c.smsid not in taken
                    and c.submitted_at is not None
                    and low <= c.submitted_at <= high
                ),
                key=lambda c: int(c.smsid),
            )
            for destination in send.destinations
        }
        # Other unsettled sends to a destination, in a window that overlaps this one: they may
        # take the later candidates (earliest unmatched first); more than there are sends is ambiguous.
        rivals = {
            destination: sum(
                1
                for other in ordered
                if other.id != send.id
                and destination in other.destinations
                and other.started_at >= send.started_at
                and other.started_at - skew_seconds <= high
            )
            for destination in send.destinations
        }
        found = {d: found_for_d for d, found_for_d in mine.items() if found_for_d}
        too_many = [d for d, found_for_d in found.items() if len(found_for_d) > 1 + rivals[d]]
        found_all = [c for found_for_d in found.values() for c in found_for_d]
        if too_many:
            verdicts[send.id] = Verdict(
                AMBIGUOUS,
                candidates=found_all,
                why=f"more candidates than sends for {len(too_many)} number(s)",
            )
            continue
        if not found:
            settled = now >= send.finished_at + grace_seconds
            verdicts[send.id] = Verdict(NOT_SENT if settled else WAIT, why="no candidate in the history")
            continue
        chosen = {d: found_for_d[0] for d, found_for_d in found.items()}
        batches = {c.batch_id for c in chosen.values()}
        if len(chosen) < len(send.destinations):
            # One SendIM is all or nothing: part found means the history lags, or it is not ours.
            waiting = now < send.finished_at + grace_seconds
            verdicts[send.id] = (
                Verdict(WAIT, why="part of the destinations found")
                if waiting
                else Verdict(AMBIGUOUS, candidates=found_all, why="only part of the destinations found")
            )
            continue
        if len(batches) > 1:
            verdicts[send.id] = Verdict(AMBIGUOUS, candidates=found_all, why="candidates of several batches")
            continue
        taken.update(c.smsid for c in chosen.values())
        verdicts[send.id] = Verdict(
            SENT, smsids={d: c.smsid for d, c in chosen.items()}, batch_id=next(iter(batches))
        )
    return verdicts


@dataclass
class ReconcileReport:
    skipped: bool = False  # another run held the lease
    checked: int = 0
    sent: int = 0
    not_sent: int = 0
    waiting: int = 0
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    provider_calls: int = 0
    dismissed: int = 0
    answers_saved: int = 0  # answers the idempotency store took only now

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "checked": self.checked,
            "sent": self.sent,
            "not_sent": self.not_sent,
            "waiting": self.waiting,
            "ambiguous": self.ambiguous,
            "provider_calls": self.provider_calls,
            "dismissed": self.dismissed,
            "answers_saved": self.answers_saved,
        }


class Reconciler:
    def __init__(
        self,
        store: TrackingStore,
        queries: ProviderQueries,
        *,
        settle_record: Callable[[UnknownSend, SendResult | GatewayError], None] | None,
        save_answer: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None,
        dead_letters: Any | None,
        publisher: EventPublisher | None,
        grace_seconds: float,
        skew_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queries = queries
        self.settle_record = settle_record  # gateway.sending.idempotency: the record becomes the true answer
        self.save_answer = save_answer  # gateway.sending.idempotency: an answer the store could not take then
        self.dead_letters = dead_letters  # gateway.sending.dead_letters.DeadLetters: delete or send back
        self.publisher = publisher
        self.grace_seconds = grace_seconds
        self.skew_seconds = skew_seconds
        self.clock = clock

    def run(self, *, dismiss: list[str] | None = None, lease_seconds: int = 300) -> ReconcileReport:
        """One run; while another holds the lease (a scheduled run and `make reconcile` at once), none."""
        owner = uuid.uuid4().hex
        if not self.store.acquire_lease(owner, lease_seconds, RECONCILE_LEASE_ID):
            logger.info("another reconciliation run is in progress; this one stops")
            return ReconcileReport(skipped=True)
        try:
            return self._run(dismiss)
        finally:
            self.store.release_lease(owner, RECONCILE_LEASE_ID)

    def _run(self, dismiss: list[str] | None) -> ReconcileReport:
        report = ReconcileReport()
        self._save_answers(report)
        sends = self.store.open_unknowns()
        for send in [s for s in sends if s.id in set(dismiss or ())]:
            self.store.save_unknown(replace(send, status="dismissed", checked_at=self.clock()))
            report.dismissed += 1
            logger.info("ambiguous outcome dismissed by an operator", extra={"unknown_id": send.id})
        sends = [s for s in sends if s.id not in set(dismiss or ())]
        report.checked = len(sends)
        if not sends:
            gauge(names.METRIC_UNRESOLVED_AMBIGUOUS, 0, unit=COUNT)
            return report
        try:
            candidates = self._candidates(sends, report)
        except GatewayError as error:
            record_failure(error)
            logger.error(
                "reconciliation could not ask the provider", extra={"failure_type": error.failure.info.slug}
            )
            report.waiting = len(sends)
            return report
        verdicts = judge(
            sends,
            candidates,
            now=self.clock(),
            grace_seconds=self.grace_seconds,
            skew_seconds=self.skew_seconds,
        )
        dead_letters: list[tuple[UnknownSend, bool]] = []
        for send in sends:
            verdict = verdicts[send.id]
            if verdict.outcome == SENT:
                self._sent(send, verdict)
                report.sent += 1
            elif verdict.outcome == NOT_SENT:
                self._not_sent(send)
                report.not_sent += 1
            elif verdict.outcome == AMBIGUOUS:
                report.ambiguous.append(self._ambiguous(send, verdict))
            else:
                report.waiting += 1
            if verdict.outcome in (SENT, NOT_SENT) and send.origin == "queue":
                dead_letters.append((send, verdict.outcome == SENT))
        if dead_letters and self.dead_letters is not None:
            # Deleted when sent; back to the queue when not, where it is sent once (its record is gone).
            self.dead_letters.settle(dead_letters)
        gauge(names.METRIC_UNRESOLVED_AMBIGUOUS, len(report.ambiguous), unit=COUNT)
        logger.info("reconciliation run", extra=report.as_dict())
        return report

    def _save_answers(self, report: ReconcileReport) -> None:
        """Answers the idempotency store could not take just after their send: into the store now."""
        if self.save_answer is None:
            return
        for key, payload, record in self.store.unsaved_answers():
            try:
                self.save_answer(key, payload, record)
            except Exception as error:
                logger.warning(
                    "the idempotency store still refuses an answer", extra={"reason": type(error).__name__}
                )
                continue
            self.store.forget_unsaved_answer(key)
            report.answers_saved += 1

    # ----- asking LiveAll -----------------------------------------------------------------------

    def _candidates(self, sends: list[UnknownSend], report: ReconcileReport) -> list[Candidate]:
        lines: dict[str, HistoryRecord] = {}
        for send in sends:
            for record in self._history(send, report):
                if record.senderid == send.sender and record.destination in send.destinations:
                    lines[record.smsid] = record  # a line repeated in the history counts once
        # An id the gateway already holds (a tracked message, or one a settled send took) is another
        # send's, never a candidate.
        for smsid in self.store.get_many(list(lines)):
            lines.pop(smsid, None)
        submitted: dict[str, float | None] = {}
        ids = sorted(lines, key=int)
        for start in range(0, len(ids), STATUS_BATCH):
            report.provider_calls += 1
            for status in self.queries.statuses(ids[start : start + STATUS_BATCH]):
                submitted[status.smsid] = status.submitted_at.timestamp() if status.submitted_at else None
        return [
            Candidate(smsid, record.destination, record.batch_id, submitted.get(smsid))
            for smsid, record in lines.items()
        ]

    def _history(self, send: UnknownSend, report: ReconcileReport) -> list[HistoryRecord]:
        low = datetime.fromtimestamp(send.started_at - self.skew_seconds, UTC)
        high = datetime.fromtimestamp(send.finished_at + self.skew_seconds, UTC)
        by_destination = len(send.destinations) <= MAX_DESTINATION_QUERIES
        found: list[HistoryRecord] = []
        for day in submit_dates(low, high):
            filters = [{"destination": d} for d in send.destinations] if by_destination else [{}]
            for extra in filters:
                report.provider_calls += 1
                found.extend(self.queries.history({"submit_date": day, "senderid": send.sender, **extra}))
        return found

    # ----- acting on a verdict ------------------------------------------------------------------

    def _sent(self, send: UnknownSend, verdict: Verdict) -> None:
        messages = [SentMessage(d, int(verdict.smsids[d])) for d in send.destinations]
        # The history's batch is SendIM's SubmissionID, which the send answer gives as a number.
        batch = verdict.batch_id
        result = SendResult(int(batch) if batch and batch.isdigit() else batch or None, messages)
        if self.settle_record is not None and send.key is not None:
            self.settle_record(send, result)
        self.store.record_sent([result], reference=send.reference, sms_fallback=send.sms_fallback)
        self._resolved(send, SENT, messages)
        self.store.save_unknown(
            replace(
                send, status=SENT, checked_at=self.clock(), resolved_smsids=[str(m.smsid) for m in messages]
            )
        )
        count_by(names.METRIC_UNKNOWN_RESOLVED, "outcome", SENT)

    def _not_sent(self, send: UnknownSend) -> None:
        when = iso(int(self.clock()))
        not_sent = GatewayError(
            Failure.PROVIDER_FAILED,
            f"LiveAll has no record of these destinations (reconciled at {when}): they were not sent.",
        )
        if self.settle_record is not None and send.key is not None:
            self.settle_record(send, not_sent)
        self._resolved(send, NOT_SENT, [])
        self.store.save_unknown(replace(send, status=NOT_SENT, checked_at=self.clock()))
        count_by(names.METRIC_UNKNOWN_RESOLVED, "outcome", NOT_SENT)

    def _ambiguous(self, send: UnknownSend, verdict: Verdict) -> dict[str, Any]:
        candidates = [
            {
                "smsid": c.smsid,
                "destination": c.destination,
                "batch_id": c.batch_id,
                "submitted_at": iso(None if c.submitted_at is None else int(c.submitted_at)),
            }
            for c in verdict.candidates
        ]
        self.store.save_unknown(
            replace(send, status=AMBIGUOUS, candidates=candidates, checked_at=self.clock())
        )
        reported = {
            "unknown_id": send.id,
            "idempotency_key": send.key,
            "reference": send.reference,
            "destinations": send.destinations,
            "started_at": iso(int(send.started_at)),
            "why": verdict.why,
            "candidates": candidates,
        }
        logger.warning("outcome ambiguous: not guessed", extra=reported)
        return reported

    def _resolved(self, send: UnknownSend, outcome: str, messages: list[SentMessage]) -> None:
        if self.publisher is None:
            return
        detail = {
            "outcome": outcome,
            "idempotency_key": None if send.key is None else send.key.removeprefix("key:"),
            "reference": send.reference,
            "destinations": send.destinations,
            "messages": [{"destination": m.destination, "smsid": m.smsid} for m in messages],
            "started_at": iso(int(send.started_at)),
            "origin": send.origin,
        }
        self.publisher.publish([Event(names.DETAIL_TYPE_OUTCOME_RESOLVED, detail)])
