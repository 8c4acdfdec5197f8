"""Helpers for the end-to-end tests: the running local service as tests see it, and polling."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import urllib3

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Variables that would change what the runner does: never the real provider from a test, nor a
# developer's scaled clock or default send window.
RUNNER_VARIABLES = (
    "LIVEALL_BASE_URL",
    "LIVEALL_TOKEN",
    "PORT",
    "VIBER_GATEWAY_API_KEY",
    "CLOCK_SCALE",
    "CLOCK_ORIGIN",
    "SEND_WINDOW",
)

T = TypeVar("T")


def local_aws_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client of the local AWS emulator, as a user's own tools would make one."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="eu-central-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@dataclass
class LocalService:
    """The running service, and the clients a user would reach it with."""

    api_url: str
    api_key: str
    sandbox_url: str
    aws_url: str
    queue_url: str
    dead_letter_queue_url: str
    ports: list[int]
    http: urllib3.PoolManager
    sqs: Any
    # The scheduled sends' clock (make run --clock-scale): origin + (wall - origin) * scale.
    clock_scale: float = 1.0
    clock_origin: float = 0.0

    def clock(self) -> datetime:
        """Now on the service's scheduled-sends clock (UTC)."""
        return datetime.fromtimestamp(self.clock_seconds(), UTC)

    def clock_seconds(self, wall: float | None = None) -> float:
        wall = time.time() if wall is None else wall
        return self.clock_origin + (wall - self.clock_origin) * self.clock_scale

    def wall_seconds_until(self, instant: datetime) -> float:
        """How long on the wall clock until the service's clock reads `instant` (negative: past)."""
        return (instant.timestamp() - self.clock_seconds()) / self.clock_scale

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A keyed request to the API (`path` with its query, "/schedules?state=scheduled")."""
        return self.http.request(
            method,
            f"{self.api_url}{path}",
            body=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "x-api-key": self.api_key},
        )

    def post_message(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.http.request(
            "POST",
            f"{self.api_url}/messages",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "x-api-key": self.api_key, **(headers or {})},
        )

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        """Call the provider sandbox's control API and return its JSON answer."""
        encoded = json.dumps(body).encode() if body is not None else None
        response = self.http.request(method, f"{self.sandbox_url}_sandbox/{path}", body=encoded)
        assert response.status == 200, response.data
        return response.json()

    def emulator(self, method: str, body: Any = None) -> Any:
        """Call the AWS emulator's fault control (local.emulator.FaultInjector) and return its answer."""
        encoded = json.dumps(body).encode() if body is not None else None
        response = self.http.request(method, f"{self.aws_url}/_emulator/faults", body=encoded)
        assert response.status == 200, response.data
        return response.json()

    def aws(self, service: str) -> Any:
        return local_aws_client(service, self.aws_url)

    def subscribe(self, name: str, pattern: dict[str, Any]) -> str:
        """A rule on the stage's bus for events matching `pattern`, into a new queue; its URL."""
        from gateway import names

        queue_url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = self.aws("events")
        events.put_rule(Name=name, EventBusName=names.EVENT_BUS_NAME, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=names.EVENT_BUS_NAME, Targets=[{"Id": "e2e", "Arn": arn}])
        return queue_url

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.sandbox("GET", "ledger"))

    def messages_in(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def eventually(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `check` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True
