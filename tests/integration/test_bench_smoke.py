"""The benchmark harness runs end to end at smoke sizes. Not a timed test: it never asserts on speed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = {
    "cold-start",
    "restored",
    "warm-overhead",
    "sqs-batch",
    "bulk",
    "tracker",
    "suppression",
    "schedules",
    "caps",
}
# The restored first request's figures (names without their "(median of N)").
RESTORED_FIGURES = {
    "api restored first request",
    "floor first call: get_secret_value + one POST",
    "api restored first request / floor first call",
    "queue restored first request",
    "api first call after import, without hooks",
}
ISSUE_17_TARGETS = 4
# Generous: the smoke run takes seconds, but CI machines are shared.
TIMEOUT_SECONDS = 180


@pytest.mark.slow
def test_smoke_run_exits_0_and_reports_every_figure_as_a_positive_number(tmp_path: Path) -> None:
    # Given the runner at smoke sizes, writing its JSON to a scratch file
    output = tmp_path / "bench.json"

    # When it runs in a fresh process
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    # Then it succeeds, and every benchmark reports figures that are positive numbers
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert set(report["benchmarks"]) == BENCHMARKS
    for name, benchmark in report["benchmarks"].items():
        assert benchmark["figures"], f"{name} reported no figures"
        for figure_name, figure in benchmark["figures"].items():
            value = figure["value"]
            assert isinstance(value, int | float), f"{name}: {figure_name} is {value!r}"
            assert not isinstance(value, bool), f"{name}: {figure_name} is {value!r}"
            assert math.isfinite(value), f"{name}: {figure_name} is {value!r}"
            assert value > 0, f"{name}: {figure_name} is {value!r}"
            assert figure["verdict"] in {"PASS", "MISS", "-"}
    restored = report["benchmarks"]["restored"]["figures"]
    assert {name.split(" (median of ")[0] for name in restored} == RESTORED_FIGURES
    assert restored["api restored first request / floor first call"]["target"] == 1.2
    # Issue 17's targets each found their figure (the block itself is printed by full runs only)
    targets = report["issue_17_targets"]
    assert len(targets) == ISSUE_17_TARGETS
    assert all(target["verdict"] in {"PASS", "MISS"} for target in targets), targets
    # The table went to stdout, one line per figure
    figure_count = sum(len(b["figures"]) for b in report["benchmarks"].values())
    table_rows = [line for line in completed.stdout.splitlines() if line.split(" ", 1)[0] in BENCHMARKS]
    assert len(table_rows) == figure_count
