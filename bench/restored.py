"""Restored first request: the first request of an environment resumed from a SnapStart snapshot.

Fresh processes, as bench.cold_start runs them (the runtime's Python, the deployed folders,
no bytecode written, the functions' environment; bench/cold_child.py), interleaved:

- `api-restored`, `queue-restored`: import the handler and run the before-snapshot hooks it
  registered (gateway.snapshot.run_before_snapshot, the priming), not timed: that is the
  snapshot. Then, timed: the after-restore hooks (run_after_restore: the token cache emptied,
  connections closed, the random generator reseeded) and the handler on one event; the API's
  event is events/api-post-im.json, the queue's one SQS record with a fresh message id.
- `floor-first-call`: a function without the layer (only the runtime's boto3 on its path)
  makes its Secrets Manager client and a urllib3 pool, not timed; then, timed, one
  `get_secret_value` of the token secret and one POST of the very SendIM body the gateway
  sends: the least any first request could do.
- `api`: the cold start without SnapStart (no hook runs), whose first call after the import
  is reported beside the floor's.

The sandbox answers at once. The queue's first record also makes the idempotency store's
two DynamoDB calls, which the floor does not make: its figure has no target.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass

from bench.cold_start import ChildBench
from bench.environment import BenchEnvironment, sample_body
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median

NAME = "restored"
RESTORED_SUFFIX = "-restored"
API_RESTORED = "api-restored"
QUEUE_RESTORED = "queue-restored"
FLOOR_FIRST_CALL = "floor-first-call"
API_WITHOUT_HOOKS = "api"  # bench.cold_start's API child: no hook runs
MODES = (API_RESTORED, QUEUE_RESTORED, FLOOR_FIRST_CALL, API_WITHOUT_HOOKS)
TARGET_RATIO = 1.2
RATIO_FIGURE = "api restored first request / floor first call"
SENDIM_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# What each child does before its timed part, for the phase lines.
SET_UP = {
    API_RESTORED: "before-snapshot hooks",
    QUEUE_RESTORED: "before-snapshot hooks",
    FLOOR_FIRST_CALL: "client + pool",
    API_WITHOUT_HOOKS: "none",
}


@dataclass(frozen=True, slots=True)
class FirstRequest:
    """One child's phases, in milliseconds. Only `first_request_ms` is timed for the figures."""

    mode: str
    startup_ms: float
    import_ms: float
    setup_ms: float  # not timed: the snapshot (before-snapshot hooks), or the floor's clients
    restore_ms: float  # the after-restore hooks
    request_ms: float  # the handler's first call (the floor's secret read and POST)
    secret_ms: float | None = None  # the floor's get_secret_value alone (the rest is its POST)

    @property
    def first_request_ms(self) -> float:
        return self.restore_ms + self.request_ms


