"""The send use case: one validated request in, the provider's message ids out.

The API handler, the queue handler and the local runner all call `Sender.send`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway import names
from gateway.failures import Failure, GatewayError, invalid_request
from gateway.fields import FieldError, describe_errors
from gateway.observability import configure, count, logger
from gateway.phone import mask
from gateway.provider.client import ProviderClient, ProviderRejected, SendResult
from gateway.provider.connection import get_client, get_token_source
from gateway.provider.token import TokenSource
from gateway.sending.body import read_json_object
from gateway.sending.request import SendRequest
from gateway.sending.segments import fallback_sms
from gateway.settings import get_settings

if TYPE_CHECKING:  # the tables' code loads with their stores, when the stage has them
    from gateway.suppression.rules import Suppressed
    from gateway.suppression.store import SuppressionStore
    from gateway.tracking.backlog import TrackingBacklog
    from gateway.tracking.store import TrackingStore

# Enough masked numbers in a log line to trace a message, not a phone book.
LOGGED_DESTINATIONS = 10


@dataclass(frozen=True, slots=True)
class SendAttempt:
    """What one send did, provider request by provider request (a chunk of the destinations each).

    Its answer is recomputed from it alone, so the idempotency store keeps a compact copy
    (gateway.sending.idempotency) and a replay answers exactly what the first call answered.
    """

    chunks: list[list[str]]
    outcomes: list[SendResult | GatewayError]
    duplicates_removed: int
    reference: str | None = None  # the caller's, echoed in the answer
    sms: dict[str, Any] | None = None  # the fallback SMS's segments (gateway.sending.segments.fallback_sms)
    suppressed: tuple[Suppressed, ...] = ()  # destinations the suppression list left out, and why

    @property
    def all_suppressed(self) -> bool:
        """Every destination was on the list: nothing was sent, and the answer says so."""
        return not self.chunks and bool(self.suppressed)

    @property
    def sent(self) -> list[SendResult]:
        return [outcome for outcome in self.outcomes if isinstance(outcome, SendResult)]

    @property
    def failed(self) -> list[tuple[list[str], GatewayError]]:
        return [
            (chunk, outcome)
            for chunk, outcome in zip(self.chunks, self.outcomes, strict=True)
            if isinstance(outcome, GatewayError)
        ]

    @property
    def may_have_sent(self) -> bool:
        """Whether any destination may have reached the provider (then a retry must not send again)."""
        return bool(self.sent) or any(error.failure.info.may_have_sent for _, error in self.failed)

    def answer(self) -> dict[str, Any]:
        """The 200 body; raises the failure (or PartiallySent) as the caller must hear it."""
        sent, failed = self.sent, self.failed
        if self.all_suppressed:
            raise AllSuppressed(self.suppressed, self.reference)
        if not failed:
            answer: dict[str, Any] = {
                "submission_id": sent[0].submission_id,
                "messages": _messages(sent),
                "duplicates_removed": self.duplicates_removed,
            }
            if len(sent) > 1:
                answer["submission_ids"] = [result.submission_id for result in sent]
            if self.reference is not None:
                answer["reference"] = self.reference
            if self.sms is not None:
                answer["sms"] = self.sms
            if self.suppressed:
                answer["suppressed"] = [item.as_dict() for item in self.suppressed]
            return answer
        kinds = {error.failure for _, error in failed}
        if not sent and len(kinds) == 1 and not self.suppressed:
            raise failed[0][1]
        # Some sent, or failures of different kinds (one of which may have sent): say which is which.
        raise PartiallySent(sent, failed, self.reference, self.suppressed)


class AllSuppressed(GatewayError):
    """Every destination is on the suppression list: nothing was sent."""

    def __init__(self, suppressed: tuple[Suppressed, ...], reference: str | None = None) -> None:
        reasons = sorted({item.reason for item in suppressed})
        super().__init__(
            Failure.ALL_SUPPRESSED,
            f"Every destination is on the suppression list ({', '.join(reasons)}); nothing was sent. "
            "suppressed says which and why; sending again changes nothing until the list does.",
            extra={
                "suppressed": [item.as_dict() for item in suppressed],
                **({"reference": reference} if reference is not None else {}),
            },
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a send: the body, and whether it was replayed from the idempotency store.

    A send that was scheduled instead (gateway.schedules) is a 202 naming its schedule.
    """

    body: dict[str, Any]
    replayed: bool
    status: int = 200
    schedule_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendContext:
    """Where a send comes from, for what must find it again (the reconciliation of an unknown outcome)."""

    key: str | None = None  # its idempotency store key, if any
    origin: str = "api"  # "api" or "queue"
    message_id: str | None = None  # the queue: the id its dead letter carries as SourceMessageId


