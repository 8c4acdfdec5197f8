"""The two events of scheduled sends: what the code publishes is what events/schemas/ says, and the
samples in events/ are what it publishes.

`Send Scheduled` (gateway.schedules.service.scheduled_detail) and `Scheduled Send Cancelled`
(Schedules.cancel) are made here by the service itself, over an in-memory store and triggers, at
a fixed clock; the last test takes them off moto's bus after the real API function made them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jsonschema  # type: ignore[import-untyped]
import pytest

from gateway import names
from gateway.schedules.model import Schedule, State
from gateway.schedules.service import Schedules, scheduled_detail
from gateway.sending.request import SendRequest
from local.emulator import Resources
from local.functions import lambda_context, reset_process_caches
from sandbox import ProviderSandbox
from tests.conftest import schedule_environment

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEMAS = {
    names.DETAIL_TYPE_SEND_SCHEDULED: "send-scheduled-detail.json",
    names.DETAIL_TYPE_SCHEDULE_CANCELLED: "scheduled-send-cancelled-detail.json",
}
SAMPLES = {
    names.DETAIL_TYPE_SEND_SCHEDULED: "event-send-scheduled.json",
    names.DETAIL_TYPE_SCHEDULE_CANCELLED: "event-scheduled-send-cancelled.json",
}
# The samples' request: one send_at, a window, numbers of two zones; made at the samples' clock.
SAMPLE_NOW = datetime(2026, 12, 7, 15, 2, 11, tzinfo=UTC)
SAMPLE_KEY = "campaign-winter"
SAMPLE_REQUEST = {
    "im_type": "IM",
    "im_sender_name": "MyShop",
    "im_text": "Winter sale starts tomorrow.",
    "destinations": ["306912345678", "306912345679", "61412345678"],
    "reference": "campaign-winter",
    "send_at": "2026-12-08T08:00:00+02:00",
    "window": {"from": "09:00", "to": "21:00"},
}
GREEK = "306912345678"
AUSTRALIAN = "61412345678"


def schema(detail_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / "schemas" / SCHEMAS[detail_type]).read_text())
    return document


def sample(detail_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / SAMPLES[detail_type]).read_text())
    return document


def check(detail_type: str, detail: dict[str, Any]) -> None:
    """The detail validates, and carries exactly the fields its schema names (no undocumented one)."""
    document = schema(detail_type)
    jsonschema.Draft202012Validator(document).validate(detail)
    assert set(detail) == set(document["properties"]), detail_type
    part_fields = set(document.get("$defs", {}).get("part", {}).get("properties", {}))
    for part in detail.get("parts", []):
        assert set(part) == part_fields


class MemoryStore:
    """The schedules table's contract (gateway.schedules.store.ScheduleStore), in a dict."""

    def __init__(self) -> None:
        self.items: dict[str, Schedule] = {}

    def create(self, schedule: Schedule) -> None:
        from gateway.schedules.store import AlreadyExists

        if schedule.id in self.items:
            raise AlreadyExists(schedule.id)
        self.items[schedule.id] = schedule

    def get(self, schedule_id: str) -> Schedule | None:
        return self.items.get(schedule_id)

    def change(
        self, schedule_id: str, update: Callable[[Schedule], Schedule | None]
    ) -> tuple[Schedule | None, Schedule | None]:
        current = self.items.get(schedule_id)
        if current is None:
            return None, None
        new = update(current)
        if new is None:
            return current, current
        written = dataclasses.replace(new, version=current.version + 1)
        self.items[schedule_id] = written
        return current, written


class NoTriggers:
    def place(self, schedule_id: str, part: int, at: datetime) -> str:
        return "scheduler"

    def remove(self, schedule_id: str, part: int) -> None:
        pass


@dataclasses.dataclass
class Service:
    schedules: Schedules
    store: MemoryStore
    published: list[tuple[str, dict[str, Any]]]

    def create(self, key: str | None = None, **request: Any) -> Schedule:
        body = {**SAMPLE_REQUEST, **request}
        answer = self.schedules.create(SendRequest.model_validate(body), store_key=key, origin="api")
        assert answer is not None
        assert answer.schedule_id is not None
        return self.store.items[answer.schedule_id]

    def part_became(self, schedule: Schedule, number: int, state: State) -> None:
        """Part `number` fired (and finished as `state`), as a trigger would have made it."""
        current = self.store.items[schedule.id]
        part = dataclasses.replace(current.parts[number], state=state, fired_at="2026-12-08T06:00:01Z")
        self.store.items[schedule.id] = current.with_part(part)

    def details(self, detail_type: str) -> list[dict[str, Any]]:
        return [detail for kind, detail in self.published if kind == detail_type]


@pytest.fixture
def service() -> Service:
    store = MemoryStore()
    published: list[tuple[str, dict[str, Any]]] = []
    schedules = Schedules(
        store,  # type: ignore[arg-type]
        NoTriggers(),  # type: ignore[arg-type]
        horizon_days=30,
        stage_window=None,
        now=lambda: SAMPLE_NOW,
        publish=lambda kind, detail: published.append((kind, detail)),
    )
    return Service(schedules, store, published)


