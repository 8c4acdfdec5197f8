"""The suppression list through the real handlers: its API, every send applying it, replays, imports.

moto holds the table (as the stack makes it) and the bus; the sandbox is LiveAll.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import boto3
import pytest

from gateway import names
from local.emulator import Resources
from sandbox import ProviderSandbox
from tests.conftest import APPROVED_SENDER, FakeClock, LambdaContext, load_event, reset_process_caches

OPTED_OUT = "306912345678"
OTHER = "306912345679"
PROBLEM = "urn:viber-gateway:problem:"


@pytest.fixture
def listed(gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch) -> ProviderSandbox:
    """The functions with the suppression list and the bus (events to the sink queue)."""
    monkeypatch.setenv(names.ENV_SUPPRESSION_TABLE, names.SUPPRESSION_TABLE_NAME)
    monkeypatch.setenv(names.ENV_EVENT_BUS_NAME, names.EVENT_BUS_NAME)
    reset_process_caches()
    return gateway_env


def api(
    method: str,
    path: str,
    context: LambdaContext,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A REST proxy event of API Gateway's shape for any route, through the API handler."""
    from api_handler import handler

    event = load_event("api-post-im.json")
    resource = path
    parameters = None
    if path.startswith("/suppressions/") and path != "/suppressions/import":
        resource = "/suppressions/{number}"
        # API Gateway hands the path parameter decoded
        parameters = {"number": unquote(path.removeprefix("/suppressions/"))}
    event.update(
        httpMethod=method,
        resource=resource,
        path=path,
        pathParameters=parameters,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"] = {**event["requestContext"], "httpMethod": method, "resourcePath": resource}
    event["requestContext"]["identity"] = {**event["requestContext"].get("identity", {}), "apiKeyId": "key-1"}
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    answer = handler(event, context)
    answer_headers = {k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], answer_headers, json.loads(answer["body"]) if answer["body"] else None


def message(*destinations: str, sender: str = APPROVED_SENDER, **more: Any) -> dict[str, Any]:
    return {
        "im_type": "IM",
        "im_sender_name": sender,
        "im_text": "Hello.",
        "destinations": list(destinations),
        **more,
    }


def events_on_the_bus(aws: Resources) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=aws.events_sink_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for item in batch:
            found.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=aws.events_sink_url, ReceiptHandle=item["ReceiptHandle"])
    return found


def sent_destinations(provider: ProviderSandbox) -> list[str]:
    return [d for entry in provider.ledger for d in entry.payload["destinations"]]


