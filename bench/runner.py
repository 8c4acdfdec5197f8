"""Run the benchmarks, print a table of figures against their targets, and write them as JSON.

    python -m bench                      # full sizes
    python -m bench --smoke              # tiny sizes, seconds (CI)
    python -m bench --only warm-overhead --profile
    python -m bench --only schedules --schedules 2000
    python -m bench --only caps
    python -m bench --only fresh-clone [--fresh-clone-test]   # on request only: installs from scratch

A missed target is reported, not an error; exit status 1 means a benchmark broke
(for example a handler answered non-200), so its figures would mean nothing.
Figures go to bench/results/latest.json (latest-smoke.json, latest-NAME.json for
smoke and --only runs); see bench/README.md for what each benchmark measures.
A run at full sizes ends with issue 17's targets, from the figures collected.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.environment import REPO, BenchEnvironment, configure_process
from bench.report import BenchmarkBroken, BenchmarkResult, format_value, render_table, write_json

RESULTS = REPO / "bench" / "results"
PROVIDER_LATENCY_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Sizes:
    cold_runs: int
    cold_runs_without_pyc: int
    restored_runs: int
    warm_requests: int
    warm_warmup: int
    batch_records: int
    batch_runs: int
    bulk_destinations: int
    bulk_validation_runs: int
    tracker_messages: int
    tracker_send_runs: int
    suppression_entries: int
    suppression_destinations: int
    suppression_hits: int
    suppression_send_runs: int
    schedules_creates: int
    schedules_rounds: int
    schedules_plan_destinations: int
    schedules_process_runs: int
    caps_one_rounds: int
    caps_one_sends_per_round: int
    caps_bulk_destinations: int
    caps_bulk_rounds: int
    caps_alone_runs: int


FULL = Sizes(
    cold_runs=10,
    cold_runs_without_pyc=5,
    restored_runs=10,
    warm_requests=2000,
    warm_warmup=200,
    batch_records=10,
    batch_runs=5,
    bulk_destinations=10_000,
    bulk_validation_runs=5,
    tracker_messages=10_000,
    tracker_send_runs=5,
    suppression_entries=100_000,
    suppression_destinations=10_000,
    suppression_hits=100,
    suppression_send_runs=5,
    # The issue's figure: 10,000 schedules, about two and a half minutes against moto (three calls
    # of ~4 ms each, one at a time); --schedules 2500 for a quicker look.
    schedules_creates=10_000,
    schedules_rounds=200,
    schedules_plan_destinations=10_000,
    schedules_process_runs=3,
    caps_one_rounds=12,
    caps_one_sends_per_round=5,
    caps_bulk_destinations=10_000,
    caps_bulk_rounds=10,
    caps_alone_runs=5,
)
# Tiny, for CI: every benchmark runs and reports, in seconds. The batch keeps its 10 records
# (the size SQS hands the function) but runs once.
SMOKE = Sizes(
    cold_runs=2,
    cold_runs_without_pyc=0,
    restored_runs=2,
    warm_requests=50,
    warm_warmup=10,
    batch_records=10,
    batch_runs=1,
    bulk_destinations=200,
    bulk_validation_runs=2,
    tracker_messages=200,
    tracker_send_runs=1,
    suppression_entries=2_000,
    suppression_destinations=200,
    suppression_hits=10,
    suppression_send_runs=1,
    schedules_creates=50,
    schedules_rounds=5,
    schedules_plan_destinations=200,
    schedules_process_runs=1,
    caps_one_rounds=2,
    caps_one_sends_per_round=2,
    caps_bulk_destinations=200,
    caps_bulk_rounds=1,
    caps_alone_runs=2,
)


@dataclass(frozen=True, slots=True)
class Options:
    sizes: Sizes
    profile_requests: int
    fresh_clone_test: bool = False


def _cold_start(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.cold_start import ColdStartBench

    sizes = options.sizes
    return ColdStartBench(
        environment, runs=sizes.cold_runs, runs_without_pyc=sizes.cold_runs_without_pyc
    ).run()


def _restored(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.restored import run_restored

    return run_restored(environment, runs=options.sizes.restored_runs)


def _warm_overhead(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.warm import run_warm_overhead

    sizes = options.sizes
    return run_warm_overhead(
        environment,
        requests=sizes.warm_requests,
        warmup=sizes.warm_warmup,
        profile_requests=options.profile_requests,
    )


def _sqs_batch(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.batch import run_sqs_batch

    sizes = options.sizes
    return run_sqs_batch(
        environment,
        records=sizes.batch_records,
        runs=sizes.batch_runs,
        provider_latency=PROVIDER_LATENCY_SECONDS,
    )


def _bulk(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.bulk import run_bulk

    sizes = options.sizes
    return run_bulk(
        environment,
        destinations=sizes.bulk_destinations,
        validation_runs=sizes.bulk_validation_runs,
        provider_latency=PROVIDER_LATENCY_SECONDS,
    )


def _tracker(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.tracker import run_tracker

    sizes = options.sizes
    return run_tracker(
        environment,
        destinations=sizes.tracker_messages,
        send_runs=sizes.tracker_send_runs,
        provider_latency=PROVIDER_LATENCY_SECONDS,
    )


def _suppression(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.suppression import run_suppression

    sizes = options.sizes
    return run_suppression(
        environment,
        entries=sizes.suppression_entries,
        destinations=sizes.suppression_destinations,
        hits=sizes.suppression_hits,
        send_runs=sizes.suppression_send_runs,
        provider_latency=PROVIDER_LATENCY_SECONDS,
    )


def _schedules(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.schedules import run_schedules

    sizes = options.sizes
    return run_schedules(
        environment,
        creates=sizes.schedules_creates,
        rounds=sizes.schedules_rounds,
        plan_destinations=sizes.schedules_plan_destinations,
        process_runs=sizes.schedules_process_runs,
    )


def _caps(environment: BenchEnvironment, options: Options) -> BenchmarkResult:
    from bench.caps import run_caps

    sizes = options.sizes
    return run_caps(
        environment,
        one_rounds=sizes.caps_one_rounds,
        one_sends_per_round=sizes.caps_one_sends_per_round,
        bulk_destinations=sizes.caps_bulk_destinations,
        bulk_rounds=sizes.caps_bulk_rounds,
        alone_runs=sizes.caps_alone_runs,
        provider_latency=PROVIDER_LATENCY_SECONDS,
    )


def _fresh_clone(environment: BenchEnvironment | None, options: Options) -> BenchmarkResult:
    from bench.fresh_clone import run_fresh_clone

    return run_fresh_clone(with_make_test=options.fresh_clone_test)


BENCHMARKS: dict[str, Callable[[Any, Options], BenchmarkResult]] = {
    "cold-start": _cold_start,
    "restored": _restored,
    "warm-overhead": _warm_overhead,
    "sqs-batch": _sqs_batch,
    "bulk": _bulk,
    "tracker": _tracker,
    "suppression": _suppression,
    "schedules": _schedules,
    "caps": _caps,
    "fresh-clone": _fresh_clone,
}
# Run only when named with --only: it clones the repository and installs everything from scratch.
ON_REQUEST = frozenset({"fresh-clone"})
# Benchmarks that start what they need themselves (no emulator or sandbox in this process).
OWN_WORLD = frozenset({"fresh-clone"})


# Issue 17's targets, each one figure of a benchmark (the limit and the verdict are the figure's own).
ISSUE_17 = "issue 17 targets"
ISSUE_17_TARGETS = (
    ("API cold start / floor", "cold-start", "api handler / floor"),
    ("queue cold start / floor", "cold-start", "queue handler / floor"),
    (
        "restored first request / floor first call",
        "restored",
        "api restored first request / floor first call",
    ),
    ("warm overhead p50 difference", "warm-overhead", "p50 difference (handler - bare)"),
)


def issue_targets(results: list[BenchmarkResult]) -> list[dict[str, Any]]:
    """Issue 17's targets from the figures collected: measured value and verdict, or why there is none."""
    figures = {result.name: {figure.name: figure for figure in result.figures} for result in results}
    rows: list[dict[str, Any]] = []
    for label, benchmark, figure_name in ISSUE_17_TARGETS:
        row: dict[str, Any] = {"name": label, "benchmark": benchmark, "figure": figure_name}
        if benchmark not in figures:
            row["verdict"] = f"not run (benchmark {benchmark} was not run)"
        elif figure_name not in figures[benchmark]:
            row["verdict"] = f"no figure {figure_name!r} in {benchmark}'s results"
        else:
            figure = figures[benchmark][figure_name]
            row.update(figure.as_json())
        rows.append(row)
    return rows


