"""Hypothesis strategies for what a careless or hostile caller sends, in the shapes AWS delivers it.

API Gateway REST proxy events (any header case, base64 bodies as API Gateway
sends binary ones, bodies that are not UTF-8, not JSON, not objects, deeply
nested, with huge numbers or lone surrogates) and SQS records (bodies alike,
idempotency keys as String, Number or Binary message attributes, as Lambda's
event source mapping hands them over). Then scheduled sends: POST /messages
bodies with hostile or valid send_at and window, GET and DELETE
/schedules/{schedule_id} and GET /schedules with hostile query strings and
forged cursors, and records on the trigger queue.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from tests.conftest import APPROVED_SENDER, load_event

VALID_BODY: dict[str, Any] = {
    "im_type": "IM_SMSFB",
    "im_sender_name": APPROVED_SENDER,
    "im_text": "Your order has shipped.",
    "destinations": ["+30 691 234 5678"],
    "senderid": "MyShop",
    "sms_text": "Your order has shipped.",
    "reference": "order-1042",  # the caller's own: never sent to LiveAll
}
FIELDS = [
    "im_type",
    "im_sender_name",
    "im_text",
    "destinations",
    "im_image_urls",
    "im_actions",
    "senderid",
    "sms_text",
    "pricecat",
    "idempotency_key",
    "reference",
    "apitoken",
    "unknown_field",
]

# Every Unicode category, surrogates (Cs) and unassigned code points included.
any_character = st.characters(exclude_categories=())
# Texts that look empty, or hold what a careless program leaves in a string.
invisible = st.sampled_from(
    ["", " ", "\t", "\n", "\u200b", "\u200b\u200c\u200d", "\u2060", "\ufeff", "\u00a0"]
)
hostile_text = st.one_of(
    st.text(any_character, max_size=12),
    invisible,
    st.sampled_from(["\udfff", "a\ud800b", "\x00", "\x7f", "٣٤٥٦٧", "1234567890123", "123456789012345678"]),
    st.sampled_from(
        [
            "https://example.com/a.png\n",
            "https://example.com/\ta.png",
            " https://example.com/a.png",
            "https:\\\\example.com\\a.png",
            "https:example.com/a.png",
            "https://exa mple.com/",
            "javascript:alert(1)",
            "https://example.com/" + "a" * 5000,
        ]
    ),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, 1.0, 0.0, -1, 2**64, 10**300]),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=8,
)


hostile_urls = st.sampled_from(
    [
        "https://example.com/a.png\n",
        "https://example.com/\ta.png",
        " https://example.com/a.png",
        "https:\\\\example.com\\a.png",
        "https:example.com/a.png",
        "https:/example.com/a.png",
        "https://exa mple.com/",
        "HTTPS://EXAMPLE.COM/A.PNG",
        "https://ex\u00e4mple.com/caf\u00e9.png",
        "http://example.com/a.png",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 5000,
    ]
)
# Values each field's rules must refuse, or take as the provider would (one field at a time).
TARGETED: dict[str, st.SearchStrategy[Any]] = {
    "im_type": st.sampled_from(["im", "IM ", "SMS", ""]),
    "im_sender_name": invisible | st.sampled_from(["\udfff", "My\nShop", "MyShop\x00"]),
    "im_text": invisible | st.sampled_from(["   ", "\udfff", "a\ud800b", "x" * 1001, "ok\x00"]),
    "sms_text": invisible | st.sampled_from(["   ", "\udfff", "a\ud800b", "ok\x00"]),
    "senderid": st.sampled_from(
        ["\u0663\u0664\u0665\u0666\u0667", "123", "1234567890123", "1" * 17, "My\nShop", " "]
    ),
    "pricecat": st.sampled_from([True, False, 1.0, 0.0, "1", 2, -1]),
    # The caller's own: kept by the gateway, never sent to LiveAll.
    "reference": invisible
    | st.sampled_from(["order-1042", "Παραγγελία 7", "r" * 256, "r" * 257, "ref\n", "\udfff", 1042]),
    "im_image_urls": st.lists(hostile_urls, min_size=1, max_size=1),
    "im_actions": st.lists(
        st.fixed_dictionaries({"caption": st.just("Open") | invisible, "url": hostile_urls}),
        min_size=1,
        max_size=1,
    ),
    "destinations": st.lists(
        st.sampled_from(
            [
                "+30 691 234 5679",
                "\u0663\u0660\u0666\u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
                "+30 691 234 5679\n",
                "3" * 40,
            ]
        ),
        min_size=1,
        max_size=3,
    ),
}


@st.composite
def mutated_body(draw: st.DrawFn) -> dict[str, Any]:
    """The valid body with one field set to a value its rules care about, or one to three made hostile."""
    body = copy.deepcopy(VALID_BODY)
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(TARGETED)))
        body[field] = draw(TARGETED[field])
        return body
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and field in body:
            del body[field]
        else:
            body[field] = draw(_field_value(field))
    return body


@st.composite
def accepted_body(draw: st.DrawFn) -> dict[str, Any]:
    """A body every rule accepts, varied where the rules allow: what is sent must be what was checked."""
    body = copy.deepcopy(VALID_BODY)
    body["destinations"] = draw(
        st.lists(
            st.sampled_from(["+30 691 234 5678", "306912345679", "00306987654321", "+30 6912345670"]),
            min_size=1,
            max_size=3,
        )
    )
    body["im_text"] = draw(
        st.sampled_from(["Your order has shipped.", "Στάλθηκε η παραγγελία σας: 5 €", "a" * 1000])
    )
    reference = draw(st.sampled_from([None, "order-1042", "Παραγγελία 7", "r" * 256]))
    if reference is None:
        del body["reference"]
    else:
        body["reference"] = reference
    return body


def _field_value(field: str) -> st.SearchStrategy[Any]:
    if field == "destinations":
        return st.lists(hostile_text | st.sampled_from(["306912345678", "+30 691 234 5679"]), max_size=4)
    if field == "im_image_urls":
        return st.lists(hostile_text, max_size=2)
    if field == "im_actions":
        return st.lists(st.fixed_dictionaries({"caption": hostile_text, "url": hostile_text}), max_size=2)
    if field == "pricecat":
        return json_scalar
    return json_value


def _dumps(document: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\udfff escapes, as a JSON encoder writes them
    return json.dumps(document).encode()


def _nested(depth: int) -> bytes:
    return b'{"im_text": ' + b"[" * depth + b"]" * depth + b"}"


raw_body = st.one_of(
    accepted_body().map(_dumps),
    mutated_body().map(_dumps),
    st.lists(mutated_body(), min_size=1, max_size=2).map(_dumps),  # an array of messages
    json_value.map(_dumps),
    st.binary(max_size=40),
    st.integers(200, 100_000).map(_nested),
    st.integers(4_000, 20_000).map(lambda n: b'{"pricecat": 1' + b"0" * n + b"}"),
    st.sampled_from(
        [b"", b"null", b"NaN", b'{"pricecat": Infinity}', b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}"]
    ),
)
header_name = st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE", "Content-type"])
content_type = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "Application/JSON",
            "APPLICATION/JSON; charset=UTF-8",
            "application/json;charset=utf-8",
            "application/json; charset=latin-1",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/problem+json",
            "application/jsonp",
            ";;;",
        ]
    ),
)


# The routes that take a send's body, and a sample event of each.
BODY_ROUTE_EVENTS = {"/messages": "api-post-im.json", "/messages/preview": "api-post-preview.json"}


@st.composite
def api_event(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A POST /messages or /messages/preview proxy event of AWS's documented shape, and its body bytes."""
    event = load_event(BODY_ROUTE_EVENTS[draw(st.sampled_from(sorted(BODY_ROUTE_EVENTS)))])
    raw = draw(raw_body)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type")
    chosen_type = draw(content_type)
    if chosen_type is not None:
        name = draw(header_name)
        event["headers"][name] = chosen_type
        event["multiValueHeaders"][name] = [chosen_type]
    if draw(st.booleans()):
        key = draw(hostile_text)
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    encoding = draw(st.sampled_from(["text", "base64", "broken-base64"]))
    if encoding == "text":
        try:
            event["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            # API Gateway passes what it cannot decode as base64; a careless client may send it raw.
            event["body"] = raw.decode("latin-1")
    elif encoding == "base64":
        event["body"] = base64.b64encode(raw).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = draw(st.sampled_from(["!!not base64!!", "YWJj=", "%%%", "e30"]))
        event["isBase64Encoded"] = True
    return event, raw


def _attribute(value: str | bytes, data_type: str) -> dict[str, Any]:
    if data_type == "Binary":
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        # As Lambda delivers a Binary attribute: base64 in binaryValue, and no stringValue at all.
        return {
            "binaryValue": base64.b64encode(raw).decode("ascii"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        }
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": data_type}


@st.composite
def sqs_record(draw: st.DrawFn, index: int) -> dict[str, Any]:
    record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
    record["messageId"] = f"fuzz-{index}-{draw(st.uuids())}"
    raw = draw(raw_body)
    # SQS bodies are text (valid XML characters); bytes that are not UTF-8 arrive as their characters.
    record["body"] = raw.decode("utf-8", errors="replace")
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        data_type = draw(st.sampled_from(["String", "Binary", "Number", "String.custom"]))
        key = draw(hostile_text | st.sampled_from(["order-1", "abc\n", "x" * 300]) | st.binary(max_size=8))
        if isinstance(key, bytes) and data_type != "Binary":
            key = key.decode("latin-1")
        if isinstance(key, str) and data_type != "Binary":
            # SQS only holds valid Unicode: a lone surrogate can come only as JSON's \\udfff escape.
            key = key.encode("utf-8", "replace").decode("utf-8")
        attributes["IdempotencyKey"] = _attribute(key, data_type)
    record["messageAttributes"] = attributes
    return record


@st.composite
def sqs_event(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    return {"Records": [draw(sqs_record(index)) for index in range(count)]}


# ----- the suppression list's routes -------------------------------------------------------------

_entry_value = st.one_of(
    st.fixed_dictionaries(
        {"reason": st.sampled_from(["opt-out", "bounced", "complaint", "manual", "spam", ""])},
        optional={
            "sender": st.one_of(st.none(), hostile_text, st.just("MyShop")),
            "note": st.one_of(st.none(), hostile_text),
            "expires_at": st.one_of(
                st.none(),
                hostile_text,
                st.sampled_from(["2099-01-01T00:00:00+02:00", "2000-01-01T00:00:00Z"]),
            ),
            "number": hostile_text,
        },
    ),
    json_value,
)
_imported = st.fixed_dictionaries(
    {
        "number": st.one_of(hostile_text, st.sampled_from(["+30 691 234 5678", "306912345679"])),
        "reason": st.sampled_from(["opt-out", "bounced", "nope"]),
    }
)
suppression_body = st.one_of(
    _entry_value.map(_dumps),
    st.fixed_dictionaries({"entries": st.lists(_imported | json_value, max_size=5)}).map(_dumps),
    raw_body,
)
# API Gateway routes /suppressions/{number} only for a non-empty segment
path_number = st.one_of(
    hostile_text.filter(bool), st.sampled_from(["+30 691 234 5678", "306912345678", "12", "%", "../x"])
)


@st.composite
def suppression_event(draw: st.DrawFn) -> dict[str, Any]:
    """A PUT /suppressions/{number} or POST /suppressions/import proxy event of AWS's shape."""
    event = load_event(BODY_ROUTE_EVENTS["/messages"])
    if draw(st.booleans()):
        number = draw(path_number)
        event.update(httpMethod="PUT", resource="/suppressions/{number}", pathParameters={"number": number})
        event["path"] = "/suppressions/" + number
    else:
        event.update(httpMethod="POST", resource="/suppressions/import", path="/suppressions/import")
    raw = draw(suppression_body)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type")
    chosen_type = draw(content_type)
    if chosen_type is not None:
        event["headers"]["Content-Type"] = chosen_type
        event["multiValueHeaders"]["Content-Type"] = [chosen_type]
    if draw(st.booleans()):
        event["body"] = base64.b64encode(raw).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = raw.decode("utf-8", "replace")
    return event


# ----- scheduled sends: send_at and window on POST /messages, the schedules' routes, triggers ----

# Numbers of one zone each (Athens, Nicosia, Sydney's main zone): a window splits a send by zone.
SCHEDULED_DESTINATIONS = ["+30 691 234 5678", "306912345679", "35799123456", "61412345678"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Offsets a caller may write, in minutes east of UTC (some of them odd, one the largest RFC 3339 has).
_OFFSETS = [0, 120, -300, 330, 345, 14 * 60, -12 * 60, 23 * 60 + 59, -(23 * 60 + 59)]
_DAY = 24 * 60 * 60


@st.composite
def instant_text(draw: st.DrawFn, *, seconds: st.SearchStrategy[int]) -> str:
    """An RFC 3339 instant `seconds` from now, written as a caller may write it (offset, case, fraction)."""
    instant = datetime.now(UTC) + timedelta(seconds=draw(seconds))
    offset = timezone(timedelta(minutes=draw(st.sampled_from(_OFFSETS))))
    local = instant.astimezone(offset)
    style = draw(st.sampled_from(["Z", "z", "offset", "fraction", "nanoseconds", "lower-t"]))
    if style in ("Z", "z"):
        return instant.strftime("%Y-%m-%dT%H:%M:%S") + style
    text = local.isoformat(timespec="seconds")
    if style == "fraction":
        text = local.isoformat(timespec="microseconds")
    elif style == "nanoseconds":
        text = text[:19] + ".123456789" + text[19:]
    elif style == "lower-t":
        text = text[:10] + "t" + text[11:]
    return text


# Future within the horizon (30 days), just ahead (the trigger goes on the queue), past, beyond it.
future_instant = instant_text(seconds=st.integers(90, 29 * _DAY))
send_at_value = st.one_of(
    future_instant,
    instant_text(seconds=st.integers(1, 60)),
    instant_text(seconds=st.integers(-3 * _DAY, 0)),
    instant_text(seconds=st.integers(31 * _DAY, 400 * _DAY)),
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-08T24:00:00Z",
            "2026-12-08T10:00:00",
            "2026-12-08 10:00:00Z",
            "2026-12-08T10:00:00+24:00",
            "2026-12-08T10:00:00+99:99",
            "2026-12-08T10:00:00.1234567891Z",
            "2026-12-08T10:00:00Z\n",
            " 2026-12-08T10:00:00Z",
            "+2026-12-08T10:00:00Z",
            "20261208T100000Z",
            "2026-12-08",
            "\u0662\u0660\u0662\u0666-12-08T10:00:00Z",
            "tomorrow",
            "now",
        ]
    ),
    st.sampled_from([1796000000, 1796000000.5, 0, -1, 2**64, True, False, [], {}]),
    hostile_text,
)
local_time = st.one_of(
    st.sampled_from(["09:00", "21:00", "00:00", "23:59", "21:30"]),
    st.sampled_from(["24:00", "9:00", "09:60", "0900", " 09:00", "09:00:00", "09:00\n", "\u0660\u0669:00"]),
    hostile_text,
    json_scalar,
)


@st.composite
def _window_around_now(draw: st.DrawFn) -> dict[str, Any]:
    """A window of Athens wall-clock time, open now or opening in a few hours, on some days."""
    athens = ZoneInfo("Europe/Athens")
    opens = datetime.now(UTC).astimezone(athens) + timedelta(minutes=draw(st.integers(-6 * 60, 12 * 60)))
    closes = opens + timedelta(minutes=draw(st.integers(1, 23 * 60)))
    window: dict[str, Any] = {"from": opens.strftime("%H:%M"), "to": closes.strftime("%H:%M")}
    if draw(st.booleans()):
        window["days"] = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    return window


window_value = st.one_of(
    _window_around_now(),
    st.fixed_dictionaries(
        {"from": local_time, "to": local_time},
        optional={
            "days": st.lists(st.sampled_from([*WEEKDAYS, "MON", "monday", "", "mon "]), max_size=8)
            | json_value,
            "zone": hostile_text,
        },
    ),
    st.sampled_from(
        [
            False,
            True,
            0,
            1,
            None,
            "false",
            "",
            [],
            {},
            {"from": "09:00"},
            {"to": "21:00"},
            {"from": "09:00", "to": "09:00"},
            {"from": "22:00", "to": "06:00"},
            {"from": "09:00", "to": "21:00", "days": []},
            {"from": "09:00", "to": "21:00", "days": ["mon", "mon"]},
            {"from": "09:00", "to": "21:00", "days": [*WEEKDAYS, "mon"]},
            {"opens": "09:00", "closes": "21:00"},
        ]
    ),
    json_value,
)


@st.composite
def scheduled_body(draw: st.DrawFn) -> dict[str, Any]:
    """A send that asks for a time (send_at), a send window, or both, hostile or valid; at times
    with another field broken too, so that every rule is checked when a send is scheduled."""
    body = copy.deepcopy(VALID_BODY)
    body["destinations"] = draw(st.lists(st.sampled_from(SCHEDULED_DESTINATIONS), min_size=1, max_size=4))
    asks = draw(st.sampled_from(["send_at", "window", "both"]))
    if asks in ("send_at", "both"):
        body["send_at"] = draw(send_at_value)
    if asks in ("window", "both"):
        body["window"] = draw(window_value)
    if draw(st.integers(0, 4)) == 0:
        field = draw(st.sampled_from(sorted(TARGETED)))
        body[field] = draw(TARGETED[field])
    return body


@st.composite
def scheduled_send_event(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A POST /messages proxy event carrying a scheduled_body, sometimes under an Idempotency-Key."""
    event = load_event(BODY_ROUTE_EVENTS["/messages"])
    body = draw(scheduled_body())
    event["body"] = json.dumps(body)
    if draw(st.booleans()):
        # Few keys: the same key comes back with the same body (a replay) and with another (409).
        key = draw(st.sampled_from(["campaign-1", "campaign-2", "campaign-3"]))
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    return event, body


# Stand-ins the test replaces with what exists in its table: a real schedule's id, a real cursor.
KNOWN_SCHEDULE = "known-schedule-stand-in"
KNOWN_CURSOR = "known-cursor-stand-in"
schedule_id_text = st.one_of(
    hostile_text.filter(bool),
    st.text("0123456789abcdef", min_size=32, max_size=32),
    st.text("0123456789abcdefABCDEF", min_size=31, max_size=33),
    st.sampled_from(
        [
            KNOWN_SCHEDULE,
            "0" * 32,
            "F" * 32,
            "../x",
            "../../schedules",
            "..%2F..%2Fx",
            "%2e%2e",
            "0" * 31 + "\n",
            " " + "0" * 31,
            "0" * 32 + "/parts",
            "0" * 10_000,
        ]
    ),
)


def encoded_cursor(document: Any, *, padded: bool = False, standard: bool = False) -> str:
    """A cursor as the list hands them out (URL-safe base64 of JSON, unpadded), or a near miss."""
    raw = json.dumps(document).encode()
    text = (base64.b64encode(raw) if standard else base64.urlsafe_b64encode(raw)).decode()
    return text if padded else text.rstrip("=")


cursor_month = st.one_of(
    st.sampled_from(
        ["2026-12", "2027-01", "2026-1", "2026-13", "2026-00", "0001-01", "9999-12", "999-12", "2026-12-01"]
    ),
    st.sampled_from([None, 202612, ["2026-12"]]),
    hostile_text,
)
_S = st.fixed_dictionaries({"S": hostile_text | st.sampled_from(["x", "2026-12", "0" * 32])})
cursor_key = st.one_of(
    st.none(),
    st.sampled_from(
        [
            {"id": {"S": "x"}},
            {"id": {"S": 5}},
            {"id": {"BOGUS": 1}},
            {"id": {"N": "x"}},
            # Complete keys: one that may lie in the range asked for, one that cannot
            {"id": {"S": "0" * 32}, "month": {"S": "2026-12"}, "fires": {"S": "2026-12-08T08:00:00#0"}},
            {"id": {"S": "0" * 32}, "month": {"S": "1999-01"}, "fires": {"S": "1999-01-01T00:00:00#0"}},
            {},
        ]
    ),
    st.dictionaries(st.sampled_from(["id", "month", "fires", "expires_at"]), _S, max_size=3),
    json_value,
)
cursor_text = st.one_of(
    st.builds(lambda month, key: encoded_cursor({"month": month, "key": key}), cursor_month, cursor_key),
    st.builds(
        lambda month, key, padded, standard: encoded_cursor(
            {"month": month, "key": key}, padded=padded, standard=standard
        ),
        cursor_month,
        cursor_key,
        st.booleans(),
        st.booleans(),
    ),
    json_value.map(encoded_cursor),
    st.binary(max_size=24).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.sampled_from([KNOWN_CURSOR, KNOWN_CURSOR + "A", KNOWN_CURSOR + "==", "", "=", "e30", "x" * 2049]),
    hostile_text,
)
list_instant = st.one_of(
    instant_text(seconds=st.integers(-60 * _DAY, 60 * _DAY)),
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-01:00",
            "1970-01-01T00:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-08T10:00:00",
            "2026-12-08T10:00:00.1234567Z",
        ]
    ),
    hostile_text,
)
QUERY_VALUES: dict[str, st.SearchStrategy[str]] = {
    "state": st.sampled_from(["scheduled", "sending", "sent", "failed", "cancelled", "SCHEDULED", "", "x"])
    | hostile_text,
    "from": list_instant,
    "to": list_instant,
    "limit": st.sampled_from(["1", "2", "25", "100", "0", "101", "-1", "1e3", "01", " 1", "1.0", "\u0661"])
    | st.integers(-(2**70), 2**70).map(str)
    | hostile_text,
    "cursor": cursor_text,
    "unknown": hostile_text,
}


@st.composite
def list_query(draw: st.DrawFn) -> dict[str, list[str]]:
    """GET /schedules query parameters, each with one value or (repeated in the URL) several."""
    chosen = draw(st.lists(st.sampled_from(sorted(QUERY_VALUES)), unique=True, max_size=4))
    return {
        name: draw(st.lists(QUERY_VALUES[name], min_size=1, max_size=1 if draw(st.integers(0, 5)) else 3))
        for name in chosen
    }


@st.composite
def schedules_event(draw: st.DrawFn) -> dict[str, Any]:
    """GET or DELETE /schedules/{schedule_id}, or GET /schedules with a query, in AWS's REST proxy shape."""
    event = load_event(BODY_ROUTE_EVENTS["/messages"])
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type")
    event["body"] = None
    route = draw(st.sampled_from(["GET one", "DELETE one", "GET list"]))
    if route == "GET list":
        method, resource, path, parameters = "GET", "/schedules", "/schedules", None
        query = draw(list_query())
        # API Gateway: every value in the multi-value map, the last one in the single-value map.
        event["queryStringParameters"] = {name: values[-1] for name, values in query.items()} or None
        event["multiValueQueryStringParameters"] = query or None
    else:
        method = route.split()[0]
        schedule_id = draw(schedule_id_text)
        # A REST API hands the path as the client encoded it (a "/" in the id can only arrive as %2F:
        # unencoded it would be another resource), and the path parameter decoded.
        safe = draw(st.sampled_from(["", "!$&'()*+,;=:@~"]))
        resource = "/schedules/{schedule_id}"
        path = "/schedules/" + quote(schedule_id, safe=safe, errors="surrogatepass")
        parameters = {"schedule_id": schedule_id}
    event.update(httpMethod=method, resource=resource, path=path, pathParameters=parameters)
    event["requestContext"] = {
        **event["requestContext"],
        "httpMethod": method,
        "resourcePath": resource,
        "path": "/prod" + path,
    }
    return event


@st.composite
def trigger_event(draw: st.DrawFn) -> dict[str, Any]:
    """A batch on the trigger queue (the test sets its eventSourceARN): hostile bodies, malformed
    triggers, triggers of schedules that do not exist."""
    part = st.one_of(st.integers(-3, 3), st.sampled_from([2**64, -(2**63), 1.0, True, "0", None]), json_value)
    unknown_id = st.one_of(st.text("0123456789abcdef", min_size=32, max_size=32), hostile_text, json_value)
    trigger = st.one_of(
        st.fixed_dictionaries({"id": unknown_id, "part": part}),
        st.fixed_dictionaries({}, optional={"id": unknown_id, "part": part, "extra": json_value}),
        json_value,
    )
    bodies = st.one_of(
        st.builds(lambda value: _dumps({"schedule_trigger": value}), trigger),
        st.builds(
            lambda value, more: _dumps({"schedule_trigger": value, **more}),
            trigger,
            st.dictionaries(hostile_text, json_value, max_size=2),
        ),
        raw_body,
    )
    records = []
    for index in range(draw(st.integers(1, 3))):
        record = copy.deepcopy(load_event("sqs-batch.json")["Records"][0])
        record["messageId"] = f"trigger-{index}-{draw(st.uuids())}"
        record["body"] = draw(bodies).decode("utf-8", errors="replace")
        record["messageAttributes"] = {}
        records.append(record)
    return {"Records": records}


# ----- caps and the destination policy -----------------------------------------------------------

# A number where a limits item (limits#<caller>) holds one: what an operator may write with any
# tool that writes the table (negative, fractional, huge, exponents, digits Python reads but few
# people would write), and what DynamoDB refuses to store (the test skips those: they cannot be there).
_limit_number = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "1",
            "2",
            "0.5",
            "1.5",
            "1.0",
            "0.0001",
            "0.0379",
            "0.03789",
            "-1",
            "-0.0001",
            "1E+3",
            "1e-3",
            "1E+125",
            "-1E+125",
            "1E-130",
            "9" * 38,
            "9" * 45,
            "0." + "0" * 37 + "1",
            "1_000",
            "\uff15",  # a fullwidth 5
            "\u0665",  # an Arabic-Indic 5
            "00005",
            "+5",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
        ]
    ),
)
_limit_attribute = st.one_of(
    _limit_number.map(lambda number: {"N": number}),
    # A string an operator typed where a number belongs ("5", "NaN"); DynamoDB holds valid Unicode only.
    st.one_of(
        hostile_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8")),
        st.sampled_from(["5", "1000", "NaN", "Infinity", "-1", "1e400", "five"]),
    ).map(lambda text: {"S": text}),
    st.sampled_from(
        [
            {"BOOL": True},
            {"BOOL": False},
            {"NULL": True},
            {"L": []},
            {"L": [{"N": "5"}]},
            {"M": {"N": {"N": "5"}}},
            {"NS": ["5"]},
            {"SS": ["5"]},
            {"B": b"5"},
        ]
    ),
)
LIMIT_ATTRIBUTES = ("messages_per_day", "cost_per_day")
# A caller's limits item: either limit, both or neither, an attribute it does not know; or no item.
limits_item = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "messages_per_day": _limit_attribute,
            "cost_per_day": _limit_attribute,
            "messages": _limit_attribute,
        },
    ),
)
# What API Gateway tells the function of the caller's key (requestContext.identity.apiKeyId): in AWS
# an id it made; here also what a hand-made event (make run's front, a test, a console invocation)
# may hold. Names of the usage table's own items, keys of DynamoDB's size limit (2048 bytes) and past it.
api_key_id = st.one_of(
    hostile_text,
    json_scalar,
    st.sampled_from(
        [
            "",
            " ",
            "k1a2b3c4d5",
            "stage",
            "queue",
            "api",
            "#",
            "x#stage",
            "limits#k1a2b3c4d5",
            "usage#2026-12-07#stage",
            "../x",
            "k" * 1024,
            "k" * 2030,
            "k" * 2100,
            "\u00e9" * 1100,  # 2,200 bytes in UTF-8
            "k" * 100_000,
            "\udfff" * 3,
        ]
    ),
)


