"""Caps: what counting a send against its caller's daily limits and the stage's spend ceiling adds to it.

In process, against moto's server and the sandbox (each in a process of its own), with the
usage table as make run provisions it. POST /messages through the API handler (the sample
event's key id is the caller), with an SMS fallback (IM_SMSFB), so that the worst-case SMS
cost is computed for every destination: one number, and a bulk send of N numbers, each with
the caps off (USAGE_TABLE unset) and on (USAGE_TABLE set, a daily limit of messages and of
cost per caller and a spend ceiling, all far above what the run sends), interleaved round by
round, the order turning each round, after a round of warm-up. Each round starts with a small
untimed send (the usage client and its connection, the prices, the caller's limits: what a warm
container has), then times its sends. Medians and p95 of each, and the ratio of the medians;
the caps' own time inside each send (`Caps.reserve`, timed where the send calls it), whose
share of the send with the caps off is held against the target (the A/B difference of
10,000-number sends moves by tens of milliseconds between runs, more than what the caps add);
and the DynamoDB requests of each send (a `before-send` hook on the functions' one boto3
session: every HTTP request, retries included). Last, alone: the
destination policy's check of the N numbers (`DestinationPolicy.refusals`, Greece and Cyprus,
mobiles) and the worst-case cost of the N numbers (`Caps.worst_case_cost`).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from bench.environment import REGION, BenchEnvironment, api_event, sample_body, silenced_output
from bench.phones import greek_mobiles
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median, percentile

NAME = "caps"
# The target: the caps add at most 5 % to a send.
TARGET_ADDED_PERCENT = 5.0
MODES = ("off", "on")
# Far above what the run sends, so nothing is ever refused (the refusal path is not what is measured).
MESSAGES_PER_DAY = 10**9
COST_PER_DAY_EUROS = 10**9
SPEND_CEILING_EUROS = 10**9
SMS_FALLBACK = {"im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "Your order has shipped."}


def run_caps(
    environment: BenchEnvironment,
    *,
    one_rounds: int,
    one_sends_per_round: int,
    bulk_destinations: int,
    bulk_rounds: int,
    alone_runs: int,
    provider_latency: float,
) -> BenchmarkResult:
    print(
        f"caps: POST /messages (IM_SMSFB) of one number ({one_rounds} rounds of {one_sends_per_round} "
        f"sends) and of {bulk_destinations:,} numbers ({bulk_rounds} rounds of one), caps off and on, "
        f"interleaved, sandbox latency {provider_latency * 1000:.0f} ms; the DynamoDB calls of each send; "
        f"the policy check and the worst-case cost of {bulk_destinations:,} numbers alone",
        flush=True,
    )
    from gateway import names

    environment.apply_to_process()
    _create_usage_table(environment)
    os.environ.update(
        {
            names.ENV_DAILY_MESSAGE_LIMIT: str(MESSAGES_PER_DAY),
            names.ENV_DAILY_COST_LIMIT_EUROS: str(COST_PER_DAY_EUROS),
            names.ENV_DAILY_SPEND_CEILING_EUROS: str(SPEND_CEILING_EUROS),
        }
    )
    environment.reset_sandbox(latency=provider_latency)
    numbers = greek_mobiles(bulk_destinations, seed=19)
    calls = _CallCounter()
    try:
        with silenced_output(), _timed_caps() as timings:
            one = _interleaved(numbers[:1], one_rounds, one_sends_per_round, calls, timings)
            bulk = _interleaved(numbers, bulk_rounds, 1, calls, timings)
            counted = _counted_today()
            alone = _alone(numbers, alone_runs)
    finally:
        for name in (
            names.ENV_USAGE_TABLE,
            names.ENV_DAILY_MESSAGE_LIMIT,
            names.ENV_DAILY_COST_LIMIT_EUROS,
            names.ENV_DAILY_SPEND_CEILING_EUROS,
        ):
            os.environ.pop(name, None)
    expected = one["messages_on"] + bulk["messages_on"]
    if counted != expected:
        raise BenchmarkBroken(f"the usage table counted {counted:,} messages today, expected {expected:,}")

    result = BenchmarkResult(NAME)
    summaries = {}
    for label, runs in (("one number", one), (f"{bulk_destinations:,} numbers", bulk)):
        summary = _summary(runs)
        summaries[label] = summary
        result.add(f"{label}: send, caps off (median)", summary["off_median"], "ms")
        result.add(f"{label}: send, caps off (p95)", summary["off_p95"], "ms")
        result.add(f"{label}: send, caps on (median)", summary["on_median"], "ms")
        result.add(f"{label}: send, caps on (p95)", summary["on_p95"], "ms")
        result.add(f"{label}: caps on / off (medians)", summary["ratio"], "x")
        result.add(f"{label}: the caps' own time in the send (median)", summary["reserve_median"], "ms")
        result.add(
            f"{label}: the caps' own time, share of the send",
            summary["reserve_percent"],
            "%",
            TARGET_ADDED_PERCENT,
        )
        result.add(f"{label}: of which the usage table's update (median)", summary["updates_median"], "ms")
        result.add(f"{label}: DynamoDB calls per send, caps on", summary["calls_on"], "calls")
    result.add(f"policy check of {bulk_destinations:,} numbers alone (median)", alone["policy_ms"], "ms")
    result.add(f"worst-case cost of {bulk_destinations:,} numbers alone (median)", alone["cost_ms"], "ms")
    result.add("one DynamoDB round trip to moto alone: GetItem (median)", alone["round_trip_ms"], "ms")
    result.details.update(
        provider_latency_seconds=provider_latency,
        one_rounds=one_rounds,
        one_sends_per_round=one_sends_per_round,
        bulk_destinations=bulk_destinations,
        bulk_rounds=bulk_rounds,
        target_added_percent=TARGET_ADDED_PERCENT,
        summaries=summaries,
        one_number=one,
        bulk=bulk,
        alone=alone,
        messages_counted_today=counted,
    )
    for label, summary in summaries.items():
        inside = summary["inside_median_ms"]
        verdict = "PASS" if summary["reserve_percent"] <= TARGET_ADDED_PERCENT else "MISS"
        print(
            f"  {label}: caps off median {summary['off_median']:.2f} ms (p95 {summary['off_p95']:.2f}), on "
            f"{summary['on_median']:.2f} ms (p95 {summary['on_p95']:.2f}): {summary['added_percent']:+.1f} % "
            f"({summary['samples']} sends each); the caps' own time {summary['reserve_median']:.2f} ms, "
            f"{summary['reserve_percent']:.1f} % of the send with caps off (target <= "
            f"{TARGET_ADDED_PERCENT:g} %: {verdict}; worst-case cost "
            f"{inside['Caps.worst_case_cost']:.2f} ms, the caller's and the stage's update "
            f"{inside['UsageStore.add']:.2f} ms); "
            f"DynamoDB calls per send, caps on: {summary['calls_on']:g} "
            f"({summary['operations_on']}), at most {summary['calls_on_max']}; caps off: "
            f"{summary['calls_off_max']}",
            flush=True,
        )
    print(
        f"  alone, {bulk_destinations:,} numbers (median of {alone_runs}): the policy check "
        f"{alone['policy_ms']:.1f} ms ({alone['policy_refusals']} refused), the worst-case cost "
        f"{alone['cost_ms']:.1f} ms ({alone['cost_euros']} EUR); one GetItem round trip to moto "
        f"{alone['round_trip_ms']:.2f} ms",
        flush=True,
    )
    return result


def _create_usage_table(environment: BenchEnvironment) -> None:
    """The caps' usage table in moto's server, as make run provisions it."""
    import boto3

    from local.emulator import create_usage_table

    session = boto3.session.Session(region_name=REGION)
    create_usage_table(session.client("dynamodb", endpoint_url=environment.endpoint_url))


class _CallCounter:
    """The DynamoDB requests the functions' clients send, by operation (a hook on their one session)."""

    def __init__(self) -> None:
        from gateway.aws import aws_session

        self.calls: Counter[str] = Counter()
        # Clients copy the session's hooks when made: register before the first request makes them.
        aws_session().events.register("before-send.dynamodb", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.split(".")[-1]] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


