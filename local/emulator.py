"""The AWS emulator: moto's server on loopback, provisioned the way the stack provisions AWS."""

from __future__ import annotations

import copy
import io
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from local.defaults import ACCESS_KEY_ID, ACCOUNT_ID, REGION, SECRET_ACCESS_KEY

SECONDS_PER_DAY = 86_400
# The role EventBridge Scheduler would assume to send a trigger. moto's scheduler never checks a
# target's RoleArn, and creating a real role in moto's IAM costs startup time: a made-up ARN.
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/viber-gateway-scheduler"


# Tests only: a queue that a rule on the bus fills with every event, for the tests to read.
EVENTS_SINK_QUEUE_NAME = "viber-gateway-events-sink"
PUT_EVENTS = "AWSEvents.PutEvents"

# Other systems' messages into the message queue, as a stage subscribes them (context keys
# snsSources / eventSources): a topic subscribed with raw delivery off (the queue gets SNS's
# notification document), and a rule on another bus with the queue as target (the queue gets
# the whole event). Local only, for trying `aws sns publish` / `aws events put-events`.
SOURCE_TOPIC_NAME = "viber-gateway-local-orders"
SOURCE_BUS_NAME = "orders"
SOURCE_EVENT_SOURCE = "local.orders"
SOURCE_RULE_NAME = "viber-gateway-local-orders-to-queue"

EventListener = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True, slots=True)
class Resources:
    """Where the provisioned queues are, for the functions' environment and the banner."""

    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    events_sink_url: str | None  # with_sink only
    # Scheduled sends: the trigger queue Scheduler sends to, its dead-letter queue (also Scheduler's
    # dead-letter target), the schedule group and the role Scheduler would assume.
    schedule_queue_url: str
    schedule_queue_arn: str
    schedule_dead_letter_queue_url: str
    schedule_dead_letter_queue_arn: str
    schedule_group_name: str
    scheduler_role_arn: str
    # Tracking records a send could not write wait here for the tracker (gateway.tracking.backlog).
    tracking_backlog_queue_url: str = ""
    # Sources of messages: the topic subscribed to the queue, and the bus whose rule targets it.
    source_topic_arn: str = ""
    source_bus_name: str = ""
    source_event_source: str = ""


class EventTap:
    """WSGI middleware before moto: hands each event a bus accepted to listeners (printer, webhooks).

    make run used to route every event by a rule into a queue and print from there; moto's SQS
    spends time in proportion to a queue's backlog on every send and receive, so a burst of
    events (a large send taken in by the tracker) made the whole emulator crawl. Seeing
    PutEvents on its way in costs nothing per event.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._listeners: list[EventListener] = []

    def listen(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") != PUT_EVENTS or not self._listeners:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []

        def record_status(value: str, *args: Any) -> Any:
            status.append(value)
            return start_response(value, *args)

        result = self._app(environ, record_status)
        try:
            answer = b"".join(result)
        finally:
            if hasattr(result, "close"):  # as a WSGI server would, having read it all
                result.close()
        if status and status[0].startswith("200"):
            events = accepted_events(body, answer)
            if events:
                for listener in self._listeners:
                    listener(events)
        return [answer]


def accepted_events(request: bytes, answer: bytes, *, now: float | None = None) -> list[dict[str, Any]]:
    """The events of a PutEvents the bus accepted, whole, as EventBridge hands them to targets.

    Each has EventBridge's fields (version, id, detail-type, source, account, time, region,
    resources, detail) with the id the bus answered, and `event-bus-name`, the bus it was put
    on (a name; None for the default bus), which is not part of the event. Entries the bus
    refused are left out.
    """
    try:
        entries = json.loads(request).get("Entries", [])
        results = json.loads(answer).get("Entries", [])
        events = []
        for entry, result in zip(entries, results, strict=False):
            if not isinstance(result, dict) or not result.get("EventId"):
                continue
            bus = entry.get("EventBusName")
            events.append(
                {
                    "version": "0",
                    "id": result["EventId"],
                    "detail-type": entry.get("DetailType"),
                    "source": entry.get("Source"),
                    "account": ACCOUNT_ID,
                    "time": _event_time(entry.get("Time"), now),
                    "region": REGION,
                    "resources": list(entry.get("Resources") or []),
                    "detail": json.loads(entry.get("Detail") or "{}"),
                    "event-bus-name": bus.rsplit("/", 1)[-1] if isinstance(bus, str) else None,
                }
            )
    except (ValueError, AttributeError, TypeError):
        return []  # moto answered it; what it was is not ours to hand on
    return events


def _event_time(given: Any, now: float | None) -> str:
    """EventBridge's `time`: the entry's Time (epoch seconds in the JSON protocol), or now."""
    instant = given if isinstance(given, int | float) else (time.time() if now is None else now)
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FAULTS_PATH = "/_emulator/faults"
# What DynamoDB answers for an item over 400 KB: a client error boto3 does not retry.
INJECTED_ERROR = {
    "__type": "com.amazon.coral.validate#ValidationException",
    "message": "Item size has exceeded the maximum allowed size (injected by the local emulator)",
}


class FaultInjector:
    """WSGI middleware before moto: makes chosen JSON-protocol operations fail at a rate.

    `POST /_emulator/faults {"operation": "DynamoDB_20120810.UpdateItem", "rate": 0.2, "seed": 1}`
    (rate 0 removes it); `GET /_emulator/faults` counts what was injected. UpdateItem is how the
    idempotency store saves an answer after a send: this makes "the store fails after the send".
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._rates: dict[str, tuple[float, random.Random]] = {}
        self._injected: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._control(environ, start_response)
        operation = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._lock:
            rate, rng = self._rates.get(operation, (0.0, None))
            hit = rng is not None and rng.random() < rate
            if hit:
                self._injected[operation] += 1
        if hit:
            return _answer(start_response, "400 Bad Request", INJECTED_ERROR, "application/x-amz-json-1.0")
        return self._app(environ, start_response)  # type: ignore[no-any-return]

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                fault = json.loads(environ["wsgi.input"].read(length) or b"{}")
                operation, rate = str(fault["operation"]), float(fault["rate"])
                rng = random.Random(fault.get("seed"))  # noqa: S311 - fault injection, not cryptography
            except (ValueError, KeyError, TypeError) as error:
                return _answer(start_response, "400 Bad Request", {"ok": False, "error": str(error)})
            with self._lock:
                if rate > 0:
                    self._rates[operation] = (rate, rng)
                else:
                    self._rates.pop(operation, None)
        with self._lock:
            injected = dict(self._injected)
        return _answer(start_response, "200 OK", {"ok": True, "injected": injected})


