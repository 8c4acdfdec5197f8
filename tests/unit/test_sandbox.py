"""The provider sandbox, exercised over real HTTP on loopback."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from sandbox import ERROR_MESSAGES, Fault, LedgerEntry, ProviderSandbox

TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "MyShop"
GREEK_MOBILE = "306912345678"
CYPRIOT_MOBILE = "35799123456"
FIRST_SMSID = 20818588
REPO_ROOT = Path(__file__).resolve().parents[2]
_DROP = object()  # marks a field to leave out of a request body


def im(**fields: Any) -> dict[str, Any]:
    """A valid Viber-only SendIM body, with fields replaced (or dropped with _DROP)."""
    body: dict[str, Any] = {
        "apitoken": TOKEN,
        "im_type": "IM",
        "im_sender_name": SENDER,
        "im_text": "Your order has shipped",
        "destinations": [GREEK_MOBILE],
        **fields,
    }
    return {name: value for name, value in body.items() if value is not _DROP}


def fallback(**fields: Any) -> dict[str, Any]:
    """A valid SendIM body with SMS fallback."""
    return im(**{"im_type": "IM_SMSFB", "senderid": SENDER, "sms_text": "Your order has shipped", **fields})


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[ProviderSandbox]:
    # One server for the module: starting and stopping per test would dominate the run time.
    with ProviderSandbox(tokens={TOKEN}, approved_senders={SENDER}) as sb:
        yield sb


@pytest.fixture
def sb(shared_sandbox: ProviderSandbox) -> ProviderSandbox:
    shared_sandbox.reset()
    return shared_sandbox


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    # No retries: every request in a test must reach the sandbox exactly once.
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=3.0), maxsize=16)


def send(
    http: urllib3.PoolManager, sb: ProviderSandbox, body: Any, **kwargs: Any
) -> urllib3.BaseHTTPResponse:
    return http.request("POST", sb.url + "SendIM", json=body, **kwargs)


def post_raw(http: urllib3.PoolManager, url: str, body: bytes) -> urllib3.BaseHTTPResponse:
    return http.request("POST", url, body=body, headers={"Content-Type": "application/json"})


def post_form(http: urllib3.PoolManager, url: str, fields: dict[str, str]) -> str:
    response = http.request("POST", url, fields=fields, encode_multipart=False)
    assert response.status == 200
    return response.data.decode()


def control(http: urllib3.PoolManager, sb: ProviderSandbox, path: str, body: Any = None) -> Any:
    if body is None:
        response = http.request("GET", sb.url + "_sandbox/" + path)
    else:
        response = http.request("POST", sb.url + "_sandbox/" + path, json=body)
    return response.status, response.json()


def operation_error(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    assert response.status == 200
    answer = response.json()
    assert answer["success"] is False
    assert answer["SubmissionID"] == 0
    assert answer["data"] is None
    [error] = answer["OperationErrors"]
    return dict(error)


# ----- accepted sends ---------------------------------------------------------------


def test_valid_im_is_accepted_and_recorded(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a Viber-only message to two destinations
    body = im(destinations=[GREEK_MOBILE, CYPRIOT_MOBILE])

    # When it is sent
    response = send(http, sb, body)

    # Then the documented success envelope comes back with one object per destination
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["success"] is True
    assert answer["OperationErrors"] is None
    assert answer["data"] == [
        {"destination": GREEK_MOBILE, "smsid": answer["data"][0]["smsid"]},
        {"destination": CYPRIOT_MOBILE, "smsid": answer["data"][0]["smsid"] + 1},
    ]
    # And the ledger holds exactly what was received, token included
    [entry] = sb.ledger
    assert isinstance(entry, LedgerEntry)
    assert entry.payload == body
    assert entry.smsids == [item["smsid"] for item in answer["data"]]
    assert entry.submission_id == answer["SubmissionID"]
    assert entry.received_at == pytest.approx(time.time(), abs=5)
    # And each destination cost 0.01
    assert sb.balance == pytest.approx(99.98)


def test_ids_data_shape_answers_a_bare_list(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given the sandbox answering like the Viber page's example
    sb.data_shape = "ids"

    # When a message to two destinations is sent
    answer = send(http, sb, im(destinations=[GREEK_MOBILE, CYPRIOT_MOBILE])).json()

    # Then data is the bare list of ids, in destination order
    assert answer["success"] is True
    assert answer["data"] == sb.ledger[0].smsids
    assert all(isinstance(smsid, int) for smsid in answer["data"])


def test_ids_and_submission_ids_are_sequential(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given two sends
    first = send(http, sb, im(destinations=[GREEK_MOBILE, CYPRIOT_MOBILE])).json()
    second = send(http, sb, im()).json()

    # Then smsids and SubmissionIDs continue where the previous send left off
    assert second["data"][0]["smsid"] == first["data"][1]["smsid"] + 1
    assert second["SubmissionID"] == first["SubmissionID"] + 1
    assert first["data"][0]["smsid"] >= FIRST_SMSID
    assert first["SubmissionID"] >= 1000


def test_fallback_with_image_action_and_pricecat_is_accepted(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given an IM_SMSFB message using every optional field
    body = fallback(
        im_image_urls=["https://example.com/parcel.png"],
        im_actions=[{"caption": "Track", "url": "https://example.com/track/1"}],
        pricecat=1,
        senderid="My-Shop(GR)",
    )

    # When it is sent
    answer = send(http, sb, body).json()

    # Then it is accepted and recorded
    assert answer["success"] is True
    assert sb.ledger[0].payload == body


@pytest.mark.parametrize("sender_id", ["1234", "123456789012", "1234567890123456"])
def test_numeric_sender_ids_of_4_to_16_digits_are_accepted(
    sb: ProviderSandbox, http: urllib3.PoolManager, sender_id: str
) -> None:
    # Given a fallback message with a numeric sender id longer than an alphanumeric one may be
    # When it is sent, then numeric ids have their own limit (LIVEALL.md: codes 5 and 52)
    assert send(http, sb, fallback(senderid=sender_id)).json()["success"] is True


def test_any_sender_name_is_approved_when_approved_senders_is_none(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given an account with no sender restriction
    sb.approved_senders = None

    # When an arbitrary sender name is used
    answer = send(http, sb, im(im_sender_name="Anyone")).json()

    # Then it is accepted
    assert answer["success"] is True


# ----- validation -------------------------------------------------------------------

VALIDATION_CASES = [
    pytest.param(im(apitoken=_DROP), 39, 4, "", id="token-missing"),
    pytest.param(im(apitoken=""), 39, 4, "", id="token-empty"),
    pytest.param(im(im_type="SMS"), 59, 4, "SMS", id="im-type-unknown"),
    pytest.param(im(im_type=_DROP), 59, 4, "im_type", id="im-type-missing"),
    pytest.param(im(im_sender_name=""), 1, 1, "", id="sender-name-empty"),
    pytest.param(im(im_sender_name=_DROP), 1, 1, "", id="sender-name-missing"),
    pytest.param(im(im_sender_name="Stranger"), 56, 4, "Stranger", id="sender-name-not-approved"),
    pytest.param(im(im_text=""), 54, 2, "", id="text-empty"),
    pytest.param(im(im_text="x" * 1001), 55, 2, "", id="text-too-long"),
    pytest.param(im(destinations=[]), 12, 3, "", id="destinations-empty"),
    pytest.param(im(destinations=_DROP), 12, 3, "", id="destinations-missing"),
    pytest.param(im(destinations=["+306912345678"]), 13, 3, "+306912345678", id="destination-plus"),
    pytest.param(im(destinations=["691234567"]), 13, 3, "691234567", id="destination-short"),
    pytest.param(im(destinations=["0306912345678"]), 13, 3, "0306912345678", id="destination-leading-0"),
    pytest.param(im(destinations=["1" * 16]), 13, 3, "1" * 16, id="destination-long"),
    pytest.param(
        im(destinations=[GREEK_MOBILE, "30691234567x"]), 13, 3, "30691234567x", id="second-destination"
    ),
    pytest.param(im(destinations=["302101234567"]), 14, 3, "302101234567", id="greek-landline"),
    pytest.param(im(destinations=["3069123456789"]), 14, 3, "3069123456789", id="greek-too-long"),
    pytest.param(im(im_image_urls=["https://a/1.png", "https://a/2.png"]), 57, 4, "", id="two-images"),
    pytest.param(im(im_image_urls=["ftp://a/1.png"]), 57, 4, "ftp://a/1.png", id="image-not-http"),
    pytest.param(
        im(im_actions=[{"caption": "A", "url": "https://a"}, {"caption": "B", "url": "https://b"}]),
        58,
        4,
        "",
        id="two-actions",
    ),
    pytest.param(im(im_actions=[{"caption": "", "url": "https://a"}]), 58, 4, "", id="action-no-caption"),
    pytest.param(im(im_actions=[{"caption": "Go"}]), 58, 4, "", id="action-no-url"),
    pytest.param(fallback(senderid=_DROP), 1, 1, "", id="senderid-missing"),
    pytest.param(fallback(senderid="ABCDEFGHIJKL"), 4, 1, "ABCDEFGHIJKL", id="senderid-too-long"),
    pytest.param(fallback(senderid="1" * 17), 5, 1, "1" * 17, id="numeric-senderid-too-long"),
    pytest.param(fallback(senderid="123"), 52, 1, "123", id="numeric-senderid-too-short"),
    pytest.param(
        fallback(senderid="\u0663\u0664\u0665\u0666"),
        2,
        1,
        "\u0663\u0664\u0665\u0666",
        id="senderid-arabic-digits",
    ),
    pytest.param(fallback(senderid="My_Shop"), 2, 1, "My_Shop", id="senderid-bad-char"),
    pytest.param(fallback(sms_text=""), 10, 2, "", id="sms-text-empty"),
    pytest.param(fallback(sms_text=_DROP), 10, 2, "", id="sms-text-missing"),
    pytest.param(im(pricecat=2), 59, 4, "2", id="pricecat-2"),
    pytest.param(im(idempotency_key="k1"), 59, 4, "idempotency_key", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "code", "error_type", "value"), VALIDATION_CASES)
def test_invalid_request_is_refused_with_the_provider_code(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    body: dict[str, Any],
    code: int,
    error_type: int,
    value: str,
) -> None:
    # Given a request breaking one rule
    # When it is sent
    response = send(http, sb, body)

    # Then the provider refuses it with the documented error
    assert operation_error(response) == {
        "errorCode": code,
        "errorMessage": ERROR_MESSAGES[code],
        "SMSErrorType": error_type,
        "valueOfError": value,
    }
    # And nothing was sent, though the request did reach the provider
    assert sb.ledger == []
    assert sb.requests == [body]
    assert sb.balance == 100.0


@pytest.mark.parametrize(
    "raw", [b"[1, 2]", b"{not json", b"", b'"text"'], ids=["list", "broken", "empty", "str"]
)
def test_body_that_is_not_a_json_object_is_code_34(
    sb: ProviderSandbox, http: urllib3.PoolManager, raw: bytes
) -> None:
    # Given a body that is not a JSON object
    # When it is posted to SendIM
    response = post_raw(http, sb.url + "SendIM", raw)

    # Then the provider answers code 34 and records the body as received
    assert operation_error(response)["errorCode"] == 34
    assert len(sb.requests) == 1


def test_wrong_token_is_44_and_never_echoed(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a request with a token the account does not have
    wrong = "feedfacefeedfacefeedfacefeedface"

    # When it is sent
    response = send(http, sb, im(apitoken=wrong))

    # Then it is refused with 44 and the token appears nowhere in the answer
    error = operation_error(response)
    assert (error["errorCode"], error["valueOfError"]) == (44, "")
    assert wrong.encode() not in response.data
    assert TOKEN.encode() not in response.data


def test_token_is_checked_before_the_message(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a request with a wrong token and an empty text
    # When it is sent
    response = send(http, sb, im(apitoken="nope", im_text=""))

    # Then the token rule wins: the first failing rule is reported
    assert operation_error(response)["errorCode"] == 44


def test_rotated_token_replaces_the_old_one(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given the account's token was rotated
    sb.set_tokens({"new-token"})

    # When the old and the new token are used
    old = send(http, sb, im())
    new = send(http, sb, im(apitoken="new-token"))

    # Then only the new one works
    assert operation_error(old)["errorCode"] == 44
    assert new.json()["success"] is True


def test_empty_balance_is_18_and_balance_runs_out(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a balance enough for two messages
    sb.balance = 0.02

    # When three single-destination messages are sent
    answers = [send(http, sb, im()) for _ in range(3)]

    # Then two go out and the third is refused for insufficient balance
    assert [a.json()["success"] for a in answers[:2]] == [True, True]
    assert operation_error(answers[2]) == {
        "errorCode": 18,
        "errorMessage": "Insufficient balance",
        "SMSErrorType": 4,
        "valueOfError": "",
    }
    assert len(sb.ledger) == 2
    assert sb.balance == pytest.approx(0.0)


# ----- faults -----------------------------------------------------------------------


def test_error_code_fault_answers_that_code(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given an internal provider error queued
    sb.add_fault(Fault(kind="error_code", code=8))

    # When a valid message is sent
    response = send(http, sb, im())

    # Then success is false with the documented message, and nothing was sent
    assert operation_error(response) == {
        "errorCode": 8,
        "errorMessage": "Internal error",
        "SMSErrorType": 4,
        "valueOfError": "",
    }
    assert sb.ledger == []


@pytest.mark.parametrize(
    ("status", "retry_after"), [(500, None), (502, None), (503, "2"), (504, None), (429, "2")]
)
def test_http_status_fault(
    sb: ProviderSandbox, http: urllib3.PoolManager, status: int, retry_after: str | None
) -> None:
    # Given an HTTP error queued
    sb.add_fault(Fault(kind="http_status", status=status))

    # When a valid message is sent
    response = send(http, sb, im())

    # Then that status comes back with a short text body, Retry-After only for 429/503
    assert response.status == status
    assert response.headers["Content-Type"].startswith("text/plain")
    assert str(status).encode() in response.data
    assert response.headers.get("Retry-After") == retry_after
    assert sb.ledger == []


def test_html_fault_is_an_error_page(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given an HTML error page queued
    sb.add_fault(Fault(kind="html"))

    # When a valid message is sent
    response = send(http, sb, im())

    # Then a 200 text/html page comes back
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"<html>" in response.data


def test_empty_fault_is_an_empty_200(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given an empty answer queued
    sb.add_fault(Fault(kind="empty"))

    # When a valid message is sent
    response = send(http, sb, im())

    # Then the answer is 200 with no body at all
    assert response.status == 200
    assert response.headers["Content-Length"] == "0"
    assert response.data == b""


def test_garbage_fault_is_not_json(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a truncated answer queued
    sb.add_fault(Fault(kind="garbage"))

    # When a valid message is sent
    response = send(http, sb, im())

    # Then the 200 JSON-typed body does not parse
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.data)


def test_garbage_fault_with_code_1_is_json_of_the_wrong_shape(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given a wrong-shape answer queued
    sb.add_fault(Fault(kind="garbage", code=1))

    # When a valid message is sent
    answer = send(http, sb, im()).json()

    # Then it is JSON without the documented envelope
    assert isinstance(answer, dict)
    assert "success" not in answer


def test_drop_fault_closes_the_connection(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a dropped connection queued
    sb.add_fault(Fault(kind="drop"))

    # When a valid message is sent
    # Then the client sees the connection closed without a response
    with pytest.raises(ProtocolError):
        send(http, sb, im())
    # And the request reached the sandbox, but nothing was sent
    assert sb.requests == [im()]
    assert sb.ledger == []


ANSWER_LOST_FAULTS = [
    pytest.param(Fault(kind="drop", after_processing=True), id="drop"),
    pytest.param(Fault(kind="http_status", status=502, after_processing=True), id="502"),
    pytest.param(Fault(kind="http_status", status=504, after_processing=True), id="504"),
    pytest.param(Fault(kind="garbage", after_processing=True), id="garbage"),
    pytest.param(Fault(kind="html", after_processing=True), id="html"),
    pytest.param(Fault(kind="empty", after_processing=True), id="empty"),
]


@pytest.mark.parametrize("fault", ANSWER_LOST_FAULTS)
def test_fault_after_processing_still_sends(
    sb: ProviderSandbox, http: urllib3.PoolManager, fault: Fault
) -> None:
    # Given a fault that hits after the provider has sent the message
    sb.add_fault(fault)

    # When a valid message is sent
    try:
        response = send(http, sb, im())
    except ProtocolError:
        assert fault.kind == "drop"
    else:
        # The answer is unusable: not JSON at all
        with pytest.raises(json.JSONDecodeError):
            response.json()

    # Then the message is in the ledger although the answer was lost
    [entry] = sb.ledger
    assert entry.payload == im()
    assert sb.balance == pytest.approx(99.99)


def test_fault_hits_times_requests_then_stops(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a 503 queued for two requests, then an internal error for one
    sb.add_fault(Fault(kind="http_status", status=503, times=2), Fault(kind="error_code", code=6))

    # When four messages are sent
    statuses = [send(http, sb, im()) for _ in range(4)]

    # Then the faults hit in queue order, and the fourth goes through
    assert [r.status for r in statuses[:2]] == [503, 503]
    assert operation_error(statuses[2])["errorCode"] == 6
    assert statuses[3].json()["success"] is True
    assert len(sb.ledger) == 1
    assert len(sb.requests) == 4


def test_slow_fault_delays_the_normal_answer(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a slow provider queued
    sb.add_fault(Fault(kind="slow", delay=0.1))

    # When a patient client sends a valid message
    started = time.monotonic()
    answer = send(http, sb, im()).json()

    # Then the normal answer arrives after the delay and the message is sent
    assert time.monotonic() - started >= 0.1
    assert answer["success"] is True
    assert len(sb.ledger) == 1


def test_slow_fault_before_processing_leaves_nothing_if_the_client_gives_up(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given a provider that stalls before doing anything
    sb.add_fault(Fault(kind="slow", delay=0.25))

    # When the client times out first
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        send(http, sb, im(), timeout=urllib3.Timeout(read=0.05))
    time.sleep(max(0.0, 0.4 - (time.monotonic() - started)))

    # Then the provider noticed and sent nothing
    assert sb.requests == [im()]
    assert sb.ledger == []


def test_slow_fault_after_processing_sends_even_if_the_client_gives_up(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given a provider that sends, then stalls before answering
    sb.add_fault(Fault(kind="slow", delay=0.25, after_processing=True))

    # When the client times out
    with pytest.raises(ReadTimeoutError):
        send(http, sb, im(), timeout=urllib3.Timeout(read=0.05))

    # Then the message was sent all the same
    assert len(sb.ledger) == 1


def test_fault_rate_with_a_seed_is_reproducible(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given half of the sends failing, seeded
    sb.set_fault_rate(0.5, Fault(kind="error_code", code=8), seed=7)

    # When twenty messages are sent
    outcomes = [send(http, sb, im()).json()["success"] for _ in range(20)]

    # Then exactly the draws of random.Random(7) failed
    draws = random.Random(7)  # noqa: S311 - mirrors the sandbox's draws
    assert outcomes == [draws.random() >= 0.5 for _ in range(20)]
    assert len(sb.ledger) == sum(outcomes)
    assert 0 < sum(outcomes) < 20


def test_fault_rate_zero_disables(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a fault rate of 1, then switched off
    sb.set_fault_rate(1.0, Fault(kind="error_code", code=8))
    sb.set_fault_rate(0, Fault(kind="error_code", code=8))

    # When messages are sent
    # Then they all go through
    assert all(send(http, sb, im()).json()["success"] for _ in range(3))


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "meteor"},
        {"kind": "error_code"},
        {"kind": "http_status", "status": 200},
        {"kind": "slow", "delay": -1},
        {"kind": "drop", "times": 0},
        {"kind": "drop", "after_processing": "yes"},
    ],
)
def test_invalid_fault_is_rejected(fields: dict[str, Any]) -> None:
    # Given a fault description that makes no sense
    # When it is built
    # Then it is refused
    with pytest.raises((ValueError, TypeError)):
        Fault(**fields)


# ----- latency and concurrency ------------------------------------------------------


def test_latency_delays_every_answer(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a provider taking 50 ms
    sb.latency = 0.05

    # When a message is sent
    started = time.monotonic()
    send(http, sb, im())

    # Then the answer took at least that long, and the message was recorded
    assert time.monotonic() - started >= 0.05
    assert len(sb.ledger) == 1


def test_concurrent_requests_are_served_in_parallel(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a provider taking 200 ms per answer
    sb.latency = 0.2

    # When eight messages are sent at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: send(http, sb, im()).json(), range(8)))
    elapsed = time.monotonic() - started

    # Then they all succeed with distinct ids, far faster than one after another
    assert all(answer["success"] for answer in answers)
    assert len({answer["SubmissionID"] for answer in answers}) == 8
    assert elapsed < 0.8


def test_connection_is_kept_alive(sb: ProviderSandbox) -> None:
    # Given a pool limited to one connection
    pool = urllib3.HTTPConnectionPool("127.0.0.1", urllib3.util.parse_url(sb.url).port, maxsize=1)

    # When several requests go over it, an error answer among them
    for body in (im(), im(im_text=""), im()):
        pool.request("POST", "/SendIM", json=body)

    # Then one connection carried them all
    assert pool.num_connections == 1
    pool.close()


# ----- other endpoints ----------------------------------------------------------------


def test_sms_status_reports_each_known_id(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given two messages sent
    send(http, sb, im(destinations=[GREEK_MOBILE, CYPRIOT_MOBILE]))
    first, second = sb.ledger[0].smsids

    # When their status is asked, with an unknown id and each separator
    for separator in ",.^":
        answer = post_form(
            http,
            sb.url + "GetSMSStatus",
            {"apitoken": TOKEN, "smsids": f"{first}{separator}1{separator}{second}"},
        )

        # Then there is one record per known id, just accepted (the delivery model's
        # first step; tests/unit/test_sandbox_delivery.py follows it further)
        records = [record.split(":") for record in answer.split("|")]
        assert [r[0] for r in records] == [str(first), str(second)]
        assert [r[3] for r in records] == [GREEK_MOBILE, CYPRIOT_MOBILE]
        for smsid, submitted, last_status, _destination, code, text, count, charge in records:
            assert int(last_status) == int(submitted) > 0
            assert (code, text, count, charge) == ("300001", "Accepted", "1", "0.0100")
            assert int(smsid) > 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"apitoken": "wrong", "smsids": "1"}, "Error: 44 - Invalid API token"),
        ({"smsids": "1"}, "Error: 39 - API token not provided"),
        ({"apitoken": TOKEN, "smsids": "1,2"}, "Error: 43 - No submitted SMS found"),
        ({"apitoken": TOKEN, "smsids": "abc"}, "Error: 42 - smsids parameter invalid"),
        ({"apitoken": TOKEN}, "Error: 42 - smsids parameter invalid"),
    ],
)
def test_sms_status_errors(
    sb: ProviderSandbox, http: urllib3.PoolManager, fields: dict[str, str], expected: str
) -> None:
    # Given a status query the provider cannot answer
    # When it is sent
    answer = post_form(http, sb.url + "GetSMSStatus", fields)

    # Then the plain-text error comes back
    assert answer == expected


def test_account_balance(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given the balance of the documentation's example
    sb.balance = 169.64
    url = sb.url + "GetAccountBalance"

    # When the balance is asked with and without a country prefix, and with a wrong token
    with_prefix = post_form(http, url, {"apitoken": TOKEN, "countryprefix": "30"})
    without = post_form(http, url, {"apitoken": TOKEN})
    wrong = post_form(http, url, {"apitoken": "wrong"})

    # Then the counts follow the balance, -1 without a prefix
    assert with_prefix == "OK Balance:169.64|SmsRemainCount:4475|LCSmsRemainCount:5317"
    assert without == "OK Balance:169.64|SmsRemainCount:-1|LCSmsRemainCount:-1"
    assert wrong == "Error: 44 - Invalid API token"


def test_unknown_path_is_404_and_get_on_sendim_is_405(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given the sandbox
    # When a path it does not serve and a wrong method are used
    missing = http.request("POST", sb.url + "SendSMS", json={})
    wrong_method = http.request("GET", sb.url + "SendIM")

    # Then they answer 404 and 405
    assert missing.status == 404
    assert wrong_method.status == 405
    assert sb.requests == []


def test_oversized_body_is_413_and_not_recorded(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a SendIM body over the 1 MiB limit
    raw = b"x" * (1024 * 1024 + 1)

    # When it is posted
    response = post_raw(http, sb.url + "SendIM", raw)

    # Then it is refused before reaching the provider logic
    assert response.status == 413
    assert sb.requests == []


# ----- control API ------------------------------------------------------------------


def test_control_api_reads_ledger_and_requests(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given one accepted and one refused message
    send(http, sb, im())
    send(http, sb, im(im_text=""))

    # When the ledger and the requests are read over HTTP
    ledger_status, ledger = control(http, sb, "ledger")
    requests_status, requests = control(http, sb, "requests")

    # Then they match the Python view
    assert (ledger_status, requests_status) == (200, 200)
    [entry] = sb.ledger
    assert ledger == [
        {
            "payload": im(),
            "smsids": entry.smsids,
            "submission_id": entry.submission_id,
            "received_at": entry.received_at,
        }
    ]
    assert requests == [im(), im(im_text="")]


def test_control_api_health(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a running sandbox
    # When its health is read
    # Then it answers ok (the local runner polls this before starting)
    assert control(http, sb, "health") == (200, {"ok": True})


def test_control_api_queues_faults(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given faults queued over HTTP, one alone and two as a list
    assert control(http, sb, "faults", {"kind": "http_status", "status": 502}) == (200, {"ok": True})
    assert control(http, sb, "faults", [{"kind": "error_code", "code": 18}, {"kind": "empty"}])[0] == 200

    # When messages are sent
    responses = [send(http, sb, im()) for _ in range(4)]

    # Then the faults hit in order
    assert responses[0].status == 502
    assert operation_error(responses[1])["errorCode"] == 18
    assert responses[2].data == b""
    assert responses[3].json()["success"] is True


def test_control_api_sets_a_fault_rate(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given every send failing, set over HTTP
    body = {"rate": 1.0, "fault": {"kind": "error_code", "code": 8}, "seed": 1}
    assert control(http, sb, "fault-rate", body) == (200, {"ok": True})

    # When a message is sent, then the rate is switched off and another is sent
    failed = send(http, sb, im())
    assert control(http, sb, "fault-rate", {"rate": 0})[0] == 200
    passed = send(http, sb, im())

    # Then the first failed and the second went through
    assert operation_error(failed)["errorCode"] == 8
    assert passed.json()["success"] is True


def test_control_api_configures_and_resets(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given the account reconfigured over HTTP
    config = {
        "tokens": ["other"],
        "data_shape": "ids",
        "latency": 0.0,
        "balance": 5.0,
        "approved_senders": ["Other"],
    }
    assert control(http, sb, "config", config) == (200, {"ok": True})

    # When a message matching the new settings is sent
    answer = send(http, sb, im(apitoken="other", im_sender_name="Other")).json()

    # Then the new settings apply
    assert answer["data"] == sb.ledger[0].smsids
    assert sb.tokens == frozenset({"other"})
    assert sb.data_shape == "ids"
    assert sb.balance == pytest.approx(4.99)

    # And a reset over HTTP restores the defaults and forgets what happened
    assert control(http, sb, "reset", {}) == (200, {"ok": True})
    assert (sb.tokens, sb.approved_senders) == (frozenset({TOKEN}), frozenset({SENDER}))
    assert (sb.data_shape, sb.balance) == ("objects", 100.0)
    assert (sb.ledger, sb.requests) == ([], [])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("faults", {"kind": "meteor"}),
        ("faults", {"kind": "drop", "extra": 1}),
        ("fault-rate", {"rate": 2, "fault": {"kind": "drop"}}),
        ("fault-rate", {"rate": 0.5}),
        ("config", {"colour": "blue"}),
        ("config", {"tokens": "not-a-list"}),
        ("config", {"data_shape": "xml"}),
        ("config", {"latency": -1}),
    ],
)
def test_control_api_refuses_bad_input(
    sb: ProviderSandbox, http: urllib3.PoolManager, path: str, body: dict[str, Any]
) -> None:
    # Given an invalid control request
    # When it is posted
    status, answer = control(http, sb, path, body)

    # Then it is refused with a reason and changes nothing
    assert status == 400
    assert answer["ok"] is False
    assert answer["error"]
    assert "not-a-list" not in answer["error"]
    assert sb.tokens == {TOKEN}
    assert send(http, sb, im()).json()["success"] is True


def test_control_api_refuses_invalid_json(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a control body that is not JSON
    # When it is posted
    response = post_raw(http, sb.url + "_sandbox/faults", b"{nope")

    # Then it is a 400
    assert response.status == 400
    assert response.json()["ok"] is False


# ----- Python API and lifecycle -----------------------------------------------------


def test_ledger_is_a_copy(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a recorded message
    send(http, sb, im())

    # When a caller mutates what it got
    sb.ledger[0].payload["im_text"] = "changed"
    sb.requests[0]["im_text"] = "changed"

    # Then the sandbox's record is untouched
    assert sb.ledger[0].payload["im_text"] == "Your order has shipped"
    assert sb.requests[0]["im_text"] == "Your order has shipped"


def test_reset_keeps_ids_growing(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a message sent before a reset
    before = send(http, sb, im()).json()
    sb.reset()

    # When another is sent after it
    after = send(http, sb, im()).json()

    # Then ids are never reused, as with the real provider
    assert after["data"][0]["smsid"] > before["data"][0]["smsid"]
    assert after["SubmissionID"] > before["SubmissionID"]


def test_settings_are_validated() -> None:
    # Given a sandbox
    sb = ProviderSandbox(tokens={TOKEN})

    # When settings are given nonsense
    # Then they are refused
    with pytest.raises(ValueError, match="data_shape"):
        sb.data_shape = "xml"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="latency"):
        sb.latency = -0.1
    with pytest.raises(TypeError, match="tokens"):
        sb.set_tokens(TOKEN)
    with pytest.raises(RuntimeError):
        _ = sb.url


def test_stop_closes_the_socket_even_with_busy_connections() -> None:
    # Given a running sandbox with an idle keep-alive connection and a stalled request
    sb = ProviderSandbox(tokens={TOKEN}).start()
    http = urllib3.PoolManager(retries=False)
    assert send(http, sb, im()).status == 200
    sb.add_fault(Fault(kind="slow", delay=30, after_processing=True))
    with ThreadPoolExecutor(max_workers=1) as pool:
        stalled = pool.submit(send, http, sb, im())
        while len(sb.ledger) < 2:
            time.sleep(0.005)
        host, port = sb.url.removeprefix("http://").rstrip("/").rsplit(":", 1)

        # When it is stopped
        started = time.monotonic()
        sb.stop()

        # Then it stops at once, the stalled client is cut off, and the port is closed
        assert time.monotonic() - started < 1.0
        with pytest.raises(ProtocolError):
            stalled.result(timeout=2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=1).close()


def test_cli_serves_until_interrupted_without_printing_the_token() -> None:
    # Given the sandbox started from the command line on a free port
    secret = "cafebabecafebabecafebabecafebabe"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--token", secret, "--data-shape", "ids"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()

        # When a message is sent to the URL it printed, then it is interrupted
        http = urllib3.PoolManager(retries=False)
        answer = http.request("POST", url + "SendIM", json=im(apitoken=secret)).json()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=5)
    finally:
        process.kill()
        process.wait()

    # Then it served, stopped cleanly, and never printed the token
    assert url.startswith("http://127.0.0.1:")
    assert answer["success"] is True
    assert process.returncode == 0
    assert secret not in url + out + err
