"""The lock files: every environment the repository installs, pinned with hashes (README: Dependencies).

    python -m tools.lock                      # make lock: resolve again, write locks/*.txt
    python -m tools.lock --check              # make lint: does each lock match its requirements?
    python -m tools.lock --layer-python 3.12  # the layer's lock for another runtime too

Each lock is made by uv (`uv pip compile --generate-hashes`), which resolves for a Python
and a platform other than the one it runs on: the layer's lock is for the Lambda runtime's
Python on manylinux aarch64, resolved here on x86_64 with Python 3.11. Every lock starts
with a header that names its inputs and the SHA-256 of them (the requirement files it was
made from, followed through `-r`, and the resolver's options); `--check` recomputes that
digest and also checks that every `name==version` pin of those files is in the lock at that
version, so a requirement edited without `make lock` fails `make test`.

The environments: the layer (requirements.txt), the local run (requirements-local.txt,
which includes requirements.txt; constrained by the dev lock, so that `make run` after
`make test` finds the same versions), the dev tools (requirements-dev.txt) and checkov
(requirements-checkov.txt, a virtualenv of its own). The last three are universal locks
(every platform's markers and wheels) for the tools' Python, so a developer on macOS
installs from the same file.

Standard library only (and the `uv` binary for writing): `--check` runs before anything
is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCKS_DIR = "locks"
# The Python of the tools' virtualenvs (the Makefile's PYTHON) and of the Lambda runtime (cdk.json).
TOOLS_PYTHON = "3.11"
LAMBDA_PLATFORM = "aarch64-manylinux2014"  # uv's name for pip's manylinux2014_aarch64
DIGEST_PREFIX = "# inputs-sha256: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_INCLUDE = re.compile(r"^(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)")


class LockError(RuntimeError):
    """A lock cannot be made, or no longer matches its requirements; the message says which."""


@dataclass(frozen=True)
class Lock:
    """One lock file: what it is made from, and how."""

    name: str
    requirements: str  # the top requirement file, relative to the repository
    options: tuple[str, ...]  # the resolver's options that decide the result
    constraint: str | None = None  # another lock whose versions this one keeps

    @property
    def path(self) -> str:
        return f"{LOCKS_DIR}/{self.name}.txt"


def layer_lock_name(python_version: str) -> str:
    return f"layer-python{python_version}"


def layer_lock(python_version: str) -> Lock:
    return Lock(
        name=layer_lock_name(python_version),
        requirements="requirements.txt",
        options=(
            "--python-version",
            python_version,
            "--python-platform",
            LAMBDA_PLATFORM,
            "--only-binary",
            ":all:",
        ),
    )


def tool_locks() -> list[Lock]:
    universal = ("--universal", "--python-version", TOOLS_PYTHON)
    return [
        # dev before local: local keeps dev's versions.
        Lock("dev", "requirements-dev.txt", universal),
        Lock("local", "requirements-local.txt", universal, constraint=f"{LOCKS_DIR}/dev.txt"),
        Lock("checkov", "requirements-checkov.txt", universal),
    ]


def layer_python_versions(root: Path) -> list[str]:
    """The runtimes whose layer is locked: cdk.json's, and any other locked before."""
    context = json.loads((root / "cdk.json").read_text()).get("context", {})
    versions = {str(context["lambdaPythonVersion"])}
    for path in (root / LOCKS_DIR).glob("layer-python*.txt"):
        versions.add(path.stem.removeprefix("layer-python"))
    return sorted(versions)


def all_locks(root: Path) -> list[Lock]:
    return [*(layer_lock(version) for version in layer_python_versions(root)), *tool_locks()]


def requirement_files(root: Path, top: str) -> list[str]:
    """`top` and every file it includes with -r (recursively), relative to `root`, in order."""
    seen: list[str] = []

    def visit(relative: str) -> None:
        if relative in seen:
            return
        seen.append(relative)
        path = root / relative
        if not path.is_file():
            raise LockError(f"{relative} does not exist")
        for line in path.read_text().splitlines():
            match = _INCLUDE.match(line.strip())
            if match and line.strip().startswith(("-r", "--requirement")):
                visit((Path(relative).parent / match.group(1)).as_posix())

    visit(top)
    return seen


def inputs_digest(root: Path, lock: Lock) -> str:
    digest = hashlib.sha256()
    for relative in requirement_files(root, lock.requirements):
        data = (root / relative).read_bytes()
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update("\0".join(lock.options).encode())
    digest.update(f"\0constraint={lock.constraint}".encode())
    return digest.hexdigest()


