"""The SQS handler: partial batch responses, each good record sent once."""

from __future__ import annotations

import json

from queue_handler import handler
from sandbox import Fault
from tests.conftest import TEST_TOKEN, load_event


def test_two_bad_records_of_five_are_the_only_failures(gateway_env, lambda_context, capsys) -> None:
    # Given the sample batch: records 2 (not JSON) and 4 (invalid fields) are bad
    event = load_event("sqs-batch.json")
    ids = [record["messageId"] for record in event["Records"]]

    # When the queue handler processes it
    answer = handler(event, lambda_context)

    # Then exactly those two are reported, and the three good ones were sent once each
    assert answer == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[3]}]}
    sent = [entry.payload["destinations"] for entry in gateway_env.ledger]
    assert sent == [["306911111001"], ["306911111003"], ["306911111005"]]
    assert TEST_TOKEN not in capsys.readouterr().out


def test_a_provider_failure_fails_only_its_record(gateway_env, lambda_context) -> None:
    # Given a provider that fails the second call of a three-record batch
    event = load_event("sqs-batch.json")
    event["Records"] = [event["Records"][0], event["Records"][2], event["Records"][4]]
    gateway_env.add_fault(Fault(kind="error_code", code=8))  # first call fails
    ids = [record["messageId"] for record in event["Records"]]

    # When processed
    answer = handler(event, lambda_context)

    # Then only that record is reported; its neighbours were sent
    assert answer == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    assert len(gateway_env.ledger) == 2
    assert json.loads(event["Records"][0]["body"])["destinations"] == ["+30 691 111 1001"]
