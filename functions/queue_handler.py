"""SQS entry point: each record's body is the same JSON as POST /messages.

Partial batch responses: a failed record is reported alone in
batchItemFailures, so it never fails or re-sends its neighbours. Records are
sent concurrently (bounded by QUEUE_RECORD_CONCURRENCY), each in a thread,
through Powertools' AsyncBatchProcessor. What the taxonomy says must not be
retried (the caller's data, a send whose outcome is unknown, a defect) is
parked in the dead-letter queue at once, with the reason, a log line and a
metric. Nothing fails the whole batch: an unexpected exception around it
retries every record, with the reason logged.
"""

from __future__ import annotations

import gc

# Cold start: the imports below make hundreds of thousands of objects, and collecting
# while importing only costs time. Collection resumes at the end of this module, with
# what the imports made frozen out of its way.
gc.disable()

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway import names, snapshot
from gateway.failures import Failure, GatewayError, QueueAction, record_failure
from gateway.fields import FieldError
from gateway.intake import accept_keyed
from gateway.observability import logger, metrics, tracer
from gateway.sending import dead_letters, priming
from gateway.sending.envelopes import unwrap
from gateway.sending.idempotency import envelope_key, explicit_key, get_idempotent_sender, message_id_key
from gateway.sending.send import QueuedRequest, get_sender, parse_queued_request
from gateway.settings import get_settings

processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def record_threads() -> ThreadPoolExecutor:
    """Threads that send the records of a batch, QUEUE_RECORD_CONCURRENCY of them.

    asyncio's default pool has only CPU count + 4 threads, too few for a batch of 10.
    """
    return ThreadPoolExecutor(
        max_workers=get_settings().queue_record_concurrency, thread_name_prefix="record"
    )


async def send_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(record_threads(), send_record_now, record, lambda_context)


