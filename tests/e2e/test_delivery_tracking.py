"""End to end: send, then watch it get delivered, as a user of `make run` does.

The test subscribes to the local bus as any consumer would (a rule for its own
reference, targeting a queue of its own), sends through the API, and reads the
events; then it asks GET /messages/{smsid}, which must agree with the last one.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gateway import names
from tests.e2e.harness import LocalService, eventually

WAIT_SECONDS = 60
VIBER_READER, NO_VIBER = "+30 691 234 5678", "+30 691 234 5671"  # sandbox/README.md: by last digit
# (send, the states a message goes through after Message Accepted, channel of the last, final)
CASES = [
    ({"im_type": "IM", "destinations": [VIBER_READER]}, ["sent", "delivered", "seen"], "viber"),
    (
        {"im_type": "IM_SMSFB", "destinations": [NO_VIBER], "senderid": "MyShop", "sms_text": "By SMS"},
        ["undelivered", "sent", "delivered"],
        "sms",
    ),
    ({"im_type": "IM", "destinations": [NO_VIBER]}, ["undelivered"], "viber"),
]


def _subscribe(local: LocalService, reference: str) -> str:
    """A rule on the bus for events of this reference, into a queue of the test's own."""
    return local.subscribe(
        f"e2e-{reference}", {"source": [names.EVENT_SOURCE], "detail": {"reference": [reference]}}
    )


def _read(local: LocalService, queue_url: str, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    while batch := local.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            into.append(json.loads(message["Body"]))
            local.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return into


@pytest.mark.parametrize(
    ("send", "path", "channel"), CASES, ids=["viber user", "no viber, IM_SMSFB", "no viber, IM"]
)
def test_a_send_is_followed_to_its_final_state_by_events(
    local: LocalService, send: dict[str, Any], path: list[str], channel: str
) -> None:
    # Given a consumer of this send's events
    reference = f"e2e-{uuid.uuid4().hex[:8]}"
    queue_url = _subscribe(local, reference)

    # When the message is sent with that reference
    response = local.post_message(
        {"im_sender_name": "MyShop", "im_text": "Hello", "reference": reference, **send}
    )
    assert response.status == 200, response.data
    [sent] = response.json()["messages"]

    # Then its events come, within a bounded wait, until one is final
    received: list[dict[str, Any]] = []
    eventually(
        lambda: any(e["detail"]["final"] for e in _read(local, queue_url, received)),
        timeout=WAIT_SECONDS,
        what=f"a final event for {reference}",
    )
    first, *changes = received
    assert first["detail-type"] == names.DETAIL_TYPE_MESSAGE_ACCEPTED
    assert all(e["detail-type"] == names.DETAIL_TYPE_STATUS_CHANGED for e in changes)
    assert all(
        e["detail"]["smsid"] == sent["smsid"] and e["detail"]["reference"] == reference for e in received
    )
    # ...in the order of the message's path (a poll may fall between two steps and see both at once)
    states = [e["detail"]["state"] for e in changes]
    assert states[-1] == path[-1]
    assert [s for s in path if s in states] == states
    last = changes[-1]["detail"]
    assert (last["channel"], last["final"]) == (channel, True)

    # And a lookup agrees with the last event
    lookup = local.http.request(
        "GET", f"{local.api_url}/messages/{sent['smsid']}", headers={"x-api-key": local.api_key}
    )
    assert lookup.status == 200
    assert lookup.json() == {k: v for k, v in last.items() if k != "previous_state"}
