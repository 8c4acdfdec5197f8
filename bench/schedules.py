"""Scheduled sends: what making a schedule costs, and what scheduling adds to a send request.

In process, against moto's server and the sandbox (each in a process of its own), with the
schedules' table, trigger queue, schedule group and bus as make run provisions them.

1. N schedules made through the API handler: POST /messages of one number with a send_at
   between an hour and 29 days ahead (so each part gets an EventBridge Scheduler one-time
   schedule, and the list index spans two months); the whole run, each request's time, and
   the AWS calls each makes, by service (every HTTP request of the functions' boto3 session,
   counted by a `before-send` hook: retries included).
2. The same one-number body sent now (200), sent now through a send window that is open (the
   window is planned, then it is an ordinary send: 200), and scheduled with send_at (202),
   interleaved round by round, sandbox answering at once: medians and p95 of each, and the
   differences.
3. The window's planning alone (zone of every number, the openings) for a bulk send of D
   numbers: what a stage with a default window adds to every send before it goes.
4. The first scheduled request of a process: in fresh processes, the import of
   gateway.schedules.service after api_handler (what the first scheduled request pays that a
   send never does), its `-X importtime` heaviest modules, and the first and second scheduled
   requests after a warm-up send (import, clients, connections).

No targets: moto answers a call in a few milliseconds where DynamoDB and Scheduler answer in
about ten, one at a time, so the milliseconds here say where the time goes, not what AWS takes.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.environment import (
    FUNCTIONS,
    REPO,
    BenchEnvironment,
    api_event,
    run_child,
    sample_body,
    silenced_output,
)
from bench.phones import greek_mobiles
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median, percentile

NAME = "schedules"
CHILD_SCRIPT = Path(__file__).with_name("schedules_child.py")
CHILD_TIMEOUT_SECONDS = 120
EARLIEST_SECONDS = 60 * 60  # past SCHEDULE_DIRECT_SECONDS: every part gets a Scheduler schedule
LATEST_SECONDS = 29 * 24 * 60 * 60  # within the default horizon (30 days)
ATHENS = ZoneInfo("Europe/Athens")
VARIANTS = ("send now", "send now, window open", "send_at (scheduled)")
IMPORT_TOP = 8


def run_schedules(
    environment: BenchEnvironment,
    *,
    creates: int,
    rounds: int,
    plan_destinations: int,
    process_runs: int,
) -> BenchmarkResult:
    print(
        f"schedules: {creates:,} schedules made through the API handler (one number each, send_at 1 h "
        f"to 29 days ahead) and the AWS calls of each; then {rounds} rounds of the same one-number "
        f"POST /messages sent now, sent now through an open window, and scheduled (send_at), "
        f"interleaved, sandbox answering at once; the window's planning of {plan_destinations:,} "
        f"numbers; {process_runs} fresh process(es) for the import of the schedules code and the first "
        "scheduled requests",
        flush=True,
    )
    environment.apply_to_process()
    os.environ.update(environment.scheduling_environment())
    environment.reset_sandbox(latency=0.0)
    from local.functions import reset_process_caches

    reset_process_caches()
    calls = _CallCounter()
    with silenced_output():
        made = _creates(creates, calls)
        variants = _variants(environment, rounds)
        planning = _planning(plan_destinations)
    first = _fresh_processes(environment, process_runs)
    from gateway import names

    for name in environment.scheduling_environment():
        os.environ.pop(name, None)
    listed = _scheduler_schedules(environment)
    if listed < creates:
        raise BenchmarkBroken(f"Scheduler holds {listed:,} one-time schedules, expected {creates:,}")

    result = BenchmarkResult(NAME)
    per_create = made["ms"]
    result.add(f"{creates:,} schedules made, in all", made["seconds"], "s")
    result.add("schedules made per second", creates / made["seconds"], "/s")
    result.add("make one schedule p50", percentile(per_create, 50), "ms")
    result.add("make one schedule p95", percentile(per_create, 95), "ms")
    for service, count in sorted(made["calls_per_create"].items()):
        result.add(f"{service} calls per schedule made", count, "calls")
    medians = {variant: median(samples) for variant, samples in variants.items()}
    p95s = {variant: percentile(samples, 95) for variant, samples in variants.items()}
    for variant in VARIANTS:
        result.add(f"{variant}: median", medians[variant], "ms")
        result.add(f"{variant}: p95", p95s[variant], "ms")
    now, window, scheduled = (medians[variant] for variant in VARIANTS)
    # Differences of medians can be negative (a 202 needs no provider call): reported in the details
    # and printed; the table holds the positive figures only (its values are checked positive).
    result.add(f"window planning of {plan_destinations:,} numbers (median)", planning["median_ms"], "ms")
    result.add("import of gateway.schedules.service after api_handler", first["import_ms"], "ms")
    result.add("first scheduled request of a process", first["first_ms"], "ms")
    result.add("second scheduled request of a process", first["second_ms"], "ms")
    result.details.update(
        creates=creates,
        rounds=rounds,
        schedules_in_scheduler=listed,
        create_seconds=made["seconds"],
        create_ms_p50=percentile(per_create, 50),
        create_ms_p95=percentile(per_create, 95),
        create_ms_p99=percentile(per_create, 99),
        create_ms_max=max(per_create),
        calls_per_create=made["calls_per_create"],
        calls_per_create_max=made["calls_per_create_max"],
        calls_first_create=made["calls_first_create"],
        create_median_ms_by_tenth=made["median_ms_by_tenth"],
        variant_ms=variants,
        variant_median_ms=medians,
        variant_p95_ms=p95s,
        scheduled_minus_now_median_ms=scheduled - now,
        window_open_minus_now_median_ms=window - now,
        window_planning=planning,
        fresh_processes=first,
        trigger_direct_seconds=names.SCHEDULE_DIRECT_SECONDS,
    )
    per_service = sorted(made["calls_per_create"].items())
    calls_text = ", ".join(f"{count:g} {service}" for service, count in per_service)
    print(
        f"  made {creates:,} schedules in {made['seconds']:.1f} s ({creates / made['seconds']:,.0f}/s); "
        f"per request p50 {percentile(per_create, 50):.1f} ms, p95 {percentile(per_create, 95):.1f} ms, "
        f"p99 {percentile(per_create, 99):.1f} ms, max {max(per_create):.1f} ms; AWS calls per schedule: "
        f"{calls_text} (the first request: {made['calls_first_create']})",
        flush=True,
    )
    print(f"  median of each tenth of the run, in order: {made['median_ms_by_tenth']} ms", flush=True)
    for variant in VARIANTS:
        print(
            f"  {variant:<22} median {medians[variant]:6.2f} ms, p95 {p95s[variant]:6.2f} ms "
            f"({len(variants[variant])} requests)",
            flush=True,
        )
    print(
        f"  scheduling instead of sending: {scheduled - now:+.2f} ms (median against median; the 202 "
        f"calls DynamoDB, Scheduler and EventBridge where the 200 calls the provider, here answering at "
        f"once); an open window before a send: {window - now:+.2f} ms",
        flush=True,
    )
    print(
        f"  window planning of {plan_destinations:,} numbers: median {planning['median_ms']:.1f} ms "
        f"({planning['parts']} part(s)); runs {planning['runs_ms']}",
        flush=True,
    )
    print(
        f"  fresh processes (median of {process_runs}): import of gateway.schedules.service after "
        f"api_handler {first['import_ms']:.0f} ms, {first['modules']} modules more; first scheduled "
        f"request after a warm-up send {first['first_ms']:.0f} ms, the second {first['second_ms']:.1f} ms",
        flush=True,
    )
    print("  -X importtime, heaviest under that import (cumulative):", flush=True)
    for entry in first["importtime_top"]:
        print(f"    {entry['cumulative_ms']:7.1f} ms  {entry['module']}", flush=True)
    return result


class _CallCounter:
    """The HTTP requests the functions' AWS clients send, by service (a hook on their one session)."""

    def __init__(self) -> None:
        from gateway.aws import aws_session

        self.calls: Counter[str] = Counter()
        # Clients copy the session's hooks when made: register before the first request makes them.
        aws_session().events.register("before-send", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.split(".")[1]] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def _one_number_body(number: str, **more: Any) -> dict[str, Any]:
    return {**sample_body(), "destinations": [number], **more}


