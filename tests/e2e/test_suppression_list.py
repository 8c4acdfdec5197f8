"""End to end through `make run`: the suppression list as a user meets it.

An opt-out added through the API keeps a number out of a send; three deliveries
to a number without Viber that end undelivered put it on the list by
themselves, and the bus says so.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any
from urllib.parse import quote

from gateway import names
from tests.e2e.harness import LocalService, eventually

WAIT_SECONDS = 90


def _number(last_digit: int) -> str:
    """A Greek mobile no other test uses; the sandbox decides its fate by the last digit."""
    return f"3069{random.randrange(10**6, 10**7)}{last_digit}"  # noqa: S311 - not a secret


def _suppressions(local: LocalService, method: str, number: str, body: Any = None) -> Any:
    return local.http.request(
        method,
        f"{local.api_url}/suppressions/{quote(number, safe='')}",
        body=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-api-key": local.api_key},
    )


def _sent_to(local: LocalService) -> list[str]:
    return [d for entry in local.ledger() for d in entry["payload"]["destinations"]]


def test_an_opt_out_keeps_a_number_out_of_a_send(local: LocalService) -> None:
    opted_out, other = _number(8), _number(9)
    # Given an opt-out, added with the number as a person types it
    typed = f"+{opted_out[:2]} {opted_out[2:5]} {opted_out[5:]}"
    response = _suppressions(local, "PUT", typed, {"reason": "opt-out", "note": "replied STOP"})
    assert response.status == 200, response.data
    assert response.json()["number"] == opted_out
    # When a send names it and another number
    response = local.post_message(
        {"im_type": "IM", "im_sender_name": "MyShop", "im_text": "Hello", "destinations": [opted_out, other]}
    )
    # Then only the other reaches LiveAll, and the answer says which was left out and why
    assert response.status == 200, response.data
    assert response.json()["suppressed"] == [{"destination": opted_out, "reason": "opt-out", "sender": None}]
    sent = _sent_to(local)
    assert other in sent
    assert opted_out not in sent


def test_three_failed_deliveries_put_a_number_on_the_list_and_publish_the_event(local: LocalService) -> None:
    # Given a consumer of the list's events, and a number without Viber (its IM ends undelivered)
    dead = _number(1)
    name = f"e2e-suppressed-{uuid.uuid4().hex[:8]}"
    queue_url = local.subscribe(
        name,
        {
            "source": [names.EVENT_SOURCE],
            "detail-type": [names.DETAIL_TYPE_DESTINATION_SUPPRESSED],
            "detail": {"number": [dead]},
        },
    )
    body = {"im_type": "IM", "im_sender_name": "MyShop", "im_text": "Hello", "destinations": [dead]}
    # When three messages to it end undelivered, one after the other
    for _ in range(3):
        response = local.post_message(body)
        assert response.status == 200, response.data
    received: list[dict[str, Any]] = []

    def suppressed() -> bool:
        while batch := local.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                received.append(json.loads(message["Body"]))
                local.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(received)

    # Then delivery tracking puts it on the list, and the bus says so
    eventually(suppressed, timeout=WAIT_SECONDS, what=f"Destination Suppressed for {dead}")
    [event] = received
    assert (event["detail"]["reason"], event["detail"]["added_by"]) == ("bounced", "delivery-tracking")
    # And the next send to it sends nothing, with a clear answer
    response = local.post_message(body)
    assert response.status == 422
    assert response.json()["type"] == "urn:viber-gateway:problem:all-suppressed"
    # And the list's API shows the entry, which DELETE erases
    assert _suppressions(local, "GET", dead).json()["entries"][0]["reason"] == "bounced"
    assert _suppressions(local, "DELETE", dead).status == 200
    assert _suppressions(local, "GET", dead).status == 404
