"""The suppression list: what checking it adds to a send (issue 18).

In process, against moto's server and the sandbox (each in a process of its own).
The list is filled with E entries through `SuppressionStore.import_entries` (timed,
no target): numbers that are not among the send's N destinations, except H of them
that are, so that the check finds something. Then the same N-destination
POST /messages through the API handler with the list off (SUPPRESSION_TABLE unset)
and on, interleaved; after each send with the list on, `store.check` of the N
destinations timed alone, the figure held against the target (its share of the send
with the list off). Last, the check of one number: its time and the DynamoDB calls it
makes (each HTTP request counted by a `before-send` hook on the store's client).
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

NAME = "suppression"
TARGET_ADDED_PERCENT = 10.0
TARGET_ONE_NUMBER_CALLS = 1
ONE_NUMBER_RUNS = 20


def run_suppression(
    environment: BenchEnvironment,
    *,
    entries: int,
    destinations: int,
    hits: int,
    send_runs: int,
    provider_latency: float,
) -> BenchmarkResult:
    print(
        f"suppression: a list of {entries:,} entries ({hits} of them among the destinations), imported; "
        f"POST /messages of {destinations:,} with the list off and on, {send_runs} each, interleaved, "
        f"sandbox latency {provider_latency * 1000:.0f} ms; the check of {destinations:,} alone; the check "
        "of one number and its DynamoDB calls",
        flush=True,
    )
    from gateway import names

    environment.apply_to_process()
    sender_name = str(sample_body()["im_sender_name"])
    # The send's destinations first, then the entries that are not among them.
    numbers = greek_mobiles(destinations + entries - hits, seed=18)
    send_to = numbers[:destinations]
    listed = send_to[:hits] + numbers[destinations:]
    with silenced_output():
        fill_seconds = _fill(listed)
        timings = _sends(environment, send_to, set(send_to[:hits]), send_runs, provider_latency)
        one = _one_number(send_to[0], sender_name)
    os.environ.pop(names.ENV_SUPPRESSION_TABLE, None)

    off, on = median(timings["off"]), median(timings["on"])
    check = median(timings["check"])
    reads = median(timings["bucket_reads"])
    result = BenchmarkResult(NAME)
    result.add(f"import of {entries:,} entries", fill_seconds * 1000, "ms")
    result.add(f"send of {destinations:,}, list off (median)", off, "ms")
    result.add(f"send of {destinations:,}, list on (median)", on, "ms")
    result.add(f"check of {destinations:,} alone (median)", check, "ms")
    result.add("of which reading the buckets (moto, botocore)", reads, "ms")
    result.add(f"DynamoDB calls of the check of {destinations:,}", timings["check_calls"][0], "calls")
    result.add("added to the send by the check", check / off * 100, "%", TARGET_ADDED_PERCENT)
    result.add("check of one number (median)", one["median_ms"], "ms")
    result.add("DynamoDB calls of the check of one number", one["calls"], "calls", TARGET_ONE_NUMBER_CALLS)
    result.details.update(
        entries=entries,
        destinations=destinations,
        hits=hits,
        fill_seconds=fill_seconds,
        send_ms=timings,
        one_number=one,
    )
    print(
        f"  import of {entries:,} entries: {fill_seconds:.1f} s ({entries / fill_seconds:,.0f} entries/s)",
        flush=True,
    )
    print(
        f"  send: list off {off:.0f} ms, on {on:.0f} ms ({(on - off) / off * 100:+.1f} %, interleaved: "
        f"noisy on a shared machine); the check alone {check:.1f} ms ({check / off * 100:.1f} % of the "
        f"send; reading the buckets {reads:.1f} ms of it, {timings['check_calls'][0]:.0f} DynamoDB calls); "
        f"all runs: {timings}",
        flush=True,
    )
    print(
        f"  one number: {one['median_ms']:.2f} ms (median of {ONE_NUMBER_RUNS}), {one['calls']} DynamoDB "
        "call(s)",
        flush=True,
    )
    return result


def _store() -> Any:
    from gateway import names
    from gateway.suppression.store import SuppressionStore

    return SuppressionStore(names.SUPPRESSION_TABLE_NAME)


def _fill(numbers: list[str]) -> float:
    """Import `numbers` as opt-outs for every sender; the seconds it took."""
    from gateway.suppression.store import Entry

    store = _store()
    now = int(time.time())
    entries = [Entry(number, "opt-out", added_at=now, added_by="bench") for number in numbers]
    started = time.perf_counter()
    imported = store.import_entries(entries)
    seconds = time.perf_counter() - started
    if len(imported.added) != len(numbers):
        raise BenchmarkBroken(f"the import added {len(imported.added):,} of {len(numbers):,} entries")
    return seconds


class _CallCounter:
    """Counts the HTTP requests a botocore client sends (retries included): its round trips."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, **_: Any) -> None:
        self.calls += 1


