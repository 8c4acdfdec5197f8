"""Faults on every endpoint of the sandbox, and GetAccountBalance per country, over loopback HTTP."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from sandbox import Fault, ProviderSandbox
from sandbox.model import Endpoint

TOKEN = "0123456789abcdef0123456789abcdef"
READ_ENDPOINTS: list[Endpoint] = ["GetSMSStatus", "GetSMSHistory", "GetAccountBalance"]
UTC_PLUS_3 = 3 * 3600


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[ProviderSandbox]:
    # Step 0: every message is at the end of its path, so answers do not change under the test.
    with ProviderSandbox(tokens={TOKEN}, delivery_step_seconds=0) as sb:
        yield sb


@pytest.fixture
def sb(shared_sandbox: ProviderSandbox) -> ProviderSandbox:
    shared_sandbox.reset()
    shared_sandbox.delivery_step_seconds = 0
    return shared_sandbox


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=3.0), maxsize=4)


def send(http: urllib3.PoolManager, sb: ProviderSandbox, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    body = {
        "apitoken": TOKEN,
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": "Your order has shipped",
        "destinations": ["306912345679"],
    }
    return http.request("POST", sb.url + "SendIM", json=body, **kwargs)


def form_for(sb: ProviderSandbox, endpoint: Endpoint, smsid: int) -> dict[str, str]:
    """A query each read endpoint answers with the message (or the balance) in it."""
    if endpoint == "GetSMSStatus":
        return {"apitoken": TOKEN, "smsids": str(smsid)}
    if endpoint == "GetSMSHistory":
        # The message's own day at a fixed offset, so the test never straddles a midnight.
        day = time.strftime("%Y%m%d", time.gmtime(sb.ledger[0].received_at + UTC_PLUS_3))
        return {"apitoken": TOKEN, "submit_date": day, "timezone_offset": "3"}
    return {"apitoken": TOKEN, "countryprefix": "30"}


def ask(
    http: urllib3.PoolManager, sb: ProviderSandbox, endpoint: Endpoint, smsid: int, **kwargs: Any
) -> urllib3.BaseHTTPResponse:
    form = form_for(sb, endpoint, smsid)
    return http.request("POST", sb.url + endpoint, fields=form, encode_multipart=False, **kwargs)


@pytest.fixture
def smsid(sb: ProviderSandbox, http: urllib3.PoolManager) -> int:
    """One message sent, so that every read endpoint has something to answer."""
    answer = send(http, sb).json()
    assert answer["success"] is True
    value: int = answer["data"][0]["smsid"]
    return value


def normal_answer(http: urllib3.PoolManager, sb: ProviderSandbox, endpoint: Endpoint, smsid: int) -> bytes:
    response = ask(http, sb, endpoint, smsid)
    assert response.status == 200
    assert response.data
    return bytes(response.data)


# ----- each fault on each read endpoint ----------------------------------------------------


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
@pytest.mark.parametrize(
    ("status", "retry_after"), [(500, None), (502, None), (503, "2"), (429, "2")], ids=str
)
def test_http_status_fault_on_a_read_endpoint(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    smsid: int,
    endpoint: Endpoint,
    status: int,
    retry_after: str | None,
) -> None:
    # Given an HTTP error queued for that endpoint
    sb.add_fault(Fault(kind="http_status", status=status, endpoint=endpoint))

    # When it is asked twice
    first = ask(http, sb, endpoint, smsid)
    second = ask(http, sb, endpoint, smsid)

    # Then the first gets that status, Retry-After only for 429/503, and the second the normal answer
    assert first.status == status
    assert str(status).encode() in first.data
    assert first.headers.get("Retry-After") == retry_after
    assert second.status == 200
    assert second.data == normal_answer(http, sb, endpoint, smsid)


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
def test_html_empty_and_garbage_faults_on_a_read_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int, endpoint: Endpoint
) -> None:
    # Given the normal answer, then an HTML page, an empty body and both kinds of garbage queued
    whole = normal_answer(http, sb, endpoint, smsid)
    sb.add_fault(
        *(
            Fault(kind=kind, code=code, endpoint=endpoint)
            for kind, code in [("html", 0), ("empty", 0), ("garbage", 0), ("garbage", 1)]
        )
    )

    # When the endpoint is asked four times
    html, empty, truncated, wrong_shape = (ask(http, sb, endpoint, smsid) for _ in range(4))

    # Then each is a 200 a client cannot use
    assert (html.status, empty.status, truncated.status, wrong_shape.status) == (200, 200, 200, 200)
    assert html.headers["Content-Type"].startswith("text/html")
    assert b"<html>" in html.data
    assert empty.data == b""
    assert truncated.headers["Content-Type"].startswith("text/plain")
    assert truncated.data == whole[: len(whole) // 2]
    assert wrong_shape.headers["Content-Type"].startswith("application/json")
    assert "Message" in json.loads(wrong_shape.data)


@pytest.mark.parametrize(
    ("endpoint", "status"), [("GetSMSStatus", 200), ("GetAccountBalance", 200), ("GetSMSHistory", 500)]
)
def test_error_code_fault_on_a_read_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int, endpoint: Endpoint, status: int
) -> None:
    # Given the provider's internal error queued for that endpoint
    sb.add_fault(Fault(kind="error_code", code=8, endpoint=endpoint))

    # When it is asked
    response = ask(http, sb, endpoint, smsid)

    # Then the error line comes back; GetSMSHistory says it with HTTP 500, as documented
    assert response.status == status
    assert response.data == b"Error: 8 - Internal error"


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
def test_drop_fault_on_a_read_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int, endpoint: Endpoint
) -> None:
    # Given a dropped connection queued for that endpoint
    sb.add_fault(Fault(kind="drop", endpoint=endpoint))

    # When it is asked
    # Then the connection closes without an answer
    with pytest.raises(ProtocolError):
        ask(http, sb, endpoint, smsid)


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
def test_slow_fault_on_a_read_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int, endpoint: Endpoint
) -> None:
    # Given two slow answers queued for that endpoint
    sb.add_fault(Fault(kind="slow", delay=0.3, times=2, endpoint=endpoint))

    # When an impatient client asks, then a patient one
    with pytest.raises(ReadTimeoutError):
        ask(http, sb, endpoint, smsid, timeout=urllib3.Timeout(read=0.05))
    started = time.monotonic()
    patient = ask(http, sb, endpoint, smsid)

    # Then the first gives up, and the second gets the normal answer after the delay
    assert time.monotonic() - started >= 0.3
    assert patient.status == 200
    assert patient.data == normal_answer(http, sb, endpoint, smsid)


# ----- faults stay on their own endpoint --------------------------------------------------


def test_queued_faults_hit_only_their_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int
) -> None:
    # Given a fault queued for each read endpoint, and none for SendIM
    for status, endpoint in zip((500, 502, 503), READ_ENDPOINTS, strict=True):
        sb.add_fault(Fault(kind="http_status", status=status, endpoint=endpoint))

    # When a message is sent, then each endpoint asked twice in reverse order
    sent = send(http, sb)
    statuses = {
        endpoint: [ask(http, sb, endpoint, smsid).status for _ in range(2)]
        for endpoint in READ_ENDPOINTS[::-1]
    }

    # Then SendIM went through, and each endpoint met only its own fault, once
    assert sent.json()["success"] is True
    assert statuses == {
        "GetAccountBalance": [503, 200],
        "GetSMSHistory": [502, 200],
        "GetSMSStatus": [500, 200],
    }


def test_a_sendim_fault_leaves_the_read_endpoints_alone(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int
) -> None:
    # Given a SendIM fault queued (the default endpoint) and a SendIM fault rate of 1
    sb.add_fault(Fault(kind="http_status", status=503))
    sb.set_fault_rate(1.0, Fault(kind="error_code", code=8))

    # When every read endpoint is asked
    # Then they answer normally, and the SendIM fault is still waiting
    assert all(ask(http, sb, endpoint, smsid).status == 200 for endpoint in READ_ENDPOINTS)
    assert send(http, sb).status == 503


def test_fault_rate_per_endpoint_is_seeded_on_its_own(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int
) -> None:
    # Given half of the status queries failing, seeded, set over the control API
    fault = {"kind": "http_status", "status": 500, "endpoint": "GetSMSStatus"}
    response = http.request(
        "POST", sb.url + "_sandbox/fault-rate", json={"rate": 0.5, "fault": fault, "seed": 3}
    )
    assert response.status == 200

    # When status queries and sends are interleaved
    outcomes = []
    for _ in range(20):
        outcomes.append(ask(http, sb, "GetSMSStatus", smsid).status == 200)
        assert send(http, sb).json()["success"] is True

    # Then exactly the draws of random.Random(3) failed, whatever SendIM did meanwhile
    draws = random.Random(3)  # noqa: S311 - mirrors the sandbox's draws
    assert outcomes == [draws.random() >= 0.5 for _ in range(20)]
    assert 0 < sum(outcomes) < 20


def test_fault_rate_is_switched_off_per_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int
) -> None:
    # Given every SendIM and every history query failing
    sb.set_fault_rate(1.0, Fault(kind="error_code", code=8))
    sb.set_fault_rate(1.0, Fault(kind="http_status", status=500, endpoint="GetSMSHistory"))

    # When the history's rate is switched off over the control API, by endpoint name
    body = {"rate": 0, "endpoint": "GetSMSHistory"}
    assert http.request("POST", sb.url + "_sandbox/fault-rate", json=body).status == 200

    # Then the history answers again, and SendIM still fails
    assert ask(http, sb, "GetSMSHistory", smsid).status == 200
    assert send(http, sb).json()["OperationErrors"][0]["errorCode"] == 8


def test_control_api_queues_a_fault_for_an_endpoint(
    sb: ProviderSandbox, http: urllib3.PoolManager, smsid: int
) -> None:
    # Given a fault queued over HTTP for GetSMSStatus
    response = http.request(
        "POST", sb.url + "_sandbox/faults", json={"kind": "empty", "endpoint": "GetSMSStatus"}
    )
    assert response.status == 200

    # When the status is asked
    # Then the fault hits it
    assert ask(http, sb, "GetSMSStatus", smsid).data == b""


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("faults", {"kind": "drop", "endpoint": "SendSMS"}),
        ("faults", {"kind": "drop", "endpoint": None}),
        ("fault-rate", {"rate": 0, "endpoint": "GetBalance"}),
        ("fault-rate", {"rate": 1, "fault": {"kind": "drop"}, "endpoint": "GetSMSStatus"}),
    ],
)
def test_control_api_refuses_unknown_endpoints(
    sb: ProviderSandbox, http: urllib3.PoolManager, path: str, body: dict[str, Any]
) -> None:
    # Given a fault for an endpoint the provider does not have, or two endpoints at odds
    # When it is posted
    response = http.request("POST", sb.url + "_sandbox/" + path, json=body)

    # Then it is refused with a reason naming the field
    assert response.status == 400
    assert "endpoint" in response.json()["error"]


# ----- GetAccountBalance per country -------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "normal", "low_cost"),
    [
        ("30", 4475, 5317),  # the documentation's example
        ("357", 4039, 4846),
        ("39", 3084, 3769),
        ("44", 2120, 2609),  # not in the list: the default prices
        ("", -1, -1),
    ],
)
def test_balance_counts_follow_the_countrys_prices(
    sb: ProviderSandbox, http: urllib3.PoolManager, prefix: str, normal: int, low_cost: int
) -> None:
    # Given the balance of the documentation's example
    sb.balance = 169.64

    # When the balance is asked for a country
    fields = {"apitoken": TOKEN, "countryprefix": prefix}
    answer = http.request("POST", sb.url + "GetAccountBalance", fields=fields, encode_multipart=False)

    # Then the remaining counts are what that country's prices buy (-1 without a country)
    assert answer.data.decode() == f"OK Balance:169.64|SmsRemainCount:{normal}|LCSmsRemainCount:{low_cost}"


@pytest.mark.parametrize("prefix", ["+30", "030", "3a", "12345", " 30"])
def test_malformed_country_prefix_is_error_59(
    sb: ProviderSandbox, http: urllib3.PoolManager, prefix: str
) -> None:
    # Given a country prefix that is not one
    fields = {"apitoken": TOKEN, "countryprefix": prefix}

    # When the balance is asked
    answer = http.request("POST", sb.url + "GetAccountBalance", fields=fields, encode_multipart=False)

    # Then the provider refuses it
    assert answer.data.decode() == "Error: 59 - Empty or invalid parameters"


def test_empty_balance_buys_nothing(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given an account with no money left
    sb.balance = 0

    # When the balance is asked for Greece
    fields = {"apitoken": TOKEN, "countryprefix": "30"}
    answer = http.request("POST", sb.url + "GetAccountBalance", fields=fields, encode_multipart=False)

    # Then nothing can be sent
    assert answer.data.decode() == "OK Balance:0.00|SmsRemainCount:0|LCSmsRemainCount:0"
