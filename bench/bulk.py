"""Bulk: one POST /messages to 10,000 distinct destinations, in a fresh process (for its peak RSS)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.environment import FUNCTIONS, REPO, BenchEnvironment, run_child
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import median

NAME = "bulk"
CHILD_SCRIPT = Path(__file__).with_name("bulk_child.py")
CHILD_TIMEOUT_SECONDS = 300
TARGET_VALIDATION_MS = 250.0
TARGET_PEAK_RSS_MIB = 150.0
# Half of DynamoDB's 400 KB item limit: the largest accepted request fits with margin.
TARGET_RECORD_KIB = 200.0


def run_bulk(
    environment: BenchEnvironment, *, destinations: int, validation_runs: int, provider_latency: float
) -> BenchmarkResult:
    print(
        f"bulk: one POST /messages with {destinations:,} distinct valid Greek mobiles in a fresh process; "
        f"SendRequest.model_validate alone (median of {validation_runs}), then the whole handler (after "
        f"one small warm-up request), sandbox latency {provider_latency * 1000:.0f} ms; peak RSS "
        "at the end",
        flush=True,
    )
    environment.reset_sandbox(latency=provider_latency)
    child_environment = environment.child_environment(write_bytecode=False)
    child_environment["PYTHONPATH"] = os.pathsep.join([str(FUNCTIONS), str(REPO)])
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as scratch:
        result_path = Path(scratch) / "result.json"
        arguments = [str(destinations), str(validation_runs), str(result_path)]
        report, _ = run_child(
            [sys.executable, "-P", str(CHILD_SCRIPT), *arguments],
            child_environment,
            result_path,
            what="the bulk child",
            timeout=CHILD_TIMEOUT_SECONDS,
        )
    # However the gateway splits the list into provider requests, every destination arrives once per
    # send: the bulk request, and the keyed one (its retry is a replay); the warm-up's once.
    ledger = environment.sandbox.ledger
    sent = Counter(destination for entry in ledger for destination in entry["payload"]["destinations"])
    warmup = set(ledger[0]["payload"]["destinations"])  # the warm-up came first
    if len(sent) != destinations + len(warmup) or any(
        count != (1 if number in warmup else 2) for number, count in sent.items()
    ):
        raise BenchmarkBroken(
            f"the sandbox recorded {sum(sent.values())} destinations; expected each of {destinations:,} twice"
        )
    # The warm-up, then the bulk send's requests, then the keyed send's as many again.
    bulk_requests = (len(ledger) - 1) // 2
    environment.reset_sandbox(latency=0.0)

    result = BenchmarkResult(NAME)
    validation_ms = median(report["validation_ms"])
    result.add(
        f"validation of {destinations:,} destinations (median of {validation_runs})",
        validation_ms,
        "ms",
        TARGET_VALIDATION_MS,
    )
    result.add(f"whole handler, provider {provider_latency * 1000:.0f} ms", report["handler_ms"], "ms")
    # VmHWM where there is one (see bulk_child.vm_hwm_mib), else ru_maxrss.
    measured_as = "VmHWM" if report["vm_hwm_mib"] is not None else "ru_maxrss"
    peak_rss_mib = report["vm_hwm_mib"] if report["vm_hwm_mib"] is not None else report["ru_maxrss_mib"]
    result.add("peak RSS of the process", peak_rss_mib, "MB", TARGET_PEAK_RSS_MIB)
    result.add(f"retry of a keyed send of {destinations:,} (a replay)", report["keyed_replay_ms"], "ms")
    result.add("stored idempotency record (DynamoDB item)", report["record_bytes"] / 1024, "KB")
    result.add(
        "the same record if no two ids were in sequence",
        report["worst_case_record_bytes"] / 1024,
        "KB",
        TARGET_RECORD_KIB,
    )
    handler_besides_provider_ms = report["handler_ms"] - provider_latency * 1000
    result.details.update(
        destinations=destinations,
        provider_latency_ms=provider_latency * 1000,
        provider_requests=bulk_requests,
        validation_ms=report["validation_ms"],
        keyed_send_ms=report["keyed_send_ms"],
        stored_record_bytes=report["record_bytes"],
        worst_case_record_bytes=report["worst_case_record_bytes"],
        event_body_bytes=report["event_body_bytes"],
        handler_ms_besides_one_provider_latency=handler_besides_provider_ms,
        rss_unit="MiB",
        peak_rss_measured_as=measured_as,
        peak_rss_after_imports_mib=report["peak_rss_after_imports_mib"],
        # Inflated by the runner's own peak, which Linux carries across exec (see bulk_child).
        ru_maxrss_mib=report["ru_maxrss_mib"],
    )
    print(
        f"  validation median {validation_ms:.0f} ms; handler {report['handler_ms']:.0f} ms "
        f"({handler_besides_provider_ms:.0f} ms besides one provider latency) in {bulk_requests} provider "
        f"request(s); peak RSS ({measured_as}) {report['peak_rss_after_imports_mib']:.0f} MB after imports, "
        f"{peak_rss_mib:.0f} MB at the end; ru_maxrss says {report['ru_maxrss_mib']:.0f} MB, the runner's "
        "own peak carried across exec",
        flush=True,
    )
    print(
        f"  under an Idempotency-Key: send {report['keyed_send_ms']:.0f} ms, retry (replayed, nothing sent) "
        f"{report['keyed_replay_ms']:.0f} ms; stored record {report['record_bytes']:,} bytes (the ids run in "
        f"sequence); with no two ids in sequence it would be {report['worst_case_record_bytes']:,} bytes, "
        f"of DynamoDB's {400 * 1024:,}",
        flush=True,
    )
    return result
