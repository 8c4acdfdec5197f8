"""Problem answers (RFC 9457) as the API gives them: status, headers and body of a GatewayError.

Shared by the API's two paths (api_handler's own `POST /messages`, and the
resolver's routes in api_routes), so that a failure reads the same on both.
"""

from __future__ import annotations

import contextlib
import json

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.observability import logger

PROBLEM_JSON = "application/problem+json"


def problem_parts(error: GatewayError, request_id: str | None) -> tuple[int, dict[str, str], str]:
    """Status, headers (besides Content-Type) and body of the problem answer to `error`."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.replayed:
        headers[names.IDEMPOTENCY_REPLAYED_HEADER] = "true"
    problem = error.problem()
    if request_id:
        problem["request_id"] = request_id  # what support needs to find this request's logs
    return error.failure.info.http_status, headers, json.dumps(problem)


def internal_error(error: Exception) -> GatewayError:
    """A defect of the gateway, logged with its traceback, as the caller hears it."""
    with contextlib.suppress(Exception):  # the last resort must answer even if logging fails
        logger.exception("unexpected error", extra={"reason": type(error).__name__})
    return GatewayError(
        Failure.INTERNAL_ERROR,
        f"The gateway failed unexpectedly ({type(error).__name__}). Quote the request_id when you report it.",
    )
