"""The one boundary between body bytes and a JSON object, for the API and the queue alike.

Whatever arrives (plain text or base64 as API Gateway marks it, any media type
and charset label, any nesting, numbers of any length, escapes of any kind)
comes out as a JSON object or a `GatewayError`: 415 for a media type or charset
the gateway does not take, 400 for everything else. Nothing here raises
anything else, so no body can become a Lambda error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

from gateway.failures import Failure, GatewayError
from gateway.fields import FieldError

JSON_MEDIA_TYPE = "application/json"
UTF8_LABELS = frozenset({"utf-8", "utf8"})
# The send request nests three levels (body, im_actions, an action); anything deeper is not one.
MAX_NESTING = 32
_OPENERS = re.compile(r"[\[{]")
# A JSON escape of a UTF-16 surrogate, the only way a lone one can get into a decoded string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """The lower-cased `type/subtype` of a Content-Type value and its parameters (names lower-cased)."""
    if not content_type:
        return "", {}
    essence, *parameters = content_type.split(";")
    found = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip():
            found[name.strip().lower()] = value.strip().strip('"')
    return essence.strip().lower(), found


def read_json_object(
    body: str | bytes | None, *, base64_encoded: bool = False, content_type: str | None = None
) -> dict[str, Any]:
    """The body as a JSON object; GatewayError (400 or 415) saying what is wrong with it otherwise.

    Without a Content-Type the body is taken for JSON, as API Gateway and SQS deliver it.
    """
    _check_media_type(content_type)
    text = _text(body, base64_encoded=base64_encoded)
    document = _parse(text)
    if not isinstance(document, dict):
        kind = "an array" if isinstance(document, list) else "not an object"
        _malformed(f"The body must be one JSON object; it is {kind}. Send one message per request.")
    if len(_OPENERS.findall(text, 0)) > MAX_NESTING:
        _check_nesting(document)
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(document)
    return document


def _check_media_type(content_type: str | None) -> None:
    essence, parameters = media_type(content_type)
    if essence and essence != JSON_MEDIA_TYPE:
        raise GatewayError(
            Failure.UNSUPPORTED_MEDIA_TYPE,
            f"The body was sent as {essence[:100]}; send it as application/json.",
        )
    charset = parameters.get("charset")
    if charset is not None and charset.lower() not in UTF8_LABELS:
        raise GatewayError(
            Failure.UNSUPPORTED_MEDIA_TYPE,
            f"The body was sent in the charset {charset[:40]}; send it as UTF-8 (charset=utf-8).",
        )


def _text(body: str | bytes | None, *, base64_encoded: bool) -> str:
    if body is None:
        body = ""
    if base64_encoded:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            _malformed("The body is marked as base64-encoded but is not valid base64.")
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as error:
            _malformed(f"The body is not valid UTF-8 (byte {error.start} cannot start a character).")
    return body.removeprefix("\ufeff")  # a byte order mark is allowed before JSON text (RFC 8259)


def _parse(text: str) -> Any:
    if not text.strip():
        _malformed("The body is empty; it must be one JSON object.")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except json.JSONDecodeError as error:
        _malformed(f"The body is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}).")
    except _DuplicateKey as error:
        _malformed(f"The body is ambiguous: the key {error.key!r} appears twice in one object.")
    except _NotJson as error:
        _malformed(f"The body is not valid JSON: {error.word} is not a JSON value.")
    except RecursionError:
        _malformed(f"The body is nested deeper than {MAX_NESTING} levels.")
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (a denial-of-service guard).
        _malformed("The body holds a number with more digits than any field takes.")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key[:64]


class _NotJson(ValueError):
    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may pick different values for a repeated key: refuse what cannot be read one way.
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key.encode("utf-8", "backslashreplace").decode("utf-8"))
            seen.add(key)
    return document


def _constant(word: str) -> NoReturn:
    raise _NotJson(word)  # NaN, Infinity and -Infinity: Python's json takes them, JSON has none


def _check_nesting(document: Any) -> None:
    level: list[tuple[Any, int]] = [(document, 1)]
    while level:
        value, depth = level.pop()
        if depth > MAX_NESTING:
            _malformed(f"The body is nested deeper than {MAX_NESTING} levels.")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _check_surrogates(document: Any) -> None:
    found: list[FieldError] = []
    pending: list[tuple[Any, str]] = [(document, "")]
    while pending and len(found) < MAX_NESTING:
        value, path = pending.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else key
                if _LONE_SURROGATE.search(key):
                    found.append(FieldError(_shown(child_path), "this key holds a lone surrogate"))
                pending.append((child, child_path))
        elif isinstance(value, list):
            pending.extend((child, f"{path}[{index}]") for index, child in enumerate(value))
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            found.append(
                FieldError(
                    _shown(path),
                    "holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not "
                    "a character; send valid UTF-16 pairs or the characters themselves",
                )
            )
    if found:
        raise GatewayError(
            Failure.MALFORMED_REQUEST,
            "The body holds text that is not Unicode; see errors.",
            errors=sorted(found, key=lambda error: error.field),
        )


def _shown(path: str) -> str:
    return path.encode("utf-8", "backslashreplace").decode("utf-8")[:100] or "(body)"


def _malformed(detail: str) -> NoReturn:
    raise GatewayError(Failure.MALFORMED_REQUEST, detail)
