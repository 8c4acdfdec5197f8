"""Tracing: X-Ray where Lambda traces, nothing (not even its import) where tracing is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.observability import NoTracing, tracing_enabled

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
TRACING_ENVIRONMENT = (
    "POWERTOOLS_TRACE_DISABLED",
    "LAMBDA_TASK_ROOT",
    "AWS_SAM_LOCAL",
    "AWS_CHALICE_CLI_MODE",
)
PROBE = (
    "import json, sys\n"
    "from gateway.observability import tracer\n"
    "print(json.dumps({'provider': type(tracer.provider).__name__, 'disabled': bool(tracer.disabled),"
    " 'xray_imported': 'aws_xray_sdk.core' in sys.modules}))\n"
)


def _tracer_in_fresh_process(**environment: str) -> dict[str, object]:
    """Import gateway.observability in a new interpreter with `environment`, as a cold start does."""
    base = {k: v for k, v in os.environ.items() if k not in TRACING_ENVIRONMENT}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**base, "PYTHONPATH": str(FUNCTIONS), "AWS_DEFAULT_REGION": "eu-central-1", **environment},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer: dict[str, object] = json.loads(completed.stdout)
    return answer


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, False),  # not in Lambda: no daemon to send to
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"}, False),
    ],
)
def test_tracing_follows_powertools_rule(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: bool
) -> None:
    # Given the environment
    for name in TRACING_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # Then tracing is on only in Lambda, unless turned off
    assert tracing_enabled() is expected


def test_with_tracing_off_the_xray_sdk_is_not_imported() -> None:
    # Given a cold start outside Lambda (as make run and the benchmarks are)
    # When the observability module is imported
    answer = _tracer_in_fresh_process(POWERTOOLS_TRACE_DISABLED="1")
    # Then the tracer is off, with no X-Ray recorder built
    assert answer == {"provider": "NoTracing", "disabled": True, "xray_imported": False}


def test_in_lambda_the_tracer_records_with_xray() -> None:
    # Given a cold start in Lambda with tracing on
    answer = _tracer_in_fresh_process(LAMBDA_TASK_ROOT="/var/task")
    # Then Powertools' X-Ray recorder is the provider
    assert answer == {"provider": "AsyncAWSXRayRecorder", "disabled": False, "xray_imported": True}


def test_no_tracing_accepts_what_the_tracer_does_with_a_subsegment() -> None:
    provider = NoTracing()
    with provider.in_subsegment(name="## handler") as subsegment:
        subsegment.put_annotation(key="ColdStart", value=True)
        subsegment.put_metadata(key="answer", value={"a": 1}, namespace="viber-gateway")
        subsegment.add_exception(ValueError("x"), [])
    provider.put_annotation("k", "v")
    provider.patch_all()
