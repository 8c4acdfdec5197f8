"""Delivery tracking: the reference, the tracking records of a send, the tracker's runs and events, lookups.

The API and tracker handlers on events/ samples, DynamoDB, SQS and EventBridge
in moto (a rule on the bus fills a queue, as make run's sink), and the provider
sandbox over loopback HTTP, whose statuses the tests force.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest

from gateway import names
from sandbox import Fault
from tests.conftest import EVENTS, TEST_TOKEN, load_event, make_lambda_context, reset_process_caches
from tests.integration.conftest import Tracking
from tests.integration.test_api_send import PROBLEM, post, valid_im

SCHEMA = json.loads((EVENTS / "schemas" / "message-event-detail.json").read_text())
# The sandbox's rules by last digit (sandbox/README.md): a Viber user who reads, a phone without Viber.
VIBER_READER, NO_VIBER = "306912345678", "306912345671"
SMSFB = {"im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "Your order has shipped."}


def summary(events: list[dict[str, Any]]) -> list[tuple[str, int, str, str, bool]]:
    return [
        (
            e["detail-type"],
            e["detail"]["smsid"],
            e["detail"]["state"],
            e["detail"]["channel"],
            e["detail"]["final"],
        )
        for e in events
    ]


# ----- the reference ---------------------------------------------------------------------------


def test_the_reference_is_echoed_and_never_sent_to_the_provider(tracking: Tracking, lambda_context) -> None:
    status, _, body = post(valid_im(reference="order-1042"), lambda_context)
    assert status == 200
    assert body["reference"] == "order-1042"
    [entry] = tracking.provider.ledger
    assert "reference" not in entry.payload


@pytest.mark.parametrize(
    "reference",
    ["", " ", "order\n1042", "\u200b", "x" * 257],
    ids=["empty", "space", "newline", "zero-width", "257 characters"],
)
def test_an_unusable_reference_is_a_422(gateway_env, lambda_context, reference) -> None:
    status, _, body = post(valid_im(reference=reference), lambda_context)
    assert status == 422
    assert [e["field"] for e in body["errors"]] == ["reference"]
    assert gateway_env.requests == []


def test_a_queued_message_carries_its_reference_into_tracking(
    tracking: Tracking, lambda_context, queues
) -> None:
    from queue_handler import handler
    from tests.integration.test_queue import _record

    # Given a queued message with a reference
    assert handler({"Records": [_record(valid_im(reference="ticket-9"), "m-ref")]}, lambda_context) == {
        "batchItemFailures": []
    }

    # When the tracker takes it in, then its Message Accepted event carries the reference
    tracking.run()
    [accepted] = tracking.events()
    assert accepted["detail"]["reference"] == "ticket-9"
    assert "reference" not in tracking.provider.ledger[0].payload


# ----- the send path: a few writes, whatever the size --------------------------------------------


def test_a_long_send_is_recorded_in_one_write_per_provider_request(
    tracking: Tracking, lambda_context, monkeypatch
) -> None:
    from bench.phones import greek_mobiles
    from gateway.sending.send import get_sender

    # Given five destinations, sent as three provider requests (bench/tracker.py measures 10,000;
    # moto's in-process SQS slows down with every event left in the sink, so few here)
    monkeypatch.setenv(names.ENV_PROVIDER_CHUNK_SIZE, "2")
    reset_process_caches()
    numbers = greek_mobiles(5)
    writes: list[int] = []
    sender = get_sender()
    assert sender.tracking is not None
    sender.tracking.client.meta.events.register(
        "provide-client-params.dynamodb.BatchWriteItem",
        lambda params, **_: writes.append(len(params["RequestItems"][names.TRACKING_TABLE_NAME])),
    )

    # When it is sent
    status, _, body = post(valid_im(destinations=numbers, reference="bulk-7"), lambda_context)

    # Then the tracking table got three items, in one call
    assert status == 200
    assert writes == [3]
    # And the tracker takes in one message per destination, each with its id and the reference
    assert tracking.run()["taken_in"] == 5
    accepted = tracking.events()
    assert len(accepted) == 5
    assert {(e["detail"]["smsid"], e["detail"]["destination"]) for e in accepted} == {
        (m["smsid"], m["destination"]) for m in body["messages"]
    }
    assert {e["detail"]["reference"] for e in accepted} == {"bulk-7"}


def test_a_send_whose_tracking_write_fails_is_still_answered_as_sent(
    tracking: Tracking, lambda_context, captured_logs, capsys
) -> None:
    from botocore.exceptions import ClientError

    from gateway.sending.send import get_sender

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchWriteItem")

    sender = get_sender()
    assert sender.tracking is not None
    sender.tracking.client.meta.events.register("before-call.dynamodb.BatchWriteItem", refuse)

    status, _, body = post(valid_im(), lambda_context)
    assert status == 200
    assert len(body["messages"]) == 1
    assert "not recorded for tracking" in captured_logs.getvalue()
    assert names.METRIC_TRACKING_RECORD_FAILURES in capsys.readouterr().out


# ----- the tracker -------------------------------------------------------------------------------


def test_each_message_goes_through_its_statuses_as_events(tracking: Tracking, lambda_context) -> None:
    # Given an IM_SMSFB send to a Viber user and to a phone without Viber
    status, _, body = post(
        valid_im(**SMSFB, destinations=[VIBER_READER, NO_VIBER], reference="o-1"), lambda_context
    )
    assert status == 200
    reader, no_viber = (m["smsid"] for m in body["messages"])

    # When the tracker runs as the provider's statuses move on (forced, one step each time)
    steps = [
        {reader: 300001, no_viber: 300001},  # accepted
        {reader: 300009, no_viber: 300005},  # sent / undelivered on Viber: the SMS follows
        {reader: 300002, no_viber: 100001},  # delivered / the SMS sent
        {reader: 300008, no_viber: 200000},  # seen / the SMS delivered
    ]
    seen: list[dict[str, Any]] = []
    for step in steps:
        for smsid, code in step.items():
            # What LiveAll reports for an SMS: its parts and its price
            sms = {"sms_count": 1, "charge": 0.0379} if code in (100001, 200000) else {}
            tracking.provider.force_status(smsid, code, **sms)
        tracking.run()
        tracking.clock.now += 60
        seen.extend(tracking.events())

    # Then each change is one event, in order, with the channel that carried it and the reference
    assert summary(seen) == [
        ("Message Accepted", reader, "queued", "viber", False),
        ("Message Accepted", no_viber, "queued", "viber", False),
        ("Message Status Changed", reader, "sent", "viber", False),
        ("Message Status Changed", no_viber, "undelivered", "viber", False),
        ("Message Status Changed", reader, "delivered", "viber", False),
        ("Message Status Changed", no_viber, "sent", "sms", False),
        ("Message Status Changed", reader, "seen", "viber", True),
        ("Message Status Changed", no_viber, "delivered", "sms", True),
    ]
    assert {e["source"] for e in seen} == {names.EVENT_SOURCE}
    assert {e["detail"]["reference"] for e in seen} == {"o-1"}
    # And every detail is what events/schemas/message-event-detail.json says
    for event in seen:
        jsonschema.validate(event["detail"], SCHEMA)
    final_sms = seen[-1]["detail"]
    assert (final_sms["previous_state"], final_sms["provider_code"], final_sms["sms_count"]) == (
        "sent",
        200000,
        1,
    )
    assert final_sms["charge"] == pytest.approx(0.0379)

    # And final messages are no longer polled
    before = len(tracking.provider.requests)
    assert tracking.run()["polled"] == 0
    assert len(tracking.provider.requests) == before


def test_an_im_to_a_phone_without_viber_ends_undelivered(tracking: Tracking, lambda_context) -> None:
    _, _, body = post(valid_im(destinations=[NO_VIBER]), lambda_context)
    [message] = body["messages"]
    tracking.run()
    tracking.provider.force_status(message["smsid"], 300005)
    tracking.clock.now += 60
    tracking.run()
    assert summary(tracking.events())[-1] == (
        "Message Status Changed",
        message["smsid"],
        "undelivered",
        "viber",
        True,
    )


def test_tracking_ends_with_its_window_and_says_so(tracking: Tracking, lambda_context, monkeypatch) -> None:
    # Given a Viber message delivered but never seen
    monkeypatch.setenv(names.ENV_TRACKING_WINDOW_SECONDS, "3600")
    reset_process_caches()
    _, _, body = post(valid_im(), lambda_context)
    [message] = body["messages"]
    tracking.provider.force_status(message["smsid"], 300002)
    tracking.run()

    # When its one-hour window has passed
    tracking.clock.now += 3601
    tracking.run()

    # Then the tracker stops with a Message Tracking Ended event, and asks no more
    *_, ended = tracking.events()
    assert ended["detail-type"] == names.DETAIL_TYPE_TRACKING_ENDED
    assert (ended["detail"]["state"], ended["detail"]["reason"], ended["detail"]["final"]) == (
        "delivered",
        "window-ended",
        False,
    )
    jsonschema.validate(ended["detail"], SCHEMA)
    tracking.clock.now += 3600
    assert tracking.run()["polled"] == 0


def test_an_event_that_did_not_go_out_is_published_by_the_next_run(
    tracking: Tracking, lambda_context
) -> None:
    from botocore.exceptions import ClientError

    from scheduled_handler import get_tracker

    _, _, body = post(valid_im(), lambda_context)
    [message] = body["messages"]
    tracking.run()
    tracking.events()
    tracking.provider.force_status(message["smsid"], 300009)

    # Given EventBridge failing the next run's events
    tracker = get_tracker()
    assert tracker is not None
    assert tracker.publisher is not None

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents")

    tracker.publisher.client.meta.events.register("before-call.events.PutEvents", refuse)
    tracking.clock.now += 60
    with pytest.raises(ClientError):
        tracking.run()

    # When EventBridge is back, then the change is published (it was not stored without its event)
    tracker.publisher.client.meta.events.unregister("before-call.events.PutEvents", refuse)
    tracking.clock.now += 60
    tracking.run()
    assert summary(tracking.events()) == [
        ("Message Status Changed", message["smsid"], "sent", "viber", False)
    ]


def test_one_run_at_a_time(tracking: Tracking, lambda_context) -> None:
    from scheduled_handler import get_tracker

    tracker = get_tracker()
    assert tracker is not None
    assert tracker.store.acquire_lease("another-run", 300)
    assert tracking.run()["skipped"] is True
    tracker.store.release_lease("another-run")
    assert tracking.run()["skipped"] is False


def test_a_backlog_is_taken_in_over_several_runs_within_each_invocations_time(
    tracking: Tracking, lambda_context, capsys
) -> None:
    from gateway.tracking.tracker import RUN_MARGIN_SECONDS
    from scheduled_handler import get_tracker

    # Given eight sends waiting to be taken in (more than one wave of the tracker's four workers)
    for index in range(8):
        assert post(valid_im(im_text=f"burst {index}"), lambda_context)[0] == 200
    tracker = get_tracker()
    assert tracker is not None
    # The sends were recorded at the wall clock's time: the tracker's clock reads after the last one,
    # so that every message taken in is due (on a slow machine the sends outlast a second)
    tracking.clock.now = time.time()
    tracker.clock = tracker.store.clock = tracking.clock

    # When a run's invocation has time for one wave only (the clock of its context says so)
    budget = iter([RUN_MARGIN_SECONDS + 1] + [RUN_MARGIN_SECONDS - 1] * 10)
    first = tracker.run(seconds_left=lambda: next(budget))

    # Then it took in one wave, left the rest for the next run, and did not poll
    assert (first.taken_in, first.left_for_next_run, first.polled) == (4, 4, 0)
    # And said so in the metric the tracking-backlog alarm reads
    backlog = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if names.METRIC_TRACKING_BACKLOG in line and line.startswith("{")
    ]
    assert [entry[names.METRIC_TRACKING_BACKLOG] for entry in backlog] == [[4.0]]
    accepted = [e for e in tracking.events() if e["detail-type"] == names.DETAIL_TYPE_MESSAGE_ACCEPTED]
    assert len(accepted) == 4
    # And the next run, with time, takes in the rest and polls all eight
    second = tracker.run(seconds_left=lambda: 100.0)
    assert (second.taken_in, second.left_for_next_run, second.polled) == (4, 0, 8)


def test_a_provider_that_refuses_the_token_fails_the_poll_not_the_run(
    tracking: Tracking, lambda_context, capsys
) -> None:
    post(valid_im(), lambda_context)
    tracking.run()
    tracking.provider.set_tokens({"another-token"})
    tracking.clock.now += 60
    run = tracking.run()
    assert (run["polled"], run["left_for_next_run"]) == (0, 1)
    assert '"failure_type":"misconfigured"' in capsys.readouterr().out.replace(" ", "")


# ----- lookups --------------------------------------------------------------------------------


def lookup(path_smsid: str | None = None, *smsids: str) -> tuple[int, dict[str, Any]]:
    from api_handler import handler

    if path_smsid is not None:
        event = load_event("api-get-message.json")
        event["path"] = f"/messages/{path_smsid}"
        event["pathParameters"] = {"smsid": path_smsid}
    else:
        event = load_event("api-get-messages.json")
        event["multiValueQueryStringParameters"] = {"smsid": list(smsids)} if smsids else None
        event["queryStringParameters"] = {"smsid": smsids[-1]} if smsids else None
    answer = handler(event, make_lambda_context())
    return answer["statusCode"], json.loads(answer["body"])


def test_a_lookup_answers_where_the_message_stands_with_its_reference(
    tracking: Tracking, lambda_context
) -> None:
    _, _, body = post(valid_im(**SMSFB, destinations=[NO_VIBER], reference="o-9"), lambda_context)
    [message] = body["messages"]
    smsid = str(message["smsid"])

    # Before the tracker took it in: the reference comes from the send's tracking record
    tracking.provider.force_status(message["smsid"], 300005)
    status, answer = lookup(smsid)
    assert status == 200
    assert answer["reference"] == "o-9"
    assert (answer["state"], answer["channel"], answer["final"]) == ("undelivered", "viber", False)

    # After it fell back to SMS and was delivered: the lookup agrees with the tracker's last event
    tracking.run()
    tracking.provider.force_status(message["smsid"], 200000)
    tracking.clock.now += 60
    tracking.run()
    last = tracking.events()[-1]["detail"]
    status, answer = lookup(smsid)
    assert status == 200
    assert {k: v for k, v in answer.items()} == {k: v for k, v in last.items() if k != "previous_state"}
    jsonschema.validate({**answer, "previous_state": None}, SCHEMA)


def test_a_lookup_of_several_lists_the_unknown_apart(tracking: Tracking, lambda_context) -> None:
    _, _, body = post(valid_im(destinations=[VIBER_READER, NO_VIBER]), lambda_context)
    ids = [str(m["smsid"]) for m in body["messages"]]
    status, answer = lookup(None, ids[1], "1", ids[0], ids[1])
    assert status == 200
    assert [m["smsid"] for m in answer["messages"]] == [int(ids[1]), int(ids[0])]
    assert answer["not_found"] == [1]


def test_an_id_the_provider_does_not_know_is_a_404(tracking: Tracking) -> None:
    status, problem = lookup("1")
    assert status == 404
    assert problem["type"] == PROBLEM + "not-found"


def test_an_id_liveall_leaves_out_is_not_found_in_both_forms_even_from_an_empty_answer(
    tracking: Tracking, lambda_context
) -> None:
    # Given LiveAll answers a status request with nothing at all: it knows none of the ids
    tracking.provider.add_fault(Fault(kind="empty", endpoint="GetSMSStatus"))
    # When the path form asks for one id, Then it is a 404, not a provider failure
    status, problem = lookup("20818588")
    assert status == 404, problem
    assert problem["type"] == PROBLEM + "not-found"
    # And the list form reports the same id in not_found
    tracking.provider.add_fault(Fault(kind="empty", endpoint="GetSMSStatus"))
    status, answer = lookup(None, "20818588")
    assert status == 200
    assert answer == {"messages": [], "not_found": [20818588]}


def test_an_id_left_out_beside_known_ones_is_not_found_in_both_forms(
    tracking: Tracking, lambda_context
) -> None:
    _, _, body = post(valid_im(destinations=[VIBER_READER]), lambda_context)
    known = str(body["messages"][0]["smsid"])
    status, answer = lookup(None, known, "20818588")
    assert status == 200
    assert answer["not_found"] == [20818588]
    assert lookup("20818588")[0] == 404


@pytest.mark.parametrize(
    ("ids", "field"), [(["12a"], "smsid[0]"), ([str(n) for n in range(51)], "smsid"), ([], "smsid")]
)
def test_a_lookup_of_what_is_not_an_id_is_a_422(tracking: Tracking, ids, field) -> None:
    status, problem = lookup(None, *ids)
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == [field]
    assert tracking.provider.requests == []


@pytest.mark.parametrize(
    ("fault", "status", "problem_type"),
    [
        (Fault(kind="html", endpoint="GetSMSStatus"), 502, "provider-failed"),
        (Fault(kind="http_status", status=503, endpoint="GetSMSStatus"), 503, "provider-unavailable"),
        (Fault(kind="error_code", code=8, endpoint="GetSMSStatus"), 502, "provider-failed"),
    ],
    ids=["HTML", "HTTP 503", "Error: 8"],
)
def test_provider_failures_of_a_lookup_go_through_the_taxonomy(
    tracking: Tracking, fault, status, problem_type
) -> None:
    tracking.provider.add_fault(fault)
    answer_status, problem = lookup("20818588")
    assert answer_status == status
    assert problem["type"] == PROBLEM + problem_type
    assert TEST_TOKEN not in json.dumps(problem)


def test_a_refused_token_is_read_again_once_then_misconfigured(tracking: Tracking) -> None:
    from gateway.aws import aws_session

    # Given a token LiveAll no longer takes (counting the reads of the secret)
    reads: list[str] = []
    aws_session().events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: reads.append("read")
    )
    tracking.provider.set_tokens({"another-token"})

    # When a lookup asks LiveAll
    status, problem = lookup("20818588")

    # Then the secret was read again once, and the answer says the gateway is misconfigured
    assert (status, problem["type"], problem["provider_code"]) == (503, PROBLEM + "misconfigured", 44)
    assert reads == ["read", "read"]
    assert TEST_TOKEN not in json.dumps(problem)
