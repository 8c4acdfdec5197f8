"""checkov passes on the synthesized templates: every finding fixed, or skipped in code with a reason.

checkov lives in .venv-checkov (its dependencies clash with ours), which `make test`
makes from requirements-checkov.txt before pytest runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import REPO, Synthesized

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# What a skip may name: a resource type and a check, each with its reason in the code.
EXPECTED_SKIPS = {
    ("AWS::Lambda::Function", "CKV_AWS_116"),  # no async invocations to dead-letter
    ("AWS::Lambda::Function", "CKV_AWS_117"),  # no VPC: nothing private to reach
    ("AWS::Lambda::Function", "CKV_AWS_173"),  # no secret in the environment
    ("AWS::Lambda::Function", "CKV_AWS_115"),  # the queue function: bounded by its mapping
    ("AWS::Logs::LogGroup", "CKV_AWS_158"),  # encrypted by CloudWatch Logs
    ("AWS::SQS::Queue", "CKV_AWS_27"),  # SQS-managed SSE, which checkov does not see
    ("AWS::SecretsManager::Secret", "CKV_AWS_149"),  # aws/secretsmanager key
    ("AWS::DynamoDB::Table", "CKV_AWS_119"),  # aws/dynamodb key
    ("AWS::ApiGateway::Stage", "CKV_AWS_120"),  # never cache sends
    ("AWS::ApiGateway::Method", "CKV_AWS_59"),  # GET /openapi.json: public, MOCK
}


@pytest.fixture(scope="module")
def checkov_report(
    default_stack: Synthesized, alternative_stack: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One checkov run over both templates (it takes seconds to start)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO)} is missing: `make test` creates .venv-checkov")
    folder = tmp_path_factory.mktemp("checkov")
    for stack in (default_stack, alternative_stack):
        shutil.copyfile(stack.template_file, folder / stack.template_file.name)
    completed = subprocess.run(
        [
            str(CHECKOV),
            *["--directory", str(folder), "--framework", "cloudformation"],
            *["--output", "json", "--compact", "--skip-download"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if not completed.stdout.strip().startswith(("{", "[")):
        pytest.fail(f"checkov printed no report (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def test_checkov_finds_nothing_unexplained(checkov_report: dict[str, Any]) -> None:
    # Given checkov's report on both synthesized templates
    summary = checkov_report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({Path(check['file_path']).name}): {check['check_name']}"
        for check in checkov_report["results"]["failed_checks"]
    ]

    # Then it parsed both and checked every resource, and no check failed
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 100
    assert summary["passed"] > 100
    assert failed == []


def test_checkov_skips_are_few_narrow_and_explained(
    checkov_report: dict[str, Any], default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given the skips checkov applied, and those written into the templates
    skipped = checkov_report["results"]["skipped_checks"]
    written = [
        (resource["Type"], skip)
        for stack in (default_stack, alternative_stack)
        for resource in stack.template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]

    # Then checkov honoured each, and they are only of the kinds listed above
    assert len(skipped) == len(written)
    assert {(resource_type, skip["id"]) for resource_type, skip in written} == EXPECTED_SKIPS
    # And each says why
    assert all(len(skip["comment"]) > 40 for _, skip in written)
    assert all(check["check_result"]["suppress_comment"] for check in skipped)
