"""Cold start: fresh Python processes that import a handler and serve one request.

Beside them the floor: a fresh process that imports boto3 and reads one secret
from the same emulator. Every child runs bench/cold_child.py; see its docstring
for how the time from process start to the answer is taken.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.environment import EVENTS, FUNCTIONS, REPO, BenchEnvironment, sample_body, sqs_event
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median

NAME = "cold-start"
CHILD_SCRIPT = Path(__file__).with_name("cold_child.py")
CHILD_TIMEOUT_SECONDS = 120
HANDLER_MODES = ("api", "queue")
FLOOR_MODE = "floor"
# The API handler as deployed, with X-Ray tracing on: not the target's condition (tracing is
# off outside Lambda, as Powertools decides), shown beside it so the SDK's cost is not hidden.
TRACED_MODE = "api-traced"
# What Lambda sets when active tracing samples an invocation; the X-Ray SDK reads it.
SAMPLE_TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TARGET_RATIO = 1.5
IMPORT_PROFILE_ENTRIES = 15
PACKAGE_SUMMARY_ENTRIES = 8
# Lambda's Python runtime provides these; `make build` prunes them from the layer (Makefile LAYER_PRUNE).
RUNTIME_PROVIDED_PACKAGES = frozenset({"boto3", "botocore", "s3transfer"})
# "import time:  self [us] |  cumulative | imported package", the name indented by depth.
_IMPORT_TIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")
CONDITION_WITH_PYC = (
    "PYTHONDONTWRITEBYTECODE=1 (Lambda cannot write bytecode), .pyc files present "
    "(one warm-up process per mode wrote them first); OS file cache warm"
)
CONDITION_WITHOUT_PYC = (
    "PYTHONDONTWRITEBYTECODE=1, no .pyc for functions/ and the layer's packages (make build strips "
    "__pycache__ from the layer); .pyc present for the standard library and for boto3, botocore and "
    "s3transfer, which the Lambda runtime provides"
)


def _clock_is_shared() -> bool:
    """Whether perf_counter readings of two processes can be subtracted (CLOCK_MONOTONIC on Linux)."""
    implementation = time.get_clock_info("perf_counter").implementation
    return sys.platform.startswith("linux") and "CLOCK_MONOTONIC" in implementation


@dataclass(frozen=True, slots=True)
class ColdStart:
    """One child's phases, in milliseconds: interpreter start-up, imports, first request."""

    mode: str
    startup_ms: float
    import_ms: float
    request_ms: float

    @property
    def total_ms(self) -> float:
        return self.startup_ms + self.import_ms + self.request_ms


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What a child reported (perf_counter seconds) and what the parent saw."""

    spawned: float
    exited: float
    report: dict[str, Any]
    stderr: str


class ColdStartBench:
    def __init__(self, environment: BenchEnvironment, *, runs: int, runs_without_pyc: int) -> None:
        self.environment = environment
        self.runs = runs
        self.runs_without_pyc = runs_without_pyc
        self.python = sys.executable
        self.clock_is_shared = _clock_is_shared()
        self._scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
        self._estimated_startup_ms: float | None = None

    def run(self) -> BenchmarkResult:
        try:
            return self._run()
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _run(self) -> BenchmarkResult:
        result = BenchmarkResult(NAME)
        print(
            f"cold start: {self.runs} fresh processes each for the API handler, the queue handler and the "
            f"floor (import boto3 + one get_secret_value), interleaved; python {sys.version.split()[0]}",
            flush=True,
        )
        print(f"  condition: {CONDITION_WITH_PYC}", flush=True)
        measured_env = self.environment.child_environment(write_bytecode=False)
        environments = {mode: measured_env for mode in (*HANDLER_MODES, FLOOR_MODE)}
        environments[TRACED_MODE] = self._traced_environment()
        for mode, environment in environments.items():
            # One warm-up per mode that may write .pyc files; the measured runs then find them.
            writing = {k: v for k, v in environment.items() if k != "PYTHONDONTWRITEBYTECODE"}
            self._cold_start(mode, writing)
        if not self.clock_is_shared:
            self._estimated_startup_ms = self._estimate_startup_ms(measured_env)

        samples: dict[str, list[ColdStart]] = defaultdict(list)
        for _ in range(self.runs):
            # Interleaved, so that a change in the machine's load hits every mode alike.
            for mode, environment in environments.items():
                samples[mode].append(self._cold_start(mode, environment))

        floor_ms = median([s.total_ms for s in samples[FLOOR_MODE]])
        for mode in HANDLER_MODES:
            handler_ms = median([s.total_ms for s in samples[mode]])
            result.add(f"{mode} handler cold start (median of {self.runs})", handler_ms, "ms")
            result.add(f"{mode} handler / floor", handler_ms / floor_ms, "x", TARGET_RATIO)
        result.add(f"floor: boto3 + get_secret_value (median of {self.runs})", floor_ms, "ms")
        traced_ms = median([s.total_ms for s in samples[TRACED_MODE]])
        result.add(f"api handler with X-Ray tracing on, as deployed (median of {self.runs})", traced_ms, "ms")
        result.add("api handler with X-Ray tracing on / floor", traced_ms / floor_ms, "x")
        result.details.update(
            condition=CONDITION_WITH_PYC,
            startup_measured_as=(
                "parent's spawn time to the child's first line, on the shared CLOCK_MONOTONIC"
                if self.clock_is_shared
                else "median wall time of a child that exits at once (includes its teardown)"
            ),
            phases_median_ms={mode: _phase_medians(runs) for mode, runs in samples.items()},
            samples=[asdict(s) | {"total_ms": s.total_ms} for runs in samples.values() for s in runs],
        )
        for mode, phases in result.details["phases_median_ms"].items():
            print(
                f"  {mode:<10} start-up {phases['startup_ms']:7.1f} ms  "
                f"imports {phases['import_ms']:7.1f} ms  first request {phases['request_ms']:7.1f} ms  "
                f"total {phases['total_ms']:7.1f} ms",
                flush=True,
            )

        if self.runs_without_pyc:
            self._without_pyc(result)
        self._import_profile(result)
        return result

    # ----- the children ------------------------------------------------------------

    def _traced_environment(self) -> dict[str, str]:
        """The measured condition plus what makes Powertools trace: Lambda's task root and a trace header."""
        environment = self.environment.child_environment(write_bytecode=False)
        environment.pop("POWERTOOLS_TRACE_DISABLED", None)
        environment["LAMBDA_TASK_ROOT"] = str(FUNCTIONS)
        environment["_X_AMZN_TRACE_ID"] = SAMPLE_TRACE_HEADER
        return environment

    def _argument(self, mode: str) -> str:
        mode = _child_mode(mode)
        if mode == FLOOR_MODE:
            return self.environment.token_secret_name
        if mode == "noop":
            return "-"
        if mode == "api":
            return str(EVENTS / "api-post-im.json")
        # A fresh message id per child: the same one would be answered from the idempotency store.
        event_path = Path(tempfile.mkstemp(suffix=".json", dir=self._scratch)[1])
        event_path.write_text(json.dumps(sqs_event([sample_body()])))
        return str(event_path)

    def _spawn(self, mode: str, environment: dict[str, str], flags: tuple[str, ...] = ()) -> ChildRun:
        result_path = Path(tempfile.mkstemp(suffix=".json", dir=self._scratch)[1])
        # -P: no script directory on sys.path, so bench/'s modules cannot shadow anything.
        arguments = [_child_mode(mode), self._argument(mode), str(result_path)]
        command = [self.python, "-P", *flags, str(CHILD_SCRIPT), *arguments]
        spawned = time.perf_counter()
        completed = subprocess.run(
            command,
            env=environment,
            cwd=REPO,
            stdout=subprocess.DEVNULL,  # the handlers' log lines and EMF metrics
            stderr=subprocess.PIPE,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
        exited = time.perf_counter()
        if completed.returncode != 0:
            raise BenchmarkBroken(
                f"cold start child ({mode}) exited with {completed.returncode}: {completed.stderr[-2000:]}"
            )
        report: dict[str, Any] = json.loads(result_path.read_text())
        if report["status"] != 200:
            raise BenchmarkBroken(f"cold start child ({mode}) answered {report['status']}, not 200")
        return ChildRun(spawned, exited, report, completed.stderr)

    def _cold_start(self, mode: str, environment: dict[str, str]) -> ColdStart:
        child = self._spawn(mode, environment)
        report = child.report
        if self._estimated_startup_ms is not None:
            startup_ms = self._estimated_startup_ms
        else:
            startup_ms = (report["started"] - child.spawned) * 1000
        return ColdStart(
            mode=mode,
            startup_ms=startup_ms,
            import_ms=(report["imported"] - report["started"]) * 1000,
            request_ms=(report["answered"] - report["imported"]) * 1000,
        )

    def _estimate_startup_ms(self, environment: dict[str, str]) -> float:
        """Without a shared clock: the wall time of children that stop at their first line."""
        runs = [self._spawn("noop", environment) for _ in range(5)]
        return median([(run.exited - run.spawned) * 1000 for run in runs])

    # ----- without bytecode ----------------------------------------------------------

    def _without_pyc(self, result: BenchmarkResult) -> None:
        """The API handler as the deployed layer has it: its packages compiled from source every start."""
        print(f"  without .pyc ({self.runs_without_pyc} runs): {CONDITION_WITHOUT_PYC}", flush=True)
        prefix = self._scratch / "pycache-prefix"
        # A private bytecode tree (PYTHONPYCACHEPREFIX): filled by one warm-up, then the layer's part
        # removed. The venv's own __pycache__ directories are left alone.
        self._cold_start(
            "api", self.environment.child_environment(write_bytecode=True, pycache_prefix=prefix)
        )
        site_packages = Path(sysconfig.get_paths()["purelib"])
        mirrored_site_packages = prefix / site_packages.relative_to(site_packages.anchor)
        if not mirrored_site_packages.is_dir():
            raise BenchmarkBroken(f"no bytecode mirror of {site_packages} under PYTHONPYCACHEPREFIX")
        for entry in mirrored_site_packages.iterdir():
            if entry.name in RUNTIME_PROVIDED_PACKAGES:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        shutil.rmtree(prefix / FUNCTIONS.relative_to(FUNCTIONS.anchor), ignore_errors=True)

        environment = self.environment.child_environment(write_bytecode=False, pycache_prefix=prefix)
        samples = [self._cold_start("api", environment) for _ in range(self.runs_without_pyc)]
        total_ms = median([s.total_ms for s in samples])
        result.add(f"api handler cold start, layer without .pyc (median of {len(samples)})", total_ms, "ms")
        result.details["without_pyc"] = {
            "condition": CONDITION_WITHOUT_PYC,
            "phases_median_ms": _phase_medians(samples),
        }
        phases = result.details["without_pyc"]["phases_median_ms"]
        print(
            f"  api without .pyc: imports {phases['import_ms']:.1f} ms, total {phases['total_ms']:.1f} ms",
            flush=True,
        )

    # ----- import profile -------------------------------------------------------------

    def _import_profile(self, result: BenchmarkResult) -> None:
        """`python -X importtime` of the API handler's cold start, under the measured condition."""
        environment = self.environment.child_environment(write_bytecode=False)
        child = self._spawn("api", environment, flags=("-X", "importtime"))
        entries = parse_import_times(child.stderr)
        if not entries:
            raise BenchmarkBroken("-X importtime printed nothing that could be parsed")
        top = sorted(entries, key=lambda e: e["cumulative_us"], reverse=True)[:IMPORT_PROFILE_ENTRIES]
        packages = self_time_by_package(entries)[:PACKAGE_SUMMARY_ENTRIES]
        result.details["import_profile"] = {
            "condition": CONDITION_WITH_PYC + "; one extra child run with -X importtime (not timed)",
            "top_by_cumulative": top,
            "self_time_by_top_level_package_us": packages,
        }
        print(f"  import-time profile of the API handler, top {len(top)} by cumulative time:", flush=True)
        print(f"    {'cumulative':>11}  {'self':>9}  module (indented by import depth)", flush=True)
        for entry in top:
            print(
                f"    {entry['cumulative_us'] / 1000:8.1f} ms  {entry['self_us'] / 1000:6.1f} ms  "
                f"{'  ' * entry['depth']}{entry['module']}",
                flush=True,
            )
        summary = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in packages)
        print(f"  self time by top-level package: {summary}", flush=True)


def _child_mode(series: str) -> str:
    """What bench/cold_child.py is asked to do for a series: the traced series is the API handler."""
    return "api" if series == TRACED_MODE else series


def parse_import_times(stderr: str) -> list[dict[str, Any]]:
    """The entries of `-X importtime` output: module, depth, self and cumulative microseconds."""
    entries = []
    for line in stderr.splitlines():
        match = _IMPORT_TIME_LINE.match(line)
        if match is None:
            continue  # the header line, or anything else on stderr
        self_us, cumulative_us, indent, module = match.groups()
        entries.append(
            {
                "module": module,
                "depth": max(len(indent) - 1, 0) // 2,
                "self_us": int(self_us),
                "cumulative_us": int(cumulative_us),
            }
        )
    return entries


def self_time_by_package(entries: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Self time summed per top-level package, largest first: where the import time really goes."""
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        totals[entry["module"].split(".")[0]] += entry["self_us"]
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def _phase_medians(samples: list[ColdStart]) -> dict[str, float]:
    return {
        "startup_ms": median([s.startup_ms for s in samples]),
        "import_ms": median([s.import_ms for s in samples]),
        "request_ms": median([s.request_ms for s in samples]),
        "total_ms": median([s.total_ms for s in samples]),
    }