def _creates(count: int, calls: _CallCounter) -> dict[str, Any]:
    from api_handler import handler
    from local.functions import lambda_context

    generator = random.Random(21)  # noqa: S311 - test data, not cryptography
    numbers = greek_mobiles(count, seed=21)
    now = datetime.now(UTC)
    events = []
    for index, number in enumerate(numbers):
        send_at = now + timedelta(seconds=generator.randrange(EARLIEST_SECONDS, LATEST_SECONDS))
        body = _one_number_body(number, send_at=send_at.isoformat(timespec="seconds"))
        events.append(api_event({**body, "im_text": f"bench schedule {index}"}))
    per_request: list[float] = []
    per_create_calls: list[Counter[str]] = []
    calls.take()
    started = time.perf_counter()
    for event in events:
        began = time.perf_counter()
        answer = handler(event, lambda_context())  # type: ignore[arg-type]
        per_request.append((time.perf_counter() - began) * 1000)
        if answer["statusCode"] != 202:
            raise BenchmarkBroken(f"a schedule was answered {answer['statusCode']}: {answer['body'][:500]}")
        per_create_calls.append(calls.take())
    seconds = time.perf_counter() - started
    # The first request also reads the token and makes the clients; the figure is of the others.
    steady = per_create_calls[1:] or per_create_calls
    services = sorted({service for counted in steady for service in counted})
    # Whether making one slows as the table and Scheduler fill: the median of each tenth, in order.
    tenth = max(1, len(per_request) // 10)
    by_tenth = [median(per_request[i : i + tenth]) for i in range(0, len(per_request), tenth)]
    return {
        "seconds": seconds,
        "ms": per_request,
        "median_ms_by_tenth": [round(value, 2) for value in by_tenth],
        "calls_per_create": {s: sum(c[s] for c in steady) / len(steady) for s in services},
        "calls_per_create_max": {s: max(c[s] for c in steady) for s in services},
        "calls_first_create": dict(per_create_calls[0]),
    }


def _open_window(now: datetime) -> dict[str, str]:
    """A window of Athens time (the numbers' zone) that opened an hour ago and closes in two."""
    local = now.astimezone(ATHENS)
    return {
        "from": (local - timedelta(hours=1)).strftime("%H:%M"),
        "to": (local + timedelta(hours=2)).strftime("%H:%M"),
    }


def _variants(environment: BenchEnvironment, rounds: int) -> dict[str, list[float]]:
    """The same one-number body three ways, interleaved (the order turning each round)."""
    from api_handler import handler
    from local.functions import lambda_context

    number = greek_mobiles(1, seed=7)[0]
    expected = {VARIANTS[0]: 200, VARIANTS[1]: 200, VARIANTS[2]: 202}

    def body(variant: str, index: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        extra: dict[str, Any] = {"im_text": f"bench round {index}"}
        if variant == VARIANTS[1]:
            extra["window"] = _open_window(now)
        elif variant == VARIANTS[2]:
            extra["send_at"] = (now + timedelta(days=1)).isoformat(timespec="seconds")
        return _one_number_body(number, **extra)

    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    sent_before = len(environment.sandbox.ledger)
    for index in range(-2, rounds):  # two rounds of warm-up: connections, the window's first zone look-up
        turn = index % len(VARIANTS)
        for variant in VARIANTS[turn:] + VARIANTS[:turn]:
            event = api_event(body(variant, index))
            began = time.perf_counter()
            answer = handler(event, lambda_context())  # type: ignore[arg-type]
            elapsed = (time.perf_counter() - began) * 1000
            if answer["statusCode"] != expected[variant]:
                raise BenchmarkBroken(
                    f"{variant} was answered {answer['statusCode']}: {answer['body'][:500]}"
                )
            if index >= 0:
                samples[variant].append(elapsed)
    sent = len(environment.sandbox.ledger) - sent_before
    if sent != 2 * (rounds + 2):
        raise BenchmarkBroken(
            f"the sandbox recorded {sent} sends, expected {2 * (rounds + 2)} (none of the scheduled ones)"
        )
    return samples


def _planning(destinations: int) -> dict[str, Any]:
    """Schedules.plan of a bulk send through a window, alone (no I/O): zones, then openings."""
    from gateway.schedules.service import get_schedules
    from gateway.sending.request import SendRequest

    now = datetime.now(UTC)
    request = SendRequest.model_validate(
        _one_number_body("0", destinations=greek_mobiles(destinations, seed=5), window=_open_window(now))
    )
    schedules = get_schedules()
    runs: list[float] = []
    parts: Any = None
    for _ in range(3):
        began = time.perf_counter()
        parts = schedules.plan(request, datetime.now(UTC))
        runs.append((time.perf_counter() - began) * 1000)
    # Open now in Athens, where every Greek mobile is: an ordinary send (plan says None).
    return {"median_ms": median(runs), "runs_ms": [round(run, 2) for run in runs], "parts": len(parts or [])}


def _fresh_processes(environment: BenchEnvironment, runs: int) -> dict[str, Any]:
    """The import of the schedules code, and the first scheduled requests, in fresh processes."""
    child_environment = {
        **environment.child_environment(write_bytecode=True),
        **environment.scheduling_environment(),
        "PYTHONPATH": os.pathsep.join([str(FUNCTIONS), str(REPO)]),
    }
    imports, firsts, seconds, modules = [], [], [], []
    for _ in range(runs):
        imported = _child(child_environment, "import")
        imports.append(imported["import_ms"])
        modules.append(imported["modules"])
        requested = _child(child_environment, "requests")
        firsts.append(requested["first_ms"])
        seconds.append(requested["second_ms"])
    importtime = _child(child_environment, "import", importtime=True)
    return {
        "import_ms": median(imports),
        "import_runs_ms": imports,
        "modules": int(median(modules)),
        "first_ms": median(firsts),
        "first_runs_ms": firsts,
        "second_ms": median(seconds),
        "second_runs_ms": seconds,
        "importtime_top": importtime["top"],
    }


def _child(child_environment: dict[str, str], mode: str, *, importtime: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-schedules-") as scratch:
        result_path = Path(scratch) / "result.json"
        arguments = [sys.executable, *(["-X", "importtime"] if importtime else []), "-P", str(CHILD_SCRIPT)]
        report, stderr = run_child(
            [*arguments, mode, str(result_path)],
            child_environment,
            result_path,
            what=f"the schedules child ({mode})",
            timeout=CHILD_TIMEOUT_SECONDS,
        )
    if importtime:
        report["top"] = _heaviest_imports(stderr)
    return report


def _heaviest_imports(stderr: str) -> list[dict[str, Any]]:
    """The modules `-X importtime` reports after the child's marker, heaviest cumulative first."""
    from bench.schedules_child import IMPORT_MARKER

    _, _, after = stderr.partition(IMPORT_MARKER)
    entries: list[dict[str, Any]] = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, module = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if cumulative.isdigit():
            entries.append({"module": module.strip(), "cumulative_ms": int(cumulative) / 1000})
    entries.sort(key=lambda entry: -entry["cumulative_ms"])
    return entries[:IMPORT_TOP]


def _scheduler_schedules(environment: BenchEnvironment) -> int:
    """How many one-time schedules Scheduler holds in the stage's group (moto keeps them all)."""
    import boto3

    from bench.environment import REGION
    from gateway import names

    scheduler = boto3.session.Session(region_name=REGION).client(
        "scheduler", endpoint_url=environment.endpoint_url
    )
    count = 0
    pages: Callable[..., Any] = scheduler.get_paginator("list_schedules").paginate
    for page in pages(GroupName=names.SCHEDULE_GROUP_NAME):
        count += len(page["Schedules"])
    return count
