"""Delivery tracking: what recording a send for tracking costs it, and how fast the tracker polls.

In process, against moto's server and the sandbox (each in a process of its own).
First the tracker: two sends of N destinations with tracking on, one whose
messages stay where they are (the sandbox moves them only in a day) and one
whose messages are final at once; then two runs at the tracker's own clock:
run 1 takes all 2N in and polls them (N become final: a status change, an event
and a write each), run 2 polls the N still open, with nothing changed (pure
polling). Then the send path: the same N-destination POST /messages with
tracking off and on, interleaved.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from bench.environment import BenchEnvironment, api_event, sample_body, silenced_output
from bench.phones import greek_mobiles
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median

NAME = "tracker"
TARGET_ADDED_PERCENT = 10.0


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def run_tracker(
    environment: BenchEnvironment, *, destinations: int, send_runs: int, provider_latency: float
) -> BenchmarkResult:
    print(
        f"tracker: {destinations:,} messages: the tracker's runs (take in + poll, poll unchanged, poll to "
        f"final), then POST /messages of {destinations:,} with tracking off and on, {send_runs} each, "
        f"interleaved, sandbox latency {provider_latency * 1000:.0f} ms",
        flush=True,
    )
    from gateway import names

    environment.apply_to_process()
    os.environ[names.ENV_TRACKING_TABLE] = names.TRACKING_TABLE_NAME
    os.environ[names.ENV_EVENT_BUS_NAME] = names.EVENT_BUS_NAME
    result = BenchmarkResult(NAME)
    with silenced_output():
        runs = _tracker_runs(environment, destinations)
        send_ms = _send_with_and_without_tracking(environment, destinations, send_runs, provider_latency)
    for os_name in (names.ENV_TRACKING_TABLE, names.ENV_EVENT_BUS_NAME):
        os.environ.pop(os_name, None)

    take_in, unchanged = runs
    result.add(f"run 1: take in and poll {2 * destinations:,}", take_in["seconds"] * 1000, "ms")
    result.add(f"run 2: poll {unchanged['polled']:,} open messages", unchanged["seconds"] * 1000, "ms")
    result.add("run 2: of which finding them in the index (moto)", unchanged["index_seconds"] * 1000, "ms")
    result.add("run 2: messages polled per second (polling)", unchanged["polled_per_second"], "msg/s")
    result.add("run 2: provider calls", unchanged["provider_calls"], "calls")
    off, on = median(send_ms["off"]), median(send_ms["on"])
    added = (on - off) / off * 100
    recording = median(send_ms["recording"])
    result.add(f"send of {destinations:,}, tracking off (median)", off, "ms")
    result.add(f"send of {destinations:,}, tracking on (median)", on, "ms")
    result.add("recording for tracking alone (median)", recording, "ms")
    result.add(
        "added to the send by recording for tracking", recording / off * 100, "%", TARGET_ADDED_PERCENT
    )
    result.details.update(runs=runs, send_ms=send_ms, destinations=destinations)
    for label, run in zip(("run 1, take in + poll", "run 2, poll open ones"), runs, strict=True):
        print(
            f"  {label}: {run['seconds']:.2f} s (take in {run['take_in_seconds']:.2f} s, index "
            f"{run['index_seconds']:.2f} s, polling {run['poll_seconds']:.2f} s), {run['polled']:,} polled "
            f"({run['polled_per_second']:,.0f}/s while polling), "
            f"{run['provider_calls']} provider calls, {run['taken_in']:,} taken in, "
            f"{run['changed']:,} changes, {run['finished']:,} final",
            flush=True,
        )
    print(
        f"  send: tracking off {off:.0f} ms, on {on:.0f} ms ({added:+.1f} %, interleaved: noisy on a shared "
        f"machine); the recording alone {recording:.1f} ms ({recording / off * 100:.1f} % of the send); "
        f"all runs: {send_ms}",
        flush=True,
    )
    return result


def _tracker_runs(environment: BenchEnvironment, destinations: int) -> list[dict[str, Any]]:
    from api_handler import handler
    from local.functions import lambda_context, reset_process_caches
    from scheduled_handler import get_tracker

    reset_process_caches()
    environment.reset_sandbox(latency=0.0)
    # A message keeps the sandbox's step it was sent with: a day (stays), then 0 (final at once).
    for seed, step in ((21, 86_400), (22, 0)):
        environment.sandbox._control("POST", "config", {"delivery_step_seconds": step})
        body = {**sample_body(), "destinations": greek_mobiles(destinations, seed=seed)}
        answer = handler(api_event(body), lambda_context())
        if answer["statusCode"] != 200:
            raise BenchmarkBroken(f"a send to track was answered {answer['statusCode']}")
    tracker = get_tracker()
    if tracker is None:
        raise BenchmarkBroken("tracking is not on")
    clock = _Clock()
    tracker.clock = tracker.store.clock = clock
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        run = vars(tracker.run())
        seconds = time.perf_counter() - started
        polling = max(run["poll_seconds"], 1e-6)
        runs.append({**run, "seconds": seconds, "polled_per_second": run["polled"] / polling})
        clock.now += 60
    first, second = runs
    taken_in_and_polled = first["taken_in"] == first["polled"] == 2 * destinations
    # Run 2 polls the messages that stay, and those of the second send that never read (last digit 0)
    if not taken_in_and_polled or second["polled"] < destinations or first["finished"] == 0:
        raise BenchmarkBroken(f"the tracker did not take in and poll every message: {runs}")
    return runs


def _send_with_and_without_tracking(
    environment: BenchEnvironment, destinations: int, runs: int, provider_latency: float
) -> dict[str, list[float]]:
    from api_handler import handler
    from gateway import names
    from local.functions import lambda_context, reset_process_caches

    environment.reset_sandbox(latency=provider_latency)
    numbers = greek_mobiles(destinations, seed=11)
    timings: dict[str, list[float]] = {"off": [], "on": [], "recording": []}
    for index in range(runs * 2):
        tracking = "on" if index % 2 else "off"
        if tracking == "on":
            os.environ[names.ENV_TRACKING_TABLE] = names.TRACKING_TABLE_NAME
        else:
            os.environ.pop(names.ENV_TRACKING_TABLE, None)
        reset_process_caches()
        # A small send first: the token and the clients, as an earlier invocation would have them.
        handler(api_event(sample_body()), lambda_context())
        body = {**sample_body(), "im_text": f"bench {index}", "destinations": numbers}
        started = time.perf_counter()
        answer = handler(api_event(body), lambda_context())
        timings[tracking].append((time.perf_counter() - started) * 1000)
        if answer["statusCode"] != 200:
            raise BenchmarkBroken(f"the send was answered {answer['statusCode']}")
        if tracking == "on":
            timings["recording"].append(_recording_ms(json.loads(answer["body"])))
    return timings


def _recording_ms(answer: dict[str, Any]) -> float:
    """What the send path's tracking write costs alone: the same results recorded once more."""
    from gateway.provider.client import SendResult, SentMessage
    from gateway.sending.send import get_sender

    tracking = get_sender().tracking
    if tracking is None:
        raise BenchmarkBroken("tracking is not on")
    chunk = 1000
    messages = [SentMessage(m["destination"], m["smsid"]) for m in answer["messages"]]
    results = [SendResult(f"again-{i}", messages[i : i + chunk]) for i in range(0, len(messages), chunk)]
    started = time.perf_counter()
    tracking.record_sent(results, reference="bench", sms_fallback=False)
    return (time.perf_counter() - started) * 1000
