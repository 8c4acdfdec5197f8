"""What Lambda runs, built as it ships: the dependency layer and the function code, with bytecode.

    python -m infra.artifacts layer --python-version 3.13 --out build/layer     # make build
    python -m infra.artifacts interpreter --python-version 3.13                  # which python compiles

Lambda mounts both read-only (`/opt`, `/var/task`), so a module without a valid
`.pyc` is compiled from source on every cold start (2.4 times slower imports,
measured). The CDK CLI zips every file with a 1980 date, so timestamp-based
`.pyc` never validate there: everything is compiled with
`--invalidation-mode checked-hash`, which validates against a hash of the
source, with paths rewritten to where Lambda mounts the files (`-s`/`-p`) and
a fixed hash seed, so that two builds in different folders or on different
machines are byte-identical (otherwise every machine would publish a new layer
version). The compiling interpreter must be the runtime's minor version: a
`cpython-313` file is ignored by 3.14.

Standard library only: the Makefile, the CDK app (infra/components/function.py)
and the benchmarks (bench/cold_start.py) all use it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.sbom import write_sbom

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "requirements.txt"
# The layer installs from the lock of requirements.txt for its runtime (tools/lock.py, `make lock`).
LOCKS_DIR = REPO_ROOT / "locks"
FUNCTIONS_DIR = REPO_ROOT / "functions"
BUILD_DIR = REPO_ROOT / "build"
LAYER_DIR = BUILD_DIR / "layer"
FUNCTION_CODE_DIR = BUILD_DIR / "function-code"

# The functions run on Graviton (arm64); pip's cross-platform install fetches those wheels.
LAMBDA_PLATFORM = "manylinux2014_aarch64"
# Where Lambda puts the layer's python/ folder and the function code.
LAYER_MOUNT = "/opt/python"
TASK_ROOT = "/var/task"
# Written into every built layer (and so shipped to /opt): what it was built from and for.
STAMP_NAME = "viber-gateway-build.json"
# Bump when the recipe changes in a way the build key does not see.
# 2: the RECORD files list only what the layer holds (no console script, no pruned data).
# 3: installed from the hash-pinned lock; type stubs and C sources left out; an SBOM beside it.
RECIPE_VERSION = 3

# Lambda's Python runtime provides boto3, botocore and s3transfer (requirements.txt pins
# them for tests and `make run`). Of phonenumbers the gateway uses parsing, validation,
# formatting and the time zones of numbers (send windows); the geocoder and carrier data
# (over 40 MB) go (tests/infra checks). Glob patterns, relative to the layer's python/.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
PRUNE = (
    "bin",
    *(pattern for package in RUNTIME_PROVIDED for pattern in (package, f"{package}-*.dist-info")),
    "phonenumbers/geodata",
    "phonenumbers/carrierdata",
    "phonenumbers/geocoder.py*",
    "phonenumbers/carrier.py*",
    # For type checkers and compilers only: nothing imports them at run time.
    "**/*.pyi",
    "**/py.typed",
    "wrapt-stubs",
    "wrapt/*.c",
)
# Never shipped as function code: bytecode the host wrote (for its own Python) and tool caches.
FUNCTION_CODE_EXCLUDED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
FUNCTION_CODE_EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo"})

_VERSION_PATTERN = re.compile(r"^3\.(\d+)$")


class BuildError(RuntimeError):
    """The artefact cannot be built (or is out of date) as asked; the message says what to do."""


@dataclass(frozen=True)
class Interpreter:
    """A Python of the runtime's minor version, and what its bytecode looks like."""

    path: Path
    version: str  # "3.13"
    cache_tag: str  # "cpython-313": the .pyc file name suffix
    magic: bytes  # importlib.util.MAGIC_NUMBER: the first 4 bytes of its .pyc files


def _check_version(version: str) -> str:
    if not _VERSION_PATTERN.match(version):
        raise BuildError(f"expected a Python minor version such as 3.13, got {version!r}")
    return version


