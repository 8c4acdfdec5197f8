"""REST API entry point (API Gateway proxy events).

A thin adapter. `POST /messages`, the path every send takes, is served here:
the body boundary (gateway.sending.body) turns the body into one JSON object or a
400/415 problem, the request rules (gateway.sending.request) check it, the send use
case sends it, and every failure becomes the problem+json answer gateway.failures
decides. Every other route (preview, lookups, balance, the description) is
Powertools' REST resolver in api_routes, imported on the first such request:
a send never pays for it. The resolver declares `POST /messages` too (the
description is made from it), and both paths answer alike
(tests/integration/test_api_fast_path.py). Nothing escapes as a Lambda error:
an unexpected exception is a 500 problem with the request id.

With SnapStart the before-snapshot hook primes all of it (gateway.sending.priming).
"""

from __future__ import annotations

import gc

# Cold start: the imports below make hundreds of thousands of objects, and collecting
# while importing only costs time. Collection resumes at the end of this module, with
# what the imports made frozen out of its way.
gc.disable()

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import StringConstraints, TypeAdapter, ValidationError

from gateway import names, snapshot
from gateway.failures import Failure, GatewayError, invalid_request, record_failure
from gateway.fields import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH, FieldError, describe_errors
from gateway.intake import accept
from gateway.observability import logger, metrics, tracer
from gateway.problems import PROBLEM_JSON, internal_error, problem_parts
from gateway.sending import priming
from gateway.sending.body import read_json_object
from gateway.sending.request import SendRequest
from gateway.settings import SettingsError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SEND_ROUTE = ("POST", "/messages")
MAX_KEY_ID_LENGTH = 128  # API Gateway's key ids are about ten letters and digits
_KEY_ID = re.compile(r"[A-Za-z0-9_-]+")
# The routes with a body: it passes the same boundary before the resolver reads it.
BODY_ROUTES = frozenset(
    {("POST", "/messages/preview"), ("PUT", "/suppressions/{number}"), ("POST", "/suppressions/import")}
)
NUMBER_RESOURCE = "/suppressions/{number}"
JSON_HEADERS = {"Content-Type": ["application/json"]}
REPLAYED_JSON_HEADERS = {**JSON_HEADERS, names.IDEMPOTENCY_REPLAYED_HEADER: ["true"]}
# The header's rules, as the resolver's Header(...) in api_routes states them for the description.
_KEY_HEADER = names.IDEMPOTENCY_KEY_HEADER.lower()
_idempotency_key = TypeAdapter(
    Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH, pattern=IDEMPOTENCY_KEY_PATTERN
        ),
    ]
)


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The function's entry point: never a Lambda error (API Gateway would answer a bare 502)."""
    try:
        answer: dict[str, Any] = _handle(event, context)
        return answer
    except Exception as error:  # the last resort, for what escaped even the route's own handling
        failure = internal_error(error)
        with contextlib.suppress(Exception):
            record_failure(failure)
        return _proxy_answer(*problem_parts(failure, _request_id(event)))


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # answers hold phone numbers
@metrics.log_metrics
def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway's request id (what correlation_paths.API_GATEWAY_REST names), read without jmespath.
    logger.set_correlation_id(_request_id(event))
    route = (event.get("httpMethod"), event.get("resource") or event.get("path"))
    if route == SEND_ROUTE:
        return send_message(event, lambda: context.get_remaining_time_in_millis() / 1000)
    if route in BODY_ROUTES:
        try:
            event = with_canonical_body(event)
        except GatewayError as refused:
            record_failure(refused)
            return _proxy_answer(*problem_parts(refused, _request_id(event)))
    if event.get("resource") == NUMBER_RESOURCE:
        event = _with_encoded_number(event)
    return resolve(event, context)


def _with_encoded_number(event: dict[str, Any]) -> dict[str, Any]:
    """The path with the number percent-encoded, as the resolver's route patterns take it.

    API Gateway decodes path parameters; a number written '+30 691 234 5678' would not match
    the resolver's pattern for a path segment. The route decodes it again.
    """
    from urllib.parse import quote

    parameters = event.get("pathParameters")
    number = parameters.get("number") if isinstance(parameters, dict) else None
    if not isinstance(number, str):
        return event
    # A lone surrogate cannot be percent-encoded: it travels as its escape, and is refused as no number.
    return {**event, "path": "/suppressions/" + quote(number, safe="", errors="backslashreplace")}


def send_message(event: dict[str, Any], seconds_left: Callable[[], float]) -> dict[str, Any]:
    """POST /messages: the request checked as the resolver would check it, sent, and answered."""
    try:
        request, idempotency_key = parse_send(event)
        answer = accept(
            request, idempotency_key=idempotency_key, seconds_left=seconds_left, caller=caller_of(event)
        )
    except GatewayError as error:
        failure = error
    except SettingsError as error:
        logger.error("gateway misconfigured", extra={"reason": str(error)})
        failure = GatewayError(Failure.MISCONFIGURED, "The gateway's configuration is incomplete.")
    except Exception as error:
        failure = internal_error(error)
    else:
        headers = REPLAYED_JSON_HEADERS if answer.replayed else JSON_HEADERS
        if answer.schedule_id is not None:
            headers = {**headers, "Location": [schedule_location(event, answer.schedule_id)]}
        return {
            "statusCode": answer.status,
            "multiValueHeaders": headers,
            "body": json.dumps(answer.body),
            "isBase64Encoded": False,
        }
    record_failure(failure)
    return _proxy_answer(*problem_parts(failure, _request_id(event)))