class PartiallySent(GatewayError):
    """Some chunks of a long destination list were sent and others not: exactly which is in the problem."""

    def __init__(
        self,
        sent: list[SendResult],
        failed: list[tuple[list[str], GatewayError]],
        reference: str | None = None,
        suppressed: tuple[Suppressed, ...] = (),
    ) -> None:
        sent_count = sum(len(result.messages) for result in sent)
        unsent_count = sum(len(destinations) for destinations, _ in failed)
        first = failed[0][1]
        super().__init__(
            Failure.PARTIALLY_SENT,
            f"{sent_count} of {sent_count + unsent_count} destinations were sent; {unsent_count} were not "
            f"({first.detail}) Send only those in not_sent again, as a new message.",
            provider_code=first.provider_code,
            provider_message=first.provider_message,
            extra={
                "submission_ids": [result.submission_id for result in sent],
                "messages": _messages(sent),
                "not_sent": [
                    {"destination": destination, "type": error.failure.info.problem_type}
                    for destinations, error in failed
                    for destination in destinations
                ],
                **({"reference": reference} if reference is not None else {}),
                **({"suppressed": [item.as_dict() for item in suppressed]} if suppressed else {}),
            },
        )


def send_counted(send: Callable[[], SendAttempt], give_back: Callable[[], None] | None) -> SendAttempt:
    """A send counted against the caps (gateway.guard.caps): its count goes back when the send
    raised, or when nothing of it may have reached LiveAll."""
    try:
        attempt = send()
    except Exception:
        if give_back is not None:
            give_back()
        raise
    if give_back is not None and not attempt.may_have_sent:
        give_back()
    return attempt


def _messages(results: list[SendResult]) -> list[dict[str, Any]]:
    return [{"destination": m.destination, "smsid": m.smsid} for result in results for m in result.messages]


