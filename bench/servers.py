"""The emulated AWS (moto's server) and the provider sandbox, in a process of their own.

    python -m bench.servers TOKEN BALANCE

Prints one JSON line with both URLs, then serves until its standard input
closes. In their own process they do not compete with the function under
measurement for the interpreter lock, as real AWS and LiveAll would not.
"""

from __future__ import annotations

import json
import logging
import sys

from moto.server import ThreadedMotoServer

from sandbox import ProviderSandbox


def main() -> int:
    token, balance = sys.argv[1], float(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    with ProviderSandbox(tokens={token}, balance=balance) as sandbox:
        print(json.dumps({"aws": f"http://{host}:{port}", "sandbox": sandbox.url}), flush=True)
        sys.stdin.read()  # until the parent closes it (or exits)
    moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