def test_an_opted_out_number_is_left_out_of_a_send_and_the_answer_says_why(
    listed: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    # Given an opt-out added in a format a caller types
    status, _, entry = api(
        "PUT", "/suppressions/" + quote("+30 691 234 5678"), lambda_context, body={"reason": "opt-out"}
    )
    assert status == 200, entry
    assert entry["number"] == OPTED_OUT
    assert entry["sender"] is None
    assert entry["added_by"] == "key-1"
    # When a send names it and another number
    status, _, answer = api("POST", "/messages", lambda_context, body=message("+30 691 234 5678", OTHER))
    # Then only the other reaches LiveAll, and the answer names the one left out and why
    assert status == 200, answer
    assert sent_destinations(listed) == [OTHER]
    assert [m["destination"] for m in answer["messages"]] == [OTHER]
    assert answer["suppressed"] == [{"destination": OPTED_OUT, "reason": "opt-out", "sender": None}]
    # And the bus heard of the entry
    kinds = [event["detail-type"] for event in events_on_the_bus(aws)]
    assert kinds.count(names.DETAIL_TYPE_DESTINATION_SUPPRESSED) == 1


def test_a_sender_scoped_entry_stops_only_that_senders_sends(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    # Given an opt-out from another brand only
    api(
        "PUT",
        f"/suppressions/{OPTED_OUT}",
        lambda_context,
        body={"reason": "opt-out", "sender": "OtherBrand"},
    )
    # When our sender sends to it, Then it goes
    status, _, answer = api("POST", "/messages", lambda_context, body=message(OPTED_OUT))
    assert status == 200
    assert "suppressed" not in answer
    # And once our sender has an entry too, our sends leave it out
    api(
        "PUT",
        f"/suppressions/{OPTED_OUT}",
        lambda_context,
        body={"reason": "complaint", "sender": APPROVED_SENDER},
    )
    status, _, answer = api("POST", "/messages", lambda_context, body=message(OPTED_OUT, OTHER))
    assert answer["suppressed"] == [
        {"destination": OPTED_OUT, "reason": "complaint", "sender": APPROVED_SENDER}
    ]
    # And GET lists both entries of the number
    status, _, listing = api("GET", f"/suppressions/{OPTED_OUT}", lambda_context)
    assert status == 200
    assert sorted(e["sender"] for e in listing["entries"]) == [APPROVED_SENDER, "OtherBrand"]


def test_a_send_whose_numbers_are_all_suppressed_sends_nothing_and_says_so(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "bounced"})
    status, _, problem = api("POST", "/messages", lambda_context, body=message(OPTED_OUT, reference="r-1"))
    assert status == 422
    assert problem["type"] == PROBLEM + "all-suppressed"
    assert problem["suppressed"] == [{"destination": OPTED_OUT, "reason": "bounced", "sender": None}]
    assert problem["reference"] == "r-1"
    assert listed.ledger == []


def test_a_queued_message_applies_the_list_and_one_all_suppressed_is_parked_not_retried(
    listed: ProviderSandbox, lambda_context: LambdaContext, queues: dict[str, str]
) -> None:
    from queue_handler import handler
    from tests.integration.test_queue import _dead_letters, _record

    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "opt-out"})
    event = {"Records": [_record(message(OPTED_OUT, OTHER), "q-1"), _record(message(OPTED_OUT), "q-2")]}
    answer = handler(event, lambda_context)
    # The first is sent to the other number only; the second is neither sent nor retried, but parked
    assert answer == {"batchItemFailures": []}
    assert sent_destinations(listed) == [OTHER]
    parked = _dead_letters(queues["dead_letter"])
    assert len(parked) == 1
    assert parked[0]["MessageAttributes"]["ErrorType"]["StringValue"] == "all-suppressed"
    assert json.loads(parked[0]["Body"])["destinations"] == [OPTED_OUT]


def test_a_replay_answers_what_the_first_send_answered_whatever_the_list_says_now(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "opt-out"})
    key = {"Idempotency-Key": "suppression-replay-1"}
    all_key = {"Idempotency-Key": "suppression-replay-2"}
    status, _, first = api("POST", "/messages", lambda_context, body=message(OPTED_OUT, OTHER), headers=key)
    assert status == 200
    status, _, refused = api("POST", "/messages", lambda_context, body=message(OPTED_OUT), headers=all_key)
    assert status == 422
    # When the entry is removed and both are retried under their keys
    status, _, removed = api("DELETE", f"/suppressions/{OPTED_OUT}", lambda_context)
    assert status == 200
    assert len(removed["removed"]) == 1
    status, headers, again = api(
        "POST", "/messages", lambda_context, body=message(OPTED_OUT, OTHER), headers=key
    )
    status_all, headers_all, refused_again = api(
        "POST", "/messages", lambda_context, body=message(OPTED_OUT), headers=all_key
    )
    # Then each answers as the first time, replayed, and nothing more was sent
    assert (status, again, headers.get("idempotent-replayed")) == (200, first, "true")
    assert status_all == 422
    assert headers_all.get("idempotent-replayed") == "true"
    assert {k: v for k, v in refused_again.items() if k != "request_id"} == {
        k: v for k, v in refused.items() if k != "request_id"
    }
    assert sent_destinations(listed) == [OTHER]
    # And a new send (a new key) now reaches the number
    status, _, fresh = api("POST", "/messages", lambda_context, body=message(OPTED_OUT))
    assert status == 200
    assert "suppressed" not in fresh


