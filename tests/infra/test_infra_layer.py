"""The real dependency layer, as `make build` ships it (not the tests' placeholder).

`make test` builds build/layer before pytest runs (the Makefile's test target);
without it these tests fail and say so rather than skip.
"""

from __future__ import annotations

import _imp
import csv
import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from infra import artifacts
from infra.config import DEFAULT_LAMBDA_PYTHON_VERSION

LAYER = artifacts.LAYER_DIR
VERSION = DEFAULT_LAMBDA_PYTHON_VERSION
# The date the CDK CLI gives every entry of the zip it uploads.
ZIP_EPOCH = 315_532_800  # 1980-01-01T00:00:00Z
CHECKED_HASH_FLAGS = 0b11  # hash-based, checked against the source


@pytest.fixture(scope="module")
def layer() -> Path:
    if not (LAYER / "python").is_dir():
        pytest.fail("build/layer is missing: run `make build` (make test builds it before pytest)")
    return LAYER


@pytest.fixture(scope="module")
def runtime_python() -> artifacts.Interpreter:
    return artifacts.find_interpreter(VERSION)


def test_the_built_layer_is_the_current_one_for_the_runtime(layer: Path) -> None:
    # Given the stamp the build wrote into the layer
    stamp = artifacts.read_stamp(layer)

    # Then it was built for the runtime's Python and arm64, from today's requirements and recipe
    assert stamp is not None
    assert stamp["python_version"] == VERSION
    assert stamp["platform"] == artifacts.LAMBDA_PLATFORM
    assert stamp["key"] == artifacts.layer_key(VERSION, artifacts.LAMBDA_PLATFORM)
    artifacts.check_layer(layer, version=VERSION)  # what synthesis checks: no error


def test_every_module_has_checked_hash_bytecode_for_the_runtime(
    layer: Path, runtime_python: artifacts.Interpreter
) -> None:
    # Given every Python source of the layer
    sources = sorted((layer / "python").rglob("*.py"))
    assert len(sources) > 500
    key = int.from_bytes(runtime_python.magic, "little")

    problems = []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{runtime_python.cache_tag}.pyc"
        if not pyc.is_file():
            problems.append(f"{source}: no {pyc.name}")
            continue
        header = pyc.read_bytes()[:16]
        data = source.read_bytes()
        # Then it has a .pyc for the runtime's tag and magic number, validated by the source's
        # hash (which the 1980 dates of the uploaded zip cannot break), and that hash is right
        if header[:4] != runtime_python.magic:
            problems.append(f"{pyc}: magic {header[:4].hex()}")
        elif int.from_bytes(header[4:8], "little") != CHECKED_HASH_FLAGS:
            problems.append(f"{pyc}: flags {int.from_bytes(header[4:8], 'little'):#b}, not checked-hash")
        elif header[8:16] != _imp.source_hash(key, data):
            problems.append(f"{pyc}: source hash does not match {source.name}")
    assert problems == []
    # And nothing else: no bytecode of another Python, no stray .pyc without a source
    tags = {path.name.split(".")[-2] for path in (layer / "python").rglob("*.pyc")}
    assert tags == {runtime_python.cache_tag}
    assert sum(1 for _ in (layer / "python").rglob("*.pyc")) == len(sources)


def test_the_bytecode_names_the_paths_lambda_mounts_it_at(layer: Path) -> None:
    # Given a compiled module of the layer
    pyc = next((layer / "python" / "urllib3" / "__pycache__").glob("poolmanager.*.pyc")).read_bytes()

    # Then its code objects name /opt/python, not the folder it was built in
    assert b"/opt/python/urllib3/poolmanager.py" in pyc
    assert str(artifacts.REPO_ROOT).encode() not in pyc


def test_the_runtime_python_loads_the_bytecode_even_with_the_zip_s_1980_dates(
    layer: Path, runtime_python: artifacts.Interpreter, tmp_path: Path
) -> None:
    # Given pure-Python packages of the layer copied with every file dated 1980, as Lambda gets them
    site = tmp_path / "python"
    for package in ("urllib3", "phonenumbers"):
        shutil.copytree(layer / "python" / package, site / package)
    for path in site.rglob("*"):
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH))

    # When the runtime's Python imports them without writing bytecode, telling where code came from
    completed = subprocess.run(
        [
            str(runtime_python.path),
            *["-I", "-B", "-v", "-c"],
            f"import sys; sys.path.insert(0, {str(site)!r}); import urllib3, phonenumbers",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    # Then every module of theirs came from its .pyc, none was compiled from source
    loaded = [
        line for line in completed.stderr.splitlines() if line.startswith(f"# code object from '{site}")
    ]
    assert len(loaded) > 50
    assert [line for line in loaded if not line.endswith(".pyc'")] == []


def _interpreter_in(folder: Path) -> Path:
    """A virtualenv's Python inside `folder` that sees this one's packages: another checkout's .venv."""
    venv.create(folder / ".venv", with_pip=False, symlinks=True)
    python = folder / ".venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "this-checkout.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@pytest.mark.slow
def test_two_checkouts_at_paths_of_different_lengths_build_byte_identical_layers(tmp_path: Path) -> None:
    # Given two checkouts whose paths differ in length, each building with a Python of its own
    # .venv, as `make build` does (pip writes that Python's path into console scripts)
    builds = []
    for folder in (tmp_path / "a", tmp_path / ("a-much-longer-checkout-folder-name" * 3)):
        python = _interpreter_in(folder)
        out = folder / "build" / "layer"

        # When each builds the layer
        subprocess.run(
            [str(python), "-m", "infra.artifacts", "layer", "--python-version", VERSION, "--out", str(out)],
            cwd=artifacts.REPO_ROOT,
            capture_output=True,
            check=True,
        )
        builds.append(_files(out))
    first, second = builds

    # Then they hold the same files with the same bytes (so every machine publishes the same layer)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_the_records_list_only_what_the_layer_holds(layer: Path) -> None:
    # Given every RECORD of the layer's distributions
    records = sorted((layer / "python").glob("*.dist-info/RECORD"))
    assert records

    # Then each line names a file of the layer (no console script outside it, no pruned data)
    site = (layer / "python").resolve()
    stray = [
        f"{record.parent.name}: {row[0]}"
        for record in records
        for row in csv.reader(record.read_text().splitlines())
        if row and not ((site / row[0]).resolve().is_relative_to(site) and (site / row[0]).is_file())
    ]
    assert stray == []
