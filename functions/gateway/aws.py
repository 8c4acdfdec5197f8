"""The process's one boto3 session, which every AWS client of the functions is made from.

Each new session reads botocore's data files again (endpoints, partitions,
defaults): about 50 ms of a cold start per extra session. Powertools'
parameters and idempotency utilities would each make their own.
"""

from __future__ import annotations

from functools import cache

import boto3


@cache
def aws_session() -> boto3.session.Session:
    # Made on first use, once the environment is final. Making clients from one session is
    # not thread-safe: the handlers make theirs before any record thread starts, and the
    # dead-letter client, made later from a record thread, is made under a lock.
    return boto3.session.Session()
