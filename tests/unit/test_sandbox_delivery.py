"""The sandbox's delivery model, seen through GetSMSStatus and the control API, over loopback HTTP.

Time is a fake clock the tests move by hand: statuses change without sleeping.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3

from sandbox import STATUS_TEXTS, ProviderSandbox, Status
from tests.conftest import FakeClock

TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "MyShop"
START = 1_718_452_800.0  # 2024-06-15 12:00:00 UTC
STEP = 1.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def number(last_digit: int | str) -> str:
    """A Greek mobile ending in the digit that picks its delivery rule."""
    return f"30691234567{last_digit}"


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def shared_sandbox(clock: FakeClock) -> Iterator[ProviderSandbox]:
    with ProviderSandbox(tokens={TOKEN}, delivery_step_seconds=STEP, clock=clock) as sb:
        yield sb


@pytest.fixture
def sb(shared_sandbox: ProviderSandbox, clock: FakeClock) -> ProviderSandbox:
    shared_sandbox.reset()
    clock.now = START
    return shared_sandbox


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=3.0), maxsize=8)


def send(http: urllib3.PoolManager, url: str, **fields: Any) -> list[int]:
    """Send a SendIM (Viber only unless told) and return its smsids."""
    body: dict[str, Any] = {
        "apitoken": TOKEN,
        "im_type": "IM",
        "im_sender_name": SENDER,
        "im_text": "Your order has shipped",
        "destinations": [number(9)],
        **fields,
    }
    answer = http.request("POST", url + "SendIM", json=body).json()
    assert answer["success"] is True, answer
    return [item["smsid"] for item in answer["data"]]


def fallback(http: urllib3.PoolManager, url: str, **fields: Any) -> list[int]:
    """Send a SendIM with SMS fallback and return its smsids."""
    defaults = {"im_type": "IM_SMSFB", "senderid": SENDER, "sms_text": "Your order has shipped"}
    return send(http, url, **{**defaults, **fields})


def post_form(http: urllib3.PoolManager, url: str, fields: dict[str, str]) -> str:
    response = http.request("POST", url, fields=fields, encode_multipart=False)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.data.decode()


def status_records(http: urllib3.PoolManager, sb: ProviderSandbox, *smsids: int) -> list[list[str]]:
    """GetSMSStatus for the ids, each record split into its eight fields."""
    answer = post_form(
        http, sb.url + "GetSMSStatus", {"apitoken": TOKEN, "smsids": ",".join(map(str, smsids))}
    )
    records = [record.split(":") for record in answer.split("|")]
    assert all(len(record) == 8 for record in records), answer
    return records


def control(http: urllib3.PoolManager, sb: ProviderSandbox, path: str, body: Any = None) -> Any:
    if body is None:
        response = http.request("GET", sb.url + "_sandbox/" + path)
    else:
        response = http.request("POST", sb.url + "_sandbox/" + path, json=body)
    return response.status, response.json()


def walk(
    http: urllib3.PoolManager, sb: ProviderSandbox, clock: FakeClock, smsid: int, steps: int
) -> list[list[str]]:
    """The message's record at each step time, from submission to `steps` steps later."""
    records = []
    for _ in range(steps + 1):
        [record] = status_records(http, sb, smsid)
        records.append(record)
        clock.advance(STEP)
    return records


# ----- the path of each kind of number ------------------------------------------------

PATHS = [
    pytest.param(9, "IM", [300001, 300009, 300002, 300008], id="reads"),
    pytest.param(5, "IM_SMSFB", [300001, 300009, 300002, 300008], id="reads-no-fallback-needed"),
    pytest.param(0, "IM", [300001, 300009, 300002], id="never-reads"),
    pytest.param(1, "IM", [300001, 300005], id="no-viber"),
    pytest.param(1, "IM_SMSFB", [300001, 300005, 100001, 200000], id="no-viber-sms-delivered"),
    pytest.param(2, "IM", [300001, 300009, 300003], id="expires"),
    pytest.param(2, "IM_SMSFB", [300001, 300009, 300003, 100001, 200000], id="expires-then-sms"),
    pytest.param(3, "IM_SMSFB", [300001, 300005, 100001, 100003], id="sms-undelivered"),
    pytest.param(4, "IM", [300001, 300005], id="smsc-refuses-im"),
    pytest.param(4, "IM_SMSFB", [300001, 300005, 100004], id="smsc-refuses-sms"),
]