def test_an_entry_stops_sends_until_it_expires(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    from gateway.sending.send import get_sender

    until = datetime.now(UTC) + timedelta(hours=1)
    status, _, entry = api(
        "PUT",
        f"/suppressions/{OPTED_OUT}",
        lambda_context,
        body={"reason": "manual", "expires_at": until.isoformat()},
    )
    assert status == 200
    assert entry["expires_at"] is not None
    store = get_sender().suppression
    assert store is not None
    store.clock = clock = FakeClock(time.time())
    status, _, answer = api("POST", "/messages", lambda_context, body=message(OPTED_OUT, OTHER))
    assert [s["destination"] for s in answer["suppressed"]] == [OPTED_OUT]
    # When the hour has passed (before DynamoDB's TTL removes the item)
    clock.advance(3601)
    status, _, answer = api("POST", "/messages", lambda_context, body=message(OPTED_OUT, OTHER))
    assert status == 200
    assert "suppressed" not in answer
    assert api("GET", f"/suppressions/{OPTED_OUT}", lambda_context)[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "holiday"}, "reason"),
        ({"reason": "opt-out", "sender": " "}, "sender"),
        ({"reason": "opt-out", "expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"reason": "opt-out", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"reason": "opt-out", "number": OPTED_OUT}, "number"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_field(
    listed: ProviderSandbox, lambda_context: LambdaContext, body: dict[str, Any], field: str
) -> None:
    status, _, problem = api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body=body)
    assert status == 422, problem
    assert [error["field"] for error in problem["errors"]] == [field]