def _answer(
    start_response: Callable[..., Any],
    status: str,
    body: dict[str, Any],
    content_type: str = "application/json",
) -> list[bytes]:
    encoded = json.dumps(body).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(encoded)))])
    return [encoded]


class _FaultableMotoServer(ThreadedMotoServer):
    """moto's threaded server with the event tap and the fault injector in front of its application."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_tap = EventTap(FaultInjector(DomainDispatcherApplication(create_backend_app)))

    def _server_entry(self) -> None:
        app = self.event_tap
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


# The members of an event as EventBridge hands it to a target with no input transformer, in order.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
_patch_lock = threading.Lock()


def deliver_whole_events() -> None:
    """Make moto's EventBridge give targets the whole event, as AWS does, when a rule transforms nothing.

    moto (5.2) fills a text template instead: the event it delivers lacks `account`, and any
    `<id>`, `<source>`, `<time>`... inside the detail (a message's text) is replaced by the
    event's value. The queue function reads an event with AWS's members only, so the local
    `orders` bus would deliver what it refuses. Targets with an InputTransformer keep moto's
    own templating. Idempotent; affects moto in this process only.
    """
    from moto.events import utils

    with _patch_lock:
        parse = utils.EventTemplateParser.parse
        if getattr(parse, "whole_events", False):
            return

        def whole_event_unless_transformed(
            input_template: str, input_paths_map: dict[str, Any], event: Any
        ) -> dict[str, Any]:
            if input_template:
                return parse(input_template, input_paths_map, event)
            return {key: copy.deepcopy(event[key]) for key in EVENT_FIELDS if key in event}

        whole_event_unless_transformed.whole_events = True  # type: ignore[attr-defined]
        utils.EventTemplateParser.parse = staticmethod(whole_event_unless_transformed)  # type: ignore[method-assign]


class AwsEmulator:
    """Secrets Manager, SQS, SNS, DynamoDB, EventBridge and Scheduler on one loopback port, from a thread."""

    def __init__(self, host: str, port: int, *, verbose: bool) -> None:
        # A request line per AWS call would drown the runner's own log; moto's tracebacks for
        # calls it does not implement (the caller gets a 500 anyway) show only with --verbose.
        logging.getLogger("werkzeug").setLevel(logging.ERROR if verbose else logging.CRITICAL)
        deliver_whole_events()
        self._server = _FaultableMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        """Serve and return the endpoint URL. The port must be free: moto hangs if it cannot bind."""
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()

    def on_events(self, listener: EventListener) -> None:
        """Call `listener` with the events of each PutEvents the emulated bus accepted."""
        self._server.event_tap.listen(listener)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )


def provision(
    client: Callable[[str], Any],
    *,
    provider_token: str,
    visibility_timeout: int | None = None,
    with_sink: bool = True,
) -> Resources:
    """Create the token secret, the queues, the idempotency, tracking, suppression, schedules and
    usage tables, the schedule group and the event bus; and the message queue's other sources (a topic
    subscribed to it, a rule on another bus targeting it).

    Every name and setting comes from gateway.names, as in the stack. `client` makes a boto3
    client for a service: the emulator's (local.run), or boto3.client under moto's mock_aws
    (tests, make invoke).
    """
    from gateway import names  # functions/ is on sys.path once local.run has started

    if visibility_timeout is None:
        visibility_timeout = names.QUEUE_VISIBILITY_TIMEOUT_SECONDS
    client("secretsmanager").create_secret(
        Name=names.TOKEN_SECRET_NAME, SecretString=json.dumps({"apitoken": provider_token})
    )

    sqs = client("sqs")
    messages = create_queue_with_dead_letters(
        sqs, names.QUEUE_NAME, names.DEAD_LETTER_QUEUE_NAME, visibility_timeout=visibility_timeout
    )
    triggers = create_queue_with_dead_letters(
        sqs,
        names.SCHEDULE_QUEUE_NAME,
        names.SCHEDULE_DEAD_LETTER_QUEUE_NAME,
        visibility_timeout=visibility_timeout,
    )

    tracking_backlog_url = sqs.create_queue(
        QueueName=names.TRACKING_BACKLOG_QUEUE_NAME,
        Attributes={"MessageRetentionPeriod": str(names.TRACKING_BACKLOG_RETENTION_DAYS * SECONDS_PER_DAY)},
    )["QueueUrl"]

    dynamodb = client("dynamodb")
    create_table(
        dynamodb,
        names.IDEMPOTENCY_TABLE_NAME,
        key=names.IDEMPOTENCY_KEY_ATTRIBUTE,
        ttl_attribute=names.IDEMPOTENCY_TTL_ATTRIBUTE,
    )
    create_tracking_table(dynamodb)
    create_suppression_table(dynamodb)
    create_schedule_table(dynamodb)
    create_usage_table(dynamodb)
    # Without the group, moto's create_schedule fails with a 500 (a KeyError), not AWS's 404.
    client("scheduler").create_schedule_group(Name=names.SCHEDULE_GROUP_NAME)
    events = client("events")
    events_sink_url = _create_bus(events, sqs if with_sink else None)
    return Resources(
        queue_url=messages.url,
        queue_arn=messages.arn,
        dead_letter_queue_url=messages.dead_letter_url,
        events_sink_url=events_sink_url,
        schedule_queue_url=triggers.url,
        schedule_queue_arn=triggers.arn,
        schedule_dead_letter_queue_url=triggers.dead_letter_url,
        schedule_dead_letter_queue_arn=triggers.dead_letter_arn,
        schedule_group_name=names.SCHEDULE_GROUP_NAME,
        scheduler_role_arn=SCHEDULER_ROLE_ARN,
        tracking_backlog_queue_url=str(tracking_backlog_url),
        source_topic_arn=create_source_topic(client("sns"), messages.arn),
        source_bus_name=create_source_bus(events, messages.arn),
        source_event_source=SOURCE_EVENT_SOURCE,
    )


def create_source_topic(sns: Any, queue_arn: str) -> str:
    """A topic subscribed to the queue with raw delivery off: the queue gets SNS's notification document."""
    topic_arn = str(sns.create_topic(Name=SOURCE_TOPIC_NAME)["TopicArn"])
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return topic_arn