class RestoredBench(ChildBench):
    def __init__(self, environment: BenchEnvironment, *, runs: int) -> None:
        super().__init__(environment)
        self.runs = runs
        self._floor_config = self._scratch / "floor-first-call.json"

    def _run(self) -> BenchmarkResult:
        print(
            f"SnapStart restore: {self.runs} fresh processes each (interleaved, one warm-up each): the API "
            "and queue handlers snapshotted (import + before-snapshot hooks, not timed), then timed: the "
            "after-restore hooks and one request; the floor's first call (secret read + one SendIM POST, "
            "clients made untimed); and the API handler's first call after import without hooks; "
            "sandbox answering at once",
            flush=True,
        )
        print(f"  condition: {self.condition}", flush=True)
        self.environment.reset_sandbox(latency=0.0)
        self._write_floor_config()
        measured_env = self._environment(self.deployed)
        environments = {mode: measured_env for mode in MODES}
        environments[FLOOR_FIRST_CALL] = self._floor_environment(measured_env)
        for mode, environment in environments.items():
            self._first_request(mode, environment)  # one warm-up each: the OS file cache
        if not self.clock_is_shared:
            self._estimated_startup_ms = self._estimate_startup_ms(measured_env)

        samples: dict[str, list[FirstRequest]] = defaultdict(list)
        for _ in range(self.runs):
            # Interleaved, so that a change in the machine's load hits every mode alike.
            for mode, environment in environments.items():
                samples[mode].append(self._first_request(mode, environment))
        sent = len(self.environment.sandbox.ledger)
        expected = (self.runs + 1) * len(MODES)
        if sent != expected:
            raise BenchmarkBroken(f"the sandbox recorded {sent} sends, expected {expected}")

        first = {mode: median([s.first_request_ms for s in samples[mode]]) for mode in MODES}
        result = BenchmarkResult(NAME)
        result.add(f"api restored first request (median of {self.runs})", first[API_RESTORED], "ms")
        result.add(
            f"floor first call: get_secret_value + one POST (median of {self.runs})",
            first[FLOOR_FIRST_CALL],
            "ms",
        )
        result.add(RATIO_FIGURE, first[API_RESTORED] / first[FLOOR_FIRST_CALL], "x", TARGET_RATIO)
        result.add(f"queue restored first request (median of {self.runs})", first[QUEUE_RESTORED], "ms")
        result.add(
            f"api first call after import, without hooks (median of {self.runs})",
            first[API_WITHOUT_HOOKS],
            "ms",
        )
        phases = {mode: _phase_medians(samples[mode]) for mode in MODES}
        floor_secret_ms = median([s.secret_ms or 0.0 for s in samples[FLOOR_FIRST_CALL]])
        floor_post_ms = median([s.request_ms - (s.secret_ms or 0.0) for s in samples[FLOOR_FIRST_CALL]])
        result.details.update(
            condition=self.condition,
            python=str(self.deployed.python.path),
            sys_path=self.deployed.path(),
            floor_sys_path=str(self.deployed.runtime_sdk),
            timed=(
                "restored: gateway.snapshot.run_after_restore() + handler(event, context); floor: "
                "get_secret_value + one urllib3 POST of the SendIM body; without hooks: handler(event, "
                "context) right after the import (bench.cold_start's request phase)"
            ),
            not_timed=(
                "restored: the import and gateway.snapshot.run_before_snapshot(); floor: the import, "
                "boto3.client('secretsmanager') and urllib3.PoolManager()"
            ),
            provider_latency_seconds=0.0,
            queue_note=(
                "the queue's first record also makes the idempotency store's two DynamoDB calls, "
                "which the floor does not make: no target"
            ),
            phases_median_ms=phases,
            floor_first_call_median_ms={"get_secret_value": floor_secret_ms, "post": floor_post_ms},
            samples=[
                asdict(s) | {"first_request_ms": s.first_request_ms}
                for runs in samples.values()
                for s in runs
            ],
        )
        for mode, median_phases in phases.items():
            print(
                f"  {mode:<17} start-up {median_phases['startup_ms']:6.1f} ms  "
                f"imports {median_phases['import_ms']:6.1f} ms  "
                f"untimed {SET_UP[mode]:<21} {median_phases['setup_ms']:6.1f} ms  "
                f"timed: restore hooks {median_phases['restore_ms']:5.1f} ms + request "
                f"{median_phases['request_ms']:6.1f} ms = {median_phases['first_request_ms']:6.1f} ms",
                flush=True,
            )
        print(
            f"  floor first call: get_secret_value {floor_secret_ms:.1f} ms + POST {floor_post_ms:.1f} ms "
            "(medians of each)",
            flush=True,
        )
        print(
            f"  first call after import, API handler vs floor: {first[API_WITHOUT_HOOKS]:.1f} ms vs "
            f"{first[FLOOR_FIRST_CALL]:.1f} ms; restored: {first[API_RESTORED]:.1f} ms",
            flush=True,
        )
        return result

    def _write_floor_config(self) -> None:
        """What the floor child sends: the body the gateway would send, made here (the child must
        not import the gateway): normalised destinations, the token first."""
        from gateway.sending.request import SendRequest

        payload = SendRequest.model_validate(sample_body()).provider_payload(self.environment.token)
        config = {
            "secret_id": self.environment.token_secret_name,
            "url": self.environment.sandbox.url + "SendIM",
            "body": json.dumps(payload, ensure_ascii=False),
            "headers": SENDIM_HEADERS,
        }
        self._floor_config.write_text(json.dumps(config))

    def _argument(self, mode: str) -> str:
        if mode == FLOOR_FIRST_CALL:
            return str(self._floor_config)
        # The restored children take their handler's event (the queue's with a fresh message id).
        return super()._argument(mode.removesuffix(RESTORED_SUFFIX))

    def _first_request(self, mode: str, environment: dict[str, str]) -> FirstRequest:
        child = self._spawn(mode, environment)
        report = child.report
        if mode.endswith(RESTORED_SUFFIX):
            hooks = report.get("hooks", {})
            if not hooks.get("before_snapshot") or not hooks.get("after_restore"):
                raise BenchmarkBroken(f"{mode}: the handler registered no SnapStart hooks ({hooks})")
        return FirstRequest(
            mode=mode,
            startup_ms=self._startup_ms(child),
            import_ms=_ms(report["started"], report["imported"]),
            setup_ms=_ms(report["imported"], report["ready"]),
            restore_ms=_ms(report["ready"], report["restored"]),
            request_ms=_ms(report["restored"], report["answered"]),
            secret_ms=_ms(report["restored"], report["secret_read"]) if "secret_read" in report else None,
        )


def run_restored(environment: BenchEnvironment, *, runs: int) -> BenchmarkResult:
    return RestoredBench(environment, runs=runs).run()


def _ms(start: float, end: float) -> float:
    return (end - start) * 1000


def _phase_medians(samples: list[FirstRequest]) -> dict[str, float]:
    return {
        "startup_ms": median([s.startup_ms for s in samples]),
        "import_ms": median([s.import_ms for s in samples]),
        "setup_ms": median([s.setup_ms for s in samples]),
        "restore_ms": median([s.restore_ms for s in samples]),
        "request_ms": median([s.request_ms for s in samples]),
        "first_request_ms": median([s.first_request_ms for s in samples]),
    }