def _probe(path: Path | str) -> Interpreter | None:
    """What `path` is, if it runs (a pyenv shim for a version not selected does not)."""
    script = (
        "import importlib.util, sys; "
        "print('%d.%d' % sys.version_info[:2], sys.implementation.cache_tag, "
        "importlib.util.MAGIC_NUMBER.hex(), sys.executable)"
    )
    try:
        completed = subprocess.run(
            [str(path), "-I", "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    if completed.returncode != 0:
        return None
    version, cache_tag, magic, executable = completed.stdout.split(maxsplit=3)
    return Interpreter(Path(executable.strip()), version, cache_tag, bytes.fromhex(magic))


def _pyenv_candidates(version: str) -> list[Path]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = []
    for path in (root / "versions").glob(f"{version}.*/bin/python{version}"):
        patch = path.parent.parent.name.removeprefix(f"{version}.")
        if patch.isdigit():  # 3.13.0, not 3.13.0t or 3.13-dev
            found.append((int(patch), path))
    return [path for _, path in sorted(found, reverse=True)]


def find_interpreter(version: str) -> Interpreter:
    """A Python `version` to compile bytecode with: $LAMBDA_BUILD_PYTHON, python3.X, or pyenv's.

    On PATH, `python3.13` may be a pyenv shim that only runs where that version is
    selected, so each candidate is run once to see what it is.
    """
    _check_version(version)
    candidates: list[Path | str] = []
    explicit = os.environ.get("LAMBDA_BUILD_PYTHON")
    if explicit:
        candidates.append(explicit)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    candidates += _pyenv_candidates(version)
    for candidate in candidates:
        interpreter = _probe(candidate)
        if interpreter is not None and interpreter.version == version:
            return interpreter
        if candidate == explicit:
            raise BuildError(f"LAMBDA_BUILD_PYTHON={explicit} is not a working Python {version}")
    raise BuildError(
        f"no Python {version} found to compile the bytecode for the python{version} Lambda runtime "
        f"(tried LAMBDA_BUILD_PYTHON, python{version} on PATH and pyenv's versions/{version}.*). "
        f"Install it (pyenv install {version}) or set LAMBDA_BUILD_PYTHON to one; or build for another "
        "runtime: make build LAMBDA_PYTHON_VERSION=3.12 (README: Deploying to AWS). Without it the "
        "layer would ship without bytecode and every cold start would compile it."
    )


def compile_tree(root: Path, mount: str, interpreter: Interpreter) -> None:
    """Compile every .py under `root` to checked-hash .pyc, as if `root` were at `mount`.

    The paths inside the bytecode (tracebacks, __file__ of frames) are the ones
    Lambda sees, and do not depend on where the build ran; the fixed hash seed
    keeps set and frozenset constants in one order.
    """
    command = [
        str(interpreter.path),
        "-I",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "checked-hash",
        "-s",
        str(root),
        "-p",
        mount,
        str(root),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if completed.returncode != 0:
        raise BuildError(
            f"compileall failed under {root}:\n{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
        )


def _sha256(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def layer_lock(version: str) -> Path:
    """The hash-pinned lock of requirements.txt for the python`version` runtime on arm64."""
    return LOCKS_DIR / f"layer-python{version}.txt"


def sbom_path(layer_dir: Path) -> Path:
    """Where the layer's CycloneDX SBOM is written: beside the layer (build/layer.cdx.json), not in it."""
    return layer_dir.with_name(layer_dir.name + ".cdx.json")


def _read_lock(lock: Path, version: str) -> bytes:
    if not lock.is_file():
        raise BuildError(
            f"no lock for the python{version} runtime ({lock.name} in locks/): run "
            f"`make lock LAMBDA_PYTHON_VERSION={version}` (README: Dependencies)"
        )
    return lock.read_bytes()


def layer_key(version: str, platform: str | None, lock: Path | None = None) -> str:
    """What a layer build depends on: the recipe, the lock, the runtime and the wheel platform."""
    lock = lock or layer_lock(version)
    return _sha256(
        [
            str(RECIPE_VERSION).encode(),
            _read_lock(lock, version),
            version.encode(),
            (platform or "host").encode(),
            "\n".join(PRUNE).encode(),
        ]
    )


def read_stamp(layer_dir: Path) -> dict[str, str] | None:
    stamp = layer_dir / STAMP_NAME
    if not stamp.is_file():
        return None
    document: dict[str, str] = json.loads(stamp.read_text())
    return document


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _pip_install(target: Path, arguments: Sequence[str]) -> None:
    """pip install into `target`; with --report, the report says which file of each package it got."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # compile_tree writes the bytecode, for the runtime's Python
        "--target",
        str(target),
        *arguments,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        errors = "\n".join(line for line in completed.stderr.splitlines() if "is ignored" not in line)
        raise BuildError(f"pip could not install into {target}:\n{errors[-4000:]}")


def prune_records(site: Path) -> None:
    """Leave in each installed distribution's RECORD only the files that are in `site`.

    pip writes a console script (jmespath's `jp.py`) with the installing interpreter's path
    in its first line and records that file's hash; the script itself is pruned (bin/), but
    its RECORD line would keep that path's trace, so two checkouts would build different
    layers. The lines of pruned files (phonenumbers' geocoder data) go too: a RECORD lists
    what was installed, and what the layer ships is that.
    """
    root = site.resolve()
    for record in sorted(site.glob("*.dist-info/RECORD")):
        kept = []
        for line in record.read_bytes().splitlines(keepends=True):  # bytes: line endings kept as written
            row = next(csv.reader([line.decode("utf-8")]), [])
            path = (root / row[0]).resolve() if row and row[0] else None
            if path is not None and path.is_relative_to(root) and path.is_file():
                kept.append(line)
        record.write_bytes(b"".join(kept))


def layer_size(layer_dir: Path) -> tuple[int, int, int]:
    """The layer's files, their bytes unpacked, and the bytes of the zip the CDK CLI would upload."""
    files = sorted(path for path in layer_dir.rglob("*") if path.is_file())
    unpacked = sum(path.stat().st_size for path in files)
    with tempfile.TemporaryFile() as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(layer_dir).as_posix())
        archive.close()
        zipped = raw.tell()
    return len(files), unpacked, zipped


def describe_size(layer_dir: Path) -> str:
    files, unpacked, zipped = layer_size(layer_dir)
    return f"{files:,} files, {unpacked / 1e6:.1f} MB unpacked, {zipped / 1e6:.1f} MB zipped"


def build_layer(
    out: Path,
    *,
    version: str,
    platform: str | None = LAMBDA_PLATFORM,
    lock: Path | None = None,
) -> Path:
    """Build the dependency layer into `out` (python/ inside), unless it is already built so.

    `platform` is a pip wheel platform (arm64 for Lambda) or None for this machine's
    own: the benchmarks measure cold starts from a twin of the layer made with the
    same recipe for the host, since arm64 compiled packages cannot be imported here.
    """
    _check_version(version)
    lock = lock or layer_lock(version)
    if not lock.is_file():
        find_interpreter(version)  # no Python for the runtime says so first: it is the first thing to fix
    key = layer_key(version, platform, lock)
    stamp = read_stamp(out)
    sbom = sbom_path(out)
    if stamp is not None and stamp.get("key") == key and (out / "python").is_dir() and sbom.is_file():
        return out
    interpreter = find_interpreter(version)  # before any download: no interpreter, no slow layer
    partial = out.with_name(out.name + ".partial")
    _remove(partial)
    site = partial / "python"
    platform_arguments = ["--platform", platform] if platform else []
    report = out.with_name(out.name + ".pip-report.json")
    report.parent.mkdir(parents=True, exist_ok=True)
    # Every file is checked against the lock's hashes: one that changed fails the build.
    _pip_install(
        site,
        [
            "--require-hashes",
            "--no-deps",
            "--only-binary=:all:",
            *platform_arguments,
            "--implementation",
            "cp",
            "--python-version",
            version,
            "--report",
            str(report),
            "-r",
            str(lock),
        ],
    )
    for pattern in PRUNE:
        for path in site.glob(pattern):
            _remove(path)
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        _remove(cache)
    prune_records(site)
    compile_tree(site, LAYER_MOUNT, interpreter)
    document = {
        "key": key,
        "python_version": version,
        "platform": platform or "host",
        "cache_tag": interpreter.cache_tag,
        "magic": interpreter.magic.hex(),
    }
    (partial / STAMP_NAME).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sbom_partial = sbom.with_name(sbom.name + ".partial")
    write_sbom(site, sbom_partial, report=report, lock=lock, python_version=version, platform=platform)
    report.unlink()
    _remove(out)
    partial.rename(out)
    sbom_partial.replace(sbom)
    return out


def check_layer(layer_dir: Path, *, version: str, platform: str | None = LAMBDA_PLATFORM) -> None:
    """Refuse a layer that is missing, or built for another runtime or older requirements."""
    shown = layer_dir.relative_to(REPO_ROOT) if layer_dir.is_relative_to(REPO_ROOT) else layer_dir
    if not (layer_dir / "python").is_dir():
        raise BuildError(
            f"{shown}/python does not exist: run `make build` first "
            "(tests synthesize with -c placeholderLayer=true instead)"
        )
    stamp = read_stamp(layer_dir)
    if stamp is None:
        raise BuildError(f"{shown} has no {STAMP_NAME}: it was not built by `make build`; run it again")
    if stamp.get("python_version") != version:
        raise BuildError(
            f"{shown} was built for Python {stamp.get('python_version')}, but the runtime is python{version} "
            f"(context lambdaPythonVersion): run `make build LAMBDA_PYTHON_VERSION={version}`"
        )
    if stamp.get("key") != layer_key(version, platform):
        raise BuildError(
            f"{shown} is out of date (its lock of requirements.txt or the recipe changed): run `make build`"
        )


def runtime_sdk_pin(requirements: Path = REQUIREMENTS) -> str:
    """The boto3 requirement (`boto3==X`) of requirements.txt: what Lambda's runtime stands in for."""
    for line in requirements.read_text().splitlines():
        if re.match(r"^boto3\s*==", line.strip()):
            return line.strip()
    raise BuildError(f"no pinned boto3 in {requirements}")


def build_runtime_sdk(out: Path, *, version: str, requirements: Path = REQUIREMENTS) -> Path:
    """boto3, botocore and s3transfer for this machine, with bytecode: the SDK Lambda's runtime provides.

    For the benchmarks, which run the handlers from the layer's host twin with the SDK on
    a path of its own, as Lambda does (the layer leaves the SDK out).
    """
    _check_version(version)
    pin = runtime_sdk_pin(requirements)
    key = _sha256([str(RECIPE_VERSION).encode(), b"runtime-sdk", pin.encode(), version.encode()])
    stamp = read_stamp(out)
    if stamp is not None and stamp.get("key") == key:
        return out
    interpreter = find_interpreter(version)
    partial = out.with_name(out.name + ".partial")
    _remove(partial)
    _pip_install(
        partial / "python",
        ["--only-binary=:all:", "--implementation", "cp", "--python-version", version, pin],
    )
    _remove(partial / "python" / "bin")
    prune_records(partial / "python")
    compile_tree(partial / "python", "/var/runtime", interpreter)
    document = {"key": key, "python_version": version, "requirement": pin}
    (partial / STAMP_NAME).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    _remove(out)
    partial.rename(out)
    return out


def function_code_files(source: Path = FUNCTIONS_DIR) -> list[Path]:
    """The files of the function code asset, relative to `source`, sorted."""
    files = []
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if not path.is_file() or FUNCTION_CODE_EXCLUDED_DIRS & set(relative.parts):
            continue
        if path.suffix in FUNCTION_CODE_EXCLUDED_SUFFIXES:
            continue
        files.append(relative)
    return sorted(files)


def stage_function_code(
    version: str, *, source: Path = FUNCTIONS_DIR, into: Path = FUNCTION_CODE_DIR
) -> Path:
    """The function code as shipped: the sources of functions/ and their checked-hash bytecode.

    Content-addressed (the folder is named after the sources and the runtime), so a
    synthesis reuses what an earlier one built and never sees a half-built folder.
    """
    _check_version(version)
    files = function_code_files(source)
    key = _sha256(
        [str(RECIPE_VERSION).encode(), version.encode()]
        + [
            part
            for relative in files
            for part in (relative.as_posix().encode(), (source / relative).read_bytes())
        ]
    )
    # No dot in the name: CDK would take what follows one for a file extension.
    prefix = f"py{version.replace('.', '')}-"
    out = into / f"{prefix}{key[:20]}"
    if out.is_dir():
        return out
    interpreter = find_interpreter(version)
    partial = into / f".{out.name}.partial-{os.getpid()}"
    _remove(partial)
    for relative in files:
        (partial / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, partial / relative)
    compile_tree(partial, TASK_ROOT, interpreter)
    try:
        partial.rename(out)
    except OSError:  # another synthesis made the same folder meanwhile: same content
        _remove(partial)
    for stale in into.glob(f"{prefix}*"):
        if stale != out:
            shutil.rmtree(stale, ignore_errors=True)
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.artifacts", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="build the dependency layer (python/ inside OUT)")
    layer.add_argument("--python-version", required=True)
    layer.add_argument("--out", type=Path, default=LAYER_DIR)
    layer.add_argument(
        "--platform",
        default=LAMBDA_PLATFORM,
        help=f"pip wheel platform (default {LAMBDA_PLATFORM}); 'host' for this machine's",
    )
    interpreter = commands.add_parser("interpreter", help="print the Python that compiles the bytecode")
    interpreter.add_argument("--python-version", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "interpreter":
            print(find_interpreter(args.python_version).path)
            return 0
        platform = None if args.platform == "host" else args.platform
        out = build_layer(args.out.resolve(), version=args.python_version, platform=platform)
    except BuildError as error:
        print(f"viber-gateway build: {error}", file=sys.stderr)
        return 1
    pyc = sum(1 for _ in (out / "python").rglob("*.pyc"))
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    print(f"{shown}: python{args.python_version}, {args.platform}, {pyc} checked-hash .pyc")
    print(f"{shown}: {describe_size(out)}; SBOM {sbom_path(shown)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
