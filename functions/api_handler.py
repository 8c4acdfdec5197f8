"""REST API entry point (API Gateway proxy events): POST /messages, GET /messages[/{smsid}], the OpenAPI.

A thin adapter: the body boundary (gateway.body) turns the body into one JSON
object or a 400/415 problem, Powertools validates it into a SendRequest, the
send use case does the work, and every failure becomes a problem+json answer
decided by gateway.failures. Nothing escapes as a Lambda error: an unexpected
exception is a 500 problem with the request id.
"""

from __future__ import annotations

import gc

# Cold start: the imports below make hundreds of thousands of objects, and collecting
# while importing only costs time. Collection resumes at the end of this module, with
# what the imports made frozen out of its way.
gc.disable()

import contextlib
import json
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import StringConstraints

from gateway import names
from gateway.account import balance_answer
from gateway.body import JSON_MEDIA_TYPE, read_json_object
from gateway.failures import Failure, GatewayError
from gateway.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, explicit_key, get_idempotent_sender
from gateway.lookup import get_queries, look_up
from gateway.observability import logger, metrics, tracer
from gateway.preview import preview
from gateway.request import SendRequest, describe_errors
from gateway.responses import (
    BalanceResponse,
    LookupResponse,
    MessageStatus,
    PreviewResponse,
    Problem,
    SendResponse,
)
from gateway.send import get_sender, invalid_request, record_failure
from gateway.settings import SettingsError

PROBLEM_JSON = "application/problem+json"
# Routes that take a body: it passes the body boundary before Powertools reads it.
BODY_ROUTES = frozenset({("POST", "/messages"), ("POST", "/messages/preview")})
API_TITLE = "viber-gateway"
API_VERSION = "1.0.0"
# Entries Powertools reports when the body is not a JSON object at all.
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type", "missing"}
# Where Powertools says a parameter came from; the field path starts after it.
_PARAMETER_SOURCES = frozenset({"body", "header", "query", "path"})

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
        400: _problem_response(400, "The body is not one JSON object (or not UTF-8, or not valid base64)"),
        403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
        409: _problem_response(409, "The idempotency key was used for another message, or is in progress"),
        413: _problem_response(413, "API Gateway: the request is larger than 10 MB"),
        415: _problem_response(415, "The body is not sent as application/json in UTF-8"),
        422: _problem_response(422, "A value is invalid, or the provider rejected one"),
        429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
        500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
        502: _problem_response(502, "The provider failed (nothing was sent), or only part was sent"),
        503: _problem_response(503, "The provider is unreachable or the gateway is misconfigured"),
        504: _problem_response(
            504, "The outcome is unknown: do not resend blindly (or API Gateway timed out)"
        ),
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
        body = get_sender().send(request, seconds_left=_seconds_left).answer()
        return _json(200, body, replayed=False)
    key = explicit_key(idempotency_key, source=names.IDEMPOTENCY_KEY_HEADER)
    answer = get_idempotent_sender().send(request, key=key, seconds_left=_seconds_left)
    return _json(200, answer.body, replayed=answer.replayed)


@app.post(
    "/messages/preview",
    summary="Check a message and what it would cost, without sending it",
    description="Every rule of POST /messages; the destinations as they would be sent, per country, the "
    "fallback SMS's encoding and segments, and the worst-case SMS cost where the balance says the price.",
    tags=["messages"],
    security=[{"apiKey": []}],
    responses={
        200: {
            "description": "What would be sent",
            "content": {"application/json": {"model": PreviewResponse}},
        },
        400: _problem_response(400, "The body is not one JSON object (or not UTF-8, or not valid base64)"),
        403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
        413: _problem_response(413, "API Gateway: the request is larger than 10 MB"),
        415: _problem_response(415, "The body is not sent as application/json in UTF-8"),
        422: _problem_response(422, "A value is invalid"),
        429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
        500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
    },
)
def post_preview(
    request: Annotated[SendRequest, Body(description="The message, as for POST /messages")],
) -> Response[Any]:
    return _json(200, preview(request, get_queries(), seconds_left=_seconds_left), replayed=False)


@app.get(
    "/account/balance",
    summary="The LiveAll account's balance, and what an SMS costs in a country",
    tags=["account"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "The balance", "content": {"application/json": {"model": BalanceResponse}}},
        403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
        422: _problem_response(422, "The country is not one"),
        429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
        500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
        502: _problem_response(502, "The provider failed to answer"),
        503: _problem_response(503, "The provider is unreachable or the gateway is misconfigured"),
    },
)
def get_balance(
    country: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=4,
            pattern=r"^(?:[A-Za-z]{2}|\+?[0-9]{1,3})$",
            description="ISO 3166 code (GR) or calling code (30): adds SMS remaining and their price there.",
        ),
    ] = None,
) -> Response[Any]:
    return _json(200, balance_answer(get_queries(), country), replayed=False)