def create_source_bus(events: Any, queue_arn: str) -> str:
    """A bus whose rule sends the events of SOURCE_EVENT_SOURCE to the queue, whole, as EventBridge does."""
    deliver_whole_events()  # moto in this process: the emulator's, or a test's mock_aws
    events.create_event_bus(Name=SOURCE_BUS_NAME)
    events.put_rule(
        Name=SOURCE_RULE_NAME,
        EventBusName=SOURCE_BUS_NAME,
        EventPattern=json.dumps({"source": [SOURCE_EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule=SOURCE_RULE_NAME,
        EventBusName=SOURCE_BUS_NAME,
        Targets=[{"Id": "message-queue", "Arn": queue_arn}],
    )
    return SOURCE_BUS_NAME


@dataclass(frozen=True, slots=True)
class QueuePair:
    """A queue and the dead-letter queue its redrive policy moves failed messages to."""

    url: str
    arn: str
    dead_letter_url: str
    dead_letter_arn: str


def create_queue_with_dead_letters(
    sqs: Any, name: str, dead_letter_name: str, *, visibility_timeout: int
) -> QueuePair:
    """A queue whose messages go to its dead-letter queue after maxReceiveCount receives, as the stack's."""
    from gateway import names

    dead_letter_url = sqs.create_queue(
        QueueName=dead_letter_name,
        Attributes={"MessageRetentionPeriod": str(names.DEAD_LETTER_RETENTION_DAYS * SECONDS_PER_DAY)},
    )["QueueUrl"]
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    redrive_policy = {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": names.QUEUE_MAX_RECEIVE_COUNT,
    }
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive_policy),
        },
    )["QueueUrl"]
    return QueuePair(
        url=str(url),
        arn=_queue_arn(sqs, url),
        dead_letter_url=str(dead_letter_url),
        dead_letter_arn=dead_letter_arn,
    )


