"""Cold start: fresh processes import a handler from the layer as `make build` ships it, serve one request.

Beside them the floor: a fresh process that imports boto3 and reads one secret
from the same emulator. Every child runs bench/cold_child.py; see its docstring
for how the time from process start to the answer is taken.

What the children import is what Lambda would: the function code staged with its
checked-hash bytecode (build/function-code/), the dependency layer, and boto3 from a
folder of its own, as Lambda's runtime provides it, run by the runtime's Python
(cdk.json's lambdaPythonVersion) without writing bytecode. The layer is build/layer's
host-architecture twin (build/layer-host/: the same requirements, pruning and
compileall flags, only the wheel platform differs), since its arm64 compiled packages
(pydantic_core) cannot be imported here; the .pyc files do not depend on the
architecture.

ChildBench holds that machinery (the folders, the interpreter, the environment, spawning
the children); bench.restored's first request after a SnapStart restore uses it too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.environment import EVENTS, REPO, BenchEnvironment, sample_body, sqs_event
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median
from infra import artifacts
from infra.config import DEFAULT_LAMBDA_PYTHON_VERSION

NAME = "cold-start"
CHILD_SCRIPT = Path(__file__).with_name("cold_child.py")
CHILD_TIMEOUT_SECONDS = 120
HANDLER_MODES = ("api", "queue")
FLOOR_MODE = "floor"
# The handlers as deployed, with X-Ray tracing on (Lambda's task root and a sampled trace
# header set, so that Powertools traces): outside Lambda tracing is off, as Powertools decides.
TRACED_SUFFIX = "-traced"
TRACED_MODES = tuple(f"{mode}{TRACED_SUFFIX}" for mode in HANDLER_MODES)
# What Lambda sets when active tracing samples an invocation; the X-Ray SDK reads it.
SAMPLE_TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TARGET_RATIO = 1.5
IMPORT_PROFILE_ENTRIES = 15
PACKAGE_SUMMARY_ENTRIES = 8
HOST_LAYER_DIR = artifacts.BUILD_DIR / "layer-host"
RUNTIME_SDK_DIR = artifacts.BUILD_DIR / "lambda-runtime-sdk"
# "import time:  self [us] |  cumulative | imported package", the name indented by depth.
_IMPORT_TIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")
CONDITION_AS_DEPLOYED = (
    "the runtime's Python ({python}), PYTHONDONTWRITEBYTECODE=1 (Lambda cannot write bytecode); "
    "function code with its checked-hash .pyc (build/function-code), the layer's host-architecture twin "
    "(build/layer-host: make build's recipe, host wheels; .pyc do not depend on the architecture), boto3 "
    "from a folder of its own as Lambda's runtime provides it (build/lambda-runtime-sdk); OS file cache warm"
)
CONDITION_WITHOUT_PYC = (
    "as deployed, but the function code and the layer without any .pyc (as the layer shipped before "
    "issue 11); boto3's folder keeps its .pyc, as Lambda's runtime has them"
)


@dataclass(frozen=True)
class Deployed:
    """The folders and the interpreter the children run, as Lambda would."""

    python: artifacts.Interpreter
    function_code: Path
    layer: Path  # the layer's python/ folder
    runtime_sdk: Path

    def path(self) -> str:
        # Lambda's order: the function code, the layer, then the runtime's own packages.
        return ":".join(str(folder) for folder in (self.function_code, self.layer, self.runtime_sdk))


def prepare_deployed(version: str = DEFAULT_LAMBDA_PYTHON_VERSION) -> Deployed:
    """Build (or reuse) what the children import: instant when up to date, seconds otherwise."""
    try:
        python = artifacts.find_interpreter(version)
        if artifacts.read_stamp(HOST_LAYER_DIR) is None or artifacts.read_stamp(RUNTIME_SDK_DIR) is None:
            print("  building the layer's host twin and the runtime SDK folder (once)...", flush=True)
        layer = artifacts.build_layer(HOST_LAYER_DIR, version=version, platform=None)
        sdk = artifacts.build_runtime_sdk(RUNTIME_SDK_DIR, version=version)
        code = artifacts.stage_function_code(version)
    except artifacts.BuildError as error:
        raise BenchmarkBroken(f"cannot build what the cold start runs: {error}") from error
    # What a cold start loads from: the layer as shipped (make build) and the twin measured here.
    for label, folder in (("layer (arm64, as shipped)", artifacts.LAYER_DIR), ("layer's host twin", layer)):
        if (folder / "python").is_dir():
            print(f"  {label}: {artifacts.describe_size(folder)}", flush=True)
    return Deployed(python, code, layer / "python", sdk / "python")


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


class ChildBench:
    """What the benchmarks of fresh processes share: the deployed folders, the runtime's Python, the
    functions' environment, a scratch folder, and spawning bench/cold_child.py under that condition.

    A subclass implements `_run`; `run` removes the scratch folder afterwards.
    """

    def __init__(self, environment: BenchEnvironment) -> None:
        self.environment = environment
        self.deployed = prepare_deployed()
        self.python = str(self.deployed.python.path)
        self.condition = CONDITION_AS_DEPLOYED.format(python=f"python{self.deployed.python.version}")
        self.clock_is_shared = _clock_is_shared()
        self._scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
        self._estimated_startup_ms: float | None = None

    def run(self) -> BenchmarkResult:
        try:
            return self._run()
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _run(self) -> BenchmarkResult:
        raise NotImplementedError

    def _environment(self, deployed: Deployed) -> dict[str, str]:
        """The functions' settings, the deployed folders on the path, no bytecode written."""
        environment = self.environment.child_environment(write_bytecode=False)
        environment["PYTHONPATH"] = deployed.path()
        return environment

    def _floor_environment(self, environment: dict[str, str]) -> dict[str, str]:
        """A function without the layer: only the runtime's own boto3 on the path."""
        return {**environment, "PYTHONPATH": str(self.deployed.runtime_sdk)}

    # ----- the children ------------------------------------------------------------

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
        # -P: no script directory on sys.path, so bench/'s modules cannot shadow anything;
        # -s: no user site-packages, only the deployed folders (and the interpreter's own).
        arguments = [_child_mode(mode), self._argument(mode), str(result_path)]
        command = [self.python, "-P", "-s", *flags, str(CHILD_SCRIPT), *arguments]
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
                f"child process ({mode}) exited with {completed.returncode}: {completed.stderr[-2000:]}"
            )
        report: dict[str, Any] = json.loads(result_path.read_text())
        if report["status"] != 200:
            raise BenchmarkBroken(f"child process ({mode}) answered {report['status']}, not 200")
        return ChildRun(spawned, exited, report, completed.stderr)

    def _startup_ms(self, child: ChildRun) -> float:
        """The interpreter's start-up: the parent's spawn to the child's first line, or the estimate."""
        if self._estimated_startup_ms is not None:
            return self._estimated_startup_ms
        return (child.report["started"] - child.spawned) * 1000

    def _estimate_startup_ms(self, environment: dict[str, str]) -> float:
        """Without a shared clock: the wall time of children that stop at their first line."""
        runs = [self._spawn("noop", environment) for _ in range(5)]
        return median([(run.exited - run.spawned) * 1000 for run in runs])


