"""A fresh function process for tests/integration/test_snapshot_hooks.py; run as a script, never imported.

    python snapshot_child.py HANDLER SCENARIO EVENT_FILE

HANDLER is api_handler or queue_handler. SCENARIO `snapshot-then-send` runs the
before-snapshot hooks, reports, runs the after-restore hooks, serves the event and
reports again; `send-without-hooks` only serves the event. Each report says which
AWS requests went out (botocore's before-send, which priming never reaches), how
many sockets the process holds open, whether a token is cached and how many
connections the provider client opened. The last line of stdout is the JSON.
"""

import json
import os
import sys


def sockets_open() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
    return count


def guard_state() -> dict[str, object]:
    """What the destination policy compiled (its regions) and whether the caps' code is loaded."""
    policy = sys.modules.get("gateway.guard.policy")
    compiled = policy._kinds_of.cache_info().currsize if policy is not None else 0  # type: ignore[attr-defined]
    return {"policy_regions_compiled": compiled, "caps_loaded": "gateway.guard.caps" in sys.modules}


def main() -> None:
    handler_module, scenario, event_path = sys.argv[1:4]
    module = __import__(handler_module)
    from gateway import aws, snapshot
    from gateway.provider.client import POOL
    from gateway.sending.send import get_sender

    sent: list[str] = []
    # Registered on the session before any client is made: every client copies its handlers.
    aws.aws_session().events.register(
        "before-send", lambda request, **_: sent.append(request.headers.get("X-Amz-Target", b"?").decode())
    )

    class Context:
        function_name = "snapshot-child"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:snapshot-child"
        aws_request_id = "00000000-0000-4000-8000-000000000001"

        def get_remaining_time_in_millis(self) -> int:
            return 28_000

    def state() -> dict[str, object]:
        made = get_sender.cache_info().currsize > 0
        return {
            "aws_requests": list(sent),
            "sockets_open": sockets_open(),
            "token_cached": made and get_sender().token_source.is_cached(),
            "provider_connections": sum(pool.num_connections for pool in POOL.pools._container.values()),
            "hooks": [len(snapshot.get_before_snapshot()), len(snapshot.get_after_restore())],
            "guard": guard_state(),
        }

    report: dict[str, object] = {}
    if scenario == "snapshot-then-send":
        snapshot.run_before_snapshot()
        report["after_snapshot_hooks"] = state()
        sent.clear()
        snapshot.run_after_restore()
    with open(event_path, encoding="utf-8") as event_file:
        event = json.load(event_file)
    answer = module.handler(event, Context())
    report["answer"] = answer
    report["after_send"] = state()
    sys.stdout.write("\n" + json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
