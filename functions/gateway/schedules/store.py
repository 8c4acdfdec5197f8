"""The schedules table: one item per schedule, written under its version (optimistic locking).

Every change (a part fired, sent, failed, cancelled) reads the item, computes the new
schedule (gateway.schedules.model) and writes it back on condition that nobody else did
in between; a conflict reads again. DynamoDB is the one arbiter between a cancel and a
trigger that arrive together: whichever writes first wins, the other sees its result.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from gateway import names
from gateway.aws import aws_client
from gateway.schedules.model import Part, Schedule, State, parse_iso

WRITE_RETRIES = 10
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class Conflict(Exception):
    """The schedule changed between read and write."""


class AlreadyExists(Exception):
    """A schedule with this id exists (a retry under the same key)."""


class CursorError(ValueError):
    """A list cursor that this store did not hand out."""


class ScheduleStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.client: Any = aws_client("dynamodb")

    def create(self, schedule: Schedule) -> None:
        """Write a new schedule; AlreadyExists if its id is taken."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_item(schedule),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": names.SCHEDULE_KEY_ATTRIBUTE},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise AlreadyExists(schedule.id) from None

    def get(self, schedule_id: str) -> Schedule | None:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={names.SCHEDULE_KEY_ATTRIBUTE: {"S": schedule_id}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return None if item is None else _schedule(item)

    def replace(self, old: Schedule, new: Schedule) -> Schedule:
        """Write `new` over `old` if the item is still at `old`'s version; Conflict if not."""
        written = dataclasses.replace(new, version=old.version + 1)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_item(written),
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": {"N": str(old.version)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise Conflict(old.id) from None
        return written

    def delete(self, schedule: Schedule) -> None:
        """Remove a schedule that never took (its triggers could not all be set)."""
        self.client.delete_item(
            TableName=self.table_name,
            Key={names.SCHEDULE_KEY_ATTRIBUTE: {"S": schedule.id}},
            ConditionExpression="#version = :version",
            ExpressionAttributeNames={"#version": "version"},
            ExpressionAttributeValues={":version": {"N": str(schedule.version)}},
        )

    def change(
        self, schedule_id: str, update: Callable[[Schedule], Schedule | None]
    ) -> tuple[Schedule | None, Schedule | None]:
        """Apply `update` (None: no change) under optimistic locking: (before, after) as written."""
        for _ in range(WRITE_RETRIES):
            current = self.get(schedule_id)
            if current is None:
                return None, None
            new = update(current)
            if new is None:
                return current, current
            try:
                return current, self.replace(current, new)
            except Conflict:
                continue
        raise Conflict(schedule_id)

    def page(
        self,
        *,
        start: datetime,
        end: datetime,
        state: State | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Schedule], str | None]:
        """Schedules whose first part goes out in [start, end], in that order; the next page's cursor."""
        first_month, last_month = _month(start), _month(end)
        month, exclusive_start = _decode_cursor(cursor) if cursor else (first_month, None)
        if not first_month <= month <= last_month:
            raise CursorError("a cursor of another range")
        low = f"{start.astimezone(UTC).isoformat(timespec='seconds')}"
        high = f"{end.astimezone(UTC).isoformat(timespec='seconds')}~"
        found: list[Schedule] = []
        while month <= last_month:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": names.SCHEDULE_LIST_INDEX,
                "KeyConditionExpression": "#month = :month AND #fires BETWEEN :low AND :high",
                "ExpressionAttributeNames": {
                    "#month": names.SCHEDULE_LIST_PARTITION_ATTRIBUTE,
                    "#fires": names.SCHEDULE_LIST_SORT_ATTRIBUTE,
                },
                "ExpressionAttributeValues": {
                    ":month": {"S": month},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
                "Limit": limit - len(found),
            }
            if state is not None:
                request["FilterExpression"] = "#state = :state"
                request["ExpressionAttributeNames"]["#state"] = "state"
                request["ExpressionAttributeValues"][":state"] = {"S": state.value}
            if exclusive_start is not None:
                request["ExclusiveStartKey"] = exclusive_start
            try:
                answer = self.client.query(**request)
            except self.client.exceptions.ClientError as error:
                # A start key DynamoDB will not take: a forged cursor, or one of another range.
                if exclusive_start is not None and _is_validation_error(error):
                    raise CursorError("not a cursor this list handed out") from None
                raise
            found += [_schedule(item) for item in answer.get("Items", [])]
            exclusive_start = answer.get("LastEvaluatedKey")
            if exclusive_start is None:
                month = _next_month(month)
            if len(found) >= limit:
                if exclusive_start is None and month > last_month:
                    return found, None
                return found, _encode_cursor(month, exclusive_start)
        return found, None