# What the caps do inside a send, each timed where the send calls it.
TIMED = ("Caps.reserve", "Caps.worst_case_cost", "UsageStore.add")


@contextmanager
def _timed_caps() -> Iterator[dict[str, list[float]]]:
    """The caps' methods (TIMED) timed in place: what counting adds, the rest of the send aside."""
    from gateway.guard import caps

    samples: dict[str, list[float]] = {name: [] for name in TIMED}
    originals: list[tuple[type, str, Callable[..., Any]]] = []

    def timed(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                samples[name].append((time.perf_counter() - started) * 1000)

        return wrapper

    for name in TIMED:
        owner_name, method = name.split(".")
        owner = getattr(caps, owner_name)
        original = getattr(owner, method)
        originals.append((owner, method, original))
        setattr(owner, method, timed(name, original))
    try:
        yield samples
    finally:
        for owner, method, original in originals:
            setattr(owner, method, original)


def _set_caps(on: bool) -> None:
    """Caps on (the usage table named) or off (unset), as a function deployed either way would read them."""
    from gateway import names
    from gateway.guard.caps import get_caps
    from gateway.settings import get_settings

    if on:
        os.environ[names.ENV_USAGE_TABLE] = names.USAGE_TABLE_NAME
    else:
        os.environ.pop(names.ENV_USAGE_TABLE, None)
    get_settings.cache_clear()
    get_caps.cache_clear()


def _body(destinations: list[str], text: str) -> dict[str, Any]:
    return {**sample_body(), **SMS_FALLBACK, "im_text": text, "destinations": destinations}


def _send(body: dict[str, Any]) -> float:
    """POST /messages of `body` through the API handler; its milliseconds (BenchmarkBroken unless 200)."""
    from api_handler import handler
    from local.functions import lambda_context

    event = api_event(body)
    started = time.perf_counter()
    answer = handler(event, lambda_context())  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - started) * 1000
    if answer["statusCode"] != 200:
        raise BenchmarkBroken(f"a send was answered {answer['statusCode']}: {answer['body'][:500]}")
    return elapsed