def schedule_location(event: Mapping[str, Any], schedule_id: str) -> str:
    """The schedule's path as the caller reaches it: with the stage's prefix (/prod) when deployed."""
    context = event.get("requestContext")
    path = context.get("path") if isinstance(context, Mapping) else None
    prefix = ""
    if isinstance(path, str) and path.endswith("/messages"):
        prefix = path.removesuffix("/messages").rstrip("/")
    return f"{prefix}/schedules/{schedule_id}"


def parse_send(event: Mapping[str, Any]) -> tuple[SendRequest, str | None]:
    """The send request and the Idempotency-Key of an event; GatewayError naming every problem.

    As Powertools' validation reads them: the header from multiValueHeaders when the event
    has any (else headers), in any case, one value; its problems listed before the body's.
    """
    document = read_json_object(
        event.get("body"),
        base64_encoded=bool(event.get("isBase64Encoded")),
        content_type=_content_type(event),
    )
    errors: list[FieldError] = []
    key = _last_header(event.get("multiValueHeaders") or event.get("headers"), _KEY_HEADER)
    if isinstance(key, list) and len(key) == 1:
        key = key[0]
    if key is not None:
        try:
            key = _idempotency_key.validate_python(key)
        except ValidationError as error:
            located = [{**entry, "loc": (_KEY_HEADER, *entry["loc"])} for entry in error.errors()]
            errors += describe_errors(located)
    try:
        request = SendRequest.model_validate(document)
    except ValidationError as error:
        errors += describe_errors(error.errors(include_url=False, include_input=False))
    if errors:
        raise invalid_request(errors)
    return request, key


def with_canonical_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body as one JSON object in plain UTF-8 text, labelled application/json.

    What Powertools reads is then always well-formed: base64, media type parameters, header
    case, non-objects and every malformation were dealt with by the boundary.
    """
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    document = read_json_object(
        event.get("body"),
        base64_encoded=bool(event.get("isBase64Encoded")),
        content_type=_content_type(event),
    )
    multi_headers = {
        k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"
    }
    return {
        **event,
        "body": json.dumps(document),
        "isBase64Encoded": False,
        "headers": {**headers, "Content-Type": "application/json"},
        "multiValueHeaders": {**multi_headers, "Content-Type": ["application/json"]},
    }


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Every route but the send: Powertools' resolver, loaded with the first request that needs it."""
    from api_routes import app

    answer: dict[str, Any] = app.resolve(event, context)
    return answer


def openapi_json() -> str:
    """The API's OpenAPI description (made at synthesis and by the local front, never on a send)."""
    from api_routes import openapi_json as describe

    return describe()


def _content_type(event: Mapping[str, Any]) -> Any:
    """The Content-Type header in any case (the first spelling, if an event has two)."""
    headers = event.get("headers") or {}
    return next((value for name, value in headers.items() if name.lower() == "content-type"), None)


def _last_header(headers: Any, lower_name: str) -> Any:
    """A header in any case, the last spelling winning, as Powertools' case-insensitive dict reads it."""
    if not isinstance(headers, Mapping):
        return None
    found = None
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == lower_name:
            found = value
    return found


def caller_of(event: Mapping[str, Any]) -> str:
    """Who is sending, for the caps: `key:` and the API key's id as API Gateway tells it (not the
    key), or `api` (IAM callers). The prefix keeps a key apart from the queue's and the stage's
    items; an id that is not one API Gateway gives (an event made by hand) counts by its digest."""
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    key_id = identity.get("apiKeyId") if isinstance(identity, Mapping) else None
    if not isinstance(key_id, str) or not key_id:
        return "api"
    if len(key_id) <= MAX_KEY_ID_LENGTH and _KEY_ID.fullmatch(key_id):
        return f"key:{key_id}"
    import hashlib

    digest = hashlib.sha256(key_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"key-digest:{digest}"


def _request_id(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) else None


def _proxy_answer(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    """A REST proxy response, shaped as Powertools shapes them."""
    all_headers = {"Content-Type": PROBLEM_JSON, **headers}
    return {
        "statusCode": status,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "body": body,
        "isBase64Encoded": False,
    }


def prime() -> None:
    """Before the snapshot: what any first request would do the same way, sending nothing."""
    priming.prime_api(parse=parse_send, resolve=resolve)


snapshot.register_once(before_snapshot=prime, after_restore=priming.forget_environment)

gc.freeze()
gc.enable()
