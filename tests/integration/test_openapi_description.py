"""The OpenAPI description as tools read it: valid OpenAPI 3.1, clean under Redocly's lint, named for clients.

GET /openapi.json serves `openapi_json()` (make run, and API Gateway through infra/openapi.py).
Redocly CLI is pinned in package.json and installed by `make test` / `make check` (npm ci); it
runs offline here, with redocly.yaml, and any warning fails the test with the linter's report.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from api_handler import openapi_json

REPO = Path(__file__).resolve().parents[2]
REDOCLY = REPO / "node_modules" / ".bin" / "redocly"
REDOCLY_CONFIG = REPO / "redocly.yaml"
LINT_TIMEOUT_SECONDS = 120
# No usage data sent, no check for a newer version: the lint needs no network.
OFFLINE = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_NOTIFICATIONS": "true", "NO_COLOR": "1"}
# Every operation's operationId: its function's name in generated clients (send_message, ...).
# Renaming one breaks their code, so a change here is a change of the API.
OPERATION_IDS = {
    ("post", "/messages"): "sendMessage",
    ("post", "/messages/preview"): "previewMessage",
    ("get", "/messages/{smsid}"): "getMessage",
    ("get", "/messages"): "getMessages",
    ("get", "/account/balance"): "getBalance",
    ("put", "/suppressions/{number}"): "putSuppression",
    ("get", "/suppressions/{number}"): "getSuppression",
    ("delete", "/suppressions/{number}"): "deleteSuppression",
    ("get", "/suppressions"): "listSuppressions",
    ("post", "/suppressions/import"): "importSuppressions",
    ("get", "/schedules/{schedule_id}"): "getSchedule",
    ("get", "/schedules"): "listSchedules",
    ("delete", "/schedules/{schedule_id}"): "cancelSchedule",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    return dict(json.loads(openapi_json()))


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def _report(output: str) -> str:
    """Redocly's JSON report as one line per problem, for the assertion message."""
    try:
        problems = json.loads(output)["problems"]
    except (ValueError, KeyError, TypeError):
        return output
    return "\n".join(
        f"{p['severity']} {p['ruleId']} at {p['location'][0]['pointer']}: {p['message']}" for p in problems
    )


def test_redocly_recommended_finds_nothing(tmp_path: Path) -> None:
    # Given the document GET /openapi.json serves, as a file, and the pinned Redocly CLI
    assert REDOCLY.exists(), f"{REDOCLY} is missing: run `npm ci` (make test and make check do)"
    document = tmp_path / "openapi.json"
    document.write_text(openapi_json(), encoding="ascii")

    # When Redocly lints it with the recommended ruleset (redocly.yaml), offline
    completed = subprocess.run(
        [str(REDOCLY), "lint", "--config", str(REDOCLY_CONFIG), "--format=json", str(document)],
        cwd=tmp_path,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT_SECONDS,
        check=False,
    )

    # Then it finds no error and no warning
    output = f"{_report(completed.stdout)}\n--- stderr ---\n{completed.stderr}"
    assert completed.returncode == 0, output
    totals = json.loads(completed.stdout)["totals"]
    assert (totals["errors"], totals["warnings"], totals["ignored"]) == (0, 0, 0), output


def test_the_description_is_valid_openapi_3_1(description: dict[str, Any]) -> None:
    assert description["openapi"].startswith("3.1.")
    validate(description, cls=OpenAPIV31SpecValidator)


def test_every_operation_has_its_short_stable_operation_id(description: dict[str, Any]) -> None:
    operations = _operations(description)
    assert {route: operation["operationId"] for route, operation in operations.items()} == OPERATION_IDS


def test_the_license_is_stated(description: dict[str, Any]) -> None:
    # No LICENSE file, none in pyproject.toml; package.json says UNLICENSED (api_routes.API_LICENSE)
    assert description["info"]["license"] == {
        "name": "Proprietary: all rights reserved",
        "identifier": "LicenseRef-Proprietary",
    }


def test_only_schemas_an_operation_uses_are_published(description: dict[str, Any]) -> None:
    # Given the component schemas, and every $ref outside them and between them
    schemas = description["components"]["schemas"]

    def references(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = {v.rsplit("/", 1)[-1] for k, v in node.items() if k == "$ref"}
            return own.union(*(references(value) for value in node.values()))
        if isinstance(node, list):
            return set().union(*(references(item) for item in node))
        return set()

    used = references(description["paths"])
    while True:
        more = used | set().union(*(references(schemas[name]) for name in used))
        if more == used:
            break
        used = more

    # Then each schema is used, and Powertools' validation error shapes (never answered) are gone
    assert set(schemas) == used
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(schemas)
    # And the models the tests and the contract rest on are there
    assert {"SendRequest", "Problem", "SendResponse", "MessageStatus"} <= set(schemas)


def test_every_422_is_a_problem(description: dict[str, Any]) -> None:
    # The resolver's request validation is answered by the gateway's own problem document
    for route, operation in _operations(description).items():
        answer = operation["responses"]["422"]
        assert answer["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, route


def test_the_served_document_is_ascii() -> None:
    # infra/openapi.py's mapping template carries it only so
    assert openapi_json().isascii()
