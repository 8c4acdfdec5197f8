"""The send use case: one validated request in, the provider's message ids out.

The API handler, the queue handler and the local runner all call `Sender.send`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.observability import configure, count, count_by, logger
from gateway.phone import mask
from gateway.provider import ProviderClient, ProviderRejected, SendResult
from gateway.request import FieldError, SendRequest, describe_errors
from gateway.settings import get_settings
from gateway.token import TokenSource

# Enough masked numbers in a log line to trace a message, not a phone book.
LOGGED_DESTINATIONS = 10


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What a caller gets back for a sent request."""

    result: SendResult
    duplicates_removed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.result.submission_id,
            "messages": [{"destination": m.destination, "smsid": m.smsid} for m in self.result.messages],
            "duplicates_removed": self.duplicates_removed,
        }


class Sender:
    """Sends validated requests with the current token, refreshing it once if the provider refuses it."""

    def __init__(self, token_source: TokenSource, client: ProviderClient) -> None:
        self.token_source = token_source
        self.client = client

    def send(self, request: SendRequest, *, seconds_left: Callable[[], float] | None = None) -> SendOutcome:
        try:
            result = self._send_with_token(request, seconds_left, refresh=False)
        except ProviderRejected as rejection:
            if not rejection.is_token_error:
                raise
            # A rotated token: read the secret again and try once more (nothing was sent).
            logger.warning(
                "provider refused the token; reading the secret again", extra={"code": rejection.error_code}
            )
            result = self._send_with_token(request, seconds_left, refresh=True)
        count(names.METRIC_MESSAGES_ACCEPTED)
        count(names.METRIC_DESTINATIONS_SENT, len(result.messages))
        logger.info(
            "message sent",
            extra={
                "submission_id": result.submission_id,
                "destination_count": len(result.messages),
                "destinations": [mask(m.destination) for m in result.messages[:LOGGED_DESTINATIONS]],
                "duplicates_removed": request.duplicates_removed,
            },
        )
        return SendOutcome(result, request.duplicates_removed)

    def _send_with_token(
        self, request: SendRequest, seconds_left: Callable[[], float] | None, *, refresh: bool
    ) -> SendResult:
        token = self.token_source.get(refresh=refresh)
        payload = request.provider_payload(token)
        return self.client.send_im(payload, seconds_left=seconds_left() if seconds_left else None)


@cache
def get_sender() -> Sender:
    """The process-wide sender, built from the settings on first use."""
    settings = get_settings()
    configure(settings)
    return Sender(
        TokenSource(settings.token_secret_id, settings.token_max_age_seconds),
        ProviderClient(
            settings.send_im_url,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
        ),
    )


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    request: SendRequest
    idempotency_key: str | None


def parse_queued_request(body: str | bytes | None) -> QueuedRequest:
    """Parse and validate a queue record's JSON body: GatewayError if it is bad.

    Besides the fields of POST /messages it may carry `idempotency_key`.
    """
    try:
        document = json.loads(body or "")
    except (ValueError, UnicodeDecodeError):
        raise GatewayError(Failure.MALFORMED_REQUEST, "The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise GatewayError(Failure.MALFORMED_REQUEST, "The body must be a JSON object.")
    key = document.pop(names.QUEUE_IDEMPOTENCY_FIELD, None)
    errors = []
    if key is not None and not isinstance(key, str):
        errors.append(FieldError(names.QUEUE_IDEMPOTENCY_FIELD, "must be a string"))
    try:
        request = SendRequest.model_validate(document)
    except ValidationError as error:
        errors = describe_errors(error.errors()) + errors
    if errors:
        raise invalid_request(errors)
    return QueuedRequest(request, key)


def invalid_request(errors: list[FieldError]) -> GatewayError:
    noun = "problem" if len(errors) == 1 else "problems"
    return GatewayError(
        Failure.INVALID_REQUEST, f"The request has {len(errors)} {noun}; see errors.", errors=errors
    )


def record_failure(error: GatewayError) -> None:
    """Count and log a failure as the taxonomy names it; never with the token or a raw number."""
    slug = error.failure.info.slug
    count_by(names.METRIC_FAILURES, "failure_type", slug)
    if error.failure in (Failure.INVALID_REQUEST, Failure.MALFORMED_REQUEST):
        count(names.METRIC_VALIDATION_FAILURES)
        logger.info(
            "request refused", extra={"failure_type": slug, "fields": [e.field for e in error.errors]}
        )
        return
    if error.failure is not Failure.MISCONFIGURED or error.provider_code is not None:
        count(names.METRIC_PROVIDER_ERRORS)
    if error.provider_code is not None:
        count_by(names.METRIC_PROVIDER_ERRORS_BY_CODE, "provider_code", str(error.provider_code))
    logger.warning(
        "send failed",
        extra={
            "failure_type": slug,
            "provider_code": error.provider_code,
            "provider_message": error.provider_message,
        },
    )
