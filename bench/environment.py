"""The world the benchmarks run in: moto's server, the provider sandbox and the functions' environment.

Resources are made as tests/conftest.py makes them (the token secret and the
idempotency table, names from gateway.names). Nothing here imports a handler.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.emulator import QueuePair

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
EVENTS = REPO / "events"
REGION = "eu-central-1"
# Enough credit that no benchmark ever meets "insufficient balance" (0.01 per destination).
SANDBOX_BALANCE = 1e9
# Generous: a loaded machine must not turn a slow answer into a failed benchmark.
PROVIDER_READ_TIMEOUT_SECONDS = "10"
# Fake credentials; the region and the disabled tracer as tests/conftest.py sets them.
STATIC_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "1",
}


def configure_process() -> None:
    """Prepare this process before anything imports boto3 or Powertools (they read the environment then)."""
    for name in [n for n in os.environ if n.startswith(("AWS_", "POWERTOOLS_"))]:
        del os.environ[name]
    os.environ.update(STATIC_ENVIRONMENT)
    import local  # noqa: F401 - puts functions/ on sys.path

    # A request line per AWS call would drown the benchmark's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class RemoteSandbox:
    """The provider sandbox in its own process, steered through its HTTP control API."""

    def __init__(self, url: str) -> None:
        import urllib3

        self.url = url
        self._http = urllib3.PoolManager()

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        encoded = json.dumps(body).encode() if body is not None else None
        response = self._http.request(method, f"{self.url}_sandbox/{path}", body=encoded)
        if response.status != 200:
            raise RuntimeError(f"sandbox {path}: HTTP {response.status}")
        return response.json()

    @property
    def ledger(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "ledger"))

    def reset(self) -> None:
        self._control("POST", "reset")

    def set_latency(self, seconds: float) -> None:
        self._control("POST", "config", {"latency": seconds})


class BenchEnvironment:
    """moto's server holding the token secret and the idempotency table, and the provider sandbox.

    Use as a context manager; each server runs in a process of its own (bench/servers.py).
    """

    def __init__(self) -> None:
        self.token = secrets.token_hex(20)
        self.endpoint_url = ""
        self._servers: list[subprocess.Popen[str]] = []
        self.sandbox: RemoteSandbox
        self.trigger_queue: QueuePair

    def __enter__(self) -> BenchEnvironment:
        try:
            self.endpoint_url = self._start_server("aws")
            self.sandbox = RemoteSandbox(self._start_server("sandbox", self.token, str(SANDBOX_BALANCE)))
            self._provision()
        except BaseException:
            self._stop_servers()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop_servers()

    def _start_server(self, *arguments: str) -> str:
        """Start `python -m bench.servers ARGUMENTS` and return the URL it serves at."""
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", *arguments],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{FUNCTIONS}"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._servers.append(server)
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.servers {arguments[0]} exited before serving")
        url: str = json.loads(line)["url"]
        return url

    def _stop_servers(self) -> None:
        for server in self._servers:
            assert server.stdin is not None
            server.stdin.close()
        for server in self._servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self._servers.clear()

    def _provision(self) -> None:
        import boto3

        from gateway import names

        session = boto3.session.Session(region_name=REGION)
        session.client("secretsmanager", endpoint_url=self.endpoint_url).create_secret(
            Name=names.TOKEN_SECRET_NAME, SecretString=json.dumps({"apitoken": self.token})
        )
        session.client("dynamodb", endpoint_url=self.endpoint_url).create_table(
            TableName=names.IDEMPOTENCY_TABLE_NAME,
            KeySchema=[{"AttributeName": names.IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": names.IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # Delivery tracking, as make run provisions it (the bench's bus has no rule: events go nowhere).
        from local.emulator import create_tracking_table

        create_tracking_table(session.client("dynamodb", endpoint_url=self.endpoint_url))
        # The suppression list, as make run provisions it (empty: only the suppression benchmark fills it
        # and sets SUPPRESSION_TABLE, so no other benchmark reads it).
        from local.emulator import create_suppression_table

        create_suppression_table(session.client("dynamodb", endpoint_url=self.endpoint_url))
        session.client("events", endpoint_url=self.endpoint_url).create_event_bus(Name=names.EVENT_BUS_NAME)
        # Scheduled sends, as make run provisions them: the table, the trigger queue, the schedule group
        # (only the schedules benchmark sets SCHEDULE_TABLE, so no other benchmark schedules anything).
        from local.emulator import create_queue_with_dead_letters, create_schedule_table

        create_schedule_table(session.client("dynamodb", endpoint_url=self.endpoint_url))
        self.trigger_queue = create_queue_with_dead_letters(
            session.client("sqs", endpoint_url=self.endpoint_url),
            names.SCHEDULE_QUEUE_NAME,
            names.SCHEDULE_DEAD_LETTER_QUEUE_NAME,
            visibility_timeout=names.QUEUE_VISIBILITY_TIMEOUT_SECONDS,
        )
        session.client("scheduler", endpoint_url=self.endpoint_url).create_schedule_group(
            Name=names.SCHEDULE_GROUP_NAME
        )

    @property
    def token_secret_name(self) -> str:
        from gateway import names

        return names.TOKEN_SECRET_NAME

    def function_environment(self) -> dict[str, str]:
        """What the functions read (gateway.settings), pointing at the emulator and the sandbox."""
        from gateway import names

        return {
            **STATIC_ENVIRONMENT,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            names.ENV_PROVIDER_BASE_URL: self.sandbox.url,
            names.ENV_PROVIDER_TOKEN_SECRET: self.token_secret_name,
            names.ENV_PROVIDER_READ_TIMEOUT: PROVIDER_READ_TIMEOUT_SECONDS,
        }

    def scheduling_environment(self) -> dict[str, str]:
        """What the functions read to schedule sends (gateway.settings), with the bus to publish on."""
        from gateway import names
        from local.emulator import SCHEDULER_ROLE_ARN

        return {
            names.ENV_SCHEDULE_TABLE: names.SCHEDULE_TABLE_NAME,
            names.ENV_SCHEDULE_GROUP: names.SCHEDULE_GROUP_NAME,
            names.ENV_SCHEDULE_QUEUE_URL: self.trigger_queue.url,
            names.ENV_SCHEDULE_QUEUE_ARN: self.trigger_queue.arn,
            names.ENV_SCHEDULER_ROLE_ARN: SCHEDULER_ROLE_ARN,
            names.ENV_SCHEDULER_DEAD_LETTER_ARN: self.trigger_queue.dead_letter_arn,
            names.ENV_EVENT_BUS_NAME: names.EVENT_BUS_NAME,
        }

    def apply_to_process(self) -> None:
        """Give this process the functions' environment, for the in-process benchmarks."""
        os.environ.update(self.function_environment())
        from local.functions import reset_process_caches

        reset_process_caches()

    def child_environment(self, *, write_bytecode: bool) -> dict[str, str]:
        """A fresh process's environment: the functions' settings, functions/ on the path like /var/task."""
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
        }
        environment = {**inherited, **self.function_environment(), "PYTHONPATH": str(FUNCTIONS)}
        if not write_bytecode:
            environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return environment

    def reset_sandbox(self, *, latency: float) -> None:
        self.sandbox.reset()
        self.sandbox.set_latency(latency)


