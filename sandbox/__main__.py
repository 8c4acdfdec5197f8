"""Run the provider sandbox in the foreground: `python -m sandbox --port 8081 --token X`.

The first line on stdout is the base URL (handy with --port 0); Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from sandbox.server import ProviderSandbox
from sandbox.state import DEFAULT_DELIVERY_STEP_SECONDS

TOKEN_ENV = "SANDBOX_TOKEN"  # noqa: S105 - the variable's name, not a secret


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Fake LiveAll provider.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8081, help="port, 0 for any free one (default %(default)s)"
    )
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help=f"accepted API token, repeatable (default: ${TOKEN_ENV}, which keeps it out of `ps`)",
    )
    parser.add_argument(
        "--sender",
        action="append",
        dest="senders",
        metavar="NAME",
        help="approved Viber sender name, repeatable (default: any name)",
    )
    parser.add_argument("--data-shape", choices=("objects", "ids"), default="objects")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--balance", type=float, default=100.0, help="account balance in euros")
    parser.add_argument(
        "--delivery-step-seconds",
        type=float,
        default=DEFAULT_DELIVERY_STEP_SECONDS,
        metavar="SECONDS",
        help="seconds between two statuses of a message, 0 for its last one at once (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    tokens = args.tokens or ([os.environ[TOKEN_ENV]] if os.environ.get(TOKEN_ENV) else [])
    if not tokens:
        parser.error(f"give --token or set {TOKEN_ENV}")
    try:
        sandbox = ProviderSandbox(
            tokens=tokens,
            approved_senders=args.senders,
            data_shape=args.data_shape,
            latency=args.latency,
            balance=args.balance,
            port=args.port,
            host=args.host,
            delivery_step_seconds=args.delivery_step_seconds,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))  # messages name the setting, never its value
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(sandbox.url, flush=True)
        print("LiveAll sandbox running; Ctrl-C to stop.", file=sys.stderr, flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
