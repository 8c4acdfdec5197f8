"""The domain's shape: a small core, then capability packages whose imports point down only.

functions/gateway/__init__.py states the order; this holds the code to it, counting every
import (at module level, inside functions, and for type checking alike).
"""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "functions" / "gateway"
# Bottom to top: each may import the core and the packages before it, never one after it.
LAYERS = (
    "core",
    "provider",
    "guard",
    "suppression",
    "tracking",
    "sending",
    "account",
    "reconciliation",
    "schedules",
    "intake",
)
CORE = {
    "aws",
    "clock",
    "compact",
    "events",
    "failures",
    "fields",
    "names",
    "observability",
    "phone",
    "problems",
    "responses",
    "settings",
    "snapshot",
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in CORE:
        return "core"
    return parts[1]


def gateway_imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gateway":
            if node.module == "gateway":
                found += [(f"gateway.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("gateway.")]
    return found


def module_name(path: Path) -> str:
    relative = path.relative_to(GATEWAY.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def test_every_module_of_the_domain_is_in_a_layer() -> None:
    for path in GATEWAY.rglob("*.py"):
        assert layer_of(module_name(path)) in LAYERS, path


def test_imports_point_down_only() -> None:
    upward = []
    for path in sorted(GATEWAY.rglob("*.py")):
        me = layer_of(module_name(path))
        for imported, line in gateway_imports(path):
            if LAYERS.index(layer_of(imported)) > LAYERS.index(me):
                upward.append(f"{module_name(path)}:{line} ({me}) imports {imported} ({layer_of(imported)})")
    assert upward == []


def test_the_check_sees_an_import_that_points_up(tmp_path: Path) -> None:
    source = "def f():\n    from gateway.schedules.service import get_schedules\n"
    (tmp_path / "module.py").write_text(source)
    [(imported, _)] = gateway_imports(tmp_path / "module.py")
    assert LAYERS.index(layer_of(imported)) > LAYERS.index(layer_of("gateway.sending.send"))


def test_the_core_is_what_the_package_says_it_is() -> None:
    top_level = {path.stem for path in GATEWAY.glob("*.py")} - {"__init__", "intake"}
    assert top_level == CORE
    assert {path.name for path in GATEWAY.iterdir() if (path / "__init__.py").exists()} == set(LAYERS) - {
        "core",
        "intake",
    }
