"""Shared fixtures: moto for AWS, the provider sandbox over loopback, a Lambda context, log capture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Set before any handler module is imported: Powertools reads these when its objects are made.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)

from gateway import names
from sandbox import ProviderSandbox

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
# Recognisable, so a leak anywhere is easy to assert on.
TEST_TOKEN = "7e57c0ffee0000deadbeef00aa11bb22cc33dd44"
APPROVED_SENDER = "MyShop"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[ProviderSandbox]:
    with ProviderSandbox(tokens={TEST_TOKEN}, approved_senders={APPROVED_SENDER}) as server:
        yield server


@pytest.fixture
def provider(sandbox: ProviderSandbox) -> Iterator[ProviderSandbox]:
    """The sandbox, emptied and back to its defaults for this test."""
    sandbox.reset()
    sandbox.set_tokens({TEST_TOKEN})
    yield sandbox
    sandbox.reset()
    sandbox.set_tokens({TEST_TOKEN})


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, holding the idempotency table as the stack defines it."""
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=names.IDEMPOTENCY_TABLE_NAME,
            KeySchema=[{"AttributeName": names.IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": names.IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


@pytest.fixture
def queues(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The queue and its dead-letter queue, as the stack makes them; the functions know the DLQ URL."""
    sqs = boto3.client("sqs")
    dead_letter_url = sqs.create_queue(QueueName=names.DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=names.QUEUE_NAME,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": names.QUEUE_MAX_RECEIVE_COUNT}
            )
        },
    )["QueueUrl"]
    monkeypatch.setenv(names.ENV_DEAD_LETTER_QUEUE_URL, dead_letter_url)
    reset_process_caches()
    return {"queue": queue_url, "dead_letter": dead_letter_url}


@pytest.fixture
def token_secret(aws: None) -> str:
    """The provider token stored the way the README tells operators to store it."""
    client = boto3.client("secretsmanager")
    client.create_secret(Name=names.TOKEN_SECRET_NAME, SecretString=json.dumps({"apitoken": TEST_TOKEN}))
    return names.TOKEN_SECRET_NAME


@pytest.fixture
def gateway_env(
    monkeypatch: pytest.MonkeyPatch, provider: ProviderSandbox, token_secret: str
) -> ProviderSandbox:
    """The functions' environment pointing at moto and the sandbox, with every cache emptied."""
    monkeypatch.setenv(names.ENV_PROVIDER_BASE_URL, provider.url)
    monkeypatch.setenv(names.ENV_PROVIDER_TOKEN_SECRET, token_secret)
    monkeypatch.setenv(names.ENV_METRICS_NAMESPACE, "ViberGatewayTest")
    monkeypatch.setenv(names.ENV_PROVIDER_READ_TIMEOUT, "2")
    reset_process_caches()
    yield provider
    reset_process_caches()


def reset_process_caches() -> None:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    from gateway.idempotency import get_idempotent_sender
    from gateway.send import get_sender
    from gateway.settings import get_settings

    get_settings.cache_clear()
    get_sender.cache_clear()
    get_idempotent_sender.cache_clear()
    from queue_handler import record_threads

    record_threads.cache_clear()
    base.DEFAULT_PROVIDERS.clear()
    parameters.clear_caches()


@dataclass
class FakeLambdaContext:
    function_name: str = "viber-gateway-api"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:viber-gateway-api"
    aws_request_id: str = "6f1a3c4e-0000-4000-8000-000000000001"
    remaining_ms: int = 28_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def captured_logs() -> Iterator[Any]:
    """Everything the gateway's Logger writes during the test (JSON lines)."""
    import io

    from gateway.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def log_records(buffer: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