@st.composite
def caller_identity_event(draw: st.DrawFn) -> dict[str, Any]:
    """POST /messages (the sample's valid body) with requestContext.identity's apiKeyId hostile, odd or
    missing, or identity (or the whole requestContext) missing or not a map."""
    event = load_event(BODY_ROUTE_EVENTS["/messages"])
    context = dict(event["requestContext"])
    identity = dict(context["identity"])
    shape = draw(
        st.sampled_from(["key id", "key id", "key id", "no key id", "identity", "no identity", "no context"])
    )
    if shape == "key id":
        identity["apiKeyId"] = draw(api_key_id)
    elif shape == "no key id":
        identity.pop("apiKeyId")
    if shape == "identity":
        context["identity"] = draw(json_value)
    elif shape == "no identity":
        context.pop("identity")
    else:
        context["identity"] = identity
    if shape == "no context":
        event.pop("requestContext")
    else:
        event["requestContext"] = context
    return event


# Numbers of every kind against a policy of Greece and Cyprus, mobiles: allowed, of other countries,
# other kinds (fixed lines, premium rate, toll free, personal numbers), written every way a caller
# writes them (the same number twice, in two spellings). Each passes the request's rules.
POLICY_NUMBERS = [
    "+30 691 234 5678",  # Greek mobile
    "306912345678",  # the same number
    "00306912345678",  # the same number
    "306987654321",  # Greek mobile
    "+357 99 123456",  # Cypriot mobile
    "35799123456",  # the same number
    "302123456789",  # Greek fixed line
    "309091234567",  # Greek premium rate
    "308001234567",  # Greek toll free
    "35722123456",  # Cypriot fixed line
    "447400123456",  # UK mobile
    "447012345678",  # UK personal number
    "+1 202 555 0123",  # US, fixed line or mobile
    "393123456789",  # Italian mobile
    "4915112345678",  # German mobile
]
# Numbers the request's rules refuse before the policy is asked (the whole send is invalid).
BROKEN_NUMBERS = ["306912345", "30691234567890", "999123456789", "3" * 15, "+", "0030"]
_generated_mobile = st.one_of(
    st.integers(0, 10**8 - 1).map(lambda n: f"3069{n:08d}"),
    st.integers(0, 10**6 - 1).map(lambda n: f"3579{n % 6 + 4}{n:06d}"[:11]),
)
_listed_number = st.sampled_from(POLICY_NUMBERS)
_policy_number = st.one_of(_listed_number, _listed_number, _generated_mobile)
policy_destinations = st.one_of(
    # Lists of numbers the rules accept: sent, or refused by the policy
    st.lists(_policy_number, min_size=1, max_size=8),
    st.lists(_policy_number, min_size=1, max_size=8),
    st.lists(st.sampled_from(POLICY_NUMBERS), min_size=20, max_size=120),
    # Lists with a broken number or hostile text among them, or not lists at all
    st.lists(
        st.one_of(
            _policy_number,
            st.sampled_from(BROKEN_NUMBERS),
            st.text("0123456789", min_size=8, max_size=15),
            st.text("+0123456789 -", max_size=18),
            hostile_text,
        ),
        min_size=1,
        max_size=6,
    ),
    json_value,
)


@st.composite
def policy_send_event(draw: st.DrawFn) -> dict[str, Any]:
    """POST /messages of the valid body with hostile destinations (sometimes under an Idempotency-Key:
    the keyed path checks the policy too)."""
    event = load_event(BODY_ROUTE_EVENTS["/messages"])
    destinations = draw(policy_destinations)
    body = {**copy.deepcopy(VALID_BODY), "destinations": destinations}
    event["body"] = json.dumps(body)
    if draw(st.integers(0, 3)) == 0:
        key = f"policy-{draw(st.uuids())}"
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    return event
