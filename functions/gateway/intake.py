"""A message in, from any source: checked against the stage's policy, then scheduled for later, or
sent now; at most once per key.

The API and the queue hand every message here. A request that asks for a time (send_at),
or that a send window applies to (its own, or the stage's), is offered to the schedules
first; one that is not scheduled is sent. Under an idempotency key both happen inside the
one idempotency record of that key (gateway.sending.idempotency), so a key names one outcome: a
retry replays the schedule or the send, even when the clock would now decide otherwise,
and the same key with another message is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway import names
from gateway.guard.policy import check_destinations
from gateway.sending.request import SendRequest
from gateway.sending.segments import fallback_sms
from gateway.sending.send import Answer, get_sender, send_counted
from gateway.settings import get_settings


def accept(
    request: SendRequest,
    *,
    idempotency_key: str | None,
    seconds_left: Callable[[], float] | None,
    key_source: str = names.IDEMPOTENCY_KEY_HEADER,
    caller: str = names.QUEUE_CALLER,
) -> Answer:
    """POST /messages: schedule it, or send it now (once per caller's key); GatewayError as the
    taxonomy says."""
    if idempotency_key is None:
        check_destinations(request.destinations, request.position_of)
        scheduled = _scheduler(request, None, "api")
        answer = scheduled() if scheduled is not None else None
        if answer is not None:
            return answer
        give_back = reserve_for(request, caller)()
        attempt = send_counted(lambda: get_sender().send(request, seconds_left=seconds_left), give_back)
        return Answer(attempt.answer(), replayed=False)
    # The idempotency store (Powertools idempotency, a DynamoDB client) loads with the first keyed send.
    from gateway.sending.idempotency import explicit_key

    key = explicit_key(idempotency_key, source=key_source)
    return accept_keyed(request, key=key, seconds_left=seconds_left, origin="api", caller=caller)


def accept_keyed(
    request: SendRequest,
    *,
    key: str,
    seconds_left: Callable[[], float] | None,
    origin: str,
    message_id: str | None = None,
    caller: str = names.QUEUE_CALLER,
) -> Answer:
    """Schedule or send `request` once under the store key `key` (a caller's, or a queue message's)."""
    from gateway.sending.idempotency import get_idempotent_sender

    check_destinations(request.destinations, request.position_of)
    return get_idempotent_sender().send(
        request,
        key=key,
        seconds_left=seconds_left,
        origin=origin,
        message_id=message_id,
        schedule=_scheduler(request, key, origin),
        reserve=reserve_for(request, caller),
    )


def reserve_for(request: SendRequest, caller: str) -> Callable[[], Callable[[], None] | None]:
    """Counting `request` against the caps just before it is sent (gateway.guard.caps)."""
    if get_settings().usage_table is None:
        return _nothing_counted
    # The caps' code (and the DynamoDB client it makes) loads with the first send a stage counts.
    from gateway.guard.caps import reserve_for as caps_reserve_for

    sms = fallback_sms(request)
    segments = sms["segments"] if sms else None
    return caps_reserve_for(caller, request.destinations, segments, request.pricecat == 1)


def may_be_scheduled(request: SendRequest) -> bool:
    """Whether the request asks for a time (send_at) or a send window applies (its own, the stage's)."""
    if request.send_at is not None:
        return True
    if request.window is False:
        return False
    return request.window is not None or get_settings().send_window is not None


def _scheduler(request: SendRequest, key: str | None, origin: str) -> Callable[[], Answer | None] | None:
    if not may_be_scheduled(request):
        return None

    def schedule() -> Answer | None:
        # The schedules' code (zones, the table, Scheduler's client) loads with the first such request.
        from gateway.schedules.service import get_schedules

        return get_schedules().create(request, store_key=key, origin=origin)

    return schedule


def _nothing_counted() -> None:
    return None
