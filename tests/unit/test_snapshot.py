"""The runtime hooks' registry (the managed runtime's, or the stand-in) and what a restore must redo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_REGISTRY_PROBE = """
import json, sys
blocked = sys.argv[1] == "without-library"
if blocked:
    sys.modules["snapshot_restore_py"] = None  # as in a runtime that does not ship it
from gateway import snapshot
ran = []
snapshot.register_before_snapshot(lambda: ran.append("before 1"))
snapshot.register_before_snapshot(lambda tag: ran.append(tag), "before 2")
first = lambda: ran.append("after 1")
snapshot.register_once(after_restore=first)
snapshot.register_once(after_restore=first)  # a module imported twice registers nothing twice
snapshot.register_after_restore(lambda: ran.append("after 2"))
snapshot.run_before_snapshot()
snapshot.run_after_restore()
print(json.dumps({"ran": ran, "library": snapshot.register_before_snapshot.__module__}))
"""


@pytest.mark.parametrize("library", ["with-library", "without-library"])
def test_hooks_run_as_the_runtime_runs_them_before_in_reverse_after_in_order(library: str) -> None:
    # Given hooks registered through gateway.snapshot, with and without snapshot_restore_py
    completed = subprocess.run(
        [sys.executable, "-c", _REGISTRY_PROBE, library],
        env={**os.environ, "PYTHONPATH": str(REPO / "functions")},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout)
    # Then the runtime's library is used where it is installed, the stand-in elsewhere
    expected_module = "snapshot_restore_py" if library == "with-library" else "gateway.snapshot"
    assert report["library"] == expected_module
    # And the before-snapshot hooks ran in reverse order of registration, the after-restore ones in
    # order, each once, with their arguments
    assert report["ran"] == ["before 2", "before 1", "after 1", "after 2"]


_RESTORE_PROBE = """
import json, os, random, sys
from gateway.sending.priming import forget_environment
random.seed(1234)
snapshotted = random.getstate()  # the generator's state as the snapshot holds it
reseed = sys.argv[1] == "reseed"
draws = []
for _ in range(2):  # two environments restored from the one snapshot
    read, write = os.pipe()
    if os.fork() == 0:
        # A fork reseeds the generator by itself (os.register_at_fork); a restored snapshot does not.
        random.setstate(snapshotted)
        if reseed:
            forget_environment()
        os.write(write, repr(random.random()).encode())
        os._exit(0)
    os.wait()
    draws.append(os.read(read, 64).decode())
print(json.dumps(draws))
"""


@pytest.mark.parametrize(("after_restore", "differ"), [("reseed", True), ("nothing", False)])
def test_environments_restored_from_one_snapshot_draw_different_random_numbers(
    after_restore: str, differ: bool
) -> None:
    # Given a process whose random generator is in one state, forked twice as two restores
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO / "functions"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    completed = subprocess.run(
        [sys.executable, "-c", _RESTORE_PROBE, after_restore],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = json.loads(completed.stdout)
    # Then with the after-restore hook each draws its own numbers; without it they would share them
    assert (first != second) is differ
