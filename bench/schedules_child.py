"""A fresh process for bench.schedules (never imported by the functions), run as

    python [-X importtime] -P bench/schedules_child.py MODE RESULT_PATH

Needs functions/ and the repository root on PYTHONPATH, and the functions' environment with
the schedules' settings. MODE `import`: import api_handler (what a container that has served
sends has loaded), then time the import of gateway.schedules.service, after a marker on stderr
(under `-X importtime`, the lines after it are that import's). MODE `requests`: serve one send
(the token, the clients: a warm container), then time the first scheduled request, which imports
the schedules code and makes its clients, and the second. Each writes JSON to RESULT_PATH.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

IMPORT_MARKER = "--- bench.schedules: gateway.schedules.service from here ---"


def _import_after_api_handler() -> dict[str, Any]:
    import api_handler  # noqa: F401 - what a container that has served requests has loaded

    before = set(sys.modules)
    print(IMPORT_MARKER, file=sys.stderr, flush=True)
    started = time.perf_counter()
    import gateway.schedules.service  # noqa: F401

    import_ms = (time.perf_counter() - started) * 1000
    return {"import_ms": import_ms, "modules": len(set(sys.modules) - before)}


def _requests() -> dict[str, Any]:
    """One send, then the first two scheduled requests of the process, timed."""
    from api_handler import handler
    from bench.environment import api_event, sample_body
    from local.functions import lambda_context

    context = lambda_context(function_name="viber-gateway-bench-schedules")
    body = {**sample_body(), "destinations": sample_body()["destinations"][:1]}
    warmup = handler(api_event(body), context)  # type: ignore[arg-type]
    if warmup["statusCode"] != 200:
        raise SystemExit(f"the warm-up send was answered {warmup['statusCode']}: {warmup['body'][:500]}")
    if "gateway.schedules.service" in sys.modules:
        raise SystemExit("a send imported the schedules code")
    timings = []
    for index in range(2):
        send_at = (datetime.now(UTC) + timedelta(days=1, minutes=index)).isoformat(timespec="seconds")
        event = api_event({**body, "send_at": send_at, "im_text": f"bench first schedules {index}"})
        started = time.perf_counter()
        answer = handler(event, context)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - started) * 1000)
        if answer["statusCode"] != 202:
            status, text = answer["statusCode"], answer["body"][:500]
            raise SystemExit(f"a scheduled request was answered {status}: {text}")
    return {"first_ms": timings[0], "second_ms": timings[1]}


def main() -> None:
    mode, result_path = sys.argv[1], sys.argv[2]
    report = _import_after_api_handler() if mode == "import" else _requests()
    with open(result_path, "w", encoding="utf-8") as result_file:
        json.dump(report, result_file)


if __name__ == "__main__":
    main()
