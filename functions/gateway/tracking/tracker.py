"""The tracker: LiveAll's pull turned into push, one run per schedule tick.

A run takes in what was sent since the last run (one message per destination,
a `Message Accepted` event each), then polls GetSMSStatus in batches for every
open message that is due, records what changed and publishes `Message Status
Changed`, and stops tracking a message once it is final, or once its window
ends (`Message Tracking Ended`). A state change is stored only after its event
went out, so a failed publish is tried again by the next run (at least once).

Messages are polled every minute while young, then less often (`poll_interval`):
a Viber message that is delivered but never seen stays open for the whole window.
One run at a time (a lease in the table), within the time the invocation has.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from gateway import names
from gateway.events import Event, EventPublisher
from gateway.failures import GatewayError, record_failure
from gateway.observability import COUNT, count, gauge, logger
from gateway.provider.queries import ProviderQueries
from gateway.provider.statuses import State, StatusRecord
from gateway.tracking.events import accepted, status_changed, tracking_ended
from gateway.tracking.store import Submission, TrackedMessage, TrackingStore, with_status

if TYPE_CHECKING:
    from gateway.suppression.store import SuppressionStore
    from gateway.tracking.backlog import TrackingBacklog

# Time kept back from the invocation for the last writes and the metrics.
RUN_MARGIN_SECONDS = 10.0
# Where a message ends that says its number cannot take messages, and where one that can.
FAILED_FOR_GOOD = frozenset({State.UNDELIVERED, State.EXPIRED, State.REJECTED, State.FAILED})
DELIVERED = frozenset({State.DELIVERED, State.SEEN})


def poll_interval(age_seconds: float, base_seconds: int) -> int:
    """Seconds until a message of this age is asked about again: the schedule's period while it is
    young (most changes come in the first minutes), then 5 and 30 times less often."""
    if age_seconds < 15 * 60:
        return base_seconds
    if age_seconds < 2 * 3600:
        return 5 * base_seconds
    return 30 * base_seconds


@dataclass
class TrackerRun:
    """What one run did, for its log line, its metrics and the benchmark."""

    skipped: bool = False  # another run held the lease
    kept_written: int = 0  # tracking records sends had kept on the backlog queue, written now
    taken_in: int = 0
    polled: int = 0
    changed: int = 0
    finished: int = 0
    windows_ended: int = 0
    provider_calls: int = 0
    left_for_next_run: int = 0
    oldest_open_age_seconds: int = 0
    events_not_published: int = 0
    # Where the run's time went: taking in, finding what is due (the index), polling.
    take_in_seconds: float = 0.0
    index_seconds: float = 0.0
    poll_seconds: float = 0.0
    suppressed: int = 0  # numbers put on the suppression list for failing again and again
    # (number, failed for good) of each message that ended or was delivered in this run, in order
    deliveries: list[tuple[str, bool]] = field(default_factory=list, repr=False)


class Tracker:
    def __init__(
        self,
        store: TrackingStore,
        queries: ProviderQueries,
        publisher: EventPublisher | None,
        *,
        batch_size: int,
        poll_seconds: int = 60,
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
        suppression: SuppressionStore | None = None,
        suppress_after_failures: int = 0,
        backlog: TrackingBacklog | None = None,
    ) -> None:
        self.backlog = backlog
        self.suppression = suppression
        self.suppress_after_failures = suppress_after_failures
        self.store = store
        self.queries = queries
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.clock = clock

    def run(self, *, seconds_left: Callable[[], float] | None = None, lease_seconds: int = 300) -> TrackerRun:
        run = TrackerRun()
        owner = uuid.uuid4().hex
        if not self.store.acquire_lease(owner, lease_seconds):
            run.skipped = True
            logger.info("another tracker run is in progress; this one stops")
            return run
        try:
            started = time.perf_counter()
            if self.backlog is not None:  # what sends could not record: taken in below, late
                run.kept_written = self.backlog.drain(self.store.write_if_absent, seconds_left=seconds_left)
            self._take_in(run, seconds_left)
            run.take_in_seconds = round(time.perf_counter() - started, 3)
            polled = self._poll(run, seconds_left)
            self._suppress_dead_numbers(run)
        finally:
            self.store.release_lease(owner)
        count(names.METRIC_MESSAGES_POLLED, run.polled)
        count(names.METRIC_STATUS_CHANGES, run.changed)
        count(names.METRIC_TRACKER_PROVIDER_CALLS, run.provider_calls)
        gauge(names.METRIC_TRACKING_BACKLOG, run.left_for_next_run, unit=COUNT)
        if polled:  # a run that only took in knows nothing of the open messages' age
            gauge(names.METRIC_OLDEST_OPEN_MESSAGE_AGE, run.oldest_open_age_seconds)
        logger.info("tracker run", extra={k: v for k, v in vars(run).items() if k != "deliveries"})
        return run

    def _suppress_dead_numbers(self, run: TrackerRun) -> None:
        """Numbers whose messages failed for good N times in a row go on the suppression list.

        Done once per run, after the polling, so that no two workers count one number at once.
        """
        if self.suppression is None or self.suppress_after_failures <= 0 or not run.deliveries:
            return
        added = self.suppression.record_deliveries(run.deliveries, self.suppress_after_failures)
        run.suppressed = len(added)
        if added and self.publisher is not None:
            from gateway.suppression.service import entry_answer

            events = [Event(names.DETAIL_TYPE_DESTINATION_SUPPRESSED, entry_answer(entry)) for entry in added]
            run.events_not_published += self.publisher.publish(events).count(False)

    def _take_in(self, run: TrackerRun, seconds_left: Callable[[], float] | None) -> None:
        """New sends in, a wave of submissions at a time, while the invocation has time for it.

        A backlog (a burst of bulk sends) is taken in over several runs rather than
        cut off by the function's timeout; polling waits for it.
        """
        pending = self.store.pending_submissions()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tracker") as pool:
            for start in range(0, len(pending), self.concurrency):
                if seconds_left is not None and seconds_left() < RUN_MARGIN_SECONDS:
                    left = sum(len(s.messages) for s in pending[start:])
                    run.left_for_next_run += left
                    logger.warning("tracker ran out of time taking in", extra={"left_for_next_run": left})
                    return
                for taken in pool.map(self._take_in_one, pending[start : start + self.concurrency]):
                    run.taken_in += taken.taken_in
                    run.events_not_published += taken.events_not_published

    def _take_in_one(self, submission: Submission) -> TrackerRun:
        taken = TrackerRun()
        published = self._publish([accepted(message) for message in submission.messages], taken)
        if all(published):  # else the next run takes it in (its accepted events may go out twice)
            self.store.take_in(submission)
            taken.taken_in = len(submission.messages)
        return taken

    def _poll(self, run: TrackerRun, seconds_left: Callable[[], float] | None) -> bool:
        if seconds_left is not None and seconds_left() < RUN_MARGIN_SECONDS:
            return False  # taking in used the time: the next run polls
        now = int(self.clock())
        started = time.perf_counter()
        due = self.store.open_messages(due_by=now)
        run.index_seconds = round(time.perf_counter() - started, 3)
        try:
            self._poll_due(run, due, now, seconds_left)
        finally:
            run.poll_seconds = round(time.perf_counter() - started - run.index_seconds, 3)
        return True

    def _poll_due(
        self,
        run: TrackerRun,
        due: list[TrackedMessage],
        now: int,
        seconds_left: Callable[[], float] | None,
    ) -> None:
        batches = [due[i : i + self.batch_size] for i in range(0, len(due), self.batch_size)]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tracker") as pool:
            # A wave of batches at a time, each batch asked, published and stored by one worker.
            for start in range(0, len(batches), self.concurrency):
                if seconds_left is not None and seconds_left() < RUN_MARGIN_SECONDS:
                    left = [message for batch in batches[start:] for message in batch]
                    run.left_for_next_run += len(left)
                    oldest = max(now - message.submitted_at for message in left)
                    run.oldest_open_age_seconds = max(run.oldest_open_age_seconds, oldest)
                    logger.warning("tracker ran out of time", extra={"left_for_next_run": len(left)})
                    return
                wave = batches[start : start + self.concurrency]
                for done in pool.map(lambda batch: self._poll_batch(batch, now), wave):
                    _add(run, done)

    def _poll_batch(self, batch: list[TrackedMessage], now: int) -> TrackerRun:
        done = TrackerRun(provider_calls=1)
        try:
            records = {r.smsid: r for r in self.queries.statuses([message.smsid for message in batch])}
        except GatewayError as error:
            record_failure(error)  # counted in Failures by type: a refused token alarms as misconfigured
            done.left_for_next_run = len(batch)
            return done
        updates: list[tuple[TrackedMessage, int | None, list[Event]]] = []
        for message in batch:
            done.polled += 1
            updated, events = _apply(message, records.get(message.smsid), now)
            interval = poll_interval(now - updated.submitted_at, self.poll_seconds)
            due_at = now + interval if updated.open else None
            if updated.open:
                done.oldest_open_age_seconds = max(done.oldest_open_age_seconds, now - updated.submitted_at)
            if (
                updated != replace(message, polls=updated.polls)
                or due_at is None
                or interval > self.poll_seconds
            ):
                updates.append((updated, due_at, events))
            # else: unchanged and young: it stays due, and is asked about again next run
        published = self._publish([event for _, _, events in updates for event in events], done)
        stored: list[tuple[TrackedMessage, int | None]] = []
        position = 0
        for updated, due_at, events in updates:
            went_out = published[position : position + len(events)]
            position += len(events)
            if not all(went_out):
                continue  # stored later, after its events went out
            stored.append((updated, due_at))
            if updated.state != message.state:
                if updated.final and updated.state in FAILED_FOR_GOOD:
                    done.deliveries.append((updated.destination, True))
                elif updated.state in DELIVERED and message.state not in DELIVERED:
                    done.deliveries.append((updated.destination, False))
            done.changed += sum(event.detail_type == names.DETAIL_TYPE_STATUS_CHANGED for event in events)
            done.finished += updated.final
            done.windows_ended += updated.tracking_ended
        self.store.save_many(stored)
        return done

    def _publish(self, events: list[Event], run: TrackerRun) -> list[bool]:
        if self.publisher is None or not events:
            return [True] * len(events)
        published = self.publisher.publish(events)
        run.events_not_published += published.count(False)
        return published


def _add(run: TrackerRun, done: TrackerRun) -> None:
    for name in ("taken_in", "polled", "changed", "finished", "windows_ended", "provider_calls"):
        setattr(run, name, getattr(run, name) + getattr(done, name))
    run.left_for_next_run += done.left_for_next_run
    run.events_not_published += done.events_not_published
    run.deliveries += done.deliveries
    run.oldest_open_age_seconds = max(run.oldest_open_age_seconds, done.oldest_open_age_seconds)


def _apply(
    message: TrackedMessage, record: StatusRecord | None, now: int
) -> tuple[TrackedMessage, list[Event]]:
    """The message after this poll, and the events that say what changed."""
    updated = replace(message, polls=message.polls + 1)
    events: list[Event] = []
    if record is not None:
        updated = with_status(updated, record)
        # An event when where it stands changes; a new code or charge alone is only stored.
        if (updated.state, updated.channel, updated.final) != (message.state, message.channel, message.final):
            events.append(status_changed(updated, message))
    if not updated.final and now >= updated.tracking_until:
        updated = replace(updated, tracking_ended=True)
        events.append(tracking_ended(updated))
    return updated, events
