"""Warm overhead: what the API handler adds to one SendIM call, in process, against a bare urllib3 POST."""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from typing import Any

from bench.environment import BenchEnvironment, api_event, sample_body, silenced_output
from bench.report import BenchmarkBroken, BenchmarkResult
from bench.stats import percentile
from local.functions import lambda_context

NAME = "warm-overhead"
TARGET_P50_DIFFERENCE_US = 350.0
PROFILE_ENTRIES = 25
NANOSECONDS_PER_MICROSECOND = 1000
SENDIM_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
EMULATOR_NOTE = (
    "moto server (ThreadedMotoServer in a process of its own, via AWS_ENDPOINT_URL): the token secret "
    "is read once in the warm-up and then cached (TokenSource max_age), so timed requests call no AWS API"
)


def run_warm_overhead(
    environment: BenchEnvironment, *, requests: int, warmup: int, profile_requests: int = 0
) -> BenchmarkResult:
    print(
        f"warm overhead: {requests} requests through the API handler (events/api-post-im.json, two "
        f"destinations) interleaved with {requests} bare urllib3 POSTs of the same SendIM body, after "
        f"{warmup} of each; sandbox answers at once; Logger and EMF output to /dev/null",
        flush=True,
    )
    print(f"  AWS: {EMULATOR_NOTE}", flush=True)
    environment.apply_to_process()
    environment.reset_sandbox(latency=0.0)

    import urllib3

    from api_handler import handler
    from gateway.sending.request import SendRequest

    body = sample_body()
    event = api_event(body)
    context = lambda_context()
    # The bare client sends exactly what the gateway sends: normalised destinations, token first.
    sendim_body = json.dumps(
        SendRequest.model_validate(body).provider_payload(environment.token), ensure_ascii=False
    ).encode()
    sendim_url = environment.sandbox.url + "SendIM"
    pool = urllib3.PoolManager(num_pools=1, maxsize=1)

    def through_handler() -> Any:
        return handler(event, context)

    def bare_post() -> Any:
        return pool.request("POST", sendim_url, body=sendim_body, headers=SENDIM_HEADERS)

    handler_us: list[float] = []
    bare_us: list[float] = []
    with silenced_output():
        for _ in range(warmup):
            _check_handler(_timed(through_handler)[1])
            _check_bare(_timed(bare_post)[1])
        for index in range(requests):
            # Alternate which goes first, so neither always follows the other's garbage.
            order = (True, False) if index % 2 == 0 else (False, True)
            for via_handler in order:
                if via_handler:
                    elapsed_us, answer = _timed(through_handler)
                    _check_handler(answer)
                    handler_us.append(elapsed_us)
                else:
                    elapsed_us, response = _timed(bare_post)
                    _check_bare(response)
                    bare_us.append(elapsed_us)
    sent = len(environment.sandbox.ledger)
    if sent != 2 * (warmup + requests):
        raise BenchmarkBroken(f"the sandbox recorded {sent} sends, expected {2 * (warmup + requests)}")
    layers = _layers(environment, event, bare_post, through_handler, requests=max(requests // 2, 1))

    result = BenchmarkResult(NAME)
    handler_p50 = percentile(handler_us, 50)
    bare_p50 = percentile(bare_us, 50)
    result.add("API handler p50", handler_p50, "µs")
    result.add("API handler p99", percentile(handler_us, 99), "µs")
    result.add("bare urllib3 POST p50", bare_p50, "µs")
    result.add("bare urllib3 POST p99", percentile(bare_us, 99), "µs")
    result.add("p50 difference (handler - bare)", handler_p50 - bare_p50, "µs", TARGET_P50_DIFFERENCE_US)
    result.details.update(
        requests=requests,
        warmup=warmup,
        aws=EMULATOR_NOTE,
        sendim_body_bytes=len(sendim_body),
        handler_us_min=min(handler_us),
        bare_us_min=min(bare_us),
    )
    result.details["layers"] = layers
    print(
        f"  handler p50 {handler_p50:.0f} µs, bare p50 {bare_p50:.0f} µs "
        f"(minimums {min(handler_us):.0f} / {min(bare_us):.0f} µs)",
        flush=True,
    )
    print(f"  layer by layer ({layers['requests']} requests each, interleaved; p50, and what each adds):")
    for layer in layers["p50_us"]:
        print(
            f"    {layer['layer']:<44} {layer['p50_us']:7.0f} µs  +{layer['adds_us']:5.0f} µs",
            flush=True,
        )
    if profile_requests:
        result.details["profile"] = _profile(through_handler, profile_requests)
    return result


def _layers(
    environment: BenchEnvironment,
    event: dict[str, Any],
    bare_post: Callable[[], Any],
    through_handler: Callable[[], Any],
    *,
    requests: int,
) -> dict[str, Any]:
    """Where the overhead is: the same send through each layer in turn, outermost last.

    Each layer's p50 minus the one inside it is what that layer adds: the gateway's provider
    client, the send use case (token cache, payload, the "message sent" log line, metrics), the
    request's rules (pydantic, phone numbers), the event adapter of `POST /messages` (the body
    boundary, the Idempotency-Key header, the rules, the proxy answer) and the handler's Logger,
    Tracer and Metrics decorators (context, correlation id, the EMF flush).
    """
    from api_handler import send_message
    from gateway.sending.request import SendRequest
    from gateway.sending.send import get_sender

    context = lambda_context()
    body = event["body"]

    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    request = SendRequest.model_validate_json(body)
    sender = get_sender()
    payload = request.provider_payload(environment.token)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("bare urllib3 POST", bare_post),
        ("gateway provider client (send_im)", lambda: sender.client.send_im(payload)),
        ("send use case (Sender.send)", lambda: sender.send(request)),
        ("request rules (pydantic) + use case", lambda: sender.send(SendRequest.model_validate_json(body))),
        ("event adapter (api_handler.send_message)", lambda: send_message(event, seconds_left)),
        ("handler with Logger/Tracer/Metrics decorators", through_handler),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _ in steps}
    sent_before = len(environment.sandbox.ledger)
    with silenced_output():
        for _ in range(requests):
            for name, call in steps:
                samples[name].append(_timed(call)[0])
    sent = len(environment.sandbox.ledger) - sent_before
    if sent != requests * len(steps):
        raise BenchmarkBroken(f"the sandbox recorded {sent} sends, expected {requests * len(steps)}")
    p50s = [(name, percentile(samples[name], 50)) for name, _ in steps]
    return {
        "requests": requests,
        "p50_us": [
            {"layer": name, "p50_us": p50, "adds_us": p50 - (p50s[i - 1][1] if i else p50)}
            for i, (name, p50) in enumerate(p50s)
        ],
    }


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter_ns()
    answer = call()
    return (time.perf_counter_ns() - started) / NANOSECONDS_PER_MICROSECOND, answer


def _check_handler(answer: Any) -> None:
    if answer.get("statusCode") != 200:
        raise BenchmarkBroken(f"the API handler answered {answer.get('statusCode')}: {answer.get('body')}")


def _check_bare(response: Any) -> None:
    if response.status != 200 or b'"success": true' not in response.data:
        raise BenchmarkBroken(f"the sandbox answered the bare POST with {response.status}: {response.data!r}")


def _profile(through_handler: Callable[[], Any], requests: int) -> dict[str, Any]:
    """cProfile over `requests` handler calls; prints the top functions and returns them per request."""
    profiler = cProfile.Profile()
    with silenced_output():
        profiler.enable()
        for _ in range(requests):
            _check_handler(through_handler())
        profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(PROFILE_ENTRIES)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILE_ENTRIES)
    print(f"  cProfile of {requests} warm handler requests (cProfile inflates small calls):", flush=True)
    print(text.getvalue(), flush=True)
    # (file, line, function) -> (primitive calls, calls, total time, cumulative time, callers)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    by_own_time = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_ENTRIES]
    return {
        "requests": requests,
        "top_own_time_us_per_request": [
            {"function": f"{path}:{line}({name})", "us_per_request": own * 1e6 / requests}
            for (path, line, name), (_, _, own, _, _) in by_own_time
        ],
    }
