"""Hypothesis strategies for what a careless or hostile caller sends, in the shapes AWS delivers it.

API Gateway REST proxy events (any header case, base64 bodies as API Gateway
sends binary ones, bodies that are not UTF-8, not JSON, not objects, deeply
nested, with huge numbers or lone surrogates) and SQS records (bodies alike,
idempotency keys as String, Number or Binary message attributes, as Lambda's
event source mapping hands them over).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

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
