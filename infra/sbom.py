"""The layer's software bill of materials (CycloneDX JSON), and the license allow-list it is checked against.

`make build` writes build/layer.cdx.json beside build/layer (not in it: it is not shipped).
The generator is cyclonedx-py (PyPI `cyclonedx-bom`, CycloneDX's own, in requirements-dev.txt),
run on the layer's python/ folder as if it were an environment: it reads every
`*.dist-info` there (name, version, declared licenses, PEP 639 license expressions
included). What it cannot know is added here: the SHA-256 of the wheel each package was
installed from (pip's installation report, checked against the lock's hashes) and what the
layer was built for. Output is reproducible: no timestamp, no serial number, components
sorted.

Standard library only (cyclonedx-py runs as a subprocess), like infra/artifacts.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
ALLOWED_LICENSES = REPO_ROOT / "licenses.toml"
SPEC_VERSION = "1.6"


class SbomError(RuntimeError):
    """The SBOM cannot be written; the message says why."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_hashes(lock: Path) -> dict[str, set[str]]:
    """The sha256 hashes the lock allows for each package (normalized name)."""
    hashes: dict[str, set[str]] = {}
    current = None
    for line in lock.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line)
        if pin:
            current = normalize(pin.group(1))
            hashes.setdefault(current, set())
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            if current is not None:
                hashes[current].add(digest)
    return hashes


def installed_wheels(report: Path) -> dict[str, tuple[str, str]]:
    """From pip's installation report: for each package, the file it was installed from and its sha256."""
    document = json.loads(report.read_text())
    wheels = {}
    for item in document.get("install", []):
        info = item["download_info"]
        archive = info.get("archive_info", {})
        digest = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").removeprefix("sha256=")
        wheels[normalize(item["metadata"]["name"])] = (info["url"].rsplit("/", 1)[-1], digest)
    return wheels


def generate(site: Path) -> dict[str, Any]:
    """cyclonedx-py's SBOM of the distributions in `site` (nothing else: no site-packages, no -S .pth)."""
    command = [
        sys.executable,
        "-m",
        "cyclonedx_py",
        "environment",
        "-S",  # the probing Python's own site-packages stay out; PYTHONPATH names the layer
        "--output-reproducible",
        "--sv",
        SPEC_VERSION,
        "--mc-type",
        "library",
        "-o",
        "-",
        sys.executable,
    ]
    environment = {**os.environ, "PYTHONPATH": str(site)}
    environment.pop("SOURCE_DATE_EPOCH", None)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    except OSError as error:
        raise SbomError(f"cannot run cyclonedx-py: {error}") from error
    if completed.returncode != 0:
        raise SbomError(
            "cyclonedx-py (cyclonedx-bom, requirements-dev.txt: `make venv`) failed:\n"
            f"{completed.stderr[-4000:]}"
        )
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def write_sbom(
    site: Path, out: Path, *, report: Path, lock: Path, python_version: str, platform: str | None
) -> dict[str, Any]:
    """The layer's SBOM into `out`: cyclonedx-py's, plus each package's wheel and hash, and the target."""
    document = generate(site)
    allowed = lock_hashes(lock)
    wheels = installed_wheels(report)
    components = sorted(document.get("components", []), key=lambda component: normalize(component["name"]))
    for component in components:
        name = normalize(component["name"])
        if name not in wheels:
            raise SbomError(f"{component['name']} is in the layer but pip's report does not list it")
        wheel, digest = wheels[name]
        if digest not in allowed.get(name, set()):
            raise SbomError(f"{wheel}: sha256 {digest} is not one of the lock's hashes for {name}")
        component["hashes"] = [{"alg": "SHA-256", "content": digest}]
        properties = [
            prop for prop in component.get("properties", []) if prop["name"] != "viber-gateway:wheel"
        ]
        component["properties"] = [*properties, {"name": "viber-gateway:wheel", "value": wheel}]
    document["components"] = components
    document.setdefault("metadata", {})["component"] = {
        "type": "library",
        "bom-ref": "viber-gateway-layer",
        "name": "viber-gateway-layer",
        "description": "The Lambda functions' dependency layer (requirements.txt, from "
        f"{lock.relative_to(REPO_ROOT).as_posix() if lock.is_relative_to(REPO_ROOT) else lock.name})",
        "properties": [
            {"name": "viber-gateway:python-version", "value": python_version},
            {"name": "viber-gateway:platform", "value": platform or "host"},
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


# --- Licenses -------------------------------------------------------------------------------


def load_allowed(path: Path = ALLOWED_LICENSES) -> set[str]:
    document = tomllib.loads(path.read_text())
    return {str(entry) for entry in document.get("allowed", [])}


def _expression_ok(expression: str, allowed: set[str]) -> bool:
    """Does an SPDX license expression hold with only `allowed` licenses? (OR: one side; AND: both.)"""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(expression)
        position += 1
        return str(tokens[position - 1])

    def primary() -> bool:
        part = take()
        if part == "(":
            value = either()
            if take() != ")":
                raise ValueError(expression)
            return value
        if part in {")", "AND", "OR", "WITH"}:
            raise ValueError(expression)
        if peek() == "WITH":  # an exception only widens what the license allows
            take()
            take()
        return part in allowed

    def both() -> bool:
        value = primary()
        while peek() == "AND":
            take()
            value = primary() and value
        return value

    def either() -> bool:
        value = both()
        while peek() == "OR":
            take()
            value = both() or value
        return value

    try:
        result = either()
    except ValueError:
        return False
    return result and position == len(tokens)


def component_licenses(component: dict[str, Any]) -> list[str]:
    """The licenses a component declares: SPDX ids, license names (classifiers) or expressions."""
    found = []
    for entry in component.get("licenses", []):
        if "expression" in entry:
            found.append(entry["expression"])
        else:
            license_ = entry.get("license", {})
            found.append(license_.get("id") or license_.get("name") or "")
    return found


def license_problems(document: dict[str, Any], allowed: set[str]) -> list[str]:
    """The components whose licenses are not all in the allow-list (or that declare none)."""
    problems = []
    for component in document.get("components", []):
        licenses = component_licenses(component)
        label = f"{component['name']} {component.get('version', '')}".strip()
        if not licenses:
            problems.append(f"{label}: declares no license")
            continue
        refused = [
            license_
            for license_ in licenses
            if license_ not in allowed and not (" " in license_ and _expression_ok(license_, allowed))
        ]
        if refused:
            problems.append(f"{label}: {', '.join(refused)} is not in licenses.toml's allowed list")
    return problems