def _item(schedule: Schedule) -> dict[str, Any]:
    last = parse_iso(schedule.last_send_at)
    expires = last + timedelta(days=names.SCHEDULE_RETENTION_DAYS)
    first = parse_iso(schedule.first_send_at)
    plain: dict[str, Any] = {
        names.SCHEDULE_KEY_ATTRIBUTE: schedule.id,
        "version": schedule.version,
        "state": schedule.state.value,
        "created_at": schedule.created_at,
        "send_at": schedule.send_at,
        "origin": schedule.origin,
        "fingerprint": schedule.fingerprint,
        # JSON text: the request keeps its exact shape (no DynamoDB number conversions).
        "request": json.dumps(schedule.request, separators=(",", ":")),
        "parts": [_part_item(part) for part in schedule.parts],
        names.SCHEDULE_LIST_PARTITION_ATTRIBUTE: _month(first),
        names.SCHEDULE_LIST_SORT_ATTRIBUTE: f"{first.isoformat(timespec='seconds')}#{schedule.id}",
        names.SCHEDULE_TTL_ATTRIBUTE: int(expires.timestamp()),
    }
    return {key: _serialize(value) for key, value in plain.items()}


def _part_item(part: Part) -> dict[str, Any]:
    plain: dict[str, Any] = {
        "part": part.number,
        "send_at": part.send_at,
        "zone": part.zone,
        "destinations": list(part.destinations),
        "state": part.state.value,
    }
    if part.fired_at is not None:
        plain["fired_at"] = part.fired_at
    if part.answer is not None:
        plain["answer"] = json.dumps(part.answer, separators=(",", ":"))
    if part.problem is not None:
        plain["problem"] = json.dumps(part.problem, separators=(",", ":"))
    return plain


def _schedule(item: dict[str, Any]) -> Schedule:
    plain = {key: _deserialize(value) for key, value in item.items()}
    return Schedule(
        id=plain[names.SCHEDULE_KEY_ATTRIBUTE],
        created_at=plain["created_at"],
        send_at=plain.get("send_at"),
        request=json.loads(plain["request"]),
        parts=tuple(_part(part) for part in plain["parts"]),
        origin=plain.get("origin", "api"),
        fingerprint=plain.get("fingerprint", ""),
        version=int(plain["version"]),
        state=State(plain["state"]),
    )


def _part(plain: dict[str, Any]) -> Part:
    return Part(
        number=int(plain["part"]),
        send_at=plain["send_at"],
        zone=plain.get("zone"),
        destinations=tuple(plain["destinations"]),
        state=State(plain["state"]),
        fired_at=plain.get("fired_at"),
        answer=json.loads(plain["answer"]) if plain.get("answer") else None,
        problem=json.loads(plain["problem"]) if plain.get("problem") else None,
    )


def _month(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def _is_validation_error(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return bool(code == "ValidationException")


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _encode_cursor(month: str, key: dict[str, Any] | None) -> str:
    plain = json.dumps({"month": month, "key": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, dict[str, Any] | None]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        month, key = plain["month"], plain["key"]
        if not isinstance(month, str) or len(month) != 7:
            raise ValueError
        datetime.strptime(month, "%Y-%m")
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CursorError("not a cursor this list handed out") from None
    # The index's LastEvaluatedKey: the table's key and the index's, all strings, nothing else.
    if key is not None and not (
        isinstance(key, dict)
        and set(key) == _CURSOR_KEY_ATTRIBUTES
        and all(
            isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) and value["S"]
            for value in key.values()
        )
    ):
        raise CursorError("not a cursor this list handed out")
    return month, key


_CURSOR_KEY_ATTRIBUTES = frozenset(
    {
        names.SCHEDULE_KEY_ATTRIBUTE,
        names.SCHEDULE_LIST_PARTITION_ATTRIBUTE,
        names.SCHEDULE_LIST_SORT_ATTRIBUTE,
    }
)
