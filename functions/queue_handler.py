"""SQS entry point: each record's body is the same JSON as POST /messages.

Partial batch responses: a failed record is reported alone in
batchItemFailures, so it never fails or re-sends its neighbours. Records are
sent concurrently (bounded by QUEUE_RECORD_CONCURRENCY), each in a thread,
through Powertools' AsyncBatchProcessor. What the taxonomy says must not be
retried (the caller's data, or a send whose outcome is unknown) is parked in
the dead-letter queue at once, with the reason.
"""

from __future__ import annotations

import gc

# Cold start: the imports below make hundreds of thousands of objects, and collecting
# while importing only costs time. Collection resumes at the end of this module, with
# what the imports made frozen out of its way.
gc.disable()

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway import dead_letters, names
from gateway.failures import Failure, GatewayError, QueueAction
from gateway.idempotency import explicit_key, get_idempotent_sender, message_id_key
from gateway.observability import logger, metrics, tracer
from gateway.send import get_sender, parse_queued_request, record_failure
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
    attribute_key = _string_attribute(record, names.QUEUE_IDEMPOTENCY_ATTRIBUTE)
    key: str | None = None
    try:
        queued = parse_queued_request(record.body)
        key = _store_key(record, attribute_key, queued.idempotency_key)
        seconds_left = (
            (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
        )
        answer = get_idempotent_sender().send(
            queued.request, key=key, lambda_context=lambda_context, seconds_left=seconds_left
        )
        if answer.replayed:
            logger.info("already sent under this idempotency key; not sent again")
        return answer.body
    except GatewayError as error:
        record_failure(error)
        action = error.failure.info.queue_action
        if action is QueueAction.RETRY:
            raise
        if action is QueueAction.SPLIT and key is not None:
            _park_what_was_not_sent(record, key, error)
        else:
            _park(record, record.body, attribute_key, error)
        return error.problem()
    finally:
        logger.thread_safe_remove_keys(["correlation_id"])


def _store_key(record: SQSRecord, attribute_key: str | None, body_key: str | None) -> str:
    if attribute_key is not None:
        return explicit_key(attribute_key, source=f"messageAttributes.{names.QUEUE_IDEMPOTENCY_ATTRIBUTE}")
    if body_key is not None:
        return explicit_key(body_key, source=names.QUEUE_IDEMPOTENCY_FIELD)
    # A record parked by this handler and replayed keeps the identity of the original.
    source_id = _string_attribute(record, dead_letters.SOURCE_MESSAGE_ID_ATTRIBUTE)
    return message_id_key(source_id or record.message_id)


def _park_what_was_not_sent(record: SQSRecord, key: str, error: GatewayError) -> None:
    """Park the unsent destinations of a partial send, one message per failure type, each with its own key."""
    body = json.loads(record.body)
    body.pop(names.QUEUE_IDEMPOTENCY_FIELD, None)
    by_type: dict[str, list[str]] = {}
    for item in error.extra.get("not_sent", []):
        by_type.setdefault(item["type"], []).append(item["destination"])
    for index, (problem_type, destinations) in enumerate(by_type.items(), start=1):
        failure = Failure.from_problem_type(problem_type)
        # Deterministic, so a redelivered original parks the same remainder under the same key.
        remainder_key = f"{key.removeprefix('key:')}#not-sent-{index}"
        part = GatewayError(failure, f"Not sent as part of message {record.message_id}: {error.detail}")
        _park(record, json.dumps({**body, "destinations": destinations}), remainder_key, part)


def _park(record: SQSRecord, body: str, attribute_key: str | None, error: GatewayError) -> None:
    queue_url = get_settings().dead_letter_queue_url
    if queue_url is None:
        logger.warning("no dead-letter queue URL set; leaving the record to the queue's redrive")
        raise error
    dead_letters.park(
        queue_url,
        body=body,
        message_id=_string_attribute(record, dead_letters.SOURCE_MESSAGE_ID_ATTRIBUTE) or record.message_id,
        explicit_key=attribute_key,
        error=error,
    )
    logger.info("parked in the dead-letter queue", extra={"failure_type": error.failure.info.slug})


def _string_attribute(record: SQSRecord, name: str) -> str | None:
    attribute = record.message_attributes[name]  # None when absent (Powertools' mapping)
    return attribute.string_value if attribute is not None else None


def _prepare_shared_clients() -> None:
    """Make the shared AWS clients here, not in the record threads: client creation is not thread-safe."""
    with contextlib.suppress(GatewayError):  # each record reports it
        get_sender().token_source.get()
    get_idempotent_sender().prepare()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # answers hold phone numbers
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _prepare_shared_clients()
    return async_process_partial_response(
        event=event, record_handler=send_record, processor=processor, context=context
    )


gc.freeze()
gc.enable()
