"""Fault injection: 250 queued messages while the provider or the store fails 20 % of calls, mode by mode.

At the end every message is accounted for: sent once (the sandbox's ledger),
or in the dead-letter queue with a reason. None is sent twice, none is lost.
Then `make redrive` runs against the running service: it finishes, moves each
dead letter once, and still nothing is sent twice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import REPO, LocalService, eventually
from tests.e2e.local_service import VISIBILITY_TIMEOUT_SECONDS, running_local_service

MESSAGES_PER_MODE = 50
FAILURE_RATE = 0.2
# The provider's slow answers outlast the functions' read timeout.
READ_TIMEOUT_SECONDS = 0.5
STORE_SAVES_ANSWER = "DynamoDB_20120810.UpdateItem"  # how the idempotency store keeps an answer
# (mode, provider fault, or None with the store failing after the send instead)
MODES: list[tuple[str, dict[str, Any] | None]] = [
    ("HTTP 500 before processing", {"kind": "http_status", "status": 500}),
    ("HTTP 429", {"kind": "http_status", "status": 429}),
    ("timeout after processing", {"kind": "slow", "delay": 1.5, "after_processing": True}),
    ("garbage body after processing", {"kind": "garbage", "after_processing": True}),
    ("store fails after the send", None),
]
DRAIN_SECONDS = 120
REDRIVE_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A local service of its own, with a short provider read timeout."""
    log_path = tmp_path_factory.mktemp("local-run-faults") / "output.log"
    environment = {"PROVIDER_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)}
    with running_local_service(log_path, extra_environment=environment) as service:
        yield service


def _body(number: int) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": f"accounting message {number}",
        "destinations": [f"30691{number:07d}"],
    }


def _wait_until_settled(service: LocalService, what: str) -> None:
    """Wait until the queue has stayed empty for longer than a visibility timeout: no retry is pending."""
    quiet_since: list[float] = []

    def settled() -> bool:
        now = time.monotonic()
        if service.messages_in(service.queue_url) != 0:
            quiet_since.clear()
            return False
        quiet_since[:] = quiet_since or [now]
        return now - quiet_since[0] > VISIBILITY_TIMEOUT_SECONDS + 1

    eventually(settled, timeout=DRAIN_SECONDS, what=f"the queue to drain ({what})")


