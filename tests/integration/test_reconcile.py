"""No outcome stays unknown: the reconciler against moto (tables, queues, bus) and the sandbox's history.

Each test makes the sandbox lose an answer (it sent, the gateway cannot tell)
or fail before doing anything (nothing sent, the gateway cannot tell either),
runs the scheduled function's reconcile task, and checks what the caller and
the queue see afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from gateway import names
from sandbox import Fault
from tests.conftest import EVENTS, make_lambda_context, reset_process_caches
from tests.integration.conftest import Tracking
from tests.integration.test_api_send import PROBLEM, valid_im
from tests.integration.test_idempotency import REPLAYED, post_with_key
from tests.integration.test_queue import _record

LOST_ANSWER = Fault(kind="drop", after_processing=True)  # LiveAll sent it; the answer never came
FAILED_FIRST = Fault(kind="http_status", status=500)  # LiveAll did nothing; the gateway cannot tell
GRACE = names.DEFAULT_RECONCILE_GRACE_SECONDS


def reconcile(
    after_seconds: float = 0.0,
    dismiss: list[str] | None = None,
    in_the_container: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """One run of the reconcile task, `after_seconds` past now (for the grace period).

    In a fresh container, as in AWS: the scheduled function never sent anything itself, so
    nothing the send path set up in this process may be what makes the reconciler work.
    """
    import time

    from scheduled_handler import get_reconciler, handler

    reset_process_caches()
    if in_the_container is not None:
        in_the_container()  # e.g. make its clients fail
    reconciler = get_reconciler()
    assert reconciler is not None
    now = time.time() + after_seconds
    reconciler.clock = lambda: now
    event = {"task": names.TASK_RECONCILE, "dismiss": dismiss or []}
    return dict(handler(event, make_lambda_context("viber-gateway-scheduled")))


def resolved_events(tracking: Tracking) -> list[dict[str, Any]]:
    return [e["detail"] for e in tracking.events() if e["detail-type"] == names.DETAIL_TYPE_OUTCOME_RESOLVED]


def test_a_lost_answer_becomes_the_true_answer_of_its_key(tracking: Tracking, lambda_context) -> None:
    # Given a send under a key whose answer LiveAll lost after sending it
    tracking.provider.add_fault(LOST_ANSWER)
    first = post_with_key(valid_im(reference="order-7"), "order-7", lambda_context)
    assert (first[0], first[2]["type"]) == (504, PROBLEM + "outcome-unknown")

    # When the reconciler runs
    report = reconcile()

    # Then it found the send in LiveAll's history, and a retry replays a 200 with its id
    assert (report["sent"], report["ambiguous"]) == (1, [])
    [entry] = tracking.provider.ledger
    status, headers, body = post_with_key(valid_im(reference="order-7"), "order-7", make_lambda_context())
    assert (status, headers[REPLAYED]) == (200, "true")
    assert body["messages"] == [{"destination": "306912345678", "smsid": entry.smsids[0]}]
    assert len(tracking.provider.requests) == 1
    # And its Send Outcome Resolved event says so, and the message enters tracking
    [resolved] = resolved_events(tracking)
    assert (resolved["outcome"], resolved["idempotency_key"], resolved["reference"]) == (
        "sent",
        "order-7",
        "order-7",
    )
    assert resolved["messages"] == body["messages"]
    documented = json.loads((EVENTS / "event-send-outcome-resolved.json").read_text())
    assert set(resolved) == set(documented["detail"])
    tracking.run()
    accepted = [e for e in tracking.events() if e["detail-type"] == names.DETAIL_TYPE_MESSAGE_ACCEPTED]
    assert [e["detail"]["smsid"] for e in accepted] == [entry.smsids[0]]


def test_a_send_liveall_never_took_may_be_sent_again_after_the_grace_period(
    tracking: Tracking, lambda_context
) -> None:
    # Given a send under a key that failed before LiveAll did anything (HTTP 500: unknown to the gateway)
    tracking.provider.add_fault(FAILED_FIRST)
    assert post_with_key(valid_im(), "order-8", lambda_context)[0] == 504

    # When the reconciler runs: before the grace period it waits, after it, it concludes
    assert reconcile()["waiting"] == 1
    assert post_with_key(valid_im(), "order-8", make_lambda_context())[0] == 504  # still the same answer
    assert reconcile(after_seconds=GRACE + 1)["not_sent"] == 1

    # Then a retry under the key sends, once
    status, headers, _ = post_with_key(valid_im(), "order-8", make_lambda_context())
    assert status == 200
    assert REPLAYED not in headers
    assert len(tracking.provider.ledger) == 1
    [resolved] = resolved_events(tracking)
    assert (resolved["outcome"], resolved["messages"]) == ("not-sent", [])


def _dead_letters(queue_url: str) -> list[dict[str, Any]]:
    return (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        )
        .get("Messages", [])
    )


def test_a_queued_send_that_went_out_has_its_dead_letter_deleted(
    tracking: Tracking, lambda_context, queues
) -> None:
    from queue_handler import handler

    tracking.provider.add_fault(LOST_ANSWER)
    assert handler({"Records": [_record(valid_im(), "m-lost")]}, lambda_context) == {"batchItemFailures": []}
    [parked] = _dead_letters(queues["dead_letter"])
    assert parked["MessageAttributes"]["ErrorType"]["StringValue"] == "outcome-unknown"

    assert reconcile()["sent"] == 1
    assert _dead_letters(queues["dead_letter"]) == []
    # And a redelivery of the original replays its answer, sending nothing
    assert handler({"Records": [_record(valid_im(), "m-lost")]}, lambda_context) == {"batchItemFailures": []}
    assert len(tracking.provider.ledger) == 1


def test_a_queued_send_that_did_not_go_out_is_sent_back_and_sent_once(
    tracking: Tracking, lambda_context, queues
) -> None:
    from queue_handler import handler

    tracking.provider.add_fault(FAILED_FIRST)
    handler({"Records": [_record(valid_im(), "m-failed")]}, lambda_context)
    assert len(_dead_letters(queues["dead_letter"])) == 1

    # When the reconciler concludes it was not sent
    assert reconcile(after_seconds=GRACE + 1)["not_sent"] == 1

    # Then the dead letter is back on the queue, without its reason but with its identity
    assert _dead_letters(queues["dead_letter"]) == []
    sqs = boto3.client("sqs")
    [back] = sqs.receive_message(QueueUrl=queues["queue"], MessageAttributeNames=["All"]).get("Messages", [])
    attributes = {k: v["StringValue"] for k, v in back["MessageAttributes"].items()}
    assert "ErrorType" not in attributes
    assert attributes["SourceMessageId"] == "m-failed"
    # And processing it sends it, once (twice delivered, still once)
    replay = _record(back["Body"], "m-back", attributes)
    assert handler({"Records": [replay]}, lambda_context) == {"batchItemFailures": []}
    assert handler({"Records": [dict(replay, messageId="m-back-2")]}, lambda_context) == {
        "batchItemFailures": []
    }
    assert len(tracking.provider.ledger) == 1


def test_the_unknown_part_of_a_partial_send_is_settled_too(
    tracking: Tracking, lambda_context, queues, monkeypatch
) -> None:
    from queue_handler import handler

    # Given a queued message to two numbers, sent as two provider requests, the first's answer lost
    monkeypatch.setenv(names.ENV_PROVIDER_CHUNK_SIZE, "1")
    monkeypatch.setenv(names.ENV_PROVIDER_MAX_CONCURRENCY, "1")
    reset_process_caches()
    tracking.provider.add_fault(LOST_ANSWER)
    numbers = ["306912345678", "306912345679"]
    assert handler({"Records": [_record(valid_im(destinations=numbers), "m-partial")]}, lambda_context) == {
        "batchItemFailures": []
    }
    [parked] = _dead_letters(queues["dead_letter"])
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    assert attributes["IdempotencyKey"] == "sqs-message:m-partial#not-sent-outcome-unknown"
    assert json.loads(parked["Body"])["destinations"] == numbers[:1]

    # When the reconciler finds the first request in the history
    assert reconcile()["sent"] == 1

    # Then the remainder's dead letter is gone, and the original's record answers both ids
    assert _dead_letters(queues["dead_letter"]) == []
    from gateway.sending.idempotency import get_idempotent_sender, message_id_key
    from gateway.sending.request import SendRequest

    answer = get_idempotent_sender().send(
        SendRequest.model_validate(valid_im(destinations=numbers)), key=message_id_key("m-partial")
    )
    assert answer.replayed
    sent = {m["destination"]: m["smsid"] for m in answer.body["messages"]}
    assert sent == {
        d: s
        for entry in tracking.provider.ledger
        for d, s in zip(entry.payload["destinations"], entry.smsids, strict=True)
    }
    assert len(tracking.provider.ledger) == 2


def test_an_ambiguous_match_is_reported_not_guessed_and_can_be_dismissed(
    tracking: Tracking, lambda_context, capsys
) -> None:
    from tests.conftest import TEST_TOKEN

    # Given a send whose answer was lost, and another system sending to the same number meanwhile
    tracking.provider.add_fault(LOST_ANSWER)
    assert post_with_key(valid_im(), "order-9", lambda_context)[0] == 504
    import urllib3

    other = dict(valid_im(), apitoken=TEST_TOKEN, destinations=["306912345678"])
    urllib3.PoolManager().request(
        "POST",
        tracking.provider.url + "SendIM",
        body=json.dumps(other).encode(),
        headers={"Content-Type": "application/json"},
    )

    # When the reconciler runs
    report = reconcile()

    # Then it does not guess: the case is reported with both candidates, and counted for the alarm
    [case] = report["ambiguous"]
    assert len(case["candidates"]) == 2
    assert case["idempotency_key"] == "key:order-9"
    assert names.METRIC_UNRESOLVED_AMBIGUOUS in capsys.readouterr().out
    # And the key keeps its uncertain answer, so nothing is sent again
    assert post_with_key(valid_im(), "order-9", make_lambda_context())[0] == 504
    assert len(tracking.provider.ledger) == 2
    # And an operator who settled it by hand dismisses it
    assert reconcile(dismiss=[case["unknown_id"]])["dismissed"] == 1
    assert reconcile()["checked"] == 0


def test_an_answer_the_store_refused_is_saved_by_the_reconciler_and_then_replayed(
    tracking: Tracking, lambda_context
) -> None:
    from botocore.exceptions import ClientError

    from gateway.sending.idempotency import get_idempotent_sender

    # Given a store that takes the in-progress record but refuses the answer after the send
    sender = get_idempotent_sender()
    sender.prepare()
    assert sender._persistence is not None

    def refuse(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "UpdateItem")

    events = sender._persistence.client.meta.events
    events.register("before-call.dynamodb.UpdateItem", refuse)
    first = post_with_key(valid_im(), "store-refused", lambda_context)
    [entry] = tracking.provider.ledger
    assert first[0] == 200
    # (while the store refuses, a retry cannot replay it: the in-progress record blocks a resend)
    assert post_with_key(valid_im(), "store-refused", make_lambda_context())[0] == 409

    # When the store works again and the reconciler runs (twice: the second finds nothing left)
    events.unregister("before-call.dynamodb.UpdateItem", refuse)
    report = reconcile()
    again = reconcile()

    # Then the answer was saved once, and a retry under the key replays it, with no second send
    assert (report["answers_saved"], again["answers_saved"]) == (1, 0)
    status, headers, body = post_with_key(valid_im(), "store-refused", make_lambda_context())
    assert (status, headers[REPLAYED]) == (200, "true")
    assert body["messages"] == [{"destination": "306912345678", "smsid": entry.smsids[0]}]
    assert len(tracking.provider.requests) == 1


def test_an_answer_stays_waiting_while_the_store_still_refuses_it(tracking: Tracking, lambda_context) -> None:
    from botocore.exceptions import ClientError

    from gateway.sending.idempotency import get_idempotent_sender

    # Given an answer the store refused after its send
    sender = get_idempotent_sender()
    sender.prepare()
    assert sender._persistence is not None

    def refuse(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "UpdateItem")

    sender._persistence.client.meta.events.register("before-call.dynamodb.UpdateItem", refuse)
    assert post_with_key(valid_im(), "still-refused", lambda_context)[0] == 200

    # When the reconciler runs while the store still refuses it
    def store_still_refuses() -> None:
        reconciler_sender = get_idempotent_sender()
        reconciler_sender.prepare()
        assert reconciler_sender._persistence is not None
        reconciler_sender._persistence.client.meta.events.register("before-call.dynamodb.UpdateItem", refuse)

    report = reconcile(in_the_container=store_still_refuses)

    # Then nothing is lost: the answer waits for the next run, which saves it
    assert report["answers_saved"] == 0
    assert reconcile()["answers_saved"] == 1


def test_one_reconciliation_run_at_a_time(tracking: Tracking, lambda_context) -> None:
    from gateway.tracking.store import RECONCILE_LEASE_ID
    from scheduled_handler import get_reconciler

    # Given an unknown outcome, and a run (the schedule's) that holds the lease
    tracking.provider.add_fault(LOST_ANSWER)
    post_with_key(valid_im(), "leased", lambda_context)
    reconciler = get_reconciler()
    assert reconciler is not None
    assert reconciler.store.acquire_lease("the-schedules-run", 300, RECONCILE_LEASE_ID)

    # When another run starts (make reconcile), it does nothing
    assert reconcile()["skipped"] is True
    # And once the lease is free, a run settles it; the tracker's own lease is another
    reconciler.store.release_lease("the-schedules-run", RECONCILE_LEASE_ID)
    assert reconciler.store.acquire_lease("a-tracker-run", 300)
    report = reconcile()
    assert (report["skipped"], report["sent"]) == (False, 1)
