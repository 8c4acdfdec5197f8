"""One bulk send in a fresh process: run by bench.bulk, never imported.

    python -P bench/bulk_child.py DESTINATIONS VALIDATION_RUNS RESULT_PATH

Needs functions/ and the repository root on PYTHONPATH, and the functions'
environment. Peak RSS is read at the very end, so it covers everything above.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import boto3

from bench.environment import api_event, sample_body
from bench.phones import greek_mobiles
from bench.records import dynamodb_item_size, worst_case_record_bytes
from local.functions import lambda_context

KIB_PER_MIB = 1024


def ru_maxrss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (KIB_PER_MIB * KIB_PER_MIB) if sys.platform == "darwin" else peak / KIB_PER_MIB


def vm_hwm_mib() -> float | None:
    """This process's own peak RSS (Linux /proc), None elsewhere.

    ru_maxrss is not enough on its own: Linux carries the spawning process's peak
    across fork/vfork + exec, so a child of the (large) runner reports at least the
    runner's size. VmHWM belongs to the address space exec made, so it is the child's.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    return None


def main() -> None:
    destination_count, validation_runs, result_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    from api_handler import handler
    from gateway.sending.request import SendRequest

    rss_after_imports = vm_hwm_mib() or ru_maxrss_mib()
    body = {**sample_body(), "destinations": greek_mobiles(destination_count)}
    validation_ms = []
    for _ in range(validation_runs):
        started = time.perf_counter()
        request = SendRequest.model_validate(body)
        validation_ms.append((time.perf_counter() - started) * 1000)
        if len(request.destinations) != destination_count:
            raise SystemExit(
                f"validation kept {len(request.destinations)} of {destination_count} destinations"
            )

    context = lambda_context(function_name="viber-gateway-bench-bulk")
    # A first small request reads the token and builds the clients, as an earlier invocation would.
    warmup = handler(api_event(sample_body()), context)
    if warmup["statusCode"] != 200:
        raise SystemExit(f"the warm-up request was answered {warmup['statusCode']}: {warmup['body']}")

    event = api_event(body)
    started = time.perf_counter()
    answer = handler(event, context)
    handler_ms = (time.perf_counter() - started) * 1000
    if answer["statusCode"] != 200:
        raise SystemExit(f"the bulk request was answered {answer['statusCode']}: {answer['body'][:2000]}")
    sent = len(json.loads(answer["body"])["messages"])
    if sent != destination_count:
        raise SystemExit(f"the answer lists {sent} messages for {destination_count} destinations")

    keyed = idempotent_pair(body)

    with open(result_path, "w", encoding="utf-8") as result_file:
        json.dump(
            {
                **keyed,
                "validation_ms": validation_ms,
                "handler_ms": handler_ms,
                "event_body_bytes": len(event["body"]),
                "peak_rss_after_imports_mib": rss_after_imports,
                "vm_hwm_mib": vm_hwm_mib(),
                "ru_maxrss_mib": ru_maxrss_mib(),
            },
            result_file,
        )


def idempotent_pair(body: dict[str, Any]) -> dict[str, Any]:
    """The same destinations under an Idempotency-Key, sent and then retried; the record the store kept."""
    from api_handler import handler
    from gateway import names

    event = api_event({**body, "im_text": body["im_text"] + " (under a key)"})
    event["headers"][names.IDEMPOTENCY_KEY_HEADER] = "bench-bulk-keyed"
    event["multiValueHeaders"][names.IDEMPOTENCY_KEY_HEADER] = ["bench-bulk-keyed"]
    timings, answers = [], []
    for _ in range(2):
        started = time.perf_counter()
        answers.append(handler(event, lambda_context(function_name="viber-gateway-bench-bulk")))
        timings.append((time.perf_counter() - started) * 1000)
    first, retry = answers
    replayed = (retry.get("multiValueHeaders") or {}).get(names.IDEMPOTENCY_REPLAYED_HEADER)
    if first["statusCode"] != 200 or retry["statusCode"] != 200 or retry["body"] != first["body"]:
        raise SystemExit(
            f"the keyed send and its retry answered {first['statusCode']}, {retry['statusCode']}"
        )
    if replayed != ["true"]:
        raise SystemExit("the retry under the same key was not a replay")
    items = boto3.client("dynamodb").scan(TableName=names.IDEMPOTENCY_TABLE_NAME)["Items"]
    return {
        "keyed_send_ms": timings[0],
        "keyed_replay_ms": timings[1],
        "record_bytes": max(dynamodb_item_size(item) for item in items),
        "worst_case_record_bytes": worst_case_record_bytes(body["destinations"]),
    }


if __name__ == "__main__":
    main()
