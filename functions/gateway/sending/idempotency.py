"""Exactly once: a send is made at most once per idempotency key within the window.

Powertools idempotency on the DynamoDB table from the stack. The key is the
caller's `Idempotency-Key` (API), the record's `IdempotencyKey` attribute or
`idempotency_key` field (queue), or else the SQS message id. Explicit keys
share one namespace across the API and the queue.

What is stored decides what a retry sees: what a send did (sent, partly sent,
or an outcome unknown), never what nothing-was-sent failures did, so those can
be retried. The stored copy is compact by design: a replay comes with the
identical request (Powertools checks the payload's hash), so the destinations
are taken from it and only the provider's ids and failures are kept (a 10,000
destination send keeps a few hundred bytes; at worst, 20-digit random ids,
about 115 KB, under DynamoDB's 400 KB item limit).

A record is written before the send (in progress) and never expires before the
window does: if the answer cannot be stored after a send, or the function dies
mid-send, that record still blocks a second send. A retry then hears
"in progress" and, once no function can still be running, "outcome unknown".
"""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from gateway import names
from gateway.aws import aws_client
from gateway.compact import id_runs, ids_from_runs
from gateway.failures import Failure, GatewayError
from gateway.fields import MAX_IDEMPOTENCY_KEY_LENGTH as MAX_KEY_LENGTH
from gateway.fields import FieldError
from gateway.observability import count, logger
from gateway.provider.client import SendResult, SentMessage
from gateway.sending.request import SendRequest
from gateway.sending.segments import fallback_sms
from gateway.sending.send import Answer, SendAttempt, SendContext, Sender, get_sender, send_counted
from gateway.settings import get_settings
from gateway.suppression.rules import Suppressed

if TYPE_CHECKING:
    from gateway.tracking.store import UnknownSend

_KEY = re.compile(r"[\x20-\x7e]+")  # matched whole: `$` would let "abc\n" through
_REPLAY_MARK = "__replayed"
# A record of a request that was scheduled, not sent: the 202's body (gateway.intake).
SCHEDULED = "scheduled"
STATUS_COMPLETED = "COMPLETED"  # Powertools' DataRecord status of a saved answer
# How long a caller should wait before asking again while the first send runs.
IN_PROGRESS_RETRY_AFTER_SECONDS = 1
# No function runs longer than this: an older in-progress record belongs to a send that died or
# whose answer could not be stored, and may have gone out.
STALE_IN_PROGRESS_SECONDS = max(names.API_FUNCTION_TIMEOUT_SECONDS, names.QUEUE_FUNCTION_TIMEOUT_SECONDS) + 30
RECORD_VERSION = 1
# Powertools warns on every send that no Lambda context was registered: that is the point (above).
warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")
# Stored answers above this size are compressed (only ids that do not run in sequence get there).
COMPRESS_ABOVE_BYTES = 32 * 1024