def parse_pins(text: str) -> dict[str, str]:
    """`name==version` lines (extras dropped, names normalized) of a requirements or lock text.

    A universal lock may pin one package twice, for different Pythons (`; python_full_version
    < '3.12'`): the pins are joined with `|`.
    """
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            version = match.group(3)
            pins[name] = f"{pins[name]}|{version}" if name in pins else version
    return pins


def top_level_pins(root: Path, lock: Lock) -> dict[str, tuple[str, str]]:
    """Each pin of the lock's requirement files: name -> (version, the file that pins it)."""
    pins: dict[str, tuple[str, str]] = {}
    for relative in requirement_files(root, lock.requirements):
        for name, version in parse_pins((root / relative).read_text()).items():
            pins[name] = (version, relative)
    return pins


def check(root: Path = REPO_ROOT, locks: Sequence[Lock] | None = None) -> list[str]:
    """What is wrong with the locks, as sentences; empty when each matches its requirements."""
    problems: list[str] = []
    for lock in locks if locks is not None else all_locks(root):
        path = root / lock.path
        if not path.is_file():
            problems.append(f"{lock.path} is missing: run `make lock`")
            continue
        text = path.read_text()
        recorded = next(
            (
                line[len(DIGEST_PREFIX) :].strip()
                for line in text.splitlines()
                if line.startswith(DIGEST_PREFIX)
            ),
            None,
        )
        expected = inputs_digest(root, lock)
        if recorded != expected:
            problems.append(
                f"{lock.path} was not made from today's {lock.requirements} (inputs-sha256 "
                f"{recorded} in its header, {expected} now): run `make lock`"
            )
        locked = parse_pins(text)
        for name, (version, source) in top_level_pins(root, lock).items():
            if name not in locked:
                problems.append(f"{lock.path} has no {name} ({source} pins {version}): run `make lock`")
            elif version not in locked[name].split("|"):
                problems.append(
                    f"{lock.path} has {name}=={locked[name]}, {source} pins {version}: run `make lock`"
                )
        unhashed = [
            line.split("==")[0]
            for line in text.splitlines()
            if _PIN.match(line) and not line.rstrip().endswith("\\")
        ]
        if unhashed:
            problems.append(f"{lock.path}: no --hash for {', '.join(unhashed)}")
        if lock.constraint and (root / lock.constraint).is_file():
            outer = parse_pins((root / lock.constraint).read_text())
            for name, version in locked.items():
                if outer.get(name) != version:
                    problems.append(f"{lock.path} has {name}=={version}, {lock.constraint} {outer.get(name)}")
    return problems


def uv_binary() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        raise LockError(
            "uv is not installed: `make lock` installs it from the dev lock (requirements-dev.txt)"
        )
    return found


def write(root: Path, lock: Lock) -> None:
    """Resolve `lock` again with uv and write it, with its header."""
    uv = uv_binary()
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    arguments = [lock.requirements, *lock.options, "--generate-hashes", "--no-header"]
    if lock.constraint:
        arguments += ["--constraint", lock.constraint]
    command = [uv, "pip", "compile", "--quiet", "--no-config", *arguments]
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LockError(f"uv could not lock {lock.requirements}:\n{completed.stderr[-4000:]}")
    header = (
        f"# {lock.path}: made by `make lock` (python -m tools.lock) with uv {version}; do not edit.\n"
        f"#   uv pip compile {' '.join(arguments)}\n"
        f"# From: {', '.join(requirement_files(root, lock.requirements))}. `make test` fails when they\n"
        "# change and this file does not (tools/lock.py --check). Install: pip install --require-hashes -r.\n"
        f"{DIGEST_PREFIX}{inputs_digest(root, lock)}\n"
    )
    (root / lock.path).parent.mkdir(exist_ok=True)
    (root / lock.path).write_text(header + completed.stdout)


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only check that every lock matches its requirements"
    )
    parser.add_argument(
        "--layer-python", action="append", default=[], help="also lock the layer for this runtime Python"
    )
    args = parser.parse_args(argv)
    root = REPO_ROOT
    locks = all_locks(root)
    for version in args.layer_python:
        if layer_lock(version) not in locks:
            locks.insert(0, layer_lock(version))
    try:
        if not args.check:
            for lock in locks:
                write(root, lock)
                print(f"{lock.path}: {len(parse_pins((root / lock.path).read_text()))} packages")
        problems = check(root, locks)
    except LockError as error:
        print(f"viber-gateway lock: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"viber-gateway lock: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(_main())