def create_table(
    dynamodb: Any,
    name: str,
    *,
    key: str,
    ttl_attribute: str,
    sort_key: str | None = None,
    index: tuple[str, str, str, str] | None = None,
) -> None:
    """A table as the stack makes its tables: string keys, on demand, TTL on; `index` is a global
    secondary index (name, partition attribute, sort attribute, the sort attribute's type),
    projecting everything."""
    key_schema = [{"AttributeName": key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": key, "AttributeType": "S"}]
    if sort_key is not None:
        key_schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": sort_key, "AttributeType": "S"})
    extra: dict[str, Any] = {}
    if index is not None:
        index_name, partition, sort, sort_type = index
        attributes += [
            {"AttributeName": partition, "AttributeType": "S"},
            {"AttributeName": sort, "AttributeType": sort_type},
        ]
        extra["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index_name,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": sort, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    dynamodb.create_table(
        TableName=name,
        KeySchema=key_schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )


def create_tracking_table(dynamodb: Any) -> None:
    """The tracking table with its sparse index of open work, as the stack makes it."""
    from gateway import names

    create_table(
        dynamodb,
        names.TRACKING_TABLE_NAME,
        key=names.TRACKING_KEY_ATTRIBUTE,
        ttl_attribute=names.TRACKING_TTL_ATTRIBUTE,
        index=(
            names.TRACKING_OPEN_INDEX,
            names.TRACKING_OPEN_SHARD_ATTRIBUTE,
            names.TRACKING_DUE_ATTRIBUTE,
            "N",
        ),
    )


def create_suppression_table(dynamodb: Any) -> None:
    """The suppression list: keyed by `pk` and `sk`, entries expiring on TTL, as the stack makes it."""
    from gateway import names

    create_table(
        dynamodb,
        names.SUPPRESSION_TABLE_NAME,
        key=names.SUPPRESSION_KEY_ATTRIBUTE,
        sort_key=names.SUPPRESSION_SORT_ATTRIBUTE,
        ttl_attribute=names.SUPPRESSION_TTL_ATTRIBUTE,
    )


def create_schedule_table(dynamodb: Any) -> None:
    """The schedules table: keyed by `id`, listed by month and fire time, items expiring on TTL."""
    from gateway import names

    create_table(
        dynamodb,
        names.SCHEDULE_TABLE_NAME,
        key=names.SCHEDULE_KEY_ATTRIBUTE,
        ttl_attribute=names.SCHEDULE_TTL_ATTRIBUTE,
        index=(
            names.SCHEDULE_LIST_INDEX,
            names.SCHEDULE_LIST_PARTITION_ATTRIBUTE,
            names.SCHEDULE_LIST_SORT_ATTRIBUTE,
            "S",
        ),
    )


def create_usage_table(dynamodb: Any) -> None:
    """The caps' usage table: keyed by `pk` alone, no index, day items expiring on TTL, as the stack's."""
    from gateway import names

    create_table(
        dynamodb,
        names.USAGE_TABLE_NAME,
        key=names.USAGE_KEY_ATTRIBUTE,
        ttl_attribute=names.USAGE_TTL_ATTRIBUTE,
    )


def _create_bus(events: Any, sqs: Any | None) -> str | None:
    """The event bus, and with `sqs` a rule sending every event of ours to a queue (for tests)."""
    from gateway import names

    events.create_event_bus(Name=names.EVENT_BUS_NAME)
    if sqs is None:
        return None
    sink_url = sqs.create_queue(QueueName=EVENTS_SINK_QUEUE_NAME)["QueueUrl"]
    events.put_rule(
        Name="viber-gateway-all-events",
        EventBusName=names.EVENT_BUS_NAME,
        EventPattern=json.dumps({"source": [names.EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule="viber-gateway-all-events",
        EventBusName=names.EVENT_BUS_NAME,
        Targets=[{"Id": "sink", "Arn": _queue_arn(sqs, sink_url)}],
    )
    return str(sink_url)


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])
