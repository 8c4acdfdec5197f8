"""The tracking table: what was sent, for the tracker to follow until it is final or its window ends.

A send writes one *submission* item per provider request (a few writes for
10,000 destinations: the send path stays fast); the tracker takes each in as
one *message* item per destination, then keeps each message's last known
status. Items the tracker still has work on carry the attributes of a sparse
index (`open_shard`, `due_at`): submissions under their own shard, open
messages spread over a few shards by id, each due for its next poll. A message
leaves the index when it is final or its window has ended, and the table when
its TTL passes (a week after the window, so lookups still find its reference).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from gateway import names
from gateway.aws import aws_client
from gateway.compact import id_runs, ids_from_runs
from gateway.provider.client import SendResult
from gateway.provider.statuses import Channel, State, StatusRecord, status_meaning

SUBMISSION_SHARD = "submissions"
UNKNOWN_SHARD = "unknown"  # sends whose outcome is unknown, until the reconciler settles them
UNSAVED_SHARD = "unsaved"  # answers the idempotency store could not take, until the reconciler saves them
UNKNOWN_KEPT_SECONDS = 30 * 86_400
MESSAGE_SHARDS = 4  # open messages spread over these, so no one index partition takes every write
KEPT_AFTER_WINDOW_SECONDS = 7 * 86_400
BATCH_WRITE_LIMIT = 25  # DynamoDB BatchWriteItem
BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem
UNPROCESSED_RETRIES = 5
LEASE_ID = "lease#tracker"
RECONCILE_LEASE_ID = "lease#reconcile"
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


@dataclass(frozen=True, slots=True)
class TrackedMessage:
    """One destination of a send, as the tracker last saw it."""

    smsid: str
    destination: str
    reference: str | None
    sms_fallback: bool  # sent as IM_SMSFB: a Viber failure is not final, the SMS may follow
    submission_id: str | None
    submitted_at: int  # unix seconds: when the provider accepted it
    tracking_until: int  # unix seconds: the end of its tracking window
    state: State = State.QUEUED
    channel: Channel = Channel.VIBER
    final: bool = False
    code: int | None = None
    text: str = ""
    updated_at: int | None = None  # unix seconds: when the provider last changed its status
    sms_count: int | None = None
    charge: Decimal | None = None
    polls: int = 0
    tracking_ended: bool = False  # its window ended before it was final

    @property
    def open(self) -> bool:
        return not (self.final or self.tracking_ended)


def with_status(message: TrackedMessage, record: StatusRecord) -> TrackedMessage:
    """The message as LiveAll's status record says it is now."""
    meaning = status_meaning(record.code, sms_fallback=message.sms_fallback)
    return replace(
        message,
        state=meaning.state,
        channel=meaning.channel,
        final=meaning.final,
        code=record.code,
        text=record.text,
        updated_at=int(record.updated_at.timestamp()) if record.updated_at else message.updated_at,
        sms_count=record.sms_count,
        charge=record.charge,
    )


def untracked(record: StatusRecord) -> TrackedMessage:
    """A message the table does not hold (sent before tracking, or by another system): its record only.

    Whether it was sent with SMS fallback is unknown, so a Viber failure is not called final.
    """
    submitted_at = int(record.submitted_at.timestamp()) if record.submitted_at else 0
    message = TrackedMessage(
        smsid=record.smsid,
        destination=record.destination,
        reference=None,
        sms_fallback=True,
        submission_id=None,
        submitted_at=submitted_at,
        tracking_until=submitted_at,
    )
    return with_status(message, record)


