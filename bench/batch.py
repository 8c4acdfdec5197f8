"""SQS batch: one queue-handler invocation on a full batch while the provider takes its time to answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from bench.environment import BenchEnvironment, sample_body, silenced_output, sqs_event
from bench.phones import greek_mobiles
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median
from local.functions import LambdaContext, lambda_context

NAME = "sqs-batch"
TARGET_MS = 200.0
PHONE_SEED = 10
EMULATOR_PROBE_CALLS = 20
EMULATOR_NOTE = (
    "moto server (ThreadedMotoServer in a process of its own): the idempotency table gets a "
    "put_item and an update_item per record"
)


def run_sqs_batch(
    environment: BenchEnvironment, *, records: int, runs: int, provider_latency: float
) -> BenchmarkResult:
    print(
        f"sqs batch: wall time of one queue-handler invocation on {records} valid records with distinct "
        f"destinations, sandbox latency {provider_latency * 1000:.0f} ms, median of {runs} runs (after one "
        "warm-up invocation of one record); then the same with the sandbox answering at once, to show "
        "the time spent besides waiting for the provider",
        flush=True,
    )
    print(f"  AWS: {EMULATOR_NOTE}", flush=True)
    environment.apply_to_process()

    from queue_handler import handler

    context = lambda_context(function_name="viber-gateway-bench-queue")
    # One destination per record, none repeated in the whole benchmark.
    destinations = iter(greek_mobiles(1 + 2 * records * runs, seed=PHONE_SEED))

    environment.reset_sandbox(latency=provider_latency)
    # The warm-up builds the clients and reads the token, as an earlier invocation would have.
    _invoke(handler, _batch(destinations, 1), context)
    with_latency_ms = _timed_batches(environment, handler, context, destinations, records, runs)
    environment.reset_sandbox(latency=0.0)
    without_latency_ms = _timed_batches(environment, handler, context, destinations, records, runs)
    dynamodb_call_ms = _emulator_round_trip_ms(environment)

    result = BenchmarkResult(NAME)
    batch_ms = median(with_latency_ms)
    work_ms = median(without_latency_ms)
    latency_ms = provider_latency * 1000
    result.add(
        f"{records} records, provider {latency_ms:.0f} ms (median of {runs})", batch_ms, "ms", TARGET_MS
    )
    result.add(f"{records} records, provider answering at once (median of {runs})", work_ms, "ms")
    result.details.update(
        records=records,
        runs=runs,
        provider_latency_ms=latency_ms,
        wall_ms=with_latency_ms,
        wall_ms_provider_at_once=without_latency_ms,
        aws=EMULATOR_NOTE,
        # The bounds: records sent all at once wait one latency, one after another `records` of them.
        all_at_once_provider_wait_ms=latency_ms,
        one_by_one_provider_wait_ms=records * latency_ms,
        emulator_dynamodb_put_item_ms=dynamodb_call_ms,
    )
    print(
        f"  median {batch_ms:.0f} ms (records sent all at once wait {latency_ms:.0f} ms for the provider, "
        f"one by one {records * latency_ms:.0f} ms); {work_ms:.0f} ms with the provider answering at once; "
        f"moto answers a DynamoDB put_item in {dynamodb_call_ms:.1f} ms (median), and serves the "
        f"{2 * records} calls of a batch one at a time",
        flush=True,
    )
    return result


def _batch(destinations: Iterator[str], size: int) -> dict[str, Any]:
    return sqs_event([{**sample_body(), "destinations": [next(destinations)]} for _ in range(size)])


def _timed_batches(
    environment: BenchEnvironment,
    handler: Any,
    context: LambdaContext,
    destinations: Iterator[str],
    records: int,
    runs: int,
) -> list[float]:
    wall_ms = []
    for _ in range(runs):
        event = _batch(destinations, records)
        sent_before = len(environment.sandbox.ledger)
        wall_ms.append(_invoke(handler, event, context))
        sent = len(environment.sandbox.ledger) - sent_before
        if sent != records:
            raise BenchmarkBroken(f"the sandbox recorded {sent} sends for a batch of {records}")
    return wall_ms


def _invoke(handler: Any, event: dict[str, Any], context: LambdaContext) -> float:
    """One invocation's wall time in ms; BenchmarkBroken unless every record succeeded."""
    with silenced_output():
        started = time.perf_counter()
        answer = handler(event, context)
        elapsed_ms = (time.perf_counter() - started) * 1000
    if answer.get("batchItemFailures") != []:
        raise BenchmarkBroken(f"the queue handler failed records: {answer}")
    return elapsed_ms


def _emulator_round_trip_ms(environment: BenchEnvironment) -> float:
    """How long moto takes for one put_item: the emulator's share of the batch, to read the figures by."""
    import boto3

    from gateway import names

    client = boto3.client("dynamodb", endpoint_url=environment.endpoint_url)
    elapsed_ms = []
    for _ in range(EMULATOR_PROBE_CALLS):
        item = {names.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"bench-probe-{uuid.uuid4()}"}}
        started = time.perf_counter()
        client.put_item(TableName=names.IDEMPOTENCY_TABLE_NAME, Item=item)
        elapsed_ms.append((time.perf_counter() - started) * 1000)
    return median(elapsed_ms[1:])  # the first call also builds the connection
