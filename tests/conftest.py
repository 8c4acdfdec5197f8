"""Shared fixtures: moto for AWS, the provider sandbox over loopback, a Lambda context, log capture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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
from local.emulator import Resources, provision
from local.functions import LambdaContext, reset_process_caches
from local.functions import lambda_context as make_lambda_context
from sandbox import ProviderSandbox

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
# Recognisable, so a leak anywhere is easy to assert on.
TEST_TOKEN = "7e57c0ffee0000deadbeef00aa11bb22cc33dd44"
APPROVED_SENDER = "MyShop"


class FakeClock:
    """A clock that moves only when told (the sandbox's, the tracker's, the reconciler's)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
def aws() -> Iterator[Resources]:
    """moto, holding the secret, the queues and the table as the stack (and make run) provision them."""
    with mock_aws():
        yield provision(boto3.client, provider_token=TEST_TOKEN)


@pytest.fixture
def token_secret(aws: Resources) -> str:
    return names.TOKEN_SECRET_NAME


@pytest.fixture
def queues(aws: Resources, gateway_env: ProviderSandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The queue and its dead-letter queue, with the functions told where dead letters go."""
    monkeypatch.setenv(names.ENV_DEAD_LETTER_QUEUE_URL, aws.dead_letter_queue_url)
    monkeypatch.setenv(names.ENV_QUEUE_URL, aws.queue_url)
    reset_process_caches()
    return {"queue": aws.queue_url, "dead_letter": aws.dead_letter_queue_url}


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


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`python -m local.run` on free ports, once per session, for the e2e and fuzz tiers."""
    from tests.e2e.local_service import running_local_service

    with running_local_service(tmp_path_factory.mktemp("local-run") / "output.log") as started:
        yield started


@pytest.fixture
def lambda_context() -> LambdaContext:
    return make_lambda_context()


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


def schedule_environment(aws: Resources) -> dict[str, str]:
    """What the API and queue functions are told of the scheduled sends, as the stack tells them."""
    return {
        names.ENV_SCHEDULE_TABLE: names.SCHEDULE_TABLE_NAME,
        names.ENV_SCHEDULE_GROUP: aws.schedule_group_name,
        names.ENV_SCHEDULE_QUEUE_URL: aws.schedule_queue_url,
        names.ENV_SCHEDULE_QUEUE_ARN: aws.schedule_queue_arn,
        names.ENV_SCHEDULER_ROLE_ARN: aws.scheduler_role_arn,
        names.ENV_SCHEDULER_DEAD_LETTER_ARN: aws.schedule_dead_letter_queue_arn,
        names.ENV_EVENT_BUS_NAME: names.EVENT_BUS_NAME,
    }
