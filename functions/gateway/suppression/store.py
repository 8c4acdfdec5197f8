"""The suppression table: one item per entry for the list's API, one item per bucket for the send path.

Entry items (`pk` = `entry#<number>`, `sk` = scope) hold everything said of an
entry: reason, scope, note, when and by whom it was added, expiry (also the
table's TTL attribute, so DynamoDB erases an expired entry by itself). Bucket
items (`pk` = `bucket#<n>`, `sk` = `members`) hold, for every entry of the
numbers in the bucket, one line with what a send needs (gateway.suppression.rules),
and a version. A single entry's change writes its entry and its bucket in one
transaction, the bucket under its version (optimistic locking, retried), so the
two never disagree. An import writes each bucket first, then the entries: what
sends see is never behind what was imported, and an interrupted import can be
repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from gateway import names
from gateway.aws import aws_client
from gateway.suppression.rules import (
    Member,
    Suppressed,
    bucket_of,
    members_text,
    parse_members,
    scope_of,
    sender_of,
    suppressed_by,
)

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
CONCURRENT_READS = 4
CONCURRENT_WRITES = 8
WRITE_RETRIES = 8
UNPROCESSED_RETRIES = 5
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


@dataclass(frozen=True, slots=True)
class Entry:
    number: str
    reason: str
    sender: str | None = None  # None: every sender
    note: str | None = None
    expires_at: int | None = None  # unix seconds
    added_at: int = 0
    added_by: str = ""

    @property
    def scope(self) -> str:
        return scope_of(self.sender)

    def member(self) -> Member:
        return Member(self.number, self.scope, self.reason, self.expires_at)

    def same_listing(self, other: Entry) -> bool:
        """Whether writing `other` over this one would change nothing but who wrote it and when."""
        return (self.reason, self.note, self.expires_at) == (other.reason, other.note, other.expires_at)


@dataclass
class ImportResult:
    added: list[Entry] = field(default_factory=list)
    updated: list[Entry] = field(default_factory=list)
    unchanged: int = 0


class CursorError(ValueError):
    """A list cursor that this store did not hand out."""


class SuppressionStore:
    def __init__(self, table_name: str, *, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self.clock = clock
        self.client: Any = aws_client("dynamodb")

    # ----- the send path ------------------------------------------------------------------

    def check(self, destinations: list[str], sender: str) -> list[Suppressed]:
        """The destinations the list stops for a send by `sender`: one read per bucket touched."""
        buckets = sorted({bucket_of(number) for number in destinations})
        texts = self._bucket_texts(buckets)
        wanted = set(destinations)
        members: dict[str, list[Member]] = {}
        for text in texts:
            members.update(parse_members(text, wanted))
        return suppressed_by(destinations, members, sender, self.clock())

    def _bucket_texts(self, buckets: list[int]) -> list[str]:
        if len(buckets) == 1:
            answer = self.client.get_item(TableName=self.table_name, Key=_bucket_key(buckets[0]))
            item = answer.get("Item")
            return [item["members"]["S"]] if item else []
        groups = [buckets[i : i + BATCH_GET_LIMIT] for i in range(0, len(buckets), BATCH_GET_LIMIT)]
        if len(groups) == 1:
            return self._batch_get_texts(groups[0])
        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(groups))) as pool:
            return [text for texts in pool.map(self._batch_get_texts, groups) for text in texts]

    def _batch_get_texts(self, buckets: list[int]) -> list[str]:
        items = self._batch_get([_bucket_key(bucket) for bucket in buckets], projection="members")
        return [item["members"]["S"] for item in items]

    def _batch_get(
        self, keys: list[dict[str, Any]], *, projection: str | None = None
    ) -> list[dict[str, Any]]:
        """The items of `keys` that exist, BATCH_GET_LIMIT keys a call, unprocessed keys asked again."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {"Keys": keys[start : start + BATCH_GET_LIMIT]}
            if projection is not None:
                request["ProjectionExpression"] = projection
            for _ in range(UNPROCESSED_RETRIES + 1):
                answer = self.client.batch_get_item(RequestItems={self.table_name: request})
                found += answer.get("Responses", {}).get(self.table_name, [])
                request["Keys"] = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if not request["Keys"]:
                    break
            else:
                raise RuntimeError("DynamoDB left suppression items unread after retries")
        return found

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """Put and delete requests, BATCH_WRITE_LIMIT a call, unprocessed ones sent again."""
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = requests[start : start + BATCH_WRITE_LIMIT]
            for _ in range(UNPROCESSED_RETRIES + 1):
                answer = self.client.batch_write_item(RequestItems={self.table_name: pending})
                pending = answer.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
            else:
                raise RuntimeError("DynamoDB left suppression items unwritten after retries")

    # ----- one entry ----------------------------------------------------------------------

    def get(self, number: str) -> list[Entry]:
        """The number's entries in force (every scope), every-sender first."""
        now = self.clock()
        live = [
            entry for entry in self._entries(number) if entry.expires_at is None or entry.expires_at > now
        ]
        return sorted(live, key=lambda entry: (entry.sender is not None, entry.sender or ""))

    def put(self, entry: Entry) -> tuple[Entry, bool]:
        """Add or update one entry; (the entry as stored, whether anything changed)."""
        existing = {e.scope: e for e in self.get(entry.number)}.get(entry.scope)
        if existing is not None and existing.same_listing(entry):
            return existing, False
        bucket = bucket_of(entry.number)

        def change(members: dict[tuple[str, str], Member]) -> list[dict[str, Any]]:
            members[(entry.number, entry.scope)] = entry.member()
            return [{"Put": {"TableName": self.table_name, "Item": _marshal(_entry_item(entry))}}]

        self._transact_bucket(bucket, change)
        return entry, True

    def delete(self, number: str, sender: str | None, *, every_scope: bool) -> list[Entry]:
        """Remove the number's entry for `sender` (or every one of its entries); the ones in force removed.

        Everything kept of the number goes: expired entries DynamoDB has not erased yet, their
        lines in the bucket, and (with every scope) its count of failed deliveries.
        """
        now = self.clock()
        matching = [e for e in self._entries(number) if every_scope or e.sender == sender]
        scopes = {entry.scope for entry in matching}
        if every_scope:
            scopes |= {
                scope for (listed, scope) in self._read_bucket(bucket_of(number))[0] if listed == number
            }

        def change(members: dict[tuple[str, str], Member]) -> list[dict[str, Any]]:
            for scope in scopes:
                members.pop((number, scope), None)
            actions: list[dict[str, Any]] = [
                {"Delete": {"TableName": self.table_name, "Key": _entry_key(number, scope)}}
                for scope in scopes
            ]
            if every_scope:
                actions.append({"Delete": {"TableName": self.table_name, "Key": _failures_key(number)}})
            return actions

        if scopes or every_scope:
            self._transact_bucket(bucket_of(number), change)
        return [e for e in matching if e.expires_at is None or e.expires_at > now]

    def _entries(self, number: str) -> list[Entry]:
        """Every entry item of the number, expired or not."""
        answer = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _entry_pk(number)}},
            ConsistentRead=True,
        )
        return [_entry(_unmarshal(item)) for item in answer.get("Items", [])]

    def _transact_bucket(
        self, bucket: int, change: Callable[[dict[tuple[str, str], Member]], list[dict[str, Any]]]
    ) -> None:
        """Apply `change` to a bucket and write it with the entry items it returns, in one transaction."""
        for _ in range(WRITE_RETRIES):
            members, version = self._read_bucket(bucket)
            actions = change(members)
            actions.append(self._bucket_write(bucket, members, version))
            try:
                self.client.transact_write_items(TransactItems=actions)
                return
            except self.client.exceptions.TransactionCanceledException:
                continue  # another writer changed the bucket in between: read it again
        raise RuntimeError("the suppression bucket kept changing under this write")

    def _read_bucket(self, bucket: int) -> tuple[dict[tuple[str, str], Member], int]:
        answer = self.client.get_item(TableName=self.table_name, Key=_bucket_key(bucket), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return {}, 0
        found = parse_members(item["members"]["S"])
        members = {(m.number, m.scope): m for listed in found.values() for m in listed}
        return members, int(item["version"]["N"])

    def _bucket_write(
        self, bucket: int, members: dict[tuple[str, str], Member], version: int
    ) -> dict[str, Any]:
        item = {
            **_bucket_key(bucket),
            "members": {"S": members_text(members)},
            "version": {"N": str(version + 1)},
        }
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :version"
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item, "ConditionExpression": condition}
        if version:
            put["ExpressionAttributeValues"] = {":version": {"N": str(version)}}
        return {"Put": put}

    # ----- many entries -------------------------------------------------------------------

    def import_entries(self, entries: list[Entry]) -> ImportResult:
        """Add or update many entries (already validated): each bucket first, then its entry items.

        An entry already listed with the same reason, note and expiry is left as it is, so a
        repeated import changes nothing and reports nothing new.
        """
        result = ImportResult()
        by_bucket: dict[int, list[Entry]] = {}
        for entry in entries:
            by_bucket.setdefault(bucket_of(entry.number), []).append(entry)
        existing = self._existing(entries)
        changed_by_bucket: dict[int, list[Entry]] = {}
        for bucket, bucket_entries in sorted(by_bucket.items()):
            changed = [e for e in bucket_entries if not _unchanged(existing.get((e.number, e.scope)), e)]
            result.unchanged += len(bucket_entries) - len(changed)
            if changed:
                changed_by_bucket[bucket] = changed
        # Buckets are independent: written CONCURRENT_WRITES at a time, each before its entries.
        with ThreadPoolExecutor(max_workers=CONCURRENT_WRITES) as pool:
            list(pool.map(lambda item: self._write_bucket(*item), changed_by_bucket.items()))
            to_write = [entry for changed in changed_by_bucket.values() for entry in changed]
            puts = [{"PutRequest": {"Item": _marshal(_entry_item(entry))}} for entry in to_write]
            slices = [puts[i : i + BATCH_WRITE_LIMIT] for i in range(0, len(puts), BATCH_WRITE_LIMIT)]
            list(pool.map(self._batch_write, slices))
        for entry in to_write:
            (result.updated if (entry.number, entry.scope) in existing else result.added).append(entry)
        return result

    def _existing(self, entries: list[Entry]) -> dict[tuple[str, str], Entry]:
        keys = list({(e.number, e.scope): _entry_key(e.number, e.scope) for e in entries}.values())
        found = [_entry(_unmarshal(item)) for item in self._batch_get(keys)]
        return {(entry.number, entry.scope): entry for entry in found}

    def _write_bucket(self, bucket: int, entries: list[Entry]) -> None:
        for _ in range(WRITE_RETRIES):
            members, version = self._read_bucket(bucket)
            for entry in entries:
                members[(entry.number, entry.scope)] = entry.member()
            try:
                self.client.put_item(**self._bucket_write(bucket, members, version)["Put"])
                return
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
        raise RuntimeError("the suppression bucket kept changing under this import")

    def page(
        self,
        *,
        reason: str | None,
        sender: str | None,
        every_sender_only: bool,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Entry], str | None]:
        """A page of entries in force, filtered; the cursor of the next page (None at the end)."""
        conditions = ["begins_with(pk, :entry)"]
        values: dict[str, Any] = {":entry": {"S": "entry#"}}
        if reason is not None:
            conditions.append("reason = :reason")
            values[":reason"] = {"S": reason}
        if sender is not None or every_sender_only:
            conditions.append("sk = :scope")
            values[":scope"] = {"S": scope_of(sender)}
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        start = _decode_cursor(cursor)
        now = self.clock()
        found: list[Entry] = []
        while True:
            if start is not None:
                arguments["ExclusiveStartKey"] = start
            arguments["Limit"] = max(limit - len(found), 1) * 4  # the filter drops buckets and other keys
            answer = self.client.scan(**arguments)
            for item in answer.get("Items", []):
                entry = _entry(_unmarshal(item))
                if entry.expires_at is None or entry.expires_at > now:
                    found.append(entry)
                if len(found) == limit:
                    return found, _encode_cursor(_entry_key(entry.number, entry.scope))
            start = answer.get("LastEvaluatedKey")
            if start is None:
                return found, None

    # ----- automatic suppression of dead numbers --------------------------------------------

    def record_deliveries(self, outcomes: Iterable[tuple[str, bool]], threshold: int) -> list[Entry]:
        """Count final outcomes per number: `True` a failure, `False` a delivery (which resets).

        A number whose failures in a row reach `threshold` is suppressed for every sender with
        reason `bounced`; the entries added are returned. Only the tracker calls this, one run
        at a time (its lease), so the counts are read and written without conditions.
        """
        final: dict[str, list[bool]] = {}
        for number, failed in outcomes:
            final.setdefault(number, []).append(failed)
        if not final or threshold <= 0:
            return []
        counts = self._failure_counts(list(final))
        added: list[Entry] = []
        writes: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        now = int(self.clock())
        for number, results in final.items():
            count = counts.get(number, 0)
            for failed in results:
                count = count + 1 if failed else 0
            if count >= threshold:
                entry = Entry(
                    number,
                    "bounced",
                    added_at=now,
                    added_by="delivery-tracking",
                    note=f"{count} deliveries in a row failed for good",
                )
                if not any(e.sender is None for e in self.get(number)):
                    self.put(entry)
                    added.append(entry)
                count = 0
            if count:
                writes.append(_marshal({**_plain(_failures_key(number)), "failures": count}))
            elif number in counts:
                deletes.append(_failures_key(number))
        requests = [{"PutRequest": {"Item": item}} for item in writes]
        requests += [{"DeleteRequest": {"Key": key}} for key in deletes]
        self._batch_write(requests)
        return added

    def _failure_counts(self, numbers: list[str]) -> dict[str, int]:
        items = self._batch_get([_failures_key(number) for number in numbers])
        return {
            item[names.SUPPRESSION_KEY_ATTRIBUTE]["S"].removeprefix("failures#"): int(item["failures"]["N"])
            for item in items
        }