@pytest.mark.parametrize(("last_digit", "im_type", "codes"), PATHS)
def test_status_walks_the_numbers_path_one_step_at_a_time(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    clock: FakeClock,
    last_digit: int,
    im_type: str,
    codes: list[int],
) -> None:
    # Given a message to a number of that kind
    [smsid] = (fallback if im_type == "IM_SMSFB" else send)(http, sb.url, destinations=[number(last_digit)])

    # When its status is asked at submission and after each step, and two steps past the end
    records = walk(http, sb, clock, smsid, len(codes) + 1)

    # Then it went through exactly those statuses, and then stayed at the last
    expected = codes + [codes[-1]] * 2
    assert [int(r[4]) for r in records] == expected
    assert [r[5] for r in records] == [STATUS_TEXTS[code] for code in expected]
    # And each status is dated when it was reached, submission staying put
    assert {r[1] for r in records} == {str(int(START))}
    assert [int(r[2]) for r in records[: len(codes)]] == [int(START + i * STEP) for i in range(len(codes))]
    assert records[-1][2] == records[len(codes) - 1][2]
    assert all((r[0], r[3]) == (str(smsid), number(last_digit)) for r in records)


def test_between_steps_the_status_waits(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a message to a reader, and a clock just short of the first step
    [smsid] = send(http, sb.url)
    clock.advance(STEP - 0.001)

    # When its status is asked
    [record] = status_records(http, sb, smsid)

    # Then it is still accepted
    assert record[4:6] == ["300001", "Accepted"]


# ----- what each status reports beside its code ----------------------------------------


def test_viber_steps_report_one_message_at_the_viber_price(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a Viber message that is read
    [smsid] = send(http, sb.url)
    clock.advance(10 * STEP)

    # When its status is asked
    [record] = status_records(http, sb, smsid)

    # Then it is seen, one message at 0.01
    assert record[4:] == ["300008", "Seen", "1", "0.0100"]


@pytest.mark.parametrize(
    ("destination", "sms_text", "pricecat", "sms_count", "charge"),
    [
        pytest.param(number(1), "Your order has shipped", 0, "1", "0.0379", id="greek-one-part"),
        pytest.param(number(1), "x" * 161, 0, "2", "0.0758", id="greek-two-parts"),
        pytest.param(number(1), "x" * 161, 1, "2", "0.0638", id="greek-two-parts-low-cost"),
        pytest.param(number(1), "\N{GREEK SMALL LETTER ALPHA}" * 71, 0, "2", "0.0758", id="ucs2-two-parts"),
        pytest.param(number(1), "{}" * 40 + "x", 0, "2", "0.0758", id="81-chars-161-septets"),
        pytest.param("35799123451", "x" * 400, 0, "3", "0.1260", id="cypriot-three-parts"),
        pytest.param("393471234561", "x", 1, "1", "0.0450", id="italian-low-cost"),
        pytest.param("447700900121", "x", 0, "1", "0.0800", id="elsewhere"),
    ],
)
def test_fallback_sms_reports_its_parts_and_charge(
    sb: ProviderSandbox,
    http: urllib3.PoolManager,
    clock: FakeClock,
    destination: str,
    sms_text: str,
    pricecat: int,
    sms_count: str,
    charge: str,
) -> None:
    # Given a fallback SMS to a number without Viber
    [smsid] = fallback(http, sb.url, destinations=[destination], sms_text=sms_text, pricecat=pricecat)

    # When it has been delivered
    clock.advance(3 * STEP)
    [record] = status_records(http, sb, smsid)

    # Then the status reports its SMS parts and their price in that country and category
    assert record[4:] == ["200000", "Delivered", sms_count, charge]


def test_refused_sms_costs_nothing(sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock) -> None:
    # Given a fallback SMS the SMSC refuses
    [smsid] = fallback(http, sb.url, destinations=[number(4)])

    # When it has been refused
    clock.advance(5 * STEP)
    [record] = status_records(http, sb, smsid)

    # Then its parts are counted but not charged, and only the Viber attempt was paid
    assert record[4:] == ["100004", "Not delivered by SMSC", "1", "0.0000"]
    assert sb.balance == pytest.approx(99.99)


def test_fallback_sms_is_charged_when_sent(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a two-part fallback SMS to a number without Viber
    fallback(http, sb.url, destinations=[number(1)], sms_text="x" * 200)
    balance_url = sb.url + "GetAccountBalance"

    # When the balance is read before the SMS goes out, as it goes out, and later
    before = [sb.balance]
    clock.advance(STEP)
    before.append(sb.balance)
    clock.advance(STEP)
    sent = sb.balance
    answer = post_form(http, balance_url, {"apitoken": TOKEN})
    clock.advance(10 * STEP)
    later = sb.balance

    # Then only the Viber message is paid until the SMS is sent, then its two parts, once
    assert before == [pytest.approx(99.99), pytest.approx(99.99)]
    assert sent == pytest.approx(99.99 - 2 * 0.0379)
    assert answer.startswith("OK Balance:99.91|")
    assert later == sent


def test_a_balance_set_after_the_sms_went_out_is_not_charged_again(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a fallback SMS sent out, then a new balance set without reading the old one
    fallback(http, sb.url, destinations=[number(1)])
    clock.advance(5 * STEP)
    sb.balance = 10.0

    # When the balance is read
    # Then the new balance stands: the SMS was charged to the old one
    assert sb.balance == 10.0


# ----- the step ---------------------------------------------------------------------------


def test_step_zero_jumps_to_the_end(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given no delay between statuses, set over the control API
    assert control(http, sb, "config", {"delivery_step_seconds": 0}) == (200, {"ok": True})

    # When a fallback message to a number without Viber is sent and its status asked at once
    [smsid] = fallback(http, sb.url, destinations=[number(1)])
    [record] = status_records(http, sb, smsid)

    # Then it is already delivered by SMS, dated at submission, and charged
    assert record[1:3] == [str(int(START))] * 2
    assert record[4:] == ["200000", "Delivered", "1", "0.0379"]
    assert sb.balance == pytest.approx(99.99 - 0.0379)


def test_a_message_keeps_the_step_it_was_sent_with(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a message sent with 10-second steps, then the step changed to 0
    sb.delivery_step_seconds = 10
    [slow] = send(http, sb.url)
    sb.delivery_step_seconds = 0
    [fast] = send(http, sb.url)

    # When both are asked after one second
    clock.advance(1)
    records = status_records(http, sb, slow, fast)

    # Then the first is still accepted and the second already seen
    assert [r[4] for r in records] == ["300001", "300008"]


def test_step_is_validated_and_reset(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a negative step over the control API
    status, answer = control(http, sb, "config", {"delivery_step_seconds": -1})

    # Then it is refused
    assert status == 400
    assert "delivery_step_seconds" in answer["error"]
    # And a reset restores the constructor's step
    sb.delivery_step_seconds = 7
    sb.reset()
    assert sb.delivery_step_seconds == STEP


# ----- forcing a status --------------------------------------------------------------------


def test_forced_status_sticks(sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock) -> None:
    # Given a message to a reader, one step along
    [smsid] = send(http, sb.url)
    clock.advance(STEP)

    # When it is forced undelivered over the control API, and time goes on
    assert control(http, sb, "status", {"smsid": smsid, "code": 300005}) == (200, {"ok": True})
    forced_at = clock.now
    clock.advance(100 * STEP)
    [record] = status_records(http, sb, smsid)

    # Then it stays undelivered, dated when it was forced, with what it reported before
    assert record[2] == str(int(forced_at))
    assert record[4:] == ["300005", "Undelivered", "1", "0.0100"]


def test_forced_status_with_its_own_text_count_and_charge(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given a message
    [smsid] = fallback(http, sb.url, destinations=[number(1)])

    # When it is forced to an extended network code with every field given
    body = {"smsid": smsid, "code": 1, "text": "Absent subscriber", "sms_count": 3, "charge": 0.1137}
    assert control(http, sb, "status", body) == (200, {"ok": True})

    # Then GetSMSStatus reports exactly that
    [record] = status_records(http, sb, smsid)
    assert record[4:] == ["1", "Absent subscriber", "3", "0.1137"]


def test_forcing_before_the_sms_goes_out_means_it_is_never_charged(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a fallback message forced to Viber "seen" before its SMS step
    [smsid] = fallback(http, sb.url, destinations=[number(1)])
    sb.force_status(smsid, 300008)

    # When its SMS step has long passed
    clock.advance(10 * STEP)

    # Then only the Viber message was paid
    assert sb.status_of(smsid) == Status(300008, "Seen", 1, Decimal("0.01"), START)
    assert sb.balance == pytest.approx(99.99)


def test_forcing_after_the_sms_went_out_keeps_its_charge(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a fallback SMS sent out, its balance never read, then forced undelivered
    [smsid] = fallback(http, sb.url, destinations=[number(1)])
    clock.advance(2 * STEP)
    sb.force_status(smsid, 100003)

    # When the balance is read later
    clock.advance(10 * STEP)

    # Then the SMS it sent was paid
    assert sb.balance == pytest.approx(99.99 - 0.0379)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"smsid": 1, "code": 300005}, "unknown smsid 1"),
        ({"smsid": "x", "code": 300005}, "smsid"),
        ({"code": 300005}, "smsid"),
        ({"smsid": None, "code": 300005}, "smsid"),
        ({"smsid": 20818588, "code": 0}, "code"),
        ({"smsid": 20818588, "code": True}, "code"),
        ({"smsid": 20818588, "code": 27}, "text"),
        ({"smsid": 20818588, "code": 300005, "text": "a:b"}, "text"),
        ({"smsid": 20818588, "code": 300005, "text": "a|b"}, "text"),
        ({"smsid": 20818588, "code": 300005, "text": ""}, "text"),
        ({"smsid": 20818588, "code": 300005, "sms_count": -1}, "sms_count"),
        ({"smsid": 20818588, "code": 300005, "charge": -0.1}, "charge"),
        ({"smsid": 20818588, "code": 300005, "colour": "red"}, "colour"),
    ],
)
def test_forcing_refuses_bad_input(
    sb: ProviderSandbox, http: urllib3.PoolManager, body: dict[str, Any], error: str
) -> None:
    # Given a message (to make known ids refusable for their other fields)
    [smsid] = send(http, sb.url)
    if body.get("smsid") == 20818588:
        body = {**body, "smsid": smsid}

    # When a bad status is forced
    status, answer = control(http, sb, "status", body)

    # Then it is refused with a reason, and the message goes on as modelled
    assert status == 400
    assert answer["ok"] is False
    assert error in answer["error"]
    assert sb.status_of(smsid).code == 300001


def test_force_status_in_python_refuses_an_unknown_smsid(sb: ProviderSandbox) -> None:
    # Given no message at all
    # When a status is forced
    # Then it is refused
    with pytest.raises(ValueError, match="unknown smsid 42"):
        sb.force_status(42, 300005)


# ----- GetSMSStatus's quirks ----------------------------------------------------------------


def test_status_keeps_the_asked_order_drops_unknown_and_repeated_ids(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given three messages
    first, second, third = send(http, sb.url, destinations=[number(9), number(0), number(1)])

    # When they are asked in another order, with whitespace, an unknown id and a repeat
    answer = post_form(
        http,
        sb.url + "GetSMSStatus",
        {"apitoken": TOKEN, "smsids": f" {third} ^ 7 .{first}, {third} ,{second}"},
    )

    # Then the known ones come once each, in the order asked
    assert [record.split(":")[0] for record in answer.split("|")] == [str(third), str(first), str(second)]


def test_status_of_an_id_from_before_a_reset_is_unknown(
    sb: ProviderSandbox, http: urllib3.PoolManager
) -> None:
    # Given a message sent before a reset
    [smsid] = send(http, sb.url)
    sb.reset()

    # When its status is asked
    answer = post_form(http, sb.url + "GetSMSStatus", {"apitoken": TOKEN, "smsids": str(smsid)})

    # Then the provider has no such message
    assert answer == "Error: 43 - No submitted SMS found"


@pytest.mark.parametrize("endpoint", ["GetSMSStatus", "GetSMSHistory", "GetAccountBalance"])
@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "Error: 39 - API token not provided"),
        ("", "Error: 39 - API token not provided"),
        ("feedfacefeedfacefeedfacefeedface", "Error: 44 - Invalid API token"),
    ],
)
def test_token_errors_never_echo_a_token(
    sb: ProviderSandbox, http: urllib3.PoolManager, endpoint: str, token: str | None, expected: str
) -> None:
    # Given a message sent, and a query with a missing, empty or wrong token
    [smsid] = send(http, sb.url)
    fields = {"smsids": str(smsid), "submit_date": "20240615", "countryprefix": "30"}
    if token is not None:
        fields["apitoken"] = token

    # When it is sent
    answer = post_form(http, sb.url + endpoint, fields)

    # Then the plain-text token error comes back, no token in it
    assert answer == expected
    assert TOKEN not in answer


# ----- the control API's view, concurrency, the command line ----------------------------


def test_messages_endpoint_shows_each_message_and_its_status(
    sb: ProviderSandbox, http: urllib3.PoolManager, clock: FakeClock
) -> None:
    # Given a Viber message and a forced fallback message, some time later
    [viber] = send(http, sb.url)
    [sms] = fallback(http, sb.url, destinations=[number(1)], pricecat=1)
    sb.force_status(sms, 100003)
    clock.advance(2 * STEP)

    # When the control API lists the messages
    status, messages = control(http, sb, "messages")

    # Then each has its identity, its status now and its modelled path
    assert status == 200
    batch = sb.ledger[0].submission_id
    assert messages == [
        {
            "smsid": viber,
            "batch_id": batch,
            "destination": number(9),
            "sender_name": SENDER,
            "im_type": "IM",
            "submitted_at": START,
            "status_code": 300002,
            "status_text": "Delivered",
            "status_reached_at": START + 2 * STEP,
            "sms_count": 1,
            "charge": 0.01,
            "forced": False,
            "path": [300001, 300009, 300002, 300008],
        },
        {
            "smsid": sms,
            "batch_id": batch + 1,
            "destination": number(1),
            "sender_name": SENDER,
            "im_type": "IM_SMSFB",
            "submitted_at": START,
            "status_code": 100003,
            "status_text": "Undelivered",
            "status_reached_at": START,
            "sms_count": 1,
            "charge": 0.01,
            "forced": True,
            "path": [300001, 300005, 100001, 200000],
        },
    ]


def test_status_queries_are_served_in_parallel(sb: ProviderSandbox, http: urllib3.PoolManager) -> None:
    # Given a message, and a provider taking 200 ms per answer
    [smsid] = send(http, sb.url)
    sb.latency = 0.2

    # When eight status queries go at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: status_records(http, sb, smsid), range(8)))
    elapsed = time.monotonic() - started

    # Then all are answered alike, far faster than the 1.6 s one after another would take
    assert all(answer == answers[0] for answer in answers)
    assert elapsed < 1.2


def test_cli_takes_the_delivery_step() -> None:
    # Given the sandbox started from the command line with no delay between statuses
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--token", TOKEN, "--delivery-step-seconds", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        http = urllib3.PoolManager(retries=False)

        # When a message is sent and its status asked at once
        [smsid] = send(http, url)
        answer = post_form(http, url + "GetSMSStatus", {"apitoken": TOKEN, "smsids": str(smsid)})
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=5)
    finally:
        process.kill()
        process.wait()

    # Then it is already at the end of its path
    assert answer.split(":")[4:6] == ["300008", "Seen"]
