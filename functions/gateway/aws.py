"""The process's one boto3 session, and every AWS client of the functions made from it.

Each new session reads botocore's data files again (endpoints, partitions,
defaults): about 50 ms of a cold start per extra session. Powertools'
parameters and idempotency utilities would each make their own, so they are
handed clients made here. The clients are remembered, so that a process
restored from a SnapStart snapshot can drop any connection they hold.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3

_clients: list[Any] = []
_lock = threading.Lock()


@cache
def aws_session() -> boto3.session.Session:
    # Made on first use, once the environment is final.
    return boto3.session.Session()


def aws_client(service: str) -> Any:
    """A new client of `service` from the process's session.

    Making clients from one session is not thread-safe: the handlers make theirs before any
    record thread starts, and one made later from a record thread is made under this lock.
    """
    with _lock:
        client = aws_session().client(service)
        _clients.append(client)
    return client


def close_connections() -> None:
    """Close every connection the clients made here hold; they open new ones when next used."""
    with _lock:
        for client in _clients:
            client._endpoint.http_session.close()


def forget_clients() -> None:
    """For tests and benchmarks that start over as a new container would (local.functions)."""
    with _lock:
        _clients.clear()
    aws_session.cache_clear()