class ColdStartBench(ChildBench):
    def __init__(self, environment: BenchEnvironment, *, runs: int, runs_without_pyc: int) -> None:
        super().__init__(environment)
        self.runs = runs
        self.runs_without_pyc = runs_without_pyc

    def _run(self) -> BenchmarkResult:
        result = BenchmarkResult(NAME)
        print(
            f"cold start: {self.runs} fresh processes each for the API and queue handlers (tracing off and "
            "on) and the floor (import boto3 + one get_secret_value), interleaved, from the built layer",
            flush=True,
        )
        print(f"  condition: {self.condition}", flush=True)
        measured_env = self._environment(self.deployed)
        environments = {mode: measured_env for mode in HANDLER_MODES}
        environments[FLOOR_MODE] = self._floor_environment(measured_env)
        for mode in TRACED_MODES:
            environments[mode] = self._traced(measured_env)
        for mode, environment in environments.items():
            self._cold_start(mode, environment)  # one warm-up each: the OS file cache, not bytecode
        if not self.clock_is_shared:
            self._estimated_startup_ms = self._estimate_startup_ms(measured_env)

        samples: dict[str, list[ColdStart]] = defaultdict(list)
        for _ in range(self.runs):
            # Interleaved, so that a change in the machine's load hits every mode alike.
            for mode, environment in environments.items():
                samples[mode].append(self._cold_start(mode, environment))

        floor_ms = median([s.total_ms for s in samples[FLOOR_MODE]])
        for mode in (*HANDLER_MODES, *TRACED_MODES):
            handler_ms = median([s.total_ms for s in samples[mode]])
            result.add(f"{_label(mode)} cold start (median of {self.runs})", handler_ms, "ms")
            result.add(ratio_figure(mode), handler_ms / floor_ms, "x", TARGET_RATIO)
        result.add(f"floor: boto3 + get_secret_value (median of {self.runs})", floor_ms, "ms")
        result.details.update(
            condition=self.condition,
            python=str(self.deployed.python.path),
            sys_path=self.deployed.path(),
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
                f"  {mode:<12} start-up {phases['startup_ms']:7.1f} ms  "
                f"imports {phases['import_ms']:7.1f} ms  first request {phases['request_ms']:7.1f} ms  "
                f"total {phases['total_ms']:7.1f} ms",
                flush=True,
            )

        if self.runs_without_pyc:
            self._without_pyc(result)
        self._import_profile(result, measured_env)
        return result

    def _traced(self, environment: dict[str, str]) -> dict[str, str]:
        """The measured condition plus what makes Powertools trace: Lambda's task root and a trace header."""
        traced = dict(environment)
        traced.pop("POWERTOOLS_TRACE_DISABLED", None)
        traced["LAMBDA_TASK_ROOT"] = str(self.deployed.function_code)
        traced["_X_AMZN_TRACE_ID"] = SAMPLE_TRACE_HEADER
        return traced

    def _cold_start(self, mode: str, environment: dict[str, str]) -> ColdStart:
        child = self._spawn(mode, environment)
        report = child.report
        return ColdStart(
            mode=mode,
            startup_ms=self._startup_ms(child),
            import_ms=(report["imported"] - report["started"]) * 1000,
            request_ms=(report["answered"] - report["imported"]) * 1000,
        )

    # ----- without bytecode ----------------------------------------------------------

    def _without_pyc(self, result: BenchmarkResult) -> None:
        """The API handler from the same folders stripped of their bytecode: what .pyc files save."""
        print(f"  without .pyc ({self.runs_without_pyc} runs): {CONDITION_WITHOUT_PYC}", flush=True)
        no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")
        stripped = Deployed(
            python=self.deployed.python,
            function_code=self._scratch / "function-code",
            layer=self._scratch / "layer" / "python",
            runtime_sdk=self.deployed.runtime_sdk,
        )
        shutil.copytree(self.deployed.function_code, stripped.function_code, ignore=no_bytecode)
        shutil.copytree(self.deployed.layer, stripped.layer, ignore=no_bytecode)
        environment = self._environment(stripped)
        self._cold_start("api", environment)  # the OS file cache
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

    def _import_profile(self, result: BenchmarkResult, environment: dict[str, str]) -> None:
        """`python -X importtime` of the API handler's cold start, under the measured condition."""
        child = self._spawn("api", environment, flags=("-X", "importtime"))
        entries = parse_import_times(child.stderr)
        if not entries:
            raise BenchmarkBroken("-X importtime printed nothing that could be parsed")
        top = sorted(entries, key=lambda e: e["cumulative_us"], reverse=True)[:IMPORT_PROFILE_ENTRIES]
        packages = self_time_by_package(entries)[:PACKAGE_SUMMARY_ENTRIES]
        result.details["import_profile"] = {
            "condition": self.condition + "; one extra child run with -X importtime (not timed)",
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
    """What bench/cold_child.py is asked to do for a series: a traced series is its handler's."""
    return series.removesuffix(TRACED_SUFFIX)


def ratio_figure(series: str) -> str:
    """The name of a series' cold start / floor figure (the runner's target summary looks it up)."""
    return f"{_label(series)} / floor"


def _label(series: str) -> str:
    handler = _child_mode(series)
    return f"{handler} handler" + (", X-Ray tracing on" if series != handler else "")


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
