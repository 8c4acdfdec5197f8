"""A sent message is tracked even when the tracking table failed its write: its records wait, then follow.

Through the real API and scheduled handlers, moto's table and queue, and the sandbox: the
table refuses the sends' writes, each send still answers 200, and the tracker's next run
(the table answering again) takes every one of them in, with its Message Accepted event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gateway import names
from tests.conftest import reset_process_caches
from tests.integration.conftest import Tracking
from tests.integration.test_api_send import post, valid_im

NUMBERS = [f"30691234567{digit}" for digit in range(5)]


@pytest.fixture
def backlog(tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> str:
    url = boto3.client("sqs").create_queue(QueueName=names.TRACKING_BACKLOG_QUEUE_NAME)["QueueUrl"]
    monkeypatch.setenv(names.ENV_TRACKING_BACKLOG_QUEUE_URL, url)
    reset_process_caches()
    return str(url)


class RefusedWrites:
    """The tracking table refuses the sends' writes until stop() (or the test's end)."""

    def __init__(self) -> None:
        from gateway.sending.send import get_sender

        store = get_sender().tracking
        assert store is not None
        self.events = store.client.meta.events
        self.refused = 0
        self.events.register("before-call.dynamodb.BatchWriteItem", self._refuse)

    def _refuse(self, **_: Any) -> None:
        self.refused += 1
        raise ConnectionError("the tracking table is unavailable")

    def stop(self) -> None:
        self.events.unregister("before-call.dynamodb.BatchWriteItem", self._refuse)


@pytest.fixture
def refused_writes(tracking: Tracking) -> Iterator[RefusedWrites]:
    refusing = RefusedWrites()
    yield refusing
    refusing.stop()


def accepted(events: list[dict[str, Any]]) -> list[str]:
    return sorted(
        e["detail"]["destination"] for e in events if e["detail-type"] == names.DETAIL_TYPE_MESSAGE_ACCEPTED
    )


def test_sends_the_table_refused_are_tracked_once_it_answers_again(
    tracking: Tracking, backlog: str, lambda_context: Any
) -> None:
    # Given five sends while the tracking table refuses every write, each answered 200
    refused = RefusedWrites()
    for number in NUMBERS:
        status, _, _ = post(valid_im(destinations=[number]), lambda_context)
        assert status == 200
    assert refused.refused == 5
    # When the table answers again and the tracker runs
    refused.stop()
    tracking.run()
    # Then every one of the five is taken in: its Message Accepted event is published, late but there
    assert accepted(tracking.events()) == NUMBERS
    # And the backlog is empty: nothing is taken in twice on the next run
    tracking.clock.advance(60)
    tracking.run()
    assert accepted(tracking.events()) == []
    waiting = boto3.client("sqs").get_queue_attributes(
        QueueUrl=backlog,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert waiting == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_a_kept_record_delivered_twice_is_taken_in_once(
    tracking: Tracking, backlog: str, lambda_context: Any
) -> None:
    refused = RefusedWrites()
    # Given one send kept on the backlog, and its record put there a second time
    post(valid_im(destinations=[NUMBERS[0]]), lambda_context)
    sqs = boto3.client("sqs")
    [kept] = sqs.receive_message(QueueUrl=backlog, MaxNumberOfMessages=10)["Messages"]
    sqs.send_message(QueueUrl=backlog, MessageBody=kept["Body"])
    sqs.change_message_visibility(QueueUrl=backlog, ReceiptHandle=kept["ReceiptHandle"], VisibilityTimeout=0)
    assert json.loads(kept["Body"])["destinations"] == NUMBERS[0]
    # When the tracker runs with the table answering
    refused.stop()
    tracking.run()
    # Then the message was taken in once
    assert accepted(tracking.events()) == [NUMBERS[0]]


def test_without_a_backlog_queue_a_refused_write_is_only_counted_as_before(
    tracking: Tracking, lambda_context: Any, refused_writes: RefusedWrites
) -> None:
    status, _, _ = post(valid_im(destinations=[NUMBERS[0]]), lambda_context)
    assert status == 200
    refused_writes.stop()
    tracking.run()
    assert accepted(tracking.events()) == []