def _dead_letters(service: LocalService) -> dict[str, dict[str, Any]]:
    """What the dead-letter queue holds, by message id, left in place (visible again at once)."""
    seen: dict[str, dict[str, Any]] = {}
    while batch := service.sqs.receive_message(
        QueueUrl=service.dead_letter_queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=60,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    ).get("Messages", []):
        seen.update({message["MessageId"]: message for message in batch})
    for message in seen.values():
        service.sqs.change_message_visibility(
            QueueUrl=service.dead_letter_queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    return seen


def _reason(message: dict[str, Any]) -> str:
    attributes = message.get("MessageAttributes", {})
    if "ErrorType" in attributes:
        return str(attributes["ErrorType"]["StringValue"])
    # Moved by the queue's own redrive: it failed maxReceiveCount times, each time retriably.
    return f"retries exhausted ({message['Attributes']['ApproximateReceiveCount']} receives)"


def _make_redrive(service: LocalService) -> subprocess.CompletedProcess[str]:
    """`make redrive` as README says to run it against the running service."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        {
            "AWS_ENDPOINT_URL": service.aws_url,
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }
    )
    return subprocess.run(
        ["make", "--no-print-directory", "redrive"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=REDRIVE_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.slow
def test_every_message_is_sent_once_or_dead_lettered_and_the_redrive_ends(
    flaky: LocalService, capsys
) -> None:
    sent_by_text: Counter[str] = Counter()
    rows = []
    number = 0
    parked_before: set[str] = set()
    for index, (mode, fault) in enumerate(MODES):
        # Given the provider (or the store, after the send) failing 20 % of calls in this mode
        flaky.sandbox("POST", "reset")
        if fault is not None:
            flaky.sandbox("POST", "fault-rate", {"rate": FAILURE_RATE, "fault": fault, "seed": index})
        else:
            flaky.emulator("POST", {"operation": STORE_SAVES_ANSWER, "rate": FAILURE_RATE, "seed": index})
        injected_before = flaky.emulator("GET")["injected"].get(STORE_SAVES_ANSWER, 0)

        # When 50 messages are queued and the queue drains
        for _ in range(MESSAGES_PER_MODE):
            number += 1
            flaky.sqs.send_message(QueueUrl=flaky.queue_url, MessageBody=json.dumps(_body(number)))
        _wait_until_settled(flaky, mode)
        flaky.emulator("POST", {"operation": STORE_SAVES_ANSWER, "rate": 0})
        store_failures = flaky.emulator("GET")["injected"].get(STORE_SAVES_ANSWER, 0) - injected_before

        # Then account for each message of this mode (the dead letters stay for the redrive)
        requests = flaky.sandbox("GET", "requests")
        mode_sent = Counter(entry["payload"]["im_text"] for entry in flaky.ledger())
        sent_by_text.update(mode_sent)
        parked_now = _dead_letters(flaky)
        mode_parked = [m for message_id, m in parked_now.items() if message_id not in parked_before]
        parked_before |= set(parked_now)
        rows.append(
            (mode, len(requests), sum(mode_sent.values()), store_failures, Counter(map(_reason, mode_parked)))
        )

    parked = _dead_letters(flaky)
    parked_by_text = {json.loads(m["Body"])["im_text"]: _reason(m) for m in parked.values()}
    assert len(parked_by_text) == len(parked), "a message was dead-lettered twice"
    all_texts = [_body(n)["im_text"] for n in range(1, number + 1)]
    sent_twice = [t for t in all_texts if sent_by_text[t] > 1]
    missing = [t for t in all_texts if sent_by_text[t] == 0 and t not in parked_by_text]
    both = [t for t in all_texts if sent_by_text[t] == 1 and t in parked_by_text]

    # When `make redrive` runs against the running service (which parks outcome-unknown replays again)
    flaky.sandbox("POST", "reset")
    started = time.monotonic()
    redrive = _make_redrive(flaky)
    redrive_seconds = time.monotonic() - started
    _wait_until_settled(flaky, "after the redrive")
    resent = Counter(entry["payload"]["im_text"] for entry in flaky.ledger())
    moved = re.search(r"moved\s+(\d+)\s+in all", redrive.stdout)

    with capsys.disabled():
        print(f"\n\nFault-injection accounting: {number} queued messages, 20 % of calls failing")
        print(f"{'mode':<32} {'calls':>6} {'sent':>5} {'store':>6}  dead-lettered (reason: count)")
        for mode, calls, sent, store_failures, reasons in rows:
            listed = ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items())) or "-"
            print(f"{mode:<32} {calls:>6} {sent:>5} {store_failures:>6}  {listed}")
        print(
            f"{'total':<32} {'':>6} {sum(sent_by_text.values()):>5} {'':>6}  {len(parked_by_text)}; "
            f"sent twice: {len(sent_twice)}; missing: {len(missing)}; "
            f"sent and parked as outcome-unknown (for an operator to check): {len(both)}"
        )
        print(
            f"make redrive: exit {redrive.returncode} in {redrive_seconds:.1f} s, moved "
            f"{moved.group(1) if moved else '?'} of {len(parked)} dead letters; sent by the replays: "
            f"{sum(resent.values())}\n"
        )

    assert number == 250
    assert sent_twice == []
    assert missing == []
    # A message both sent and parked is one whose answer was lost: parked as outcome-unknown, never re-sent.
    assert all(parked_by_text[t] == "outcome-unknown" for t in both)
    # Retriable failures (429) were retried to success; uncertain ones were parked, never retried.
    assert "rejected-by-provider" not in parked_by_text.values()
    assert rows[1][4].get("outcome-unknown", 0) == 0
    # A store failing after the send lost nothing and parked nothing: the sends were answered as sent.
    assert rows[4][3] > 0
    assert rows[4][2] == MESSAGES_PER_MODE
    assert sum(rows[4][4].values()) == 0
    # The redrive finished, moved each dead letter once, and its replays sent nothing already sent
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert moved is not None
    assert int(moved.group(1)) == len(parked)
    assert all(sent_by_text[text] == 0 for text in resent)
    assert max(resent.values(), default=0) <= 1
