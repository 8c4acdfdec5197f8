"""SQS entry point: each record's body is the same JSON as POST /messages.

Partial batch responses: a failed record is reported alone in
batchItemFailures, so it never fails or re-sends its neighbours.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway.failures import GatewayError
from gateway.observability import logger, metrics, tracer
from gateway.send import get_sender, parse_request, record_failure

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def send_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> dict[str, Any]:
    """Send one record; raising marks it failed (the queue retries, then dead-letters it)."""
    logger.append_keys(correlation_id=record.message_id)
    seconds_left = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    try:
        request = parse_request(record.body)
        return get_sender().send(request, seconds_left=seconds_left).as_dict()
    except GatewayError as error:
        record_failure(error)
        raise
    finally:
        logger.remove_keys(["correlation_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=send_record, processor=processor, context=context
    )
