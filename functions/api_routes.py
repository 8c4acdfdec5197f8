"""The API's routes on Powertools' REST resolver: everything but the send itself, and the description.

api_handler serves `POST /messages` itself (the hot path, without the resolver's
per-request cost) and hands every other request to `app` here, imported on the
first such request (or before the snapshot, with SnapStart). The resolver still
declares `POST /messages`, so that the OpenAPI description comes from one place;
tests/integration/test_api_fast_path.py holds the two paths to the same answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import StringConstraints

from api_handler import caller_of, schedule_location
from gateway import names
from gateway.account.balance import balance_answer
from gateway.failures import Failure, GatewayError, invalid_request, record_failure
from gateway.fields import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    SEND_AT_PATTERN,
    FieldError,
    describe_errors,
)
from gateway.intake import accept
from gateway.observability import logger
from gateway.problems import PROBLEM_JSON, internal_error, problem_parts
from gateway.provider.queries import get_queries
from gateway.responses import (
    BalanceResponse,
    LookupResponse,
    MessageStatus,
    PreviewResponse,
    Problem,
    SchedulePage,
    ScheduleResponse,
    SendResponse,
    SuppressionEntries,
    SuppressionEntry,
    SuppressionImported,
    SuppressionPage,
    SuppressionRemoved,
)
from gateway.sending.preview import preview
from gateway.sending.request import SendRequest
from gateway.sending.send import get_sender
from gateway.settings import SettingsError
from gateway.suppression.requests import EntryIn, ImportRequest
from gateway.suppression.rules import Reason
from gateway.tracking.lookup import look_up

API_TITLE = "viber-gateway"
API_VERSION = "1.0.0"
# The description's info.license. The repository has no LICENSE file and pyproject.toml declares no
# license; package.json declares "UNLICENSED" (npm's word for: not licensed to others). So the API is
# proprietary, all rights reserved, said with an SPDX LicenseRef (OpenAPI 3.1's license identifier).
API_LICENSE = {"name": "Proprietary: all rights reserved", "identifier": "LicenseRef-Proprietary"}
# Each operation's operationId is its name in generated clients (openapi-python-client's
# send_message.sync_detailed, ...): short, and stable, since renaming one breaks their code.
# tests/integration/test_openapi_description.py pins the list.
_COMPONENT_PREFIX = "#/components/schemas/"
# Entries Powertools reports when the body is not a JSON object at all.
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type", "missing"}
# Where Powertools says a parameter came from; the field path starts after it.
_PARAMETER_SOURCES = frozenset({"body", "header", "query", "path"})

app = APIGatewayRestResolver(enable_validation=True)


def _problem_response(status: int, description: str) -> OpenAPIResponse:
    return {"description": description, "content": {PROBLEM_JSON: {"model": Problem}}}


@app.post(
    "/messages",
    operation_id="sendMessage",
    summary="Send a Viber message, with SMS fallback where asked",
    description="The body is LiveAll's SendIM without `apitoken`: the gateway supplies the token.",
    tags=["messages"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "Sent", "content": {"application/json": {"model": SendResponse}}},
        202: {
            "description": "Scheduled (send_at, or a send window closed now): the schedule, at Location",
            "content": {"application/json": {"model": ScheduleResponse}},
            "headers": {
                "Location": {
                    "description": "The schedule: GET it, or DELETE it to cancel",
                    "schema": {"type": "string"},
                }
            },
        },
        400: _problem_response(400, "The body is not one JSON object (or not UTF-8, or not valid base64)"),
        403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
        409: _problem_response(409, "The idempotency key was used for another message, or is in progress"),
        413: _problem_response(413, "API Gateway: the request is larger than 10 MB"),
        415: _problem_response(415, "The body is not sent as application/json in UTF-8"),
        422: _problem_response(422, "A value is invalid, or the provider rejected one"),
        429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
        500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
        502: _problem_response(502, "The provider failed (nothing was sent), or only part was sent"),
        503: _problem_response(
            503, "The provider is unreachable, the gateway is misconfigured, or scheduling failed"
        ),
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
            max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Sends at most once per key within the window (24 h by default): a repeat with the "
            "same body replays the first answer, marked by the Idempotent-Replayed header.",
        ),
    ] = None,
) -> Response[Any]:
    # api_handler answers this route itself; the resolver's copy is the description, and the twin
    # the fast path is tested against.
    answer = accept(
        request,
        idempotency_key=idempotency_key,
        seconds_left=_seconds_left,
        caller=caller_of(app.current_event.raw_event),
    )
    response = _json(answer.status, answer.body, replayed=answer.replayed)
    if answer.schedule_id is not None:
        response.headers["Location"] = schedule_location(app.current_event.raw_event, answer.schedule_id)
    return response


@app.post(
    "/messages/preview",
    operation_id="previewMessage",
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
    answer = preview(request, get_queries(), suppression=get_sender().suppression, seconds_left=_seconds_left)
    return _json(200, answer, replayed=False)


@app.get(
    "/account/balance",
    operation_id="getBalance",
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


_SUPPRESSION_ERRORS = {
    403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
    422: _problem_response(422, "A value is invalid"),
    429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
    500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
    503: _problem_response(503, "The stage has no suppression list"),
}
NUMBER_DESCRIPTION = (
    "The number in any format a send takes ('+306912345678', '00306912345678', '306912345678'), "
    "percent-encoded where it holds spaces or other separators."
)
SenderQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="A Viber sender name: that sender's entry only."),
]


@app.put(
    "/suppressions/<number>",
    operation_id="putSuppression",
    summary="Put a number on the suppression list (or change its entry)",
    description="One entry per number and scope (every sender, or one Viber sender name). Every send "
    "leaves the number out while the entry lasts. Destination Suppressed is published when it is new or "
    "changed.",
    tags=["suppressions"],
    security=[{"apiKey": []}],
    responses={
        200: {
            "description": "The entry as stored",
            "content": {"application/json": {"model": SuppressionEntry}},
        },
        400: _problem_response(400, "The body is not one JSON object (or not UTF-8, or not valid base64)"),
        413: _problem_response(413, "API Gateway: the request is larger than 10 MB"),
        415: _problem_response(415, "The body is not sent as application/json in UTF-8"),
        **_SUPPRESSION_ERRORS,
    },
)
def put_suppression(
    number: Annotated[str, Path(description=NUMBER_DESCRIPTION)],
    entry: Annotated[EntryIn, Body(description="Why, for whom, until when")],
) -> Response[Any]:
    service = _suppressions()
    answer, _ = service.add(_number(number), entry, _caller())
    return _json(200, answer, replayed=False)


@app.get(
    "/suppressions/<number>",
    operation_id="getSuppression",
    summary="A number's entries on the suppression list",
    tags=["suppressions"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "Its entries", "content": {"application/json": {"model": SuppressionEntries}}},
        404: _problem_response(404, "The number is not on the list"),
        **_SUPPRESSION_ERRORS,
    },
)
def get_suppression(number: Annotated[str, Path(description=NUMBER_DESCRIPTION)]) -> Response[Any]:
    return _json(200, _suppressions().get(_number(number)), replayed=False)


@app.delete(
    "/suppressions/<number>",
    operation_id="deleteSuppression",
    summary="Take a number off the suppression list",
    description="Its entry for one sender (`?sender=`), or every entry of the number. Publishes "
    "Suppression Removed for each entry removed. The entries are erased, not kept.",
    tags=["suppressions"],
    security=[{"apiKey": []}],
    responses={
        200: {
            "description": "What was removed",
            "content": {"application/json": {"model": SuppressionRemoved}},
        },
        404: _problem_response(404, "The number has no such entry"),
        **_SUPPRESSION_ERRORS,
    },
)
def delete_suppression(
    number: Annotated[str, Path(description=NUMBER_DESCRIPTION)], sender: SenderQuery = None
) -> Response[Any]:
    return _json(200, _suppressions().remove(_number(number), sender, _caller()), replayed=False)


@app.get(
    "/suppressions",
    operation_id="listSuppressions",
    summary="The suppression list, a page at a time",
    description="Filtered by reason and scope; `next_cursor` leads to the next page.",
    tags=["suppressions"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "A page", "content": {"application/json": {"model": SuppressionPage}}},
        **_SUPPRESSION_ERRORS,
    },
)
def list_suppressions(
    reason: Annotated[Reason | None, Query(description="Only entries of this reason.")] = None,
    sender: SenderQuery = None,
    scope: Annotated[
        Literal["all", "every-sender"] | None,
        Query(description="every-sender: only entries for every sender (not one sender's)."),
    ] = None,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=2048, description="next_cursor of the page before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
) -> Response[Any]:
    answer = _suppressions().page(
        reason=None if reason is None else reason.value,
        sender=sender,
        every_sender=scope == "every-sender",
        cursor=cursor,
        limit=limit,
    )
    return _json(200, answer, replayed=False)


@app.post(
    "/suppressions/import",
    operation_id="importSuppressions",
    summary="Put up to 10,000 numbers on the suppression list at once",
    description="All or nothing: one invalid entry refuses the whole import, naming it. Importing the "
    "same entries again changes nothing (and publishes nothing).",
    tags=["suppressions"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "What changed", "content": {"application/json": {"model": SuppressionImported}}},
        400: _problem_response(400, "The body is not one JSON object (or not UTF-8, or not valid base64)"),
        413: _problem_response(413, "API Gateway: the request is larger than 10 MB"),
        415: _problem_response(415, "The body is not sent as application/json in UTF-8"),
        **_SUPPRESSION_ERRORS,
    },
)
def import_suppressions(request: Annotated[ImportRequest, Body(description="The entries")]) -> Response[Any]:
    return _json(200, _suppressions().import_entries(request, _caller()), replayed=False)


def _suppressions() -> Any:
    from gateway.suppression.service import SuppressionList

    store = get_sender().suppression
    if store is None:
        raise GatewayError(Failure.MISCONFIGURED, "This stage has no suppression list (SUPPRESSION_TABLE).")
    from gateway.events import get_publisher

    return SuppressionList(store, get_publisher())


def _number(raw: str) -> str:
    from urllib.parse import unquote

    from gateway.suppression.service import number_from_path

    return number_from_path(unquote(raw))


def _caller() -> str:
    """Who is asking: the API key's id as API Gateway tells it (not the key), or `api`."""
    identity = app.current_event.request_context.identity
    return identity.api_key_id or "api"


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
    operation_id="getMessage",
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
    operation_id="getMessages",
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


