"""The emulated AWS (moto's server) or the provider sandbox, each in a process of its own.

    python -m bench.servers aws
    python -m bench.servers sandbox TOKEN BALANCE

Prints one JSON line with the server's URL, then serves until its standard
input closes. In processes of their own they compete neither with the
function under measurement nor with each other for an interpreter lock, as
real AWS and LiveAll would not.
"""

from __future__ import annotations

import json
import logging
import sys

from moto.server import ThreadedMotoServer

from sandbox import ProviderSandbox


def _serve_aws() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    print(json.dumps({"url": f"http://{host}:{port}"}), flush=True)
    sys.stdin.read()  # until the parent closes it (or exits)
    moto.stop()


def _serve_sandbox(token: str, balance: float) -> None:
    with ProviderSandbox(tokens={token}, balance=balance) as sandbox:
        print(json.dumps({"url": sandbox.url}), flush=True)
        sys.stdin.read()


def main() -> int:
    role = sys.argv[1]
    if role == "aws":
        _serve_aws()
    else:
        _serve_sandbox(sys.argv[2], float(sys.argv[3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