def _interleaved(
    numbers: list[str],
    rounds: int,
    sends_per_round: int,
    calls: _CallCounter,
    timings: dict[str, list[float]],
) -> dict[str, Any]:
    """The same send with the caps off and on, round by round (one of warm-up), the order turning."""
    warm_number = greek_mobiles(1, seed=3)[0]
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    inside: dict[str, list[float]] = {name: [] for name in TIMED}
    operations: dict[str, list[dict[str, int]]] = {mode: [] for mode in MODES}
    messages_on = 0
    for index in range(-1, rounds):
        order = MODES if index % 2 == 0 else MODES[::-1]
        for mode in order:
            _set_caps(mode == "on")
            # Untimed: the usage client and its connection, the prices, the caller's limits.
            _send(_body([warm_number], f"bench caps warm-up {index}"))
            messages_on += 1 if mode == "on" else 0
            for send in range(sends_per_round):
                calls.take()
                for taken in timings.values():
                    taken.clear()
                elapsed = _send(_body(numbers, f"bench caps {mode} {index}.{send}"))
                made = calls.take()
                messages_on += len(numbers) if mode == "on" else 0
                counted = len(timings["Caps.reserve"])
                if mode == "on" and counted != 1:
                    raise BenchmarkBroken(f"a send with the caps on counted {counted} times")
                if mode == "off" and (counted or made):
                    raise BenchmarkBroken(f"a send with the caps off counted, or called DynamoDB: {made}")
                if index < 0:
                    continue
                samples[mode].append(elapsed)
                operations[mode].append(dict(made))
                if mode == "on":
                    for name, taken in timings.items():
                        inside[name].append(sum(taken))
    return {
        "destinations": len(numbers),
        "ms": samples,
        "inside_ms": inside,
        "dynamodb_calls": operations,
        "messages_on": messages_on,
    }