def explicit_key(key: str, *, source: str) -> str:
    """The store key for a caller-given key, after checking it; GatewayError naming `source` if unusable."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise GatewayError(
            Failure.INVALID_REQUEST,
            "The idempotency key is not usable; see errors.",
            errors=[FieldError(source, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")],
        )
    return f"key:{key}"


def message_id_key(message_id: str) -> str:
    return f"sqs-message:{message_id}"


def envelope_key(identity: str) -> str:
    """The store key of a message an SNS notification or EventBridge event delivered ("sns:<id>")."""
    return f"envelope:{identity}"


class IdempotentSender:
    """Wraps a Sender so that each key sends at most once within the window."""

    def __init__(self, sender: Sender, table_name: str, window_seconds: int) -> None:
        self.sender = sender
        self.window_seconds = window_seconds
        # No Lambda context is registered on purpose: Powertools would then let an in-progress
        # record expire with the invocation, and a send whose answer was lost could go out again.
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="payload",
            expires_after_seconds=window_seconds,
            response_hook=_mark_replayed,
        )
        # The persistence layer builds its boto3 client when made: do it on first use, not at import.
        self.table_name = table_name
        self._persistence: DynamoDBPersistenceLayer | None = None
        self._send_once: Callable[..., dict[str, Any]] | None = None

    def send(
        self,
        request: SendRequest,
        *,
        key: str,
        seconds_left: Callable[[], float] | None = None,
        origin: str = "api",
        message_id: str | None = None,
        schedule: Callable[[], Answer | None] | None = None,
        reserve: Callable[[], Callable[[], None] | None] | None = None,
    ) -> Answer:
        """Send unless `key` was already used; raises GatewayError as the taxonomy says.

        `reserve`, when given, counts the send against the caps just before it goes (not on a
        replay) and returns how to give the count back if nothing was sent.

        `schedule`, when given, is asked first, under the key: a request it schedules (a 202) is
        kept as that answer, so a retry under the key replays it, whatever time it is by then,
        and never sends it now as well; one it does not (None) is sent.
        """
        job = {"key": key, "payload": request.model_dump(mode="json", exclude_none=True)}
        attempts: list[SendAttempt] = []  # what the send did, even if the store then fails
        context = SendContext(key=key, origin=origin, message_id=message_id)
        try:
            stored = self._idempotent()(
                job=job,
                request=request,
                seconds_left=seconds_left,
                attempts=attempts,
                context=context,
                schedule=schedule,
                reserve=reserve,
            )
        except IdempotencyValidationError:
            raise GatewayError(
                Failure.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was used for a different message; use a new key for a new message.",
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise self._in_progress(job) from None
        except IdempotencyPersistenceLayerError as error:
            if attempts:
                return Answer(self._store_failed_after_send(job, attempts[0], error), replayed=False)
            logger.error("idempotency store unavailable", extra={"reason": type(error.__cause__).__name__})
            raise GatewayError(
                Failure.MISCONFIGURED, "The idempotency store cannot be reached; nothing was sent."
            ) from None
        replayed = bool(stored.pop(_REPLAY_MARK, False))
        if SCHEDULED in stored:
            return Answer(stored[SCHEDULED], replayed, status=202, schedule_id=stored["schedule_id"])
        attempt = attempt_from_record(stored, request)
        try:
            return Answer(attempt.answer(), replayed)
        except GatewayError as failure:
            failure.replayed = replayed
            raise

    def settle(self, send: UnknownSend, outcome: SendResult | GatewayError) -> None:
        """Make the record of an uncertain send the true answer, as the reconciler found it.

        The part it settles is now sent (a retry replays the ids) or failed; if then nothing
        of the send may have gone out, the record is removed, so a retry sends.
        """
        if send.key is None:
            return
        self._idempotent()
        assert self._persistence is not None
        job = {"key": send.key, "payload": send.payload}
        try:
            record = self._persistence.get_record(data=job)
        except (IdempotencyItemNotFoundError, IdempotencyValidationError):
            record = None
        if record is None:
            logger.warning("no idempotency record to settle", extra={"idempotency_key": send.key})
            return
        if record.status != STATUS_COMPLETED:
            logger.warning(
                "idempotency record still in progress: not settled", extra={"idempotency_key": send.key}
            )
            return
        request = SendRequest.model_validate(send.payload)
        attempt = attempt_from_record(record.response_json_as_dict() or {}, request)
        outcomes = list(attempt.outcomes)
        outcomes[send.chunk_index] = outcome
        settled = replace(attempt, outcomes=outcomes)
        if settled.may_have_sent:
            self._persistence.save_success(data=job, result=attempt_record(settled))
        else:
            reason = outcome if isinstance(outcome, Exception) else RuntimeError("settled as not sent")
            self._persistence.delete_record(data=job, exception=reason)

    def prepare(self) -> DynamoDBPersistenceLayer:
        """Build the persistence layer (and its boto3 client) now, in this thread."""
        self._idempotent()
        assert self._persistence is not None
        return self._persistence

    def _idempotent(self) -> Callable[..., dict[str, Any]]:
        if self._send_once is None:
            self._persistence = DynamoDBPersistenceLayer(
                table_name=self.table_name,
                key_attr=names.IDEMPOTENCY_KEY_ATTRIBUTE,
                expiry_attr=names.IDEMPOTENCY_TTL_ATTRIBUTE,
                boto3_client=aws_client("dynamodb"),
            )
            # Configured now, not at the first send: the reconciler (another function, which never
            # sends) settles records, and must find them under the keys the senders wrote.
            self._persistence.configure(self.config, key_prefix=names.IDEMPOTENCY_KEY_PREFIX)
            self._send_once = idempotent_function(
                data_keyword_argument="job",
                persistence_store=self._persistence,
                config=self.config,
                key_prefix=names.IDEMPOTENCY_KEY_PREFIX,
            )(self._send)
        return self._send_once

    def _send(
        self,
        job: dict[str, Any],
        request: SendRequest,
        seconds_left: Callable[[], float] | None,
        attempts: list[SendAttempt],
        context: SendContext,
        schedule: Callable[[], Answer | None] | None = None,
        reserve: Callable[[], Callable[[], None] | None] | None = None,
    ) -> dict[str, Any]:
        scheduled = schedule() if schedule is not None else None
        if scheduled is not None:
            return {SCHEDULED: scheduled.body, "schedule_id": scheduled.schedule_id}
        give_back = reserve() if reserve is not None else None
        attempt = send_counted(
            lambda: self.sender.send(request, seconds_left=seconds_left, context=context), give_back
        )
        attempts.append(attempt)
        if not attempt.may_have_sent and not attempt.all_suppressed:
            attempt.answer()  # raises the failure: the record is dropped and a retry may send
        # Some or all of it may have gone out: keep what happened, so a retry answers it again.
        return attempt_record(attempt)

    def _in_progress(self, job: dict[str, Any]) -> GatewayError:
        started = self._started_at(job)
        if started is not None and time.time() - started > STALE_IN_PROGRESS_SECONDS:
            when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
            return GatewayError(
                Failure.OUTCOME_UNKNOWN,
                f"A send under this idempotency key started at {when} and its outcome was never recorded; "
                "the message may have been sent. Check its status before sending again.",
                replayed=True,
            )
        return GatewayError(
            Failure.IN_PROGRESS,
            "A send with this idempotency key is still in progress; ask again shortly.",
            retry_after=IN_PROGRESS_RETRY_AFTER_SECONDS,
        )

    def _started_at(self, job: dict[str, Any]) -> float | None:
        """When the in-progress record under this key was written (unix seconds), if it can be read."""
        try:
            assert self._persistence is not None  # made by _idempotent() before any send
            record = self._persistence.get_record(data=job)
        except Exception as error:
            logger.warning("in-progress record unreadable", extra={"reason": type(error).__name__})
            return None
        if record is None or record.expiry_timestamp is None:
            return None
        return float(record.expiry_timestamp - self.window_seconds)

    def _store_failed_after_send(
        self, job: dict[str, Any], attempt: SendAttempt, error: IdempotencyPersistenceLayerError
    ) -> dict[str, Any]:
        """Answer what was sent; the in-progress record written before the send keeps blocking a resend.

        The answer is also kept in the tracking table, from where the reconciler saves it into the
        store once it works again: then a retry replays it.
        """
        key = str(job["key"])
        if attempt.may_have_sent:
            count(names.METRIC_IDEMPOTENCY_STORE_FAILURES)
            logger.error(
                "sent, but the idempotency store did not keep the answer: a retry under this key will "
                "not send again, and replays it once the reconciler saved it",
                extra={"idempotency_key": key, "reason": type(error.__cause__).__name__},
            )
            if self.sender.tracking is not None:
                try:
                    self.sender.tracking.record_unsaved_answer(key, job["payload"], attempt_record(attempt))
                except Exception as failure:
                    logger.error(
                        "the answer could not be kept either", extra={"reason": type(failure).__name__}
                    )
        else:
            logger.error(
                "nothing was sent, and the idempotency record could not be removed: retries under this "
                "key are blocked until the window ends",
                extra={"idempotency_key": key, "reason": type(error.__cause__).__name__},
            )
        return attempt.answer()

    def save_answer(self, key: str, payload: dict[str, Any], record: dict[str, Any]) -> None:
        """Save an answer the store could not take when it was given (the reconciler calls it)."""
        self._idempotent()
        assert self._persistence is not None
        self._persistence.save_success(data={"key": key, "payload": payload}, result=record)


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, _REPLAY_MARK: True} if isinstance(response, dict) else response


# ----- the stored form of an attempt ---------------------------------------------------------


def attempt_record(attempt: SendAttempt) -> dict[str, Any]:
    """What the store keeps of an attempt: per chunk its size and the ids or the failure."""
    chunks: list[list[Any]] = []
    for chunk, outcome in zip(attempt.chunks, attempt.outcomes, strict=True):
        if isinstance(outcome, SendResult):
            chunks.append([len(chunk), outcome.submission_id, id_runs([m.smsid for m in outcome.messages])])
        else:
            chunks.append([len(chunk), _failure(outcome)])
    record: dict[str, Any] = {"v": RECORD_VERSION, "duplicates_removed": attempt.duplicates_removed}
    if attempt.suppressed:
        # What the list left out is kept, so a replay answers it whatever the list says by then.
        record["suppressed"] = [[s.destination, s.reason, s.sender] for s in attempt.suppressed]
    encoded = json.dumps(chunks, separators=(",", ":"))
    if len(encoded) > COMPRESS_ABOVE_BYTES:
        record["chunks_z"] = base64.b64encode(zlib.compress(encoded.encode(), 9)).decode("ascii")
    else:
        record["chunks"] = chunks
    return record


def attempt_from_record(record: dict[str, Any], request: SendRequest) -> SendAttempt:
    """The attempt a stored record describes, with the destinations of the (identical) request."""
    if "chunks_z" in record:
        chunks = json.loads(zlib.decompress(base64.b64decode(record["chunks_z"])))
    else:
        chunks = record["chunks"]
    suppressed = tuple(Suppressed(*kept) for kept in record.get("suppressed", ()))
    left_out = {item.destination for item in suppressed}
    destinations = [destination for destination in request.destinations if destination not in left_out]
    split: list[list[str]] = []
    outcomes: list[SendResult | GatewayError] = []
    start = 0
    for size, *kept in chunks:
        chunk = destinations[start : start + size]
        start += size
        split.append(chunk)
        if len(kept) == 2:
            submission_id, runs = kept
            messages = [SentMessage(d, smsid) for d, smsid in zip(chunk, ids_from_runs(runs), strict=True)]
            outcomes.append(SendResult(submission_id, messages))
        else:
            outcomes.append(_failure_from(kept[0]))
    duplicates = int(record["duplicates_removed"])
    return SendAttempt(split, outcomes, duplicates, request.reference, fallback_sms(request), suppressed)


def _failure(error: GatewayError) -> dict[str, Any]:
    kept: dict[str, Any] = {"type": error.failure.info.slug, "detail": error.detail}
    if error.provider_code is not None:
        kept["provider_code"] = error.provider_code
        kept["provider_message"] = error.provider_message
    if error.retry_after is not None:
        kept["retry_after"] = error.retry_after
    return kept


def _failure_from(kept: dict[str, Any]) -> GatewayError:
    return GatewayError(
        Failure.from_slug(kept["type"]),
        kept["detail"],
        provider_code=kept.get("provider_code"),
        provider_message=kept.get("provider_message"),
        retry_after=kept.get("retry_after"),
    )


@cache
def get_idempotent_sender() -> IdempotentSender:
    """The process-wide idempotent sender; its table client is made on first send."""
    settings = get_settings()
    return IdempotentSender(get_sender(), settings.idempotency_table, settings.idempotency_window_seconds)
