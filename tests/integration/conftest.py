"""Fixtures of the integration tier: delivery tracking on, with the tracker's clock in the test's hands."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from gateway import names
from local.emulator import Resources
from sandbox import ProviderSandbox
from tests.conftest import FakeClock, load_event, make_lambda_context, reset_process_caches


@dataclass
class Tracking:
    provider: ProviderSandbox
    aws: Resources
    clock: FakeClock

    def events(self) -> list[dict[str, Any]]:
        """Every event the bus routed to the sink queue since the last call."""
        sqs = boto3.client("sqs")
        taken = []
        while batch := sqs.receive_message(QueueUrl=self.aws.events_sink_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                taken.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.aws.events_sink_url, ReceiptHandle=message["ReceiptHandle"])
        return taken

    def run(self) -> dict[str, Any]:
        """One run of the tracker function, on the schedule's event, at the test's time."""
        from scheduled_handler import get_tracker, handler

        tracker = get_tracker()
        assert tracker is not None
        tracker.clock = tracker.store.clock = self.clock
        return dict(
            handler(load_event("tracker-schedule.json"), make_lambda_context("viber-gateway-tracker"))
        )


@pytest.fixture
def tracking(gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Tracking:
    """Sends recorded for tracking, events on the bus, statuses moved only when a test forces them."""
    monkeypatch.setenv(names.ENV_TRACKING_TABLE, names.TRACKING_TABLE_NAME)
    monkeypatch.setenv(names.ENV_EVENT_BUS_NAME, names.EVENT_BUS_NAME)
    gateway_env.configure({"delivery_step_seconds": 3600})
    reset_process_caches()
    return Tracking(gateway_env, aws, FakeClock(time.time()))