_SCHEDULE_ERRORS: dict[int, OpenAPIResponse] = {
    403: _problem_response(403, "API Gateway: the x-api-key header is missing or not a key of the API"),
    429: _problem_response(429, "API Gateway: too many requests for the stage or the key's usage plan"),
    500: _problem_response(500, "The gateway failed unexpectedly (quote request_id)"),
    503: _problem_response(503, "Scheduled sends are not configured on this stage"),
}
ScheduleId = Annotated[str, Path(description="The schedule's id (32 hex digits), as the 202 gave it.")]


@app.get(
    "/schedules/<schedule_id>",
    operation_id="getSchedule",
    summary="A scheduled send: its state, its parts, and each part's answer once sent",
    tags=["schedules"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "The schedule", "content": {"application/json": {"model": ScheduleResponse}}},
        404: _problem_response(404, "No such schedule"),
        **_SCHEDULE_ERRORS,
    },
)
def get_schedule(schedule_id: ScheduleId) -> Response[Any]:
    return _json(200, _schedules().get(schedule_id), replayed=False)


@app.delete(
    "/schedules/<schedule_id>",
    operation_id="cancelSchedule",
    summary="Cancel a scheduled send",
    description="Cancels every part that has not fired. Publishes Scheduled Send Cancelled. A schedule "
    "with nothing left to cancel (sent, sending, failed, cancelled) is a 409 that says its state.",
    tags=["schedules"],
    security=[{"apiKey": []}],
    responses={
        200: {
            "description": "The schedule, cancelled",
            "content": {"application/json": {"model": ScheduleResponse}},
        },
        404: _problem_response(404, "No such schedule"),
        409: _problem_response(409, "Every part has fired or was cancelled already"),
        **_SCHEDULE_ERRORS,
    },
)
def delete_schedule(schedule_id: ScheduleId) -> Response[Any]:
    return _json(200, _schedules().cancel(schedule_id), replayed=False)