def _summary(runs: dict[str, Any]) -> dict[str, Any]:
    off, on = runs["ms"]["off"], runs["ms"]["on"]
    off_median, on_median = median(off), median(on)
    inside = {name: median(taken) for name, taken in runs["inside_ms"].items()}
    reserve_median = inside["Caps.reserve"]
    calls_on = [sum(made.values()) for made in runs["dynamodb_calls"]["on"]]
    calls_off = [sum(made.values()) for made in runs["dynamodb_calls"]["off"]]
    by_operation: Counter[str] = Counter()
    for made in runs["dynamodb_calls"]["on"]:
        by_operation.update(made)
    per_send = {operation: count / len(calls_on) for operation, count in sorted(by_operation.items())}
    return {
        "samples": len(off),
        "off_median": off_median,
        "off_p95": percentile(off, 95),
        "on_median": on_median,
        "on_p95": percentile(on, 95),
        "ratio": on_median / off_median,
        "added_percent": (on_median - off_median) / off_median * 100,
        "added_ms": on_median - off_median,
        "reserve_median": reserve_median,
        "reserve_p95": percentile(runs["inside_ms"]["Caps.reserve"], 95),
        "inside_median_ms": inside,
        "updates_median": inside["UsageStore.add"],
        "reserve_percent": reserve_median / off_median * 100,
        "calls_on": median(calls_on),
        "calls_on_max": max(calls_on),
        "calls_off_max": max(calls_off),
        "operations_on": ", ".join(f"{count:g} {operation}" for operation, count in per_send.items()),
        "operations_on_per_send": per_send,
    }


def _counted_today() -> int:
    """The messages the usage table counted today for the sample event's caller."""
    from api_handler import caller_of
    from bench.environment import load_event
    from gateway.guard.caps import get_caps

    _set_caps(True)
    caps = get_caps()
    if caps is None:
        raise BenchmarkBroken("no caps with the usage table set")
    day, _ = caps.day()
    messages, _ = caps.store.usage(day, caller_of(load_event("api-post-im.json")))
    return messages


def _alone(numbers: list[str], runs: int) -> dict[str, Any]:
    """The destination policy's check and the worst-case cost of `numbers`, each alone (no I/O); and
    one GetItem of the usage table, the floor of any DynamoDB call here (moto's server, over HTTP)."""
    from gateway import names
    from gateway.guard.caps import get_caps
    from gateway.guard.policy import DestinationPolicy

    policy = DestinationPolicy.of(names.DEFAULT_ALLOWED_COUNTRIES, names.DEFAULT_ALLOWED_NUMBER_TYPES)
    policy_ms: list[float] = []
    refusals: list[Any] = []
    for _ in range(runs):
        started = time.perf_counter()
        refusals = policy.refusals(numbers)
        policy_ms.append((time.perf_counter() - started) * 1000)
    _set_caps(True)
    caps = get_caps()
    if caps is None:
        raise BenchmarkBroken("no caps with the usage table set")
    caps.worst_case_cost(numbers[:1], 1, False)  # the price of a Greek SMS, asked of the sandbox once
    cost_ms: list[float] = []
    cost = Decimal(0)
    for _ in range(runs):
        started = time.perf_counter()
        cost = caps.worst_case_cost(numbers, 1, False)
        cost_ms.append((time.perf_counter() - started) * 1000)
    round_trip_ms: list[float] = []
    for _ in range(max(runs, 10)):
        started = time.perf_counter()
        caps.store.client.get_item(
            TableName=caps.store.table_name, Key={names.USAGE_KEY_ATTRIBUTE: {"S": "bench#absent"}}
        )
        round_trip_ms.append((time.perf_counter() - started) * 1000)
    _set_caps(False)
    if refusals:
        raise BenchmarkBroken(f"the policy refused {len(refusals)} Greek mobiles")
    return {
        "policy_ms": median(policy_ms),
        "policy_runs_ms": policy_ms,
        "policy_refusals": len(refusals),
        "cost_ms": median(cost_ms),
        "cost_runs_ms": cost_ms,
        "cost_euros": str(cost),
        "round_trip_ms": median(round_trip_ms),
        "round_trip_runs_ms": round_trip_ms,
    }