def send_record_now(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    """Send one record once; raise to have the queue retry it."""
    logger.thread_safe_append_keys(correlation_id=record.message_id)
    attribute_key: str | None = None
    key: str | None = None
    seconds_left = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    if _is_trigger(record):
        try:
            return fire_trigger(record, seconds_left)
        except GatewayError as capped:
            if capped.retry_after is not None and capped.failure in WAIT_FOR_THE_DAY:
                _postpone(record, capped.retry_after)  # the part fires when the day turns
            raise
        finally:
            logger.thread_safe_remove_keys(["correlation_id"])
    try:
        attribute_key = _attribute_text(record, names.QUEUE_IDEMPOTENCY_ATTRIBUTE)
        queued = parse_queued_request(record.body)
        key = _store_key(record, attribute_key, queued)
        answer = accept_keyed(
            queued.request,
            key=key,
            seconds_left=seconds_left,
            origin="queue",
            message_id=_source_message_id(record),
        )
        if answer.replayed:
            logger.info("already sent under this idempotency key; not sent again")
        return answer.body
    except GatewayError as error:
        return _settle(record, error, attribute_key, key)
    except Exception as error:  # a defect: parked with the reason, never a silent retry loop
        logger.exception("unexpected error", extra={"reason": type(error).__name__})
        failure = GatewayError(
            Failure.INTERNAL_ERROR, f"The gateway failed unexpectedly ({type(error).__name__})."
        )
        return _settle(record, failure, attribute_key, key)
    finally:
        logger.thread_safe_remove_keys(["correlation_id"])


# A capped record waits on the queue until its limit resets, rather than coming back every few
# minutes and reaching the dead-letter queue before then. SQS keeps a received message hidden
# 12 hours at most, counted from its receive: a little less, so the change is never refused.
WAIT_FOR_THE_DAY = frozenset({Failure.LIMIT_EXCEEDED, Failure.SPEND_CEILING_REACHED})
MAX_VISIBILITY_SECONDS = 12 * 60 * 60 - 15 * 60


def _postpone(record: SQSRecord, seconds: int) -> None:
    try:
        dead_letters.sqs_client().change_message_visibility(
            QueueUrl=_queue_url(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, max(0, seconds)),
        )
    except Exception as error:  # it comes back after the queue's own visibility timeout instead
        logger.warning("a capped record was not postponed", extra={"reason": type(error).__name__})
    else:
        waits = min(MAX_VISIBILITY_SECONDS, seconds)
        logger.info("postponed until the limit resets", extra={"seconds": waits})


@cache
def _queue_url(queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    answer = dead_letters.sqs_client().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    return str(answer["QueueUrl"])


def _is_trigger(record: SQSRecord) -> bool:
    """A scheduled part's trigger: it comes from the trigger queue, which only the stack writes to."""
    queue_arn = get_settings().schedule_queue_arn
    return queue_arn is not None and record.event_source_arn == queue_arn


def fire_trigger(record: SQSRecord, seconds_left: Callable[[], float] | None) -> dict[str, Any]:
    """Fire the part a trigger names. Its outcome is kept in the schedule, never parked here: what
    the taxonomy retries, and any defect, goes back to the trigger queue (and its dead letters)."""
    try:
        trigger = json.loads(record.body)[names.SCHEDULE_TRIGGER_FIELD]
        schedule_id, part = trigger["id"], trigger["part"]
        if not isinstance(schedule_id, str) or type(part) is not int:
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        logger.error("not a schedule trigger; dropped", extra={"reason": "unreadable trigger"})
        return {"skipped": "not a schedule trigger"}
    from gateway.schedules.service import get_schedules

    try:
        return get_schedules().fire(schedule_id, part, seconds_left=seconds_left)
    except GatewayError as error:
        record_failure(error)
        raise
    except Exception as error:
        logger.exception("a trigger failed; it will be retried", extra={"reason": type(error).__name__})
        record_failure(GatewayError(Failure.INTERNAL_ERROR, type(error).__name__))
        raise


def _settle(
    record: SQSRecord, error: GatewayError, attribute_key: str | None, key: str | None
) -> dict[str, Any]:
    """Retry or park the record as the taxonomy says for `error`, counted and logged."""
    record_failure(error)
    action = error.failure.info.queue_action
    if action is QueueAction.RETRY:
        if error.retry_after is not None and error.failure in WAIT_FOR_THE_DAY:
            _postpone(record, error.retry_after)
        raise error
    if action is QueueAction.SPLIT and key is not None:
        _park_what_was_not_sent(record, key, error)
    else:
        _park(record, record.body, attribute_key, error)
    return error.problem()


def _store_key(record: SQSRecord, attribute_key: str | None, queued: QueuedRequest) -> str:
    if attribute_key is not None:
        return explicit_key(attribute_key, source=f"messageAttributes.{names.QUEUE_IDEMPOTENCY_ATTRIBUTE}")
    if queued.envelope_key is not None:
        return explicit_key(
            queued.envelope_key, source=f"MessageAttributes.{names.QUEUE_IDEMPOTENCY_ATTRIBUTE}"
        )
    if queued.idempotency_key is not None:
        return explicit_key(queued.idempotency_key, source=names.QUEUE_IDEMPOTENCY_FIELD)
    # Delivered by SNS or EventBridge: their id, the same on each delivery of one notification.
    if queued.envelope_identity is not None:
        return envelope_key(queued.envelope_identity)
    # A record parked by this handler and replayed keeps the identity of the original.
    source_id = _attribute_text(record, dead_letters.SOURCE_MESSAGE_ID_ATTRIBUTE)
    return message_id_key(source_id or record.message_id)


def _park_what_was_not_sent(record: SQSRecord, key: str, error: GatewayError) -> None:
    """Park the unsent destinations of a partial send, one message per failure type, each with its own key."""
    body = json.loads(record.body)
    unwrapped = unwrap(body)  # what was not sent goes on as a message of ours, not in its envelope
    if unwrapped is not None:
        body = dict(unwrapped.document)
    body.pop(names.QUEUE_IDEMPOTENCY_FIELD, None)
    by_type: dict[str, list[str]] = {}
    for item in error.extra.get("not_sent", []):
        by_type.setdefault(item["type"], []).append(item["destination"])
    for problem_type, destinations in by_type.items():
        failure = Failure.from_problem_type(problem_type)
        part = GatewayError(failure, f"Not sent as part of message {record.message_id}: {error.detail}")
        part_key = dead_letters.remainder_key(key, failure)
        _park(record, json.dumps({**body, "destinations": destinations}), part_key, part)


def _park(record: SQSRecord, body: str, attribute_key: str | None, error: GatewayError) -> None:
    queue_url = get_settings().dead_letter_queue_url
    if queue_url is None:
        logger.warning("no dead-letter queue URL set; leaving the record to the queue's redrive")
        raise error
    dead_letters.park(
        queue_url,
        body=body,
        message_id=_source_message_id(record),
        explicit_key=attribute_key,
        error=error,
    )
    logger.info("parked in the dead-letter queue", extra={"failure_type": error.failure.info.slug})


def _source_message_id(record: SQSRecord) -> str:
    with contextlib.suppress(GatewayError):
        return _attribute_text(record, dead_letters.SOURCE_MESSAGE_ID_ATTRIBUTE) or record.message_id
    return record.message_id


def _attribute_text(record: SQSRecord, name: str) -> str | None:
    """A message attribute's text: String and Number ones as they are, Binary ones as ASCII text.

    In Lambda's event a Binary attribute has `binaryValue` (base64) and no `stringValue` at all.
    """
    attribute = record.raw_event.get("messageAttributes", {}).get(name)
    if not isinstance(attribute, dict):
        return None
    text = attribute.get("stringValue")
    if isinstance(text, str):
        return text
    binary = attribute.get("binaryValue")
    if binary is None:
        return None
    try:
        return base64.b64decode(binary, validate=True).decode("ascii")
    except (binascii.Error, ValueError, TypeError):
        raise GatewayError(
            Failure.INVALID_REQUEST,
            "The message attribute is not usable; see errors.",
            errors=[FieldError(f"messageAttributes.{name}", "a Binary attribute must hold ASCII text")],
        ) from None


def _prepare_shared_clients() -> None:
    """Make the shared AWS clients here, not in the record threads: client creation is not thread-safe."""
    with contextlib.suppress(GatewayError):  # each record reports it
        get_sender().token_source.get()
    get_idempotent_sender().prepare()


def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The function's entry point: never a Lambda error, so a defect cannot fail a batch silently."""
    try:
        return cast(PartialItemFailureResponse, _handle(event, context))
    except Exception as error:  # the last resort: every record back to the queue, with the reason
        with contextlib.suppress(Exception):
            logger.exception(
                "the batch failed; every record will be retried", extra={"reason": type(error).__name__}
            )
            record_failure(GatewayError(Failure.INTERNAL_ERROR, type(error).__name__))
        records = event.get("Records") if isinstance(event, dict) else None
        identifiers = [r["messageId"] for r in records or [] if isinstance(r, dict) and r.get("messageId")]
        return {"batchItemFailures": [{"itemIdentifier": identifier} for identifier in identifiers]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # answers hold phone numbers
@metrics.log_metrics
def _handle(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _prepare_shared_clients()
    return async_process_partial_response(
        event=event, record_handler=send_record, processor=processor, context=context
    )


def prime() -> None:
    """Before the snapshot: what any first batch would do the same way, sending nothing."""
    priming.prime_queue(parse=parse_queued_request)


snapshot.register_once(before_snapshot=prime, after_restore=priming.forget_environment)

gc.freeze()
gc.enable()