@app.get(
    "/schedules",
    operation_id="listSchedules",
    summary="Scheduled sends, a page at a time",
    description="In the order their first part goes out, filtered by state and by when that is "
    "(from, to: RFC 3339). Without from and to: from 30 days ago to the end of the horizon. "
    "Lists leave out numbers and answers: GET /schedules/{id} has them.",
    tags=["schedules"],
    security=[{"apiKey": []}],
    responses={
        200: {"description": "A page", "content": {"application/json": {"model": SchedulePage}}},
        422: _problem_response(422, "A query parameter is invalid"),
        **_SCHEDULE_ERRORS,
    },
)
def list_schedules(
    state: Annotated[
        Literal["scheduled", "sending", "sent", "failed", "cancelled"] | None,
        Query(description="Only schedules in this state."),
    ] = None,
    from_: Annotated[
        str | None,
        Query(alias="from", pattern=SEND_AT_PATTERN, description="Earliest first send time (RFC 3339)."),
    ] = None,
    to: Annotated[
        str | None, Query(pattern=SEND_AT_PATTERN, description="Latest first send time (RFC 3339).")
    ] = None,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=2048, description="next_cursor of the page before.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=names.MAX_SCHEDULE_LIST_LIMIT, description="Schedules per page.")
    ] = 25,
) -> Response[Any]:
    answer = _schedules().page(
        state=state, start=_instant("from", from_), end=_instant("to", to), limit=limit, cursor=cursor
    )
    return _json(200, answer, replayed=False)


