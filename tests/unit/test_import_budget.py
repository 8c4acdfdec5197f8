"""The import budget: what each handler loads at import, held against tests/import_budget.toml.

A fresh interpreter imports the handler and reports the modules it loaded: a
deterministic figure, unlike a timing. A module that joins a handler's import
path (a heavy library, the code of a route a send does not take) fails here
until the budget file says so on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUDGET = REPO / "tests" / "import_budget.toml"
HANDLERS = ("api_handler", "queue_handler", "scheduled_handler")
_PROBE = """
import json, sys
before = set(sys.modules)
__import__(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def loaded_at_import(handler: str) -> list[str]:
    """The modules a fresh interpreter loads to import `handler`, as outside Lambda (tracing off)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "LAMBDA_", "_X_AMZN"))
    }
    environment |= {
        "PYTHONPATH": str(REPO / "functions"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, handler],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: list[str] = json.loads(completed.stdout)
    return modules


def split(handler: str, modules: list[str]) -> tuple[list[str], dict[str, int], int]:
    """Our modules, third-party modules counted per top-level package, and the standard library's count."""
    own: list[str] = []
    third_party: dict[str, int] = {}
    stdlib = 0
    for module in modules:
        top = module.split(".")[0]
        if top in ("gateway", handler, "api_routes"):
            own.append(module)
        elif top in sys.stdlib_module_names or top.startswith("_"):
            stdlib += 1
        else:
            third_party[top] = third_party.get(top, 0) + 1
    return own, third_party, stdlib


def over_budget(handler: str, modules: list[str], budget: dict[str, Any]) -> list[str]:
    """Everything in `modules` that breaks the handler's budget, in words; [] when within it."""
    entry = budget[handler]
    own, third_party, stdlib = split(handler, modules)
    problems = [
        f"loads {module}, which its budget keeps out: {reason}"
        for name, reason in entry["forbidden"].items()
        for module in modules
        if module == name or module.startswith(name + ".")
    ]
    listed = set(entry["gateway"])
    problems += [
        f"{module} is new on its import path: list it, or load it later"
        for module in sorted(set(own) - listed)
    ]
    problems += [
        f"{module} is no longer loaded: take it out of the budget" for module in sorted(listed - set(own))
    ]
    allowed: dict[str, int] = entry["third_party"]
    problems += [
        f"{package}: {count} modules (budget {allowed.get(package, 0)})"
        for package, count in sorted(third_party.items())
        if count > allowed.get(package, 0)
    ]
    if stdlib > entry["stdlib_max"]:
        problems.append(f"{stdlib} standard-library modules (budget {entry['stdlib_max']})")
    return problems


@pytest.fixture(scope="module")
def budget() -> dict[str, Any]:
    return tomllib.loads(BUDGET.read_text())


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_handler_imports_within_its_budget(budget: dict[str, Any], handler: str) -> None:
    # Given a fresh interpreter that imports the handler
    modules = loaded_at_import(handler)
    # Then what it loaded is what tests/import_budget.toml allows, and nothing it keeps out
    assert over_budget(handler, modules, budget) == [], f"{handler}, against {BUDGET.name}"


@pytest.mark.parametrize(
    ("added", "expected"),
    [
        ("gateway.tracking.lookup", "keeps out"),
        ("aws_lambda_powertools.event_handler.api_gateway", "keeps out"),
        ("asyncio.base_events", "keeps out"),
        ("gateway.suppression", "new on its import path"),
        ("pydantic.v1", "pydantic: 44 modules"),
        ("numpy", "numpy: 1 modules (budget 0)"),
    ],
)
def test_a_module_added_to_the_api_handlers_import_breaks_its_budget(
    budget: dict[str, Any], added: str, expected: str
) -> None:
    # Given what the API handler loads today, within its budget
    modules = loaded_at_import("api_handler")
    assert over_budget("api_handler", modules, budget) == []
    # When one more module joins its import path, Then the budget names it
    problems = over_budget("api_handler", [*modules, added], budget)
    assert any(expected in problem for problem in problems), problems