@dataclass(frozen=True, slots=True)
class UnknownSend:
    """One provider request whose outcome is unknown, with what the reconciler needs to settle it."""

    id: str
    key: str | None  # the idempotency store key of its send, if any
    origin: str  # "api" or "queue"
    message_id: str | None  # the queue: the SourceMessageId its dead letter carries
    partial: bool  # its send was partial: its dead letter is the remainder, under remainder_key()
    payload: dict[str, Any]  # the request as checked: the idempotency job's payload
    chunk_index: int  # which provider request of the send
    destinations: list[str]
    sender: str  # im_sender_name: the history's senderid
    sms_fallback: bool
    reference: str | None
    started_at: float  # unix seconds: the send began ...
    finished_at: float  # ... and gave up on an answer
    status: str = "open"  # open, ambiguous; sent, not-sent, dismissed once settled
    candidates: list[dict[str, Any]] = field(default_factory=list)  # when ambiguous
    checked_at: float | None = None
    resolved_smsids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Submission:
    """One provider request's messages, waiting to be taken in by the tracker."""

    key: str
    messages: list[TrackedMessage]


class TrackingStore:
    """The tracking table, through the process's one boto3 session."""

    def __init__(
        self, table_name: str, window_seconds: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.table_name = table_name
        self.window_seconds = window_seconds
        self.clock = clock
        # Made here, on first use (the send path makes the store only when tracking is on).
        self.client: Any = aws_client("dynamodb")

    # ----- the send path ----------------------------------------------------------------------

    def record_sent(self, results: list[SendResult], *, reference: str | None, sms_fallback: bool) -> None:
        """One submission item per provider request; a few writes whatever the number of destinations."""
        self.write_items(self.submission_items(results, reference=reference, sms_fallback=sms_fallback))

    def write_items(self, items: list[dict[str, Any]]) -> None:
        self._write(items)

    def write_if_absent(self, item: dict[str, Any]) -> None:
        """Write a kept item (gateway.tracking.backlog) unless it is there already (taken in, or written)."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(
                TableName=self.table_name,
                Item=_marshal(item),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": names.TRACKING_KEY_ATTRIBUTE},
            )

    def submission_items(
        self, results: list[SendResult], *, reference: str | None, sms_fallback: bool
    ) -> list[dict[str, Any]]:
        """The items that record a send's provider requests, as of now (written by record_sent)."""
        now = int(self.clock())
        items = []
        for result in results:
            if not result.messages:
                continue
            ids = [message.smsid for message in result.messages]
            item: dict[str, Any] = {
                names.TRACKING_KEY_ATTRIBUTE: f"submission#{result.submission_id}#{ids[0]}",
                "submission_id": None if result.submission_id is None else str(result.submission_id),
                "smsids": json.dumps(id_runs(ids), separators=(",", ":")),
                "destinations": ",".join(message.destination for message in result.messages),
                "reference": reference,
                "sms_fallback": sms_fallback,
                "submitted_at": now,
                names.TRACKING_TTL_ATTRIBUTE: now + self.window_seconds + KEPT_AFTER_WINDOW_SECONDS,
                names.TRACKING_OPEN_SHARD_ATTRIBUTE: SUBMISSION_SHARD,
                names.TRACKING_DUE_ATTRIBUTE: now,
            }
            items.append(item)
        return items

    # ----- the tracker ------------------------------------------------------------------------

    def record_unknown(self, unknowns: Iterable[UnknownSend]) -> None:
        self._write([_unknown_item(unknown, open_=True, now=int(self.clock())) for unknown in unknowns])

    def open_unknowns(self) -> list[UnknownSend]:
        """The sends not settled yet (open or ambiguous), oldest first."""
        found = [_unknown(item) for item in self._open(UNKNOWN_SHARD, None)]
        return sorted(found, key=lambda unknown: (unknown.started_at, unknown.chunk_index))

    def save_unknown(self, unknown: UnknownSend) -> None:
        """Store it as it stands; settled ones leave the index."""
        open_ = unknown.status in ("open", "ambiguous")
        self._write([_unknown_item(unknown, open_=open_, now=int(self.clock()))])

    def record_unsaved_answer(self, key: str, payload: dict[str, Any], record: dict[str, Any]) -> None:
        now = int(self.clock())
        item = {
            names.TRACKING_KEY_ATTRIBUTE: f"unsaved#{key}",
            "key": key,
            "payload_z": _compressed(payload),
            "record_z": _compressed(record),
            names.TRACKING_TTL_ATTRIBUTE: now + UNKNOWN_KEPT_SECONDS,
            names.TRACKING_OPEN_SHARD_ATTRIBUTE: UNSAVED_SHARD,
            names.TRACKING_DUE_ATTRIBUTE: now,
        }
        self.client.put_item(TableName=self.table_name, Item=_marshal(item))

    def unsaved_answers(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(key, payload, record) of each answer waiting to be saved into the idempotency store."""
        return [
            (str(item["key"]), _decompressed(item["payload_z"]), _decompressed(item["record_z"]))
            for item in self._open(UNSAVED_SHARD, None)
        ]

    def forget_unsaved_answer(self, key: str) -> None:
        self.client.delete_item(
            TableName=self.table_name, Key={names.TRACKING_KEY_ATTRIBUTE: {"S": f"unsaved#{key}"}}
        )

    def pending_submissions(self) -> list[Submission]:
        return [_submission(item, self.window_seconds) for item in self._open(SUBMISSION_SHARD, None)]

    def take_in(self, submission: Submission) -> None:
        """Write its messages as message items, then remove the submission item."""
        self._write([_message_item(message, due_at=message.submitted_at) for message in submission.messages])
        self.client.delete_item(
            TableName=self.table_name, Key={names.TRACKING_KEY_ATTRIBUTE: {"S": submission.key}}
        )

    def open_messages(self, due_by: int) -> list[TrackedMessage]:
        """Every open message due for a poll by `due_by` (unix seconds), oldest first."""
        found = [_message(item) for shard in range(MESSAGE_SHARDS) for item in self._open(str(shard), due_by)]
        return sorted(found, key=lambda message: (message.submitted_at, message.smsid))

    def save_many(self, messages: list[tuple[TrackedMessage, int | None]]) -> None:
        """Store each message as it is now; its `due_at` keeps it in the index (None takes it out)."""
        self._write([_message_item(message, due_at=due_at) for message, due_at in messages])

    def get_many(self, smsids: list[str]) -> dict[str, TrackedMessage]:
        """The messages the table holds among `smsids` (taken in by the tracker, or still waiting to be)."""
        found: dict[str, TrackedMessage] = {}
        wanted = list(dict.fromkeys(smsids))
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys: list[dict[str, Any]] = [
                {names.TRACKING_KEY_ATTRIBUTE: {"S": f"message#{smsid}"}}
                for smsid in wanted[start : start + BATCH_GET_LIMIT]
            ]
            for _ in range(UNPROCESSED_RETRIES):
                answer = self.client.batch_get_item(RequestItems={self.table_name: {"Keys": keys}})
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    message = _message(_unmarshal(item))
                    found[message.smsid] = message
                keys = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if not keys:
                    break
        missing = set(wanted) - set(found)
        if missing:  # sent within the last minute: still in its submission item
            for submission in self.pending_submissions():
                found.update({m.smsid: m for m in submission.messages if m.smsid in missing})
        return found

    def get_state(self, state_id: str) -> dict[str, Any]:
        """A small record of the scheduled tasks' own (the balance check's last verdict)."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={names.TRACKING_KEY_ATTRIBUTE: {"S": state_id}},
            ConsistentRead=True,
        )
        return _unmarshal(answer.get("Item", {}))

    def put_state(self, state_id: str, state: dict[str, Any]) -> None:
        item = {names.TRACKING_KEY_ATTRIBUTE: state_id, **state}
        self.client.put_item(TableName=self.table_name, Item=_marshal(item))

    def acquire_lease(self, owner: str, seconds: int, lease_id: str = LEASE_ID) -> bool:
        """Whether this run may go on: one at a time, even if a run outlasts the schedule's period."""
        now = int(self.clock())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_marshal(
                    {
                        names.TRACKING_KEY_ATTRIBUTE: lease_id,
                        "owner": owner,
                        "lease_until": now + seconds,
                        names.TRACKING_TTL_ATTRIBUTE: now + seconds + 3600,
                    }
                ),
                ConditionExpression="attribute_not_exists(#id) OR lease_until < :now OR #owner = :owner",
                ExpressionAttributeNames={"#id": names.TRACKING_KEY_ATTRIBUTE, "#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":owner": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, owner: str, lease_id: str = LEASE_ID) -> None:
        # If it expired and another run took it, that run's lease stays.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.table_name,
                Key={names.TRACKING_KEY_ATTRIBUTE: {"S": lease_id}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )

    # ----- plumbing ---------------------------------------------------------------------------

    def _open(self, shard: str, due_by: int | None) -> Iterator[dict[str, Any]]:
        condition = "#shard = :shard"
        values: dict[str, Any] = {":shard": {"S": shard}}
        if due_by is not None:
            condition += " AND #due <= :due"
            values[":due"] = {"N": str(due_by)}
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": names.TRACKING_OPEN_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#shard": names.TRACKING_OPEN_SHARD_ATTRIBUTE,
                **({"#due": names.TRACKING_DUE_ATTRIBUTE} if due_by is not None else {}),
            },
            "ExpressionAttributeValues": values,
        }
        while True:
            answer = self.client.query(**arguments)
            for item in answer.get("Items", []):
                yield _unmarshal(item)
            if "LastEvaluatedKey" not in answer:
                return
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _write(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            requests = [
                {"PutRequest": {"Item": _marshal(item)}} for item in items[start : start + BATCH_WRITE_LIMIT]
            ]
            for attempt in range(UNPROCESSED_RETRIES):
                answer = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = answer.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    break
                time.sleep(0.05 * 2**attempt)  # DynamoDB throttled some: back off a little
            if requests:
                raise RuntimeError(f"DynamoDB left {len(requests)} tracking items unwritten")


def _message_item(message: TrackedMessage, *, due_at: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        names.TRACKING_KEY_ATTRIBUTE: f"message#{message.smsid}",
        "smsid": message.smsid,
        "destination": message.destination,
        "reference": message.reference,
        "sms_fallback": message.sms_fallback,
        "submission_id": message.submission_id,
        "submitted_at": message.submitted_at,
        "tracking_until": message.tracking_until,
        "state": message.state.value,
        "channel": message.channel.value,
        "final": message.final,
        "code": message.code,
        "text": message.text,
        "updated_at": message.updated_at,
        "sms_count": message.sms_count,
        "charge": message.charge,
        "polls": message.polls,
        "tracking_ended": message.tracking_ended,
        names.TRACKING_TTL_ATTRIBUTE: message.tracking_until + KEPT_AFTER_WINDOW_SECONDS,
    }
    if due_at is not None:
        item[names.TRACKING_OPEN_SHARD_ATTRIBUTE] = str(int(message.smsid) % MESSAGE_SHARDS)
        item[names.TRACKING_DUE_ATTRIBUTE] = due_at
    return item


def _message(item: dict[str, Any]) -> TrackedMessage:
    return TrackedMessage(
        smsid=str(item["smsid"]),
        destination=str(item["destination"]),
        reference=item.get("reference"),
        sms_fallback=bool(item.get("sms_fallback")),
        submission_id=item.get("submission_id"),
        submitted_at=int(item["submitted_at"]),
        tracking_until=int(item["tracking_until"]),
        state=State(item.get("state", State.QUEUED.value)),
        channel=Channel(item.get("channel", Channel.VIBER.value)),
        final=bool(item.get("final")),
        code=_optional_int(item.get("code")),
        text=str(item.get("text") or ""),
        updated_at=_optional_int(item.get("updated_at")),
        sms_count=_optional_int(item.get("sms_count")),
        charge=item.get("charge"),
        polls=int(item.get("polls") or 0),
        tracking_ended=bool(item.get("tracking_ended")),
    )


def _submission(item: dict[str, Any], window_seconds: int) -> Submission:
    ids = ids_from_runs(json.loads(item["smsids"]))
    destinations = str(item["destinations"]).split(",")
    submitted_at = int(item["submitted_at"])
    template = TrackedMessage(
        smsid="",
        destination="",
        reference=item.get("reference"),
        sms_fallback=bool(item.get("sms_fallback")),
        submission_id=item.get("submission_id"),
        submitted_at=submitted_at,
        tracking_until=submitted_at + window_seconds,
    )
    messages = [
        replace(template, smsid=str(smsid), destination=destination)
        for smsid, destination in zip(ids, destinations, strict=True)
    ]
    return Submission(str(item[names.TRACKING_KEY_ATTRIBUTE]), messages)


def _unknown_item(unknown: UnknownSend, *, open_: bool, now: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        names.TRACKING_KEY_ATTRIBUTE: f"unknown#{unknown.id}",
        "unknown_id": unknown.id,
        "key": unknown.key,
        "origin": unknown.origin,
        "message_id": unknown.message_id,
        "partial": unknown.partial,
        "payload_z": _compressed(unknown.payload),
        "chunk_index": unknown.chunk_index,
        "destinations": ",".join(unknown.destinations),
        "sender": unknown.sender,
        "sms_fallback": unknown.sms_fallback,
        "reference": unknown.reference,
        "started_at": Decimal(str(round(unknown.started_at, 3))),
        "finished_at": Decimal(str(round(unknown.finished_at, 3))),
        "status": unknown.status,
        "candidates": json.dumps(unknown.candidates) if unknown.candidates else None,
        "checked_at": None if unknown.checked_at is None else Decimal(str(round(unknown.checked_at, 3))),
        "resolved_smsids": ",".join(unknown.resolved_smsids) or None,
        names.TRACKING_TTL_ATTRIBUTE: int(unknown.started_at) + UNKNOWN_KEPT_SECONDS,
    }
    if open_:
        item[names.TRACKING_OPEN_SHARD_ATTRIBUTE] = UNKNOWN_SHARD
        item[names.TRACKING_DUE_ATTRIBUTE] = now
    return item


def _unknown(item: dict[str, Any]) -> UnknownSend:
    return UnknownSend(
        id=str(item["unknown_id"]),
        key=item.get("key"),
        origin=str(item["origin"]),
        message_id=item.get("message_id"),
        partial=bool(item.get("partial")),
        payload=_decompressed(item["payload_z"]),
        chunk_index=int(item["chunk_index"]),
        destinations=str(item["destinations"]).split(","),
        sender=str(item["sender"]),
        sms_fallback=bool(item.get("sms_fallback")),
        reference=item.get("reference"),
        started_at=float(item["started_at"]),
        finished_at=float(item["finished_at"]),
        status=str(item.get("status", "open")),
        candidates=json.loads(item["candidates"]) if item.get("candidates") else [],
        checked_at=None if item.get("checked_at") is None else float(item["checked_at"]),
        resolved_smsids=str(item["resolved_smsids"]).split(",") if item.get("resolved_smsids") else [],
    )


def _compressed(document: dict[str, Any]) -> str:
    return base64.b64encode(zlib.compress(json.dumps(document).encode(), 9)).decode("ascii")


def _decompressed(text: str) -> dict[str, Any]:
    return dict(json.loads(zlib.decompress(base64.b64decode(text))))


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    # None is left out rather than stored as NULL: absent and unknown are the same here.
    return {key: _serialize(value) for key, value in item.items() if value is not None}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserialize(value) for key, value in item.items()}