def _unchanged(existing: Entry | None, entry: Entry) -> bool:
    return existing is not None and existing.same_listing(entry)


def _entry_pk(number: str) -> str:
    return f"entry#{number}"


def _entry_key(number: str, scope: str) -> dict[str, Any]:
    return {
        names.SUPPRESSION_KEY_ATTRIBUTE: {"S": _entry_pk(number)},
        names.SUPPRESSION_SORT_ATTRIBUTE: {"S": scope},
    }


def _failures_key(number: str) -> dict[str, Any]:
    """A number's run of deliveries that failed for good (automatic suppression), kept beside its entries."""
    return {
        names.SUPPRESSION_KEY_ATTRIBUTE: {"S": f"failures#{number}"},
        names.SUPPRESSION_SORT_ATTRIBUTE: {"S": "run"},
    }


def _plain(key: dict[str, Any]) -> dict[str, str]:
    return {name: value["S"] for name, value in key.items()}


def _bucket_key(bucket: int) -> dict[str, Any]:
    return {
        names.SUPPRESSION_KEY_ATTRIBUTE: {"S": f"bucket#{bucket}"},
        names.SUPPRESSION_SORT_ATTRIBUTE: {"S": "members"},
    }


def _entry_item(entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        names.SUPPRESSION_KEY_ATTRIBUTE: _entry_pk(entry.number),
        names.SUPPRESSION_SORT_ATTRIBUTE: entry.scope,
        "number": entry.number,
        "reason": entry.reason,
        "added_at": entry.added_at,
        "added_by": entry.added_by,
    }
    if entry.sender is not None:
        item["sender"] = entry.sender
    if entry.note is not None:
        item["note"] = entry.note
    if entry.expires_at is not None:
        item[names.SUPPRESSION_TTL_ATTRIBUTE] = entry.expires_at
    return item


def _entry(item: dict[str, Any]) -> Entry:
    expires = item.get(names.SUPPRESSION_TTL_ATTRIBUTE)
    return Entry(
        number=str(item["number"]),
        reason=str(item["reason"]),
        sender=sender_of(str(item[names.SUPPRESSION_SORT_ATTRIBUTE])),
        note=item.get("note"),
        expires_at=None if expires is None else int(expires),
        added_at=int(item.get("added_at", 0)),
        added_by=str(item.get("added_by", "")),
    )


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serialize(value) for key, value in item.items() if value is not None}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserialize(value) for key, value in item.items()}


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("not a cursor this list handed out") from None
    keys = {names.SUPPRESSION_KEY_ATTRIBUTE, names.SUPPRESSION_SORT_ATTRIBUTE}
    if (
        not isinstance(plain, dict)
        or set(plain) != keys
        or not all(isinstance(v, str) for v in plain.values())
    ):
        raise CursorError("not a cursor this list handed out")
    if not plain[names.SUPPRESSION_KEY_ATTRIBUTE].startswith("entry#"):
        raise CursorError("not a cursor this list handed out")
    return {name: {"S": value} for name, value in plain.items()}
