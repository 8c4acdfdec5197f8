"""Idempotency-Key on POST /messages: one provider call per key, replays marked, conflicts refused."""

from __future__ import annotations

import importlib.util
import json
import threading
from typing import Any

import pytest

from bench.records import dynamodb_item_size
from gateway import names
from gateway.failures import Failure, GatewayError
from sandbox import Fault
from tests.conftest import REPO, LambdaContext, load_event, make_lambda_context
from tests.integration.test_api_send import PROBLEM, valid_im

REPLAYED = names.IDEMPOTENCY_REPLAYED_HEADER.lower()


def post_with_key(
    body: dict[str, Any], key: str | None, context: LambdaContext, handler: Any = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    if handler is None:
        from api_handler import handler
    event = load_event("api-post-im.json")
    event["body"] = json.dumps(body)
    if key is not None:
        event["headers"][names.IDEMPOTENCY_KEY_HEADER] = key
        event["multiValueHeaders"][names.IDEMPOTENCY_KEY_HEADER] = [key]
    answer = handler(event, context)
    headers = {k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], headers, json.loads(answer["body"])


def test_same_key_same_body_replays_without_a_second_send(gateway_env, lambda_context) -> None:
    # Given a message sent under a key
    first = post_with_key(valid_im(), "order-1042-shipped", lambda_context)
    assert first[0] == 200
    assert REPLAYED not in first[1]

    # When the caller retries with the same key and body
    second = post_with_key(valid_im(), "order-1042-shipped", lambda_context)

    # Then the first answer comes back, marked as a replay, and the provider was called once
    assert second[0] == 200
    assert second[2] == first[2]
    assert second[1][REPLAYED] == "true"
    assert len(gateway_env.requests) == 1


def test_same_key_other_body_is_409(gateway_env, lambda_context) -> None:
    # Given a message sent under a key
    assert post_with_key(valid_im(), "k-1", lambda_context)[0] == 200

    # When the same key comes with another text
    status, headers, body = post_with_key(valid_im(im_text="Something else"), "k-1", lambda_context)

    # Then it is refused as a reused key, and nothing more was sent
    assert status == 409
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == PROBLEM + "idempotency-key-reused"
    assert len(gateway_env.requests) == 1


def test_the_same_number_typed_differently_is_the_same_body(gateway_env, lambda_context) -> None:
    # Given a send, then a retry that writes the number another way
    assert post_with_key(valid_im(destinations=["+30 691 234 5678"]), "k-2", lambda_context)[0] == 200
    status, headers, _ = post_with_key(valid_im(destinations=["00306912345678"]), "k-2", lambda_context)

    # Then it is the same message: replayed
    assert status == 200
    assert headers[REPLAYED] == "true"
    assert len(gateway_env.requests) == 1


def test_different_keys_send_separately(gateway_env, lambda_context) -> None:
    assert post_with_key(valid_im(), "a", lambda_context)[0] == 200
    assert post_with_key(valid_im(), "b", lambda_context)[0] == 200
    assert len(gateway_env.ledger) == 2


def test_a_failure_where_nothing_was_sent_can_be_retried_under_the_same_key(
    gateway_env, lambda_context
) -> None:
    # Given the provider failing once on its side (nothing sent)
    gateway_env.add_fault(Fault(kind="error_code", code=8))
    assert post_with_key(valid_im(), "k-3", lambda_context)[0] == 502

    # When the caller retries with the same key
    status, headers, _ = post_with_key(valid_im(), "k-3", lambda_context)

    # Then this time it is sent, once
    assert status == 200
    assert REPLAYED not in headers
    assert len(gateway_env.ledger) == 1


def test_an_outcome_unknown_answer_is_kept_so_a_retry_does_not_resend(gateway_env, lambda_context) -> None:
    # Given the provider sends but the answer is lost
    gateway_env.add_fault(Fault(kind="drop", after_processing=True))
    first = post_with_key(valid_im(), "k-4", lambda_context)
    assert first[0] == 504

    # When the caller retries under the same key
    status, headers, body = post_with_key(valid_im(), "k-4", lambda_context)

    # Then the same 504 comes back as a replay, and the provider saw one request
    assert status == 504
    assert body == first[2]
    assert body["type"] == PROBLEM + "outcome-unknown"
    assert headers[REPLAYED] == "true"
    assert len(gateway_env.requests) == 1


def test_an_unusable_key_is_422(gateway_env, lambda_context) -> None:
    status, _, body = post_with_key(valid_im(), "x" * 256, lambda_context)
    assert status == 422
    # Header names are case-insensitive; Powertools reports them in lower case
    assert [e["field"] for e in body["errors"]] == [names.IDEMPOTENCY_KEY_HEADER.lower()]
    assert "at most 255" in body["errors"][0]["message"]
    assert gateway_env.requests == []


def _second_container_handler() -> Any:
    """A second copy of the API handler module: another Lambda container sharing the table."""
    spec = importlib.util.spec_from_file_location(
        "api_handler_second_container", REPO / "functions/api_handler.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_concurrent_calls_with_one_key_send_once(gateway_env) -> None:
    # Given a slow provider and two containers receiving the same keyed request at once
    gateway_env.latency = 0.6
    other_handler = _second_container_handler()
    from api_handler import handler

    results: dict[str, tuple[int, dict[str, str], dict[str, Any]]] = {}

    def call(name: str, chosen: Any, delay: float) -> None:
        threading.Event().wait(delay)
        results[name] = post_with_key(valid_im(), "concurrent-1", make_lambda_context(), chosen)

    threads = [
        threading.Thread(target=call, args=("first", handler, 0.0)),
        threading.Thread(target=call, args=("second", other_handler, 0.2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # Then one was sent and the other told the send is in progress, to ask again later
    # (which one comes first is up to the threads)
    by_status = {result[0]: result for result in results.values()}
    assert sorted(by_status) == [200, 409]
    sent, waiting = by_status[200], by_status[409]
    assert waiting[2]["type"] == PROBLEM + "in-progress"
    assert waiting[1]["retry-after"] == "1"
    assert len(gateway_env.requests) == 1

    # And asking again afterwards replays the first answer without sending
    gateway_env.latency = 0.0
    status, headers, body = post_with_key(valid_im(), "concurrent-1", make_lambda_context(), other_handler)
    assert (status, headers[REPLAYED], body) == (200, "true", sent[2])
    assert len(gateway_env.requests) == 1


# ----- every size the API accepts ---------------------------------------------------------------


def _stored_items() -> list[dict[str, Any]]:
    import boto3

    return list(boto3.client("dynamodb").scan(TableName=names.IDEMPOTENCY_TABLE_NAME)["Items"])


def test_ten_thousand_destinations_are_sent_once_and_answered_the_same_twice(
    gateway_env, lambda_context
) -> None:
    from bench.phones import greek_mobiles

    # Given the largest request the API accepts, under a key
    numbers = greek_mobiles(10_000)
    first = post_with_key(valid_im(destinations=numbers), "bulk-10000", lambda_context)

    # When the caller retries it
    second = post_with_key(valid_im(destinations=numbers), "bulk-10000", make_lambda_context())

    # Then LiveAll got each number exactly once, and both answers are the same 200
    sent = [d for entry in gateway_env.ledger for d in entry.payload["destinations"]]
    assert sorted(sent) == sorted(numbers)
    assert (first[0], second[0]) == (200, 200)
    assert second[2] == first[2]
    assert second[1][REPLAYED] == "true"
    assert [m["destination"] for m in second[2]["messages"]] == numbers
    # And the stored record is small by design: the ids, not the destinations
    [item] = _stored_items()
    assert dynamodb_item_size(item) < 4 * 1024, dynamodb_item_size(item)


def test_the_largest_record_fits_even_with_ids_that_never_follow_each_other() -> None:
    from bench.phones import greek_mobiles
    from bench.records import DYNAMODB_ITEM_LIMIT_BYTES, worst_case_record_bytes

    # Given 10,000 destinations sent in chunks of 1000, each given a random 20-digit id (the longest kept)
    numbers = greek_mobiles(10_000)

    # When stored as Powertools stores it (the JSON of what the function returned)
    stored_bytes = worst_case_record_bytes(numbers)

    # Then it is under half of DynamoDB's 400 KB item limit
    assert stored_bytes < DYNAMODB_ITEM_LIMIT_BYTES / 2, stored_bytes


def test_a_stored_record_reads_back_to_the_same_answer() -> None:
    import random

    from gateway.provider.client import SendResult, SentMessage
    from gateway.sending.idempotency import attempt_from_record, attempt_record
    from gateway.sending.request import SendRequest
    from gateway.sending.send import SendAttempt

    # Given a partly sent message: ids in sequence, out of sequence and as text, and a failed chunk
    numbers = [f"3069100000{n:02d}" for n in range(1, 8)]
    request = SendRequest.model_validate(valid_im(destinations=numbers))
    rng = random.Random(3)  # noqa: S311 - test data
    chunks = [numbers[0:3], numbers[3:5], numbers[5:7]]
    outcomes = [
        SendResult(1001, [SentMessage(d, 500 + i) for i, d in enumerate(chunks[0])]),
        SendResult("1002", [SentMessage(d, str(rng.randrange(10**12))) for d in chunks[1]]),
        GatewayError(Failure.PROVIDER_UNAVAILABLE, "busy", retry_after=2),
    ]
    attempt = SendAttempt(chunks, outcomes, 2)

    # When stored and read back with the identical request
    stored = json.loads(json.dumps(attempt_record(attempt)))
    replayed = attempt_from_record(stored, request)

    # Then the answer it gives is the very same problem
    with pytest.raises(GatewayError) as first:
        attempt.answer()
    with pytest.raises(GatewayError) as again:
        replayed.answer()
    assert again.value.problem() == first.value.problem()


def test_a_store_failure_after_the_send_answers_what_was_sent_and_blocks_a_resend(
    gateway_env, lambda_context, captured_logs, capsys, monkeypatch
) -> None:
    from botocore.exceptions import ClientError

    from gateway.sending import idempotency
    from gateway.sending.idempotency import get_idempotent_sender
    from tests.conftest import log_records

    # Given a store that takes the in-progress record but then refuses to save the answer
    sender = get_idempotent_sender()
    sender.prepare()
    assert sender._persistence is not None

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "Item too large"}}, "UpdateItem"
        )

    sender._persistence.client.meta.events.register("before-call.dynamodb.UpdateItem", refuse)

    # When a message is sent under a key
    status, _, body = post_with_key(valid_im(), "store-fails", lambda_context)

    # Then the caller is told what was sent (not "nothing was sent")
    [entry] = gateway_env.ledger
    assert status == 200
    assert body["messages"] == [{"destination": "306912345678", "smsid": entry.smsids[0]}]
    # And the failure is loud: an error log line and the IdempotencyStoreFailures metric
    assert any("did not keep the answer" in r["message"] for r in log_records(captured_logs))
    assert names.METRIC_IDEMPOTENCY_STORE_FAILURES in capsys.readouterr().out

    # And a retry under the key does not send again: in progress at first...
    sender._persistence.client.meta.events.unregister("before-call.dynamodb.UpdateItem", refuse)
    retry = post_with_key(valid_im(), "store-fails", make_lambda_context())
    assert (retry[0], retry[2]["type"]) == (409, PROBLEM + "in-progress")
    # ...and once no function can still be running, an unknown outcome, never a second send
    monkeypatch.setattr(idempotency, "STALE_IN_PROGRESS_SECONDS", -1)
    later = post_with_key(valid_im(), "store-fails", make_lambda_context())
    assert (later[0], later[2]["type"]) == (504, PROBLEM + "outcome-unknown")
    assert "started at" in later[2]["detail"]
    assert len(gateway_env.requests) == 1