class Sender:
    """Sends validated requests with the current token, refreshing it once if the provider refuses it.

    A long destination list is split into provider requests of `chunk_size`, sent
    concurrently (at most `max_concurrency` at once); the answer keeps the order.
    """

    def __init__(
        self,
        token_source: TokenSource,
        client: ProviderClient,
        *,
        chunk_size: int = 1000,
        max_concurrency: int = 4,
        tracking: TrackingStore | None = None,
        suppression: SuppressionStore | None = None,
        backlog: TrackingBacklog | None = None,
    ) -> None:
        self.token_source = token_source
        self.client = client
        self.chunk_size = chunk_size
        self.max_concurrency = max_concurrency
        self.tracking = tracking
        self.suppression = suppression
        self.backlog = backlog

    def send(
        self,
        request: SendRequest,
        *,
        seconds_left: Callable[[], float] | None = None,
        context: SendContext | None = None,
    ) -> SendAttempt:
        """Send `request`; never raises once a provider request has gone out (the attempt says it all)."""
        started = time.time()
        destinations = request.destinations
        suppressed = self._suppressed(request)
        if suppressed:
            left_out = {item.destination for item in suppressed}
            destinations = [destination for destination in destinations if destination not in left_out]
            if not destinations:
                return SendAttempt(
                    [], [], request.duplicates_removed, request.reference, fallback_sms(request), suppressed
                )
        chunks = [destinations[i : i + self.chunk_size] for i in range(0, len(destinations), self.chunk_size)]
        base_payload = request.provider_payload(self.token_source.get())
        outcomes = self._send_chunks(base_payload, chunks, seconds_left)
        refused = [i for i, outcome in enumerate(outcomes) if _is_token_error(outcome)]
        if refused:
            # A rotated token: read the secret again and try those chunks once more (nothing was sent).
            logger.warning("provider refused the token; reading the secret again")
            try:
                base_payload = {**base_payload, "apitoken": self.token_source.get(refresh=True)}
            except GatewayError as error:
                retried: list[SendResult | GatewayError] = [error] * len(refused)
            else:
                retried = self._send_chunks(base_payload, [chunks[i] for i in refused], seconds_left)
            for index, outcome in zip(refused, retried, strict=True):
                outcomes[index] = outcome
        attempt = SendAttempt(
            chunks, outcomes, request.duplicates_removed, request.reference, fallback_sms(request), suppressed
        )
        if attempt.sent:
            self._record_sent(attempt.sent, request.duplicates_removed)
            self._track(attempt.sent, request)
        if any(error.failure is Failure.OUTCOME_UNKNOWN for _, error in attempt.failed):
            self._record_unknown(attempt, request, context or SendContext(), started)
        return attempt

    def _suppressed(self, request: SendRequest) -> tuple[Suppressed, ...]:
        """What the suppression list stops of this send (GatewayError if the list cannot be read)."""
        if self.suppression is None:
            return ()
        try:
            found = self.suppression.check(request.destinations, request.im_sender_name)
        except Exception as error:
            # Unread, the list could let an opt-out through: nothing is sent, and the queue retries.
            logger.error("suppression list unreadable", extra={"reason": type(error).__name__})
            raise GatewayError(
                Failure.MISCONFIGURED, "The suppression list cannot be read; nothing was sent."
            ) from None
        if found:
            count(names.METRIC_SUPPRESSED_DESTINATIONS, len(found))
            logger.info(
                "suppressed destinations left out",
                extra={
                    "count": len(found),
                    "destinations": [mask(s.destination) for s in found[:LOGGED_DESTINATIONS]],
                },
            )
        return tuple(found)

    def _send_chunks(
        self, base_payload: dict[str, Any], chunks: list[list[str]], seconds_left: Callable[[], float] | None
    ) -> list[SendResult | GatewayError]:
        def send_chunk(chunk: list[str]) -> SendResult | GatewayError:
            try:
                return self.client.send_im(
                    {**base_payload, "destinations": chunk},
                    seconds_left=seconds_left() if seconds_left else None,
                )
            except GatewayError as error:
                return error
            except Exception as error:
                # The client turns whatever happens once the request may be out into outcome-unknown,
                # so this failed before anything was sent for these destinations.
                logger.exception("provider request not made", extra={"reason": type(error).__name__})
                return GatewayError(
                    Failure.INTERNAL_ERROR,
                    f"The gateway failed before sending ({type(error).__name__}); nothing was sent.",
                )

        if len(chunks) == 1:
            return [send_chunk(chunks[0])]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks))) as pool:
            return list(pool.map(send_chunk, chunks))

    def _record_sent(self, sent: list[SendResult], duplicates_removed: int) -> None:
        # The messages are out: a failure to log or count them must not turn into a failed send.
        try:
            messages = [m for result in sent for m in result.messages]
            count(names.METRIC_MESSAGES_ACCEPTED)
            count(names.METRIC_DESTINATIONS_SENT, len(messages))
            logger.info(
                "message sent",
                extra={
                    "submission_ids": [result.submission_id for result in sent],
                    "destination_count": len(messages),
                    "destinations": [mask(m.destination) for m in messages[:LOGGED_DESTINATIONS]],
                    "duplicates_removed": duplicates_removed,
                },
            )
        except Exception as error:
            logger.error("sent, but recording the send failed", extra={"reason": type(error).__name__})

    def _track(self, sent: list[SendResult], request: SendRequest) -> None:
        # Sent is sent: a tracking table that fails costs the tracking of these messages, loudly,
        # never the answer to the caller.
        if self.tracking is None:
            return
        items: list[dict[str, Any]] = []
        try:
            items = self.tracking.submission_items(
                sent, reference=request.reference, sms_fallback=request.im_type == "IM_SMSFB"
            )
            self.tracking.write_items(items)
        except Exception as error:
            count(names.METRIC_TRACKING_RECORD_FAILURES)
            logger.error("sent, but not recorded for tracking", extra={"reason": type(error).__name__})
            self._keep_for_tracking(items)

    def _keep_for_tracking(self, items: list[dict[str, Any]]) -> None:
        # The tracker writes them from the backlog queue on its next run: the events come late, not never.
        if self.backlog is None or not items:
            return
        try:
            self.backlog.keep(items)
        except Exception as error:
            logger.error("tracking records not kept either", extra={"reason": type(error).__name__})
        else:
            logger.warning("tracking records kept for the tracker", extra={"count": len(items)})

    def _record_unknown(
        self, attempt: SendAttempt, request: SendRequest, context: SendContext, started: float
    ) -> None:
        # What the reconciler needs to find out later whether LiveAll took it (gateway.reconciliation).
        if self.tracking is None:
            return
        unknown = [
            (index, chunk)
            for index, (chunk, outcome) in enumerate(zip(attempt.chunks, attempt.outcomes, strict=True))
            if isinstance(outcome, GatewayError) and outcome.failure is Failure.OUTCOME_UNKNOWN
        ]
        # A partial send's unknown part is parked (queue) as a message of its own, under a key of its own.
        partial = bool(attempt.sent) or len({error.failure for _, error in attempt.failed}) > 1
        finished = time.time()
        from gateway.tracking.store import UnknownSend

        try:
            self.tracking.record_unknown(
                UnknownSend(
                    id=uuid.uuid4().hex,
                    key=context.key,
                    origin=context.origin,
                    message_id=context.message_id,
                    partial=partial,
                    payload=request.model_dump(mode="json", exclude_none=True),
                    chunk_index=index,
                    destinations=chunk,
                    sender=request.im_sender_name,
                    sms_fallback=request.im_type == "IM_SMSFB",
                    reference=request.reference,
                    started_at=started,
                    finished_at=finished,
                )
                for index, chunk in unknown
            )
        except Exception as error:
            count(names.METRIC_TRACKING_RECORD_FAILURES)
            logger.error(
                "outcome unknown, and not recorded for reconciliation", extra={"reason": type(error).__name__}
            )


