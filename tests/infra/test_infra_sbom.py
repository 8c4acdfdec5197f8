"""The layer's SBOM (build/layer.cdx.json, written by `make build`) and the license allow-list.

`make test` builds the layer before pytest runs; without it these tests fail and say so.
"""

from __future__ import annotations

import email.parser
import json
from pathlib import Path
from typing import Any

import pytest

from infra import artifacts, sbom
from infra.config import DEFAULT_LAMBDA_PYTHON_VERSION

LAYER = artifacts.LAYER_DIR
VERSION = DEFAULT_LAMBDA_PYTHON_VERSION


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    path = artifacts.sbom_path(LAYER)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make build` (make test builds it before pytest)")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _distributions(site: Path) -> dict[str, str]:
    found = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        headers = email.parser.BytesHeaderParser().parsebytes(metadata.read_bytes())
        found[sbom.normalize(headers["Name"])] = headers["Version"]
    return found


def test_the_sbom_lists_every_distribution_of_the_layer(document: dict[str, Any]) -> None:
    # Given what the layer ships: one *.dist-info per distribution
    shipped = _distributions(LAYER / "python")
    assert len(shipped) > 10

    # Then the SBOM, CycloneDX JSON beside the layer (not shipped in it), lists exactly those
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == sbom.SPEC_VERSION
    listed = {sbom.normalize(component["name"]): component["version"] for component in document["components"]}
    assert listed == shipped
    # And not what Lambda's runtime provides (the layer prunes it)
    assert not {"boto3", "botocore", "s3transfer"} & set(listed)
    assert not (LAYER / artifacts.sbom_path(LAYER).name).exists()


def test_each_package_has_its_wheel_s_hash_from_the_lock_and_a_license(document: dict[str, Any]) -> None:
    # Given the lock the layer was installed from
    allowed = sbom.lock_hashes(artifacts.layer_lock(VERSION))

    for component in document["components"]:
        # Then each package names the wheel it came from, whose SHA-256 is one the lock allows
        (digest,) = component["hashes"]
        assert digest["alg"] == "SHA-256"
        assert digest["content"] in allowed[sbom.normalize(component["name"])]
        wheels = [prop["value"] for prop in component["properties"] if prop["name"] == "viber-gateway:wheel"]
        assert len(wheels) == 1
        assert wheels[0].endswith(".whl")
        # And a package URL and at least one declared license
        assert component["purl"].startswith(f"pkg:pypi/{sbom.normalize(component['name'])}@")
        assert sbom.component_licenses(component)
    # And the SBOM says what it describes: the layer, for the runtime's Python on arm64
    properties = {prop["name"]: prop["value"] for prop in document["metadata"]["component"]["properties"]}
    assert properties == {
        "viber-gateway:python-version": VERSION,
        "viber-gateway:platform": artifacts.LAMBDA_PLATFORM,
    }
    # And it is reproducible: no time stamp, no random serial number
    assert "timestamp" not in document["metadata"]
    assert "serialNumber" not in document


def test_every_license_the_layer_ships_is_allowed(document: dict[str, Any]) -> None:
    # Given the allow-list of licenses.toml
    allowed = sbom.load_allowed()

    # Then every package of the layer declares only licenses on it
    assert sbom.license_problems(document, allowed) == []


def _component(name: str, licenses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "licenses": licenses}


@pytest.mark.parametrize(
    ("licenses", "problem"),
    [
        ([{"license": {"id": "MIT"}}], None),
        ([{"license": {"name": "License :: OSI Approved :: BSD License"}}], None),
        (
            [{"license": {"id": "GPL-3.0-only"}}],
            "probe 1.0: GPL-3.0-only is not in licenses.toml's allowed list",
        ),
        # Two declared licenses: both must be allowed
        ([{"license": {"id": "MIT"}}, {"license": {"id": "AGPL-3.0-only"}}], "AGPL-3.0-only is not"),
        ([{"expression": "MIT OR GPL-3.0-only"}], None),
        ([{"expression": "(Apache-2.0 OR BSD-3-Clause) AND GPL-2.0-only"}], "is not in licenses.toml"),
        ([{"expression": "MIT AND GPL-3.0-only"}], "MIT AND GPL-3.0-only is not"),
        ([{"license": {"name": "Proprietary"}}], "Proprietary is not"),
        ([], "probe 1.0: declares no license"),
    ],
)
def test_a_license_outside_the_allow_list_fails(licenses: list[dict[str, Any]], problem: str | None) -> None:
    # Given an SBOM with one package declaring these licenses
    document = {"components": [_component("probe", licenses)]}

    # When it is checked against the repository's allow-list
    problems = sbom.license_problems(document, sbom.load_allowed())

    # Then a license not on it (or none) fails, until it is added to licenses.toml on purpose
    if problem is None:
        assert problems == []
    else:
        (found,) = problems
        assert problem in found


def test_the_allow_list_has_no_copyleft_license() -> None:
    # Given the allow-list
    allowed = sbom.load_allowed()

    # Then it holds only permissive licenses: adding another is a decision, reviewed in its own change
    assert allowed
    assert not [name for name in allowed if "GPL" in name.upper()]


def test_build_prints_the_layer_s_size_and_file_count(tmp_path: Path) -> None:
    # Given a small folder
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("x = 1\n" * 1000)
    (tmp_path / "y.txt").write_text("y")

    # Then its description counts the files, the bytes unpacked and zipped
    files, unpacked, zipped = artifacts.layer_size(tmp_path)
    assert (files, unpacked) == (2, 6001)
    assert 0 < zipped < unpacked
    assert artifacts.describe_size(tmp_path).startswith("2 files, 0.0 MB unpacked")