def render_issue_targets(rows: list[dict[str, Any]]) -> str:
    cells = []
    for row in rows:
        if "value" in row:
            limit = "" if row["target"] is None else "<= " + format_value(row["target"], row["unit"])
            cells.append((row["name"], format_value(row["value"], row["unit"]), limit, row["verdict"]))
        else:
            cells.append((row["name"], "", "", row["verdict"]))
    widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
    lines = [ISSUE_17]
    for label, value, limit, verdict in cells:
        columns = (label.ljust(widths[0]), value.rjust(widths[1]), limit.rjust(widths[2]), verdict)
        lines.append("  " + "  ".join(columns).rstrip())
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: checks the benchmarks work, in seconds"
    )
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON file for the figures (default bench/results/latest.json; a smoke or --only run writes "
        "latest-smoke.json or latest-NAME.json instead, so it never replaces a full run's figures)",
    )
    parser.add_argument(
        "--schedules",
        type=int,
        metavar="N",
        help="schedules the schedules benchmark makes (default 10,000; 50 with --smoke)",
    )
    parser.add_argument(
        "--fresh-clone-test",
        action="store_true",
        help="fresh-clone also times make test in another fresh clone (about ten minutes)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=500,
        default=0,
        metavar="REQUESTS",
        help="also run cProfile over that many warm API requests (default 500) and print the top functions",
    )
    return parser


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": load,
    }


