"""End to end: the account guarded through make run (gateway.guard), as a caller meets it.

- Caps per caller: each API key counts apart; a key's sixth message of a day with
  --daily-message-limit 5 is refused 429 limit-exceeded, with Retry-After the seconds until the
  stage's midnight, while another key of the same runner still sends.
- The destination policy (the stack's default, GR and CY mobiles): a premium-rate and a fixed-line
  Greek number are refused 422 destination-not-allowed, named, and nothing reaches LiveAll.
- The spend brake (--spend-ceiling 0.2): IM_SMSFB sends count their worst case (the SMS price the
  sandbox's balance gives, 0.0379 EUR for Greece, per destination and segment) until one would
  pass the ceiling; from then on sends are refused 429 spend-ceiling-reached, and Spend Ceiling
  Reached is published, and printed on the console, once.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import names
from tests.e2e.harness import LocalService, eventually
from tests.e2e.local_service import running_local_service

PROBLEM = "urn:viber-gateway:problem:"
ATHENS = ZoneInfo(names.DEFAULT_STAGE_TIME_ZONE)
SETTLE_SECONDS = 15
MESSAGE_LIMIT = 5
SPEND_CEILING_EUROS = 0.2
GREEK_SMS_EUROS = 0.0379  # the sandbox's price for Greece (sandbox/prices.py), what its balance says
PREMIUM_RATE = "309091234567"  # Greek 909 numbers: premium rate
FIXED_LINE = "302123456789"  # Greek 21x numbers: Athens fixed lines
CEILING_LINE = "event Spend Ceiling Reached"


def _mobiles(count: int) -> list[str]:
    """Greek mobiles the sandbox delivers to (last digit 5 to 9), new ones each call."""
    return [f"3069{secrets.randbelow(10**6):06d}0{9 - n % 4}" for n in range(count)]


def _im(destinations: list[str]) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": f"guard {uuid.uuid4().hex}",
        "destinations": destinations,
    }


def _im_smsfb(destinations: list[str]) -> dict[str, Any]:
    # One GSM-7 segment of SMS fallback: the worst case is one SMS per destination.
    return {
        **_im(destinations),
        "im_type": "IM_SMSFB",
        "senderid": "MyShop",
        "sms_text": "Your order has shipped.",
    }


def _post(service: LocalService, body: dict[str, Any], key: str | None = None) -> Any:
    return service.post_message(body, headers={"x-api-key": key} if key else None)


def _seconds_until_midnight(zone: ZoneInfo) -> float:
    now = datetime.now(zone)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return midnight.timestamp() - time.time()


def _assert_retry_after_is_the_day_turning(response: Any) -> None:
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 86_400
    # ...the seconds until midnight in the stage's time zone (Europe/Athens), give or take a few
    assert abs(retry_after - _seconds_until_midnight(ATHENS)) <= 5


def _ledger_destinations(service: LocalService) -> list[str]:
    return [d for entry in service.ledger() for d in entry["payload"]["destinations"]]


# --- Caps per caller, and the destination policy ------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalService, list[str]]]:
    """A runner of its own, every caller limited to 5 messages a day, with two more API keys."""
    keys = [secrets.token_hex(16), secrets.token_hex(16)]
    log = tmp_path_factory.mktemp("local-run-capped") / "output.log"
    with running_local_service(
        log,
        extra_arguments=[f"--daily-message-limit={MESSAGE_LIMIT}", *(f"--api-key={key}" for key in keys)],
    ) as service:
        yield service, keys


def test_a_keys_sixth_message_of_the_day_is_refused_until_midnight_and_other_keys_still_send(
    capped: tuple[LocalService, list[str]],
) -> None:
    service, (other_key, _) = capped
    service.sandbox("POST", "reset")

    # Given a key that has sent its five messages of the day, one number at a time
    sent = [_post(service, _im(_mobiles(1))) for _ in range(MESSAGE_LIMIT)]
    assert [response.status for response in sent] == [200] * MESSAGE_LIMIT, [r.data for r in sent]

    # When it sends a sixth
    sixth = _post(service, _im(_mobiles(1)))

    # Then it is refused: 429, the limit-exceeded problem, Retry-After until the stage's midnight
    assert sixth.status == 429, sixth.data
    assert sixth.headers["Content-Type"] == "application/problem+json"
    problem = sixth.json()
    assert problem["type"] == f"{PROBLEM}limit-exceeded"
    assert problem["status"] == 429
    _assert_retry_after_is_the_day_turning(sixth)
    # ...and nothing of it reached LiveAll: five sends, one number each
    assert len(service.ledger()) == MESSAGE_LIMIT

    # And another key of the same runner is a caller of its own: it still sends
    other = _post(service, _im(_mobiles(2)), key=other_key)
    assert other.status == 200, other.data
    assert len(service.ledger()) == MESSAGE_LIMIT + 1
    # ...and the first stays refused
    assert _post(service, _im(_mobiles(1))).status == 429


def test_a_premium_rate_and_a_fixed_line_number_are_refused_by_name_and_nothing_is_sent(
    capped: tuple[LocalService, list[str]],
) -> None:
    service, (_, fresh_key) = capped
    service.sandbox("POST", "reset")

    # Given a send to a mobile, a Greek premium-rate number and an Athens fixed line
    mobile = _mobiles(1)[0]
    body = _im([mobile, PREMIUM_RATE, FIXED_LINE])

    # When it is POSTed
    response = _post(service, body, key=fresh_key)

    # Then it is refused whole: 422 destination-not-allowed, naming each number and its rule
    assert response.status == 422, response.data
    problem = response.json()
    assert problem["type"] == f"{PROBLEM}destination-not-allowed"
    errors = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(errors) == {"destinations[1]", "destinations[2]"}
    assert PREMIUM_RATE in errors["destinations[1]"]
    assert "premium-rate" in errors["destinations[1]"]
    assert FIXED_LINE in errors["destinations[2]"]
    assert "fixed-line" in errors["destinations[2]"]
    # And nothing reached LiveAll, not even the mobile
    assert service.ledger() == []

    # And each alone is refused the same way
    for number, kind in ((PREMIUM_RATE, "premium-rate"), (FIXED_LINE, "fixed-line")):
        alone = _post(service, _im([number]), key=fresh_key)
        assert alone.status == 422, alone.data
        assert alone.json()["type"] == f"{PROBLEM}destination-not-allowed"
        assert kind in alone.json()["errors"][0]["message"]
    assert service.ledger() == []


# --- The spend brake ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def braked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalService, Path]]:
    """A runner of its own with a stage-wide ceiling of 0.2 EUR of worst-case spend a day."""
    log = tmp_path_factory.mktemp("local-run-braked") / "output.log"
    with running_local_service(log, extra_arguments=[f"--spend-ceiling={SPEND_CEILING_EUROS}"]) as service:
        yield service, log


def _ceiling_lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if CEILING_LINE in line]


def _received(service: LocalService, queue_url: str) -> list[dict[str, Any]]:
    messages = service.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def test_past_the_spend_ceiling_every_send_stops_and_the_brake_is_announced_once(
    braked: tuple[LocalService, Path],
) -> None:
    service, log = braked
    service.sandbox("POST", "reset")
    events = service.subscribe(
        "e2e-spend-ceiling", {"source": [names.EVENT_SOURCE], "detail-type": ["Spend Ceiling Reached"]}
    )
    # The sandbox's balance says what an SMS to Greece costs: the price the caps count
    balance = service.call("GET", "/account/balance?country=GR")
    assert balance.status == 200, balance.data
    assert balance.json()["price_per_sms"] == GREEK_SMS_EUROS

    # Given IM_SMSFB sends of two Greek numbers: a worst case of 2 x 0.0379 = 0.0758 EUR each
    # When two are sent (0.1516 EUR so far: under the ceiling of 0.2)
    first, second = (_post(service, _im_smsfb(_mobiles(2))) for _ in range(2))

    # Then both go out
    assert (first.status, second.status) == (200, 200), (first.data, second.data)
    assert len(_ledger_destinations(service)) == 4

    # When a third would take the day's worst case to 0.2274 EUR
    third = _post(service, _im_smsfb(_mobiles(2)))

    # Then it is refused: 429 spend-ceiling-reached, until the stage's midnight; nothing sent
    assert third.status == 429, third.data
    assert third.json()["type"] == f"{PROBLEM}spend-ceiling-reached"
    _assert_retry_after_is_the_day_turning(third)
    assert len(_ledger_destinations(service)) == 4
    # And Spend Ceiling Reached is published, with the day, the ceiling and the stage's zone...
    (event,) = eventually(
        lambda: _received(service, events) or None, timeout=SETTLE_SECONDS, what="the event"
    )
    assert event["detail-type"] == names.DETAIL_TYPE_SPEND_CEILING_REACHED
    assert event["detail"] == {
        "day": datetime.now(ATHENS).date().isoformat(),
        "ceiling": SPEND_CEILING_EUROS,
        "currency": "EUR",
        "time_zone": names.DEFAULT_STAGE_TIME_ZONE,
    }
    # ...and printed on the console, one line
    (line,) = eventually(lambda: _ceiling_lines(log) or None, timeout=SETTLE_SECONDS, what="the console line")
    assert (
        f"0.2 EUR of worst-case spend, sends stopped until midnight ({names.DEFAULT_STAGE_TIME_ZONE})" in line
    )

    # When another send of the same size is refused
    again = _post(service, _im_smsfb(_mobiles(2)))

    # Then it is refused the same way, and the brake is not announced again
    assert again.status == 429, again.data
    assert again.json()["type"] == f"{PROBLEM}spend-ceiling-reached"
    time.sleep(2)  # the printer and the bus had time to show a second one
    assert len(_ceiling_lines(log)) == 1
    assert _received(service, events) == []
    assert len(_ledger_destinations(service)) == 4


def test_once_the_brake_is_engaged_even_a_send_that_would_fit_under_the_ceiling_is_refused(
    braked: tuple[LocalService, Path],
) -> None:
    service, log = braked
    service.sandbox("POST", "reset")

    # Given the brake engaged: sends of two numbers (0.0758 EUR each) until one is refused (after
    # the test above, the first already is: 0.1516 EUR counted today)
    counted = 0.0
    for _ in range(4):
        response = _post(service, _im_smsfb(_mobiles(2)))
        if response.status != 200:
            break
        counted += 2 * GREEK_SMS_EUROS
    assert response.status == 429, response.data
    assert response.json()["type"] == f"{PROBLEM}spend-ceiling-reached"
    sent = len(_ledger_destinations(service))
    # ...with room left under the ceiling for one more number
    assert counted + GREEK_SMS_EUROS <= SPEND_CEILING_EUROS

    # When a send of one number, whose worst case would still fit, is posted
    smaller = _post(service, _im_smsfb(_mobiles(1)))

    # Then it is refused too: sends stop until midnight (or an operator lifts the brake), as the
    # refusal says, rather than trickling on under the ceiling
    assert smaller.status == 429, smaller.data
    assert smaller.json()["type"] == f"{PROBLEM}spend-ceiling-reached"
    assert len(_ledger_destinations(service)) == sent
    # And the brake is still announced once only
    eventually(lambda: _ceiling_lines(log) or None, timeout=SETTLE_SECONDS, what="the console line")
    assert len(_ceiling_lines(log)) == 1