SMSID_PATTERN = r"^[0-9]{1,20}$"
_LOOKUP_ERRORS = {
    404: _problem_response(404, "LiveAll does not know this message id for the account"),
    403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
    422: _problem_response(422, "An id is not a message id"),
    429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
    500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
    502: _problem_response(502, "The provider failed to answer"),
    503: _problem_response(503, "The provider is unreachable or the gateway is misconfigured"),
}


@app.get(
    "/messages/<smsid>",
    summary="Where a message stands",
    description="Asks LiveAll now, and adds what the gateway knows (the reference).",
    tags=["messages"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "Its status", "content": {"application/json": {"model": MessageStatus}}},
        **_LOOKUP_ERRORS,
    },
)
def get_message(
    smsid: Annotated[str, Path(pattern=SMSID_PATTERN, description="The id a send answered.")],
) -> Response[Any]:
    found = look_up([smsid], get_queries(), get_sender().tracking, seconds_left=_seconds_left)
    if not found.messages:
        raise GatewayError(Failure.NOT_FOUND, f"LiveAll does not know the message {smsid} for this account.")
    return _json(200, found.messages[0], replayed=False)


@app.get(
    "/messages",
    summary="Where several messages stand",
    description=f"Up to {names.MAX_LOOKUP_IDS} ids: `?smsid=20818588&smsid=20818589`.",
    tags=["messages"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "Their status", "content": {"application/json": {"model": LookupResponse}}},
        **_LOOKUP_ERRORS,
    },
)
def get_messages(
    smsid: Annotated[
        list[Annotated[str, StringConstraints(pattern=SMSID_PATTERN)]],
        Query(min_length=1, max_length=names.MAX_LOOKUP_IDS, description="A message id; repeat it."),
    ],
) -> Response[Any]:
    found = look_up(smsid, get_queries(), get_sender().tracking, seconds_left=_seconds_left)
    return _json(200, {"messages": found.messages, "not_found": found.not_found}, replayed=False)


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
    status, headers, body = _problem_parts(error, app.current_event.request_context.request_id)
    return Response(status_code=status, content_type=PROBLEM_JSON, body=body, headers=headers)


def _problem_parts(error: GatewayError, request_id: str | None) -> tuple[int, dict[str, str], str]:
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


@app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
def _on_invalid_body(error: RequestValidationError | RequestUnsupportedContentType) -> Response[str]:
    entries = list(error.errors())
    if isinstance(error, RequestUnsupportedContentType):
        failure = GatewayError(Failure.UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json.")
    elif any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in entries):
        failure = GatewayError(Failure.MALFORMED_REQUEST, "The body must be one JSON object.")
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


@app.exception_handler(Exception)
def _on_unexpected(error: Exception) -> Response[str]:
    failure = _internal_error(error)
    record_failure(failure)
    return _problem(failure)


@app.not_found
def _on_not_found(_: Exception) -> Response[str]:
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such route."}
    return Response(status_code=404, content_type=PROBLEM_JSON, body=json.dumps(body))


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The function's entry point: never a Lambda error (API Gateway would answer a bare 502)."""
    try:
        return cast(dict[str, Any], _handle(event, context))
    except Exception as error:  # the last resort, for what escaped even the resolver's handlers
        failure = _internal_error(error)
        with contextlib.suppress(Exception):
            record_failure(failure)
        return _proxy_answer(*_problem_parts(failure, _request_id(event)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # answers hold phone numbers
@metrics.log_metrics
def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if (event.get("httpMethod"), event.get("resource") or event.get("path")) in BODY_ROUTES:
        try:
            event = _with_canonical_body(event)
        except GatewayError as refused:
            record_failure(refused)
            return _proxy_answer(*_problem_parts(refused, _request_id(event)))
    return app.resolve(event, context)


def _with_canonical_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body as one JSON object in plain UTF-8 text, labelled application/json.

    What Powertools reads is then always well-formed: base64, media type parameters, header
    case, non-objects and every malformation were dealt with by the boundary.
    """
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    content_type = next(
        (v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), None
    )
    document = read_json_object(
        event.get("body"), base64_encoded=bool(event.get("isBase64Encoded")), content_type=content_type
    )
    multi_headers = {
        k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"
    }
    return {
        **event,
        "body": json.dumps(document),
        "isBase64Encoded": False,
        "headers": {**headers, "Content-Type": JSON_MEDIA_TYPE},
        "multiValueHeaders": {**multi_headers, "Content-Type": [JSON_MEDIA_TYPE]},
    }


def _internal_error(error: Exception) -> GatewayError:
    with contextlib.suppress(Exception):  # the last resort must answer even if logging fails
        logger.exception("unexpected error", extra={"reason": type(error).__name__})
    return GatewayError(
        Failure.INTERNAL_ERROR,
        f"The gateway failed unexpectedly ({type(error).__name__}). Quote the request_id when you report it.",
    )


def _request_id(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) else None


def _proxy_answer(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    """A REST proxy response, shaped as Powertools shapes them, for answers made outside the resolver."""
    all_headers = {"Content-Type": PROBLEM_JSON, **headers}
    return {
        "statusCode": status,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "body": body,
        "isBase64Encoded": False,
    }


gc.freeze()
gc.enable()