def _is_token_error(outcome: SendResult | GatewayError) -> bool:
    return isinstance(outcome, ProviderRejected) and outcome.is_token_error


@cache
def get_sender() -> Sender:
    """The process-wide sender, built from the settings on first use."""
    settings = get_settings()
    configure(settings)
    tracking = None
    if settings.tracking_table:
        from gateway.tracking.store import TrackingStore

        tracking = TrackingStore(settings.tracking_table, settings.tracking_window_seconds)
    backlog = None
    if settings.tracking_table and settings.tracking_backlog_queue_url:
        from gateway.tracking.backlog import TrackingBacklog

        backlog = TrackingBacklog(settings.tracking_backlog_queue_url)
    suppression = None
    if settings.suppression_table:
        from gateway.suppression.store import SuppressionStore

        suppression = SuppressionStore(settings.suppression_table)
    return Sender(
        get_token_source(),
        get_client(),
        chunk_size=settings.provider_chunk_size,
        max_concurrency=settings.provider_max_concurrency,
        tracking=tracking,
        suppression=suppression,
        backlog=backlog,
    )


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    request: SendRequest
    idempotency_key: str | None
    # Delivered in an SNS notification or an EventBridge event (gateway.sending.envelopes): its id,
    # and an IdempotencyKey message attribute of the notification.
    envelope_identity: str | None = None
    envelope_key: str | None = None


def parse_queued_request(body: str | bytes | None) -> QueuedRequest:
    """Parse and validate a queue record's JSON body: GatewayError if it is bad.

    Besides the fields of POST /messages it may carry `idempotency_key`. An SNS notification
    or an EventBridge event carrying such a body is unwrapped; its errors are the inner message's.
    """
    from gateway.sending.envelopes import unwrap

    document = read_json_object(body)
    unwrapped = unwrap(document)
    if unwrapped is not None:
        document = dict(unwrapped.document)
    key = document.pop(names.QUEUE_IDEMPOTENCY_FIELD, None)
    errors = []
    if key is not None and not isinstance(key, str):
        errors.append(FieldError(names.QUEUE_IDEMPOTENCY_FIELD, "must be a string"))
    try:
        request = SendRequest.model_validate(document)
    except ValidationError as error:
        errors = describe_errors(error.errors()) + errors
    if errors:
        refused = invalid_request(errors)
        if unwrapped is not None:
            refused.detail = f"{refused.detail} (in the {_ENVELOPES[unwrapped.source]})"
        raise refused
    if unwrapped is None:
        return QueuedRequest(request, key)
    return QueuedRequest(request, key, unwrapped.identity, unwrapped.attribute_key)


_ENVELOPES = {"Message": "SNS notification's Message", "detail": "EventBridge event's detail"}