def test_a_number_that_is_not_one_is_refused_naming_it(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    status, _, problem = api("GET", "/suppressions/12", lambda_context)
    assert status == 422
    assert problem["errors"][0]["field"] == "number"


def test_an_import_of_ten_thousand_is_all_applied_and_repeating_it_changes_nothing(
    listed: ProviderSandbox, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a bus here: 10,000 events would only slow moto's sink queue (events: the test below)
    monkeypatch.delenv(names.ENV_EVENT_BUS_NAME)
    reset_process_caches()
    numbers = [f"3069{n:08d}" for n in range(10_000)]
    entries = [{"number": number, "reason": "opt-out"} for number in numbers]
    status, _, result = api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    assert status == 200, result
    assert (result["added"], result["updated"], result["unchanged"]) == (10_000, 0, 0)
    # A send to some of them and another number leaves them out
    status, _, answer = api(
        "POST", "/messages", lambda_context, body=message(numbers[0], numbers[9_999], OTHER)
    )
    assert [s["destination"] for s in answer["suppressed"]] == [numbers[0], numbers[9_999]]
    assert sent_destinations(listed) == [OTHER]
    # The same import again changes and publishes nothing
    status, _, again = api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 10_000)


def test_an_import_publishes_an_event_per_new_or_changed_entry_and_none_when_repeated(
    listed: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    entries = [{"number": f"3069{n:08d}", "reason": "opt-out"} for n in range(30)]
    api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    published = events_on_the_bus(aws)
    assert [e["detail-type"] for e in published] == [names.DETAIL_TYPE_DESTINATION_SUPPRESSED] * 30
    assert sorted(e["detail"]["number"] for e in published) == [e["number"] for e in entries]
    entries[3]["reason"] = "complaint"
    _, _, result = api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    assert (result["added"], result["updated"], result["unchanged"]) == (0, 1, 29)
    assert [e["detail"]["reason"] for e in events_on_the_bus(aws)] == ["complaint"]


def test_one_bad_entry_refuses_the_whole_import_naming_it(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    entries = [{"number": f"3069{n:08d}", "reason": "opt-out"} for n in range(20)]
    entries[5]["number"] = "12"
    status, _, problem = api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    assert status == 422
    assert [error["field"] for error in problem["errors"]] == ["entries[5].number"]
    assert api("GET", f"/suppressions/{entries[0]['number']}", lambda_context)[0] == 404


def test_the_list_pages_with_a_cursor_and_filters_by_reason_and_scope(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    entries = [
        {
            "number": f"3069{n:08d}",
            "reason": "opt-out" if n % 2 else "bounced",
            **({"sender": "X"} if n % 5 == 0 else {}),
        }
        for n in range(250)
    ]
    api("POST", "/suppressions/import", lambda_context, body={"entries": entries})
    seen: list[tuple[str, str | None]] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        status, _, page = api("GET", "/suppressions", lambda_context, query=query)
        assert status == 200, page
        pages += 1
        seen += [(e["number"], e["sender"]) for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    status, _, bounced = api(
        "GET", "/suppressions", lambda_context, query={"reason": "bounced", "limit": "1000"}
    )
    assert len(bounced["entries"]) == 125
    assert {e["reason"] for e in bounced["entries"]} == {"bounced"}
    status, _, scoped = api("GET", "/suppressions", lambda_context, query={"sender": "X", "limit": "1000"})
    assert len(scoped["entries"]) == 50
    status, _, problem = api("GET", "/suppressions", lambda_context, query={"cursor": "not-a-cursor"})
    assert status == 422
    assert problem["errors"][0]["field"] == "cursor"


def test_the_preview_shows_what_would_be_suppressed(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "opt-out"})
    status, _, preview = api("POST", "/messages/preview", lambda_context, body=message(OPTED_OUT, OTHER))
    assert status == 200, preview
    assert preview["destinations"] == [OTHER]
    assert preview["suppressed"] == [{"destination": OPTED_OUT, "reason": "opt-out", "sender": None}]
    assert listed.ledger == []


def test_removing_publishes_suppression_removed_and_unknown_entries_are_404(
    listed: ProviderSandbox, lambda_context: LambdaContext, aws: Resources
) -> None:
    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "opt-out", "sender": "A"})
    api("PUT", f"/suppressions/{OPTED_OUT}", lambda_context, body={"reason": "opt-out", "sender": "B"})
    events_on_the_bus(aws)
    status, _, removed = api("DELETE", f"/suppressions/{OPTED_OUT}", lambda_context, query={"sender": "A"})
    assert status == 200
    assert [e["sender"] for e in removed["removed"]] == ["A"]
    assert api("DELETE", f"/suppressions/{OPTED_OUT}", lambda_context, query={"sender": "A"})[0] == 404
    detail = [e for e in events_on_the_bus(aws) if e["detail-type"] == names.DETAIL_TYPE_SUPPRESSION_REMOVED]
    assert [event["detail"]["sender"] for event in detail] == ["A"]
    assert detail[0]["detail"]["removed_by"] == "key-1"
    status, _, rest = api("GET", f"/suppressions/{OPTED_OUT}", lambda_context)
    assert [e["sender"] for e in rest["entries"]] == ["B"]


def test_a_process_that_sent_before_sees_each_change_of_the_list_at_its_next_send(
    listed: ProviderSandbox, lambda_context: LambdaContext
) -> None:
    # Given numbers in several buckets, sent to once (the process keeps what it read of the list)
    numbers = [f"3069{n:08d}" for n in range(40)]
    assert api("POST", "/messages", lambda_context, body=message(*numbers))[0] == 200
    # When one is added to the list, the next send leaves it out
    api("PUT", f"/suppressions/{numbers[7]}", lambda_context, body={"reason": "opt-out"})
    _, _, answer = api("POST", "/messages", lambda_context, body=message(*numbers))
    assert [s["destination"] for s in answer["suppressed"]] == [numbers[7]]
    # And when it is removed, the next send reaches it again
    api("DELETE", f"/suppressions/{numbers[7]}", lambda_context)
    _, _, answer = api("POST", "/messages", lambda_context, body=message(*numbers))
    assert "suppressed" not in answer
