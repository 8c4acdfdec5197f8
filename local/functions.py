"""The Lambda functions, loaded as containers: the API and queue functions in this process, one
invocation at a time; the scheduled function in a process of its own (ScheduledFunctionProcess)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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

    from gateway.aws import forget_clients
    from gateway.events import get_publisher
    from gateway.provider.connection import get_client, get_token_source
    from gateway.provider.queries import get_queries
    from gateway.sending import dead_letters
    from gateway.sending.idempotency import get_idempotent_sender
    from gateway.sending.send import get_sender
    from gateway.settings import get_settings
    from queue_handler import record_threads
    from scheduled_handler import get_balance_check, get_reconciler, get_tracker

    get_queries.cache_clear()
    for made_once in (get_tracker, get_reconciler, get_balance_check, get_publisher):
        made_once.cache_clear()
    get_settings.cache_clear()
    forget_clients()
    dead_letters.sqs_client.cache_clear()
    get_sender.cache_clear()
    get_token_source.cache_clear()
    get_client.cache_clear()
    get_idempotent_sender.cache_clear()
    record_threads.cache_clear()
    # Loaded only by a process that scheduled or fired a send.
    schedules = sys.modules.get("gateway.schedules.service")
    if schedules is not None:
        schedules.get_schedules.cache_clear()
    policy = sys.modules.get("gateway.guard.policy")
    if policy is not None:
        policy.get_policy.cache_clear()
    caps = sys.modules.get("gateway.guard.caps")
    if caps is not None:
        caps.get_caps.cache_clear()
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

    def __init__(
        self, output: TextIO, scheduled: ScheduledFunctionProcess | None = None, *, prime: bool = True
    ) -> None:
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
        self._scheduled_process = scheduled
        # As Lambda does with SnapStart: prime before the "snapshot", then restore, so a first request
        # here costs what a restored environment's does (README: SnapStart).
        if prime:
            from gateway import snapshot

            snapshot.run_before_snapshot()
            snapshot.run_after_restore()

    def openapi_json(self) -> str:
        """The API's OpenAPI document, as the API function serves it."""
        with self._lock:
            return self._openapi_json()

    def invoke_api(self, event: dict[str, Any]) -> Any:
        return self._invoke(self._api, event)

    def invoke_queue(self, event: dict[str, Any]) -> Any:
        return self._invoke(self._queue, event)

    def invoke_scheduled(self, event: dict[str, Any]) -> Any:
        if self._scheduled_process is not None:
            return self._scheduled_process.invoke(event)
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


class ScheduledFunctionFailed(RuntimeError):
    """The scheduled function raised; the message carries its traceback."""


class ScheduledFunctionProcess:
    """The scheduled function in a process of its own, as AWS runs it in containers of its own.

    A tracker run taking in a backlog lasts up to the function's timeout; in the
    API's process it would hold the one invocation lock (and the interpreter lock)
    that long, and requests would wait. Here it runs beside them, one invocation at a
    time: JSON lines in on the child's stdin, answers out on its stdout; what the
    function itself prints goes where the other functions' output goes. The child
    reads the environment as it is when `start` is called.
    """

    def __init__(self, verbose: bool) -> None:
        self._verbose = verbose
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        command = [sys.executable, "-m", "local.functions", *(["--verbose"] if self._verbose else [])]
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, a module of ours
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=Path(__file__).resolve().parents[1],
        )
        kind, detail = self._receive()
        if kind != "ready":
            self.stop()
            raise ScheduledFunctionFailed(f"the scheduled function did not start:\n{detail}")

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            if self._process is None or self._process.stdin is None:
                raise ScheduledFunctionFailed("the scheduled function's process is not running")
            try:
                self._process.stdin.write(json.dumps(event) + "\n")
                self._process.stdin.flush()
            except OSError as error:
                raise ScheduledFunctionFailed("the scheduled function's process has stopped") from error
            kind, value = self._receive()
        if kind != "ok":
            raise ScheduledFunctionFailed(str(value))
        return value

    def _receive(self) -> tuple[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise ScheduledFunctionFailed("the scheduled function's process has stopped")
        kind, value = json.loads(line)
        return str(kind), value

    def stop(self) -> None:
        """Stop it at once, as Lambda stops a container: a run in progress ends where it is."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()  # it ignores SIGTERM, which a process group's stop sends it too
        process.wait()


def _serve_scheduled(verbose: bool) -> int:
    """The child: load the functions, then invoke the scheduled one for each event line on stdin."""
    # Ctrl-C and SIGTERM reach the whole process group: the runner handles them and stops us when
    # it is ready to (a run it is waiting for then fails quietly). Were the runner killed, our stdin
    # closes and we end after the run in hand.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.SIG_IGN)
    # As in the runner (local.run): a run that emits no metric is no news on the console.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    # Nothing the functions print may mix with the answers: fd 1 is their output from now on.
    output = function_output(verbose)
    os.dup2(output.fileno(), sys.stdout.fileno())

    def answer(kind: str, value: Any) -> None:
        answers.write(json.dumps([kind, value]) + "\n")
        answers.flush()

    try:
        host = FunctionHost(output, prime=False)  # the scheduled function: no SnapStart
    except BaseException:
        answer("failed", traceback.format_exc())
        return 1
    answer("ready", None)
    for line in sys.stdin:
        try:
            answer("ok", host.invoke_scheduled(json.loads(line)))
        except Exception:
            answer("error", traceback.format_exc())
    return 0  # the runner closed our stdin: it has gone


if __name__ == "__main__":
    sys.exit(_serve_scheduled("--verbose" in sys.argv[1:]))