@pytest.mark.parametrize("detail_type", sorted(SCHEMAS))
def test_each_schema_is_valid_json_schema_and_its_sample_follows_it(detail_type: str) -> None:
    document = schema(detail_type)
    jsonschema.Draft202012Validator.check_schema(document)
    event = sample(detail_type)
    # In EventBridge's envelope, as the other samples are
    envelope = json.loads((EVENTS / "event-message-status-changed.json").read_text())
    assert list(event) == list(envelope)
    assert event["detail-type"] == detail_type
    assert event["source"] == names.EVENT_SOURCE
    check(detail_type, event["detail"])


def test_the_samples_are_what_the_service_publishes_for_their_request(service: Service) -> None:
    # Given the samples' request (send_at 08:00 Athens time, a 09:00-21:00 window, two zones)
    made = service.create(key=SAMPLE_KEY)
    # When it is scheduled, then cancelled
    service.schedules.cancel(made.id)
    # Then the service published exactly the samples' details
    scheduled = service.details(names.DETAIL_TYPE_SEND_SCHEDULED)
    cancelled = service.details(names.DETAIL_TYPE_SCHEDULE_CANCELLED)
    assert scheduled == [sample(names.DETAIL_TYPE_SEND_SCHEDULED)["detail"]]
    assert cancelled == [sample(names.DETAIL_TYPE_SCHEDULE_CANCELLED)["detail"]]


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param({"window": None}, id="send_at-one-part"),
        pytest.param({}, id="send_at-and-window-two-zones"),
        pytest.param({"send_at": None, "window": {"from": "03:00", "to": "04:00"}}, id="window-alone"),
        pytest.param({"reference": None, "window": None, "destinations": [GREEK]}, id="no-reference"),
        pytest.param({"window": {"from": "22:00", "to": "06:00", "days": ["sat"]}}, id="night-window-sat"),
    ],
)
def test_send_scheduled_as_published_follows_its_schema(
    service: Service, request_fields: dict[str, Any]
) -> None:
    made = service.create(**request_fields)
    [detail] = service.details(names.DETAIL_TYPE_SEND_SCHEDULED)
    check(names.DETAIL_TYPE_SEND_SCHEDULED, detail)
    assert detail == scheduled_detail(made)
    # And it never names a number
    assert not any(number in json.dumps(detail) for number in SAMPLE_REQUEST["destinations"])


@pytest.mark.parametrize(
    ("fired", "state_after"),
    [
        pytest.param(None, "cancelled", id="nothing-fired"),
        pytest.param(State.SENDING, "sending", id="first-part-sending"),
        pytest.param(State.SENT, "sent", id="first-part-sent"),
        pytest.param(State.FAILED, "failed", id="first-part-failed"),
    ],
)
def test_scheduled_send_cancelled_as_published_follows_its_schema(
    service: Service, fired: State | None, state_after: str
) -> None:
    # Given a schedule of two parts (Sydney first, then Athens), the first perhaps fired already
    made = service.create()
    assert [part.zone for part in made.parts] == ["Australia/Sydney", "Europe/Athens"]
    if fired is not None:
        service.part_became(made, 0, fired)
    # When it is cancelled
    service.schedules.cancel(made.id)
    # Then the event names the parts it stopped and their numbers' count, and follows the schema
    [detail] = service.details(names.DETAIL_TYPE_SCHEDULE_CANCELLED)
    check(names.DETAIL_TYPE_SCHEDULE_CANCELLED, detail)
    assert detail["state"] == state_after
    assert detail["cancelled_parts"] == ([0, 1] if fired is None else [1])
    assert detail["destination_count"] == (3 if fired is None else 2)


# ----- off the bus, through the real API function (moto, the sandbox) ------------------------------


@pytest.fixture
def scheduling(gateway_env: ProviderSandbox, aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    """The functions with the schedules and the bus (as tests/integration/test_schedules.py)."""
    for name, value in schedule_environment(aws).items():
        monkeypatch.setenv(name, value)
    reset_process_caches()
    return aws


def _api(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    from api_handler import handler

    event = json.loads((EVENTS / "api-post-im.json").read_text())
    resource = "/schedules/{schedule_id}" if path.startswith("/schedules/") else path
    event.update(
        httpMethod=method,
        resource=resource,
        path=path,
        pathParameters={"schedule_id": path.rsplit("/", 1)[1]} if resource != path else None,
        body=None if body is None else json.dumps(body),
    )
    answer = handler(event, lambda_context())  # type: ignore[arg-type]
    return answer["statusCode"], json.loads(answer["body"])


def _events_on_the_bus(aws: Resources) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=aws.events_sink_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=aws.events_sink_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_events_on_the_bus_follow_their_schemas(scheduling: Resources) -> None:
    # Given a send to two zones, in a window, scheduled through the API function, then cancelled
    body = copy.deepcopy(SAMPLE_REQUEST)
    body["send_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    body["destinations"] = [GREEK, AUSTRALIAN]
    status, made = _api("POST", "/messages", body)
    assert status == 202, made
    status, _ = _api("DELETE", f"/schedules/{made['id']}")
    assert status == 200
    # When the bus delivers what was published
    heard = [e for e in _events_on_the_bus(scheduling) if e["detail-type"] in SCHEMAS]
    # Then one event of each, each detail as its schema says
    assert sorted(e["detail-type"] for e in heard) == sorted(SCHEMAS)
    for event in heard:
        assert event["source"] == names.EVENT_SOURCE
        check(event["detail-type"], event["detail"])
        assert event["detail"]["schedule_id"] == made["id"]