@contextlib.contextmanager
def silenced_output() -> Iterator[None]:
    """Send the Logger's lines and the EMF metrics (printed to stdout) to /dev/null."""
    from gateway.observability import logger

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        # The Logger keeps the stream it was made with, so redirect_stdout alone misses it.
        handler = logger.registered_handler
        previous = handler.setStream(devnull)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            handler.setStream(previous)  # type: ignore[attr-defined]


def run_child(
    command: list[str], environment: dict[str, str], result_path: Path, *, what: str, timeout: float
) -> tuple[dict[str, Any], str]:
    """A benchmark's child process, its output thrown away (the handler's log lines and EMF metrics):
    the report it wrote to `result_path`, and its stderr. BenchmarkBroken if it failed."""
    from bench.report import BenchmarkBroken

    completed = subprocess.run(
        command,
        env=environment,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchmarkBroken(f"{what} exited with {completed.returncode}: {completed.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(result_path.read_text())
    return report, completed.stderr


def load_event(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


def api_event(body: dict[str, Any]) -> dict[str, Any]:
    """The sample POST /messages event carrying `body`."""
    event = load_event("api-post-im.json")
    event["body"] = json.dumps(body)
    return event


def sqs_event(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS batch of `bodies`, each record with a fresh message id (the idempotency key)."""
    template = load_event("sqs-batch.json")["Records"][0]
    records = []
    for body in bodies:
        record = dict(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = json.dumps(body)
        record["messageAttributes"] = {}
        records.append(record)
    return {"Records": records}


def sample_body() -> dict[str, Any]:
    """The body of events/api-post-im.json: one Viber message to two destinations."""
    document: dict[str, Any] = json.loads(load_event("api-post-im.json")["body"])
    return document
