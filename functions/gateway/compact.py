"""Message ids in a compact form: runs `[first, count]` where integer ids follow each other.

The provider hands out ids in sequence within a request, so 10,000 ids usually
take a few runs. Used by the idempotency records and the tracking records.
"""

from __future__ import annotations

from typing import Any


def id_runs(ids: list[int | str]) -> list[Any]:
    """Integer ids in runs `[first, count]` where they follow each other, others as they are."""
    runs: list[Any] = []
    for smsid in ids:
        last = runs[-1] if runs else None
        if isinstance(smsid, int) and isinstance(last, list) and last[0] + last[1] == smsid:
            last[1] += 1
        else:
            runs.append([smsid, 1] if isinstance(smsid, int) else smsid)
    return runs


def ids_from_runs(runs: list[Any]) -> list[int | str]:
    ids: list[int | str] = []
    for run in runs:
        if isinstance(run, list):
            first, length = run
            ids.extend(range(first, first + length))
        else:
            ids.append(run)
    return ids