def _default_output(smoke: bool, only: str | None) -> Path:
    parts = ["latest", *([only] if only else []), *(["smoke"] if smoke else [])]
    return RESULTS / ("-".join(parts) + ".json")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output: Path = args.output or _default_output(args.smoke, args.only)
    configure_process()
    sizes = SMOKE if args.smoke else FULL
    if args.schedules is not None:
        if args.schedules < 1:
            raise SystemExit("--schedules: at least 1")
        sizes = replace(sizes, schedules_creates=args.schedules)
    options = Options(sizes=sizes, profile_requests=args.profile, fresh_clone_test=args.fresh_clone_test)
    selected = [args.only] if args.only else [name for name in BENCHMARKS if name not in ON_REQUEST]
    machine = _machine()
    size_name = "smoke" if args.smoke else "full"
    print(
        f"bench: {size_name} sizes; {', '.join(selected)}; python {machine['python']}, "
        f"{machine['cpus']} CPUs, load average {machine['load_average_1_5_15']}",
        flush=True,
    )
    document: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "sizes": asdict(options.sizes),
        "machine": machine,
        "benchmarks": {},
    }
    results: list[BenchmarkResult] = []
    started = time.perf_counter()
    try:
        for name in selected:
            print(flush=True)
            # A fresh emulator and sandbox for each benchmark: what one leaves behind (thousands
            # of table items and ledger entries) must not slow the next.
            if name in OWN_WORLD:
                result = BENCHMARKS[name](None, options)
            else:
                with BenchEnvironment() as environment:
                    result = BENCHMARKS[name](environment, options)
            results.append(result)
            document["benchmarks"][name] = result.as_json()
    except BenchmarkBroken as error:
        document["error"] = str(error)
        write_json(output, document)
        print(f"\nBROKEN: {error}", file=sys.stderr)
        return 1
    document["machine"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    document["seconds"] = round(time.perf_counter() - started, 1)
    print("\n" + render_table(results))
    targets = issue_targets(results)
    document["issue_17_targets"] = targets
    if not args.smoke:
        print("\n" + render_issue_targets(targets))
    write_json(output, document)
    print(f"\n{document['seconds']} s; figures written to {output}", flush=True)
    return 0
