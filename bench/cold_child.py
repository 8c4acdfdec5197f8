"""One cold start, or one first request after a SnapStart restore: run as a fresh process by
bench.cold_start and bench.restored, never imported.

    python -P bench/cold_child.py MODE ARGUMENT RESULT_PATH

MODE is one of:

- `api` or `queue` (ARGUMENT: an event file): import the handler and serve the event once,
  as a cold start without SnapStart does (no runtime hook runs).
- `api-restored` or `queue-restored` (ARGUMENT: an event file): import the handler and run
  the before-snapshot hooks it registered (gateway.snapshot.run_before_snapshot: what Lambda
  does before it takes the snapshot), not timed; then, timed, the after-restore hooks
  (run_after_restore) and the handler on the event: the first request of an environment
  restored from the snapshot.
- `floor` (ARGUMENT: a secret name): import boto3 and read the secret once.
- `floor-first-call` (ARGUMENT: a JSON file with the secret's name, the SendIM URL, body and
  headers): import boto3 and urllib3, make the Secrets Manager client and a urllib3 pool, not
  timed; then, timed, one `get_secret_value` and one POST of the body: the least a function's
  first call could do. It imports nothing of the gateway.
- `noop`: stop at once (the interpreter's start-up alone).

The timestamps written to RESULT_PATH are `time.perf_counter()` values: `started` (the
script's first line), `imported` (the imports done), `ready` (the untimed part done: the
snapshot taken, the clients made; `imported` when there is no such part), `restored` (the
after-restore hooks done; `ready` when there are none) and `answered`; the floor's first
call also `secret_read`, between its two calls. The timed first request is `answered - ready`.
On Linux perf_counter is CLOCK_MONOTONIC, shared by all processes, so the parent can
subtract its own spawn time to get the interpreter's start-up.

This process imports nothing that a Lambda container would not have: the standard library,
the function code and its layer (or, for the floors, only the runtime's boto3).
"""

import time

STARTED = time.perf_counter()  # before anything else: the script's first moment

import sys  # noqa: E402 - after the first timestamp on purpose (already loaded by the interpreter)

RESTORED_SUFFIX = "-restored"


class _Context:
    """Enough of a Lambda context for the handlers; local.functions has the full one, but this
    process imports nothing that a Lambda container would not have."""

    function_name = "viber-gateway-bench-cold"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:viber-gateway-bench-cold"
    aws_request_id = "6f1a3c4e-0000-4000-8000-0000000000c0"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def _floor(secret_id: str) -> dict:
    import boto3

    imported = time.perf_counter()
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    status = 200 if secret.get("SecretString") else 500
    return {"imported": imported, "status": status}


def _floor_first_call(config_path: str) -> dict:
    """The floor of a first request: one secret read and one SendIM POST, the clients already made."""
    import json

    import boto3
    import urllib3

    imported = time.perf_counter()
    with open(config_path, encoding="utf-8") as config_file:
        config = json.load(config_file)
    body = config["body"].encode()
    secrets = boto3.client("secretsmanager")
    pool = urllib3.PoolManager()
    ready = time.perf_counter()
    secret = secrets.get_secret_value(SecretId=config["secret_id"])
    secret_read = time.perf_counter()
    response = pool.request("POST", config["url"], body=body, headers=config["headers"])
    answered = time.perf_counter()
    status = response.status
    if status == 200:  # the sandbox's answer says whether the send succeeded
        sent = json.loads(response.data).get("success") is True
        status = 200 if sent and secret.get("SecretString") else 500
    return {
        "imported": imported,
        "ready": ready,
        "secret_read": secret_read,
        "answered": answered,
        "status": status,
    }


def _handler(handler_name: str):  # the handler module's entry point
    if handler_name == "api":
        from api_handler import handler
    else:
        from queue_handler import handler
    return handler


def _status(handler_name: str, answer: dict) -> int:
    if handler_name == "api":
        return int(answer["statusCode"])
    # The queue handler answers 200-like when no record failed.
    return 200 if answer.get("batchItemFailures") == [] else 500


def _serve(handler_name: str, event_path: str) -> dict:
    """A cold start without SnapStart: import the handler and answer once; no runtime hook runs."""
    import json

    handler = _handler(handler_name)
    imported = time.perf_counter()
    with open(event_path, encoding="utf-8") as event_file:
        event = json.load(event_file)
    answer = handler(event, _Context())
    return {"imported": imported, "status": _status(handler_name, answer)}


def _serve_restored(handler_name: str, event_path: str) -> dict:
    """The snapshot (import + before-snapshot hooks, not timed), then the restore and a first request."""
    import json

    handler = _handler(handler_name)
    from gateway import snapshot

    imported = time.perf_counter()
    snapshot.run_before_snapshot()
    # The hooks prime nothing (they only log) when the settings are incomplete: that would be a
    # restore without priming, so fail here instead, naming what is missing.
    from gateway.settings import get_settings

    get_settings()
    with open(event_path, encoding="utf-8") as event_file:
        event = json.load(event_file)  # Lambda's work, not the function's
    hooks = {
        "before_snapshot": len(snapshot.get_before_snapshot()),
        "after_restore": len(snapshot.get_after_restore()),
    }
    ready = time.perf_counter()
    snapshot.run_after_restore()
    restored = time.perf_counter()
    answer = handler(event, _Context())
    answered = time.perf_counter()
    return {
        "imported": imported,
        "ready": ready,
        "restored": restored,
        "answered": answered,
        "status": _status(handler_name, answer),
        "hooks": hooks,
    }


def main() -> None:
    mode, argument, result_path = sys.argv[1:4]
    if mode == "noop":
        report = {"imported": STARTED, "status": 200}
    elif mode == "floor":
        report = _floor(argument)
    elif mode == "floor-first-call":
        report = _floor_first_call(argument)
    elif mode.endswith(RESTORED_SUFFIX):
        report = _serve_restored(mode.removesuffix(RESTORED_SUFFIX), argument)
    else:
        report = _serve(mode, argument)
    answered = report.setdefault("answered", time.perf_counter())
    report.setdefault("ready", report["imported"])
    report.setdefault("restored", report["ready"])
    assert answered >= report["restored"] >= report["ready"] >= report["imported"]
    import json

    with open(result_path, "w", encoding="utf-8") as result_file:
        json.dump({"mode": mode, "started": STARTED, **report}, result_file)


if __name__ == "__main__":
    main()