def _schedules() -> Any:
    from gateway.schedules.service import get_schedules

    return get_schedules()


def _instant(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        instant.astimezone(UTC)  # the years 1 and 9999 with an offset leave the calendar
    except (ValueError, OverflowError):
        raise invalid_request([FieldError(field, "is not a date and time that exists")]) from None
    return instant


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
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, License

    generated = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        summary="Viber business messages with SMS fallback through LiveAll",
        license_info=License(**API_LICENSE),
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
    )
    document = json.loads(generated)
    _problem_for_validation_errors(document)
    _drop_unreferenced_schemas(document)
    # ASCII (json.dumps escapes the rest): infra/openapi.py serves it from a mapping template.
    return json.dumps(document, indent=2)


def _problem_for_validation_errors(document: dict[str, Any]) -> None:
    """Powertools' 422 for its request validation, where a route did not describe its own, as ours.

    Powertools documents a 422 on every operation, with its HTTPValidationError schema, but its
    validation errors never reach a caller as that: _on_invalid_body answers them with a Problem.
    """
    placeholder = {"$ref": f"{_COMPONENT_PREFIX}HTTPValidationError"}
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            content = responses.get("422", {}).get("content", {})
            if any(media.get("schema") == placeholder for media in content.values()):
                responses["422"] = {
                    "description": "A value is invalid",
                    "content": {PROBLEM_JSON: {"schema": {"$ref": f"{_COMPONENT_PREFIX}Problem"}}},
                }


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Publish only the schemas an operation uses, directly or through another schema.

    Powertools adds HTTPValidationError, ValidationError and ResponseValidationError whether or
    not anything refers to them; the API answers none of them.
    """
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = _references({key: value for key, value in document.items() if key != "components"})
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _references(schemas[name])
    for name in set(schemas) - used:
        del schemas[name]


def _references(node: Any) -> set[str]:
    """The names of the component schemas that `node` refers to ($ref), at any depth."""
    if isinstance(node, dict):
        found = {
            ref.removeprefix(_COMPONENT_PREFIX)
            for key, ref in node.items()
            if key == "$ref" and isinstance(ref, str) and ref.startswith(_COMPONENT_PREFIX)
        }
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    return set()


def _seconds_left() -> float:
    return float(app.lambda_context.get_remaining_time_in_millis()) / 1000


def _problem(error: GatewayError) -> Response[str]:
    status, headers, body = problem_parts(error, app.current_event.request_context.request_id)
    return Response(status_code=status, content_type=PROBLEM_JSON, body=body, headers=headers)


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
    failure = internal_error(error)
    record_failure(failure)
    return _problem(failure)


@app.not_found
def _on_not_found(_: Exception) -> Response[str]:
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such route."}
    return Response(status_code=404, content_type=PROBLEM_JSON, body=json.dumps(body))