def _sends(
    environment: BenchEnvironment, numbers: list[str], hits: set[str], runs: int, provider_latency: float
) -> dict[str, list[float]]:
    from api_handler import handler
    from gateway import names
    from local.functions import lambda_context, reset_process_caches

    environment.reset_sandbox(latency=provider_latency)
    sender_name = str(sample_body()["im_sender_name"])
    store = _store()
    counter = _CallCounter(store.client)
    store.check(numbers, sender_name)  # its connections, as a warm container's client has them
    timings: dict[str, list[float]] = {
        name: [] for name in ("off", "on", "check", "check_calls", "bucket_reads")
    }
    for index in range(runs * 2):
        listed = "on" if index % 2 else "off"
        if listed == "on":
            os.environ[names.ENV_SUPPRESSION_TABLE] = names.SUPPRESSION_TABLE_NAME
        else:
            os.environ.pop(names.ENV_SUPPRESSION_TABLE, None)
        reset_process_caches()
        # A small send first: the token and the clients, as an earlier invocation would have them.
        handler(api_event(sample_body()), lambda_context())
        body = {**sample_body(), "im_text": f"bench {index}", "destinations": numbers}
        started = time.perf_counter()
        answer = handler(api_event(body), lambda_context())
        timings[listed].append((time.perf_counter() - started) * 1000)
        if answer["statusCode"] != 200:
            raise BenchmarkBroken(f"the send was answered {answer['statusCode']}: {answer['body'][:500]}")
        suppressed = {item["destination"] for item in json.loads(answer["body"]).get("suppressed", [])}
        if suppressed != (hits if listed == "on" else set()):
            raise BenchmarkBroken(
                f"list {listed}: the send left out {len(suppressed)} destinations, expected "
                f"{len(hits) if listed == 'on' else 0}"
            )
        if listed == "on":
            counter.calls = 0
            started = time.perf_counter()
            found = store.check(numbers, sender_name)
            timings["check"].append((time.perf_counter() - started) * 1000)
            timings["check_calls"].append(counter.calls)
            if {item.destination for item in found} != hits:
                raise BenchmarkBroken(
                    f"the check found {len(found)} listed destinations, expected {len(hits)}"
                )
            timings["bucket_reads"].append(_bucket_reads_ms(store, numbers))
    return timings


def _bucket_reads_ms(store: Any, numbers: list[str]) -> float:
    """The check's reads alone (DynamoDB, here moto, and botocore's parsing), without finding the numbers."""
    from gateway.suppression.rules import bucket_of

    buckets = sorted({bucket_of(number) for number in numbers})
    started = time.perf_counter()
    store._bucket_texts(buckets)
    return (time.perf_counter() - started) * 1000


def _one_number(number: str, sender_name: str) -> dict[str, Any]:
    """The check of one (listed) number: its time, and the DynamoDB calls of one check."""
    store = _store()
    counter = _CallCounter(store.client)
    store.check([number], sender_name)  # its connection
    samples = []
    calls = []
    for _ in range(ONE_NUMBER_RUNS):
        counter.calls = 0
        started = time.perf_counter()
        found = store.check([number], sender_name)
        samples.append((time.perf_counter() - started) * 1000)
        calls.append(counter.calls)
        if [item.destination for item in found] != [number]:
            raise BenchmarkBroken(f"the check of one listed number found {len(found)}")
    return {"median_ms": median(samples), "calls": max(calls), "samples_ms": samples, "calls_each": calls}
