"""The two Lambda functions, loaded in this process and invoked one at a time, like one Lambda container."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from local.defaults import ACCOUNT_ID, REGION

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """What the handlers and Powertools read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float = field(repr=False)  # time.monotonic() when the invocation times out

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def lambda_context(
    function_name: str = "viber-gateway-api",
    *,
    memory_mb: int | None = None,
    timeout_seconds: float | None = None,
) -> LambdaContext:
    """A context for one invocation of a function as the stack deploys it (by default the API function)."""
    from gateway import names

    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=memory_mb or names.API_FUNCTION_MEMORY_MB,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + (timeout_seconds or names.API_FUNCTION_TIMEOUT_SECONDS),
    )


def reset_process_caches() -> None:
    """Forget what the functions cache per process (settings, clients, the token), as a new container would.

    For tests and benchmarks that change the environment between invocations.
    """
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    from gateway import dead_letters
    from gateway.aws import aws_session
    from gateway.idempotency import get_idempotent_sender
    from gateway.lookup import get_queries
    from gateway.send import get_sender
    from gateway.settings import get_settings
    from queue_handler import record_threads
    from scheduled_handler import get_balance_check, get_publisher, get_reconciler, get_tracker

    get_queries.cache_clear()
    for made_once in (get_tracker, get_reconciler, get_balance_check, get_publisher):
        made_once.cache_clear()
    get_settings.cache_clear()
    aws_session.cache_clear()
    dead_letters.sqs_client.cache_clear()
    get_sender.cache_clear()
    get_idempotent_sender.cache_clear()
    record_threads.cache_clear()
    # A parameters provider made before AWS_ENDPOINT_URL was set would keep calling real AWS.
    base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Function:
    name: str
    handler: Handler
    memory_mb: int
    timeout_seconds: int

    def context(self) -> LambdaContext:
        return lambda_context(self.name, memory_mb=self.memory_mb, timeout_seconds=self.timeout_seconds)


class FunctionHost:
    """Loads the API, queue and tracker functions and serialises their invocations.

    The handlers are not thread-safe (the Powertools resolver and the Logger
    keep per-invocation state), so one lock runs one invocation at a time.
    The functions' output (JSON logs, EMF metrics on stdout) goes to `output`.
    Create it once the functions' environment is set: Powertools reads it at import.
    """

    def __init__(self, output: TextIO) -> None:
        import api_handler
        import queue_handler
        import scheduled_handler
        from gateway import names
        from gateway.observability import logger

        self._output = output
        logger.registered_handler.setStream(output)  # type: ignore[attr-defined]
        self._lock = threading.Lock()
        self._api = _Function(
            f"{names.SERVICE_NAME}-api",
            api_handler.handler,
            names.API_FUNCTION_MEMORY_MB,
            names.API_FUNCTION_TIMEOUT_SECONDS,
        )
        self._queue = _Function(
            f"{names.SERVICE_NAME}-queue",
            queue_handler.handler,
            names.QUEUE_FUNCTION_MEMORY_MB,
            names.QUEUE_FUNCTION_TIMEOUT_SECONDS,
        )
        self._scheduled = _Function(
            f"{names.SERVICE_NAME}-scheduled",
            scheduled_handler.handler,
            names.SCHEDULED_FUNCTION_MEMORY_MB,
            names.SCHEDULED_FUNCTION_TIMEOUT_SECONDS,
        )
        self._openapi_json: Callable[[], str] = api_handler.openapi_json

    def openapi_json(self) -> str:
        """The API's OpenAPI document, as the API function serves it."""
        with self._lock:
            return self._openapi_json()

    def invoke_api(self, event: dict[str, Any]) -> Any:
        return self._invoke(self._api, event)

    def invoke_queue(self, event: dict[str, Any]) -> Any:
        return self._invoke(self._queue, event)

    def invoke_scheduled(self, event: dict[str, Any]) -> Any:
        return self._invoke(self._scheduled, event)

    def _invoke(self, function: _Function, event: dict[str, Any]) -> Any:
        # Metrics are printed to sys.stdout; while the lock is held only the handler prints.
        with self._lock, contextlib.redirect_stdout(self._output):
            return function.handler(event, function.context())


def function_output(verbose: bool) -> TextIO:
    """Where the functions' own logs go: stderr with --verbose, else nowhere."""
    if verbose:
        return sys.stderr
    return open(os.devnull, "w", encoding="utf-8")  # open as long as the process runs
