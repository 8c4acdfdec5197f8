"""The size of what the idempotency store keeps, as DynamoDB counts it against its 400 KB item limit."""

from __future__ import annotations

import json
import random
from typing import Any

DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024
CHUNK = 1000  # names.DEFAULT_PROVIDER_CHUNK_SIZE


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """Attribute names plus values (strings in UTF-8, numbers as written), as DynamoDB sizes an item."""
    size = 0
    for name, value in item.items():
        ((kind, content),) = value.items()
        size += len(name.encode()) + (len(str(content).encode()) if kind in ("S", "N") else len(content))
    return size


def worst_case_record_bytes(destinations: list[str], *, seed: int = 7) -> int:
    """The stored answer for `destinations` if every id were a random 20-digit number (none in sequence)."""
    from gateway.provider.client import SendResult, SentMessage
    from gateway.sending.idempotency import attempt_record
    from gateway.sending.send import SendAttempt

    rng = random.Random(seed)  # noqa: S311 - benchmark data, not cryptography
    chunks = [destinations[i : i + CHUNK] for i in range(0, len(destinations), CHUNK)]
    outcomes: list[SendResult | Any] = [
        SendResult(10**9 + index, [SentMessage(d, rng.randrange(10**19, 10**20)) for d in chunk])
        for index, chunk in enumerate(chunks)
    ]
    return len(json.dumps(attempt_record(SendAttempt(chunks, outcomes, 0))).encode())
