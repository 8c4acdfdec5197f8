"""One cold start: run as a fresh process by bench.cold_start, never imported.

    python -P bench/cold_child.py MODE ARGUMENT RESULT_PATH

MODE is `api` or `queue` (ARGUMENT: an event file; import the handler and serve
the event once), `floor` (ARGUMENT: a secret name; import boto3 and read the
secret once) or `noop` (stop at once: the interpreter's start-up alone). The
timestamps written to RESULT_PATH are `time.perf_counter()` values; on Linux
that is CLOCK_MONOTONIC, shared by all processes, so the parent can subtract
its own spawn time to get the interpreter's start-up.
"""

import time

STARTED = time.perf_counter()  # before anything else: the script's first moment

import sys  # noqa: E402 - after the first timestamp on purpose (already loaded by the interpreter)


class _Context:
    """Enough of a Lambda context for the handlers; local.functions has the full one, but this
    process imports nothing that a Lambda container would not have."""

    function_name = "viber-gateway-bench-cold"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:viber-gateway-bench-cold"
    aws_request_id = "6f1a3c4e-0000-4000-8000-0000000000c0"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def _serve(mode: str, argument: str) -> tuple[float, int]:
    """Import what `mode` needs and answer once: (time the imports ended, HTTP-like status)."""
    import json

    if mode == "floor":
        import boto3

        imported = time.perf_counter()
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=argument)
        return imported, 200 if secret.get("SecretString") else 500
    if mode == "api":
        from api_handler import handler
    else:
        from queue_handler import handler
    imported = time.perf_counter()
    with open(argument, encoding="utf-8") as event_file:
        event = json.load(event_file)
    answer = handler(event, _Context())
    if mode == "api":
        return imported, int(answer["statusCode"])
    # The queue handler answers 200-like when no record failed.
    return imported, 200 if answer.get("batchItemFailures") == [] else 500


def main() -> None:
    mode, argument, result_path = sys.argv[1:4]
    if mode == "noop":
        imported, status = STARTED, 200
    else:
        imported, status = _serve(mode, argument)
    answered = time.perf_counter()
    import json

    with open(result_path, "w", encoding="utf-8") as result_file:
        json.dump(
            {"mode": mode, "started": STARTED, "imported": imported, "answered": answered, "status": status},
            result_file,
        )


if __name__ == "__main__":
    main()
