"""SnapStart runtime hooks: the managed runtime's `snapshot_restore_py`, or a stand-in where it is absent.

With SnapStart, Lambda imports the handler when a version is published, runs the
before-snapshot hooks, and snapshots the process; each new execution environment
resumes from that snapshot and first runs the after-restore hooks. The managed
Python runtime ships `snapshot_restore_py`; elsewhere (make run, tests, the
benchmarks, a runtime without SnapStart) the stand-in below keeps the same
registries, and nothing runs them unless `run_before_snapshot` / `run_after_restore`
are called, in the runtime's order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

try:
    from snapshot_restore_py import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        get_after_restore,
        get_before_snapshot,
        register_after_restore,
        register_before_snapshot,
    )
except ImportError:  # not in Lambda's managed runtime: the same registries, run by no one
    _before_snapshot: list[Hook] = []
    _after_restore: list[Hook] = []

    def register_before_snapshot(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        _before_snapshot.append((func, args, kwargs))
        return func

    def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        _after_restore.append((func, args, kwargs))
        return func

    def get_before_snapshot() -> list[Hook]:
        return _before_snapshot

    def get_after_restore() -> list[Hook]:
        return _after_restore


def register_once(
    before_snapshot: Callable[[], None] | None = None, after_restore: Callable[[], None] | None = None
) -> None:
    """Register each hook unless it already is (a module imported twice registers nothing twice)."""
    if before_snapshot is not None and all(hook[0] is not before_snapshot for hook in get_before_snapshot()):
        register_before_snapshot(before_snapshot)
    if after_restore is not None and all(hook[0] is not after_restore for hook in get_after_restore()):
        register_after_restore(after_restore)


def run_before_snapshot() -> None:
    """What Lambda does before it takes the snapshot: the hooks in reverse order of registration."""
    for func, args, kwargs in reversed(list(get_before_snapshot())):
        func(*args, **kwargs)


def run_after_restore() -> None:
    """What Lambda does when it resumes an environment from the snapshot: the hooks in order."""
    for func, args, kwargs in list(get_after_restore()):
        func(*args, **kwargs)
