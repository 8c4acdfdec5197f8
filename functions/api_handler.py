"""REST API entry point (API Gateway proxy events): POST /messages and GET /openapi.json.

A thin adapter: Powertools parses and validates the body into a SendRequest,
the send use case does the work, and every failure becomes a problem+json
answer decided by gateway.failures.
"""

from __future__ import annotations

import gc

# Cold start: the imports below make hundreds of thousands of objects, and collecting
# while importing only costs time. Collection resumes at the end of this module, with
# what the imports made frozen out of its way.
gc.disable()

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway import names
from gateway.failures import Failure, GatewayError
from gateway.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, explicit_key, get_idempotent_sender
from gateway.observability import logger, metrics, tracer
from gateway.request import SendRequest, describe_errors
from gateway.responses import Problem, SendResponse
from gateway.send import get_sender, invalid_request, record_failure
from gateway.settings import SettingsError

PROBLEM_JSON = "application/problem+json"
API_TITLE = "viber-gateway"
API_VERSION = "1.0.0"
# Entries Powertools reports when the body is not a JSON object at all.
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type", "missing"}
# Where Powertools says a parameter came from; the field path starts after it.
_PARAMETER_SOURCES = frozenset({"body", "header"})

app = APIGatewayRestResolver(enable_validation=True)


def _problem_response(status: int, description: str) -> OpenAPIResponse:
    return {"description": description, "content": {PROBLEM_JSON: {"model": Problem}}}


@app.post(
    "/messages",
    summary="Send a Viber message, with SMS fallback where asked",
    description="The body is LiveAll's SendIM without `apitoken`: the gateway supplies the token.",
    tags=["messages"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "Sent", "content": {"application/json": {"model": SendResponse}}},
        400: _problem_response(400, "The body is not a JSON object"),
        415: _problem_response(415, "The body is not sent as application/json"),
        409: _problem_response(409, "The idempotency key was used for another message, or is in progress"),
        422: _problem_response(422, "A value is invalid, or the provider rejected one"),
        502: _problem_response(502, "The provider failed; nothing was sent"),
        503: _problem_response(503, "The provider is unreachable or the gateway is misconfigured"),
        504: _problem_response(504, "The outcome is unknown; do not resend blindly"),
    },
)
def post_messages(
    request: Annotated[SendRequest, Body(description="The message to send")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=names.IDEMPOTENCY_KEY_HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            pattern=KEY_PATTERN,
            description="Sends at most once per key within the window (24 h by default): a repeat with the "
            "same body replays the first answer, marked by the Idempotent-Replayed header.",
        ),
    ] = None,
) -> Response[Any]:
    if idempotency_key is None:
        body = get_sender().send(request, seconds_left=_seconds_left).as_dict()
        return _json(200, body, replayed=False)
    answer = get_idempotent_sender().send(
        request,
        key=explicit_key(idempotency_key, source=names.IDEMPOTENCY_KEY_HEADER),
        lambda_context=app.lambda_context,
        seconds_left=_seconds_left,
    )
    return _json(200, answer.body, replayed=answer.replayed)


def _json(status: int, body: dict[str, Any], *, replayed: bool) -> Response[Any]:
    headers = {names.IDEMPOTENCY_REPLAYED_HEADER: "true"} if replayed else None
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=headers
    )


@app.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_json())


def openapi_json() -> str:
    # Imported here: Powertools' OpenAPI document models take about 100 ms to import, and only
    # this route needs them, not a cold start that sends a message.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        summary="Viber business messages with SMS fallback through LiveAll",
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
    )


def _seconds_left() -> float:
    return float(app.lambda_context.get_remaining_time_in_millis()) / 1000


def _problem(error: GatewayError) -> Response[str]:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.replayed:
        headers[names.IDEMPOTENCY_REPLAYED_HEADER] = "true"
    return Response(
        status_code=error.failure.info.http_status,
        content_type=PROBLEM_JSON,
        body=json.dumps(error.problem()),
        headers=headers or None,
    )


@app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
def _on_invalid_body(error: RequestValidationError | RequestUnsupportedContentType) -> Response[str]:
    entries = list(error.errors())
    content_type = app.current_event.headers.get("content-type", "")
    if content_type and not content_type.lower().startswith("application/json"):
        # Powertools reads forms too; this API takes JSON only (curl -d sends a form type by default).
        failure = GatewayError(
            Failure.UNSUPPORTED_MEDIA_TYPE,
            f"The body was sent as {content_type.split(';')[0]}; send it as application/json.",
        )
    elif any(e.get("type") == "json_invalid" for e in entries):
        failure = GatewayError(Failure.MALFORMED_REQUEST, "The body is not valid JSON.")
    elif any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in entries):
        failure = GatewayError(Failure.MALFORMED_REQUEST, "The body must be a JSON object.")
    else:
        failure = invalid_request(describe_errors(entries, strip_prefix=_PARAMETER_SOURCES))
    record_failure(failure)
    return _problem(failure)


@app.exception_handler(GatewayError)
def _on_gateway_error(error: GatewayError) -> Response[str]:
    record_failure(error)
    return _problem(error)


@app.exception_handler(SettingsError)
def _on_settings_error(error: SettingsError) -> Response[str]:
    logger.error("gateway misconfigured", extra={"reason": str(error)})
    failure = GatewayError(Failure.MISCONFIGURED, "The gateway's configuration is incomplete.")
    record_failure(failure)
    return _problem(failure)


@app.not_found
def _on_not_found(_: Exception) -> Response[str]:
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such route."}
    return Response(status_code=404, content_type=PROBLEM_JSON, body=json.dumps(body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # answers hold phone numbers
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


gc.freeze()
gc.enable()
