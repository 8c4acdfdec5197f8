"""tools/redrive against an SQS that has message-move tasks (real AWS; moto has none): a fake client."""

from __future__ import annotations

from typing import Any

from tools import redrive

QUEUE_URL = "https://sqs.eu-central-1.amazonaws.com/123456789012/viber-gateway-messages-prod"
DEAD_LETTER_URL = QUEUE_URL + "-dlq"


class FakeSqs:
    def __init__(self) -> None:
        self.move_tasks: list[dict[str, Any]] = []
        self.received = 0

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        name = QueueUrl.rsplit("/", 1)[1]
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:eu-central-1:123456789012:{name}"}}

    def start_message_move_task(self, **arguments: Any) -> dict[str, Any]:
        self.move_tasks.append(arguments)
        return {"TaskHandle": "task-handle-1"}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.received += 1
        return {"Messages": []}


def test_without_a_filter_the_sqs_move_task_is_started(monkeypatch, capsys) -> None:
    # Given an SQS endpoint that offers message-move tasks
    sqs = FakeSqs()
    monkeypatch.setattr(redrive.boto3, "client", lambda service: sqs)

    # When the operator redrives everything
    code = redrive.main(["--queue-url", QUEUE_URL, "--dead-letter-queue-url", DEAD_LETTER_URL])

    # Then one task moves the dead-letter queue into the queue, and nothing is moved by hand
    assert code == 0
    assert sqs.move_tasks == [
        {
            "SourceArn": "arn:aws:sqs:eu-central-1:123456789012:viber-gateway-messages-prod-dlq",
            "DestinationArn": "arn:aws:sqs:eu-central-1:123456789012:viber-gateway-messages-prod",
        }
    ]
    assert sqs.received == 0
    assert "task-handle-1" in capsys.readouterr().out


def test_a_filter_moves_one_by_one_instead(monkeypatch) -> None:
    # Given the same endpoint, when only some error types are to move
    sqs = FakeSqs()
    monkeypatch.setattr(redrive.boto3, "client", lambda service: sqs)
    redrive.main(["--queue-url", QUEUE_URL, "--dead-letter-queue-url", DEAD_LETTER_URL, "--error-type", "x"])

    # Then no move task is started (it cannot filter); the messages are read instead
    assert sqs.move_tasks == []
    assert sqs.received == 1
