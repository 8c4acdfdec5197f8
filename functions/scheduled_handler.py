"""Scheduled entry point: each schedule invokes it with its task, `{"task": "track"}` and so on.

A thin adapter over three use cases: `track` (gateway.tracking.tracker, every minute),
`reconcile` (gateway.reconciliation.reconciler, every five; also on demand, with `"dismiss"`:
ids of ambiguous cases an operator settled), `check-balance` (gateway.account).
An event without a task (a rule's plain scheduled event) is a tracker run. A
failed run raises, so Lambda counts the error (an alarm) and the asynchronous
invocation's failure goes to the function's dead-letter queue; the next tick
runs again (every task is safe to repeat).
"""

from __future__ import annotations

import gc

# Cold start: see api_handler.
gc.disable()

from functools import cache
from typing import TYPE_CHECKING, Any

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.observability import logger, metrics, tracer
from gateway.provider.queries import get_queries
from gateway.sending.send import get_sender
from gateway.settings import get_settings

# Each task's code is loaded by its first run: a container that only tracks never loads the
# reconciler (nor the idempotency store it settles).
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from gateway.account.balance import BalanceCheck
    from gateway.events import EventPublisher
    from gateway.reconciliation.reconciler import Reconciler
    from gateway.tracking.tracker import Tracker


def get_publisher() -> EventPublisher | None:
    from gateway.events import get_publisher as publisher  # loaded with the first task that publishes

    return publisher()


@cache
def get_tracker() -> Tracker | None:
    """The process-wide tracker; None when the function has no tracking table (tracking is off)."""
    from gateway.tracking.tracker import Tracker

    settings = get_settings()
    store = get_sender().tracking
    if store is None:
        return None
    return Tracker(
        store,
        get_queries(),
        get_publisher(),
        batch_size=settings.status_batch_size,
        poll_seconds=settings.tracking_poll_seconds,
        suppression=get_sender().suppression,
        suppress_after_failures=settings.auto_suppress_after_failures,
        backlog=get_sender().backlog,
    )


@cache
def get_reconciler() -> Reconciler | None:
    from gateway.reconciliation.reconciler import Reconciler
    from gateway.sending.dead_letters import DeadLetters
    from gateway.sending.idempotency import get_idempotent_sender

    settings = get_settings()
    store = get_sender().tracking
    if store is None:
        return None
    dead_letters = (
        DeadLetters(settings.dead_letter_queue_url, settings.queue_url)
        if settings.dead_letter_queue_url
        else None
    )
    return Reconciler(
        store,
        get_queries(),
        settle_record=get_idempotent_sender().settle,
        save_answer=get_idempotent_sender().save_answer,
        dead_letters=dead_letters,
        publisher=get_publisher(),
        grace_seconds=settings.reconcile_grace_seconds,
        skew_seconds=settings.reconcile_skew_seconds,
    )


@cache
def get_balance_check() -> BalanceCheck:
    from gateway.account.balance import BalanceCheck

    settings = get_settings()
    return BalanceCheck(
        get_queries(), get_publisher(), get_sender().tracking, threshold=settings.low_balance_euros
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = event.get("task", names.TASK_TRACK) if isinstance(event, dict) else names.TASK_TRACK
    if task == names.TASK_TRACK:
        tracker = get_tracker()
        if tracker is None:
            logger.warning("no tracking table is set: nothing to track")
            return {"tracking": False}
        # The lease outlives the invocation's own timeout, so a run cut short frees it by itself.
        run = tracker.run(
            seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
            lease_seconds=context.get_remaining_time_in_millis() // 1000 + 5,
        )
        return {name: value for name, value in vars(run).items() if name != "deliveries"}
    if task == names.TASK_RECONCILE:
        reconciler = get_reconciler()
        if reconciler is None:
            logger.warning("no tracking table is set: nothing to reconcile")
            return {"tracking": False}
        dismiss = event.get("dismiss") or []
        return reconciler.run(
            dismiss=[str(item) for item in dismiss],
            lease_seconds=context.get_remaining_time_in_millis() // 1000 + 5,
        ).as_dict()
    if task == names.TASK_CHECK_BALANCE:
        return get_balance_check().run()
    raise GatewayError(Failure.INVALID_REQUEST, f"No such task: {str(task)[:40]}")


gc.freeze()
gc.enable()
