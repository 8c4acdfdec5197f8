"""The local service (`python -m local.run`), started as a user starts it.

Tests reach it only from outside: HTTP with urllib3, boto3 against the
emulator's SQS, and the provider sandbox's HTTP control API.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import urllib3

from gateway import names
from tests.e2e.harness import (
    HOST,
    REPO,
    RUNNER_VARIABLES,
    LocalService,
    free_port,
    local_aws_client,
    port_is_free,
)

START_TIMEOUT_SECONDS = 30
# The runner stops each part in order (pollers, scheduler, webhooks, emulator, sandbox): on a
# loaded two-core machine that has taken over 10 s; it must still end by itself, with 0.
STOP_TIMEOUT_SECONDS = 30
REAP_SECONDS = 2
# Failed records come back after 1 s, so the redrive to the dead-letter queue takes seconds.
VISIBILITY_TIMEOUT_SECONDS = 1


def _group_is_gone(group_id: int) -> bool:
    try:
        os.killpg(group_id, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_until_answering(process: subprocess.Popen[bytes], http: urllib3.PoolManager, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local.run exited with {process.returncode} before answering")
        try:
            if http.request("GET", url, retries=False, timeout=1.0).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"local.run did not answer {url} within {START_TIMEOUT_SECONDS} s")


@contextmanager
def running_local_service(
    log_path: Path,
    *,
    extra_environment: dict[str, str] | None = None,
    extra_arguments: list[str] | None = None,
    clock_scale: float = 1.0,
) -> Iterator[LocalService]:
    """Start `python -m local.run` on free ports as a user would, and stop it and check nothing is left.

    `clock_scale` other than 1 runs the scheduled sends' clock that much faster (--clock-scale),
    from an origin the test knows (CLOCK_ORIGIN): LocalService.clock() reads it.
    """
    api_port, aws_port, sandbox_port = free_port(), free_port(), free_port()
    api_key = secrets.token_hex(16)
    environment = {k: v for k, v in os.environ.items() if k not in RUNNER_VARIABLES}
    clock_origin = time.time()
    clock_arguments = []
    if clock_scale != 1:
        environment[names.ENV_CLOCK_ORIGIN] = repr(clock_origin)
        clock_arguments = [f"--clock-scale={clock_scale!r}"]
    environment.update(extra_environment or {})
    command = [
        sys.executable,
        "-m",
        "local.run",
        f"--port={api_port}",
        f"--aws-port={aws_port}",
        f"--sandbox-port={sandbox_port}",
        f"--api-key={api_key}",
        f"--visibility-timeout={VISIBILITY_TIMEOUT_SECONDS}",
        *clock_arguments,
        *(extra_arguments or []),
    ]
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=30.0))
    with log_path.open("wb") as log:
        # A new session is a new process group: the teardown can stop everything the runner started.
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_answering(process, http, f"http://{HOST}:{api_port}/openapi.json")
    except RuntimeError as error:
        _stop(process)
        pytest.fail(f"{error}; its output:\n{log_path.read_text(errors='replace')}")
    endpoint_url = f"http://{HOST}:{aws_port}"
    sqs = local_aws_client("sqs", endpoint_url)
    try:
        yield LocalService(
            api_url=f"http://{HOST}:{api_port}",
            api_key=api_key,
            sandbox_url=f"http://{HOST}:{sandbox_port}/",
            aws_url=endpoint_url,
            queue_url=sqs.get_queue_url(QueueName=names.QUEUE_NAME)["QueueUrl"],
            dead_letter_queue_url=sqs.get_queue_url(QueueName=names.DEAD_LETTER_QUEUE_NAME)["QueueUrl"],
            ports=[api_port, aws_port, sandbox_port],
            http=http,
            sqs=sqs,
            clock_scale=clock_scale,
            clock_origin=clock_origin,
        )
    finally:
        http.clear()
        survivors = _stop(process)
    output = log_path.read_text(errors="replace")
    # Then: SIGTERM stops it cleanly, and nothing it started is left behind.
    assert process.returncode == 0, f"local.run exited with {process.returncode}:\n{output}"
    assert not survivors, "processes of local.run outlived it"
    assert all(port_is_free(port) for port in (api_port, aws_port, sandbox_port)), output


def _stop(process: subprocess.Popen[bytes]) -> bool:
    """SIGTERM the runner's process group and wait; kill what is left. True if anything was left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
    # The runner waited for its children; what is left for a moment is init reaping them.
    deadline = time.monotonic() + REAP_SECONDS
    while time.monotonic() < deadline:
        if _group_is_gone(process.pid):
            return False
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # a child outlived the runner
    return True
