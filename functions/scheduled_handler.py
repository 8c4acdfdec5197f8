"""Tracker entry point: invoked on a schedule (every minute), one tracker run each time (gateway.tracker).

A thin adapter: the schedule's event carries nothing the run needs. A run that
fails raises, so Lambda counts the error (the alarm) and the asynchronous
invocation's failure goes to the tracker's dead-letter queue; the next tick
simply runs again (runs are safe to repeat).
"""

from __future__ import annotations

import gc

# Cold start: see api_handler.
gc.disable()

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway.events import EventPublisher
from gateway.lookup import get_queries
from gateway.observability import logger, metrics, tracer
from gateway.send import get_sender
from gateway.settings import get_settings
from gateway.tracker import Tracker


@cache
def get_tracker() -> Tracker | None:
    """The process-wide tracker; None when the function has no tracking table (tracking is off)."""
    settings = get_settings()
    store = get_sender().tracking
    if store is None:
        return None
    publisher = EventPublisher(settings.event_bus_name) if settings.event_bus_name else None
    return Tracker(
        store,
        get_queries(),
        publisher,
        batch_size=settings.status_batch_size,
        poll_seconds=settings.tracking_poll_seconds,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tracker = get_tracker()
    if tracker is None:
        logger.warning("no tracking table is set: nothing to track")
        return {"tracking": False}
    # The lease outlives the invocation's own timeout, so a run cut short frees it by itself.
    run = tracker.run(
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        lease_seconds=context.get_remaining_time_in_millis() // 1000 + 5,
    )
    return dict(vars(run))


gc.freeze()
gc.enable()
