"""The locks of locks/: each matches the requirements it was made from, and installs only what it hashes.

`make lint` (so `make test`) runs `python -m tools.lock --check` first; these tests say what
it catches, on copies of the repository's files.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import lock

REPO = lock.REPO_ROOT


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for path in [*REPO.glob("requirements*.txt"), REPO / "cdk.json"]:
        shutil.copyfile(path, root / path.name)
    shutil.copytree(REPO / "locks", root / "locks")
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_every_lock_matches_the_requirements_it_was_made_from() -> None:
    # Given the repository's locks: the layer's for the runtime, the local run's, the tools', checkov's
    locks = lock.all_locks(REPO)
    assert {item.path for item in locks} >= {
        "locks/layer-python3.13.txt",
        "locks/local.txt",
        "locks/dev.txt",
        "locks/checkov.txt",
    }

    # Then each is today's, pins every package with hashes, and the local one keeps the dev versions
    assert lock.check(REPO) == []


def test_a_requirement_changed_without_make_lock_fails(tmp_path: Path) -> None:
    # Given a copy of the repository where requirements.txt moves a pin, and no `make lock` ran
    root = _copy(tmp_path)
    pin = re.search(r"^urllib3==(\S+)$", (root / "requirements.txt").read_text(), re.MULTILINE)
    assert pin is not None
    _edit(root / "requirements.txt", pin.group(0), "urllib3==1.0.0")

    # When the locks are checked
    problems = lock.check(root)

    # Then every lock made from it (the layer's, the local run's, the dev tools') is stale, and says so
    text = "\n".join(problems)
    for stale in ("locks/layer-python3.13.txt", "locks/local.txt", "locks/dev.txt"):
        assert f"{stale} was not made from today's" in text
        assert f"{stale} has urllib3=={pin.group(1)}, requirements.txt pins 1.0.0" in text
    assert "locks/checkov.txt" not in text
    assert all("run `make lock`" in problem for problem in problems)


def test_a_comment_edit_is_stale_too_and_the_cli_fails(tmp_path: Path) -> None:
    # Given a copy whose checkov requirements only gain a comment
    root = _copy(tmp_path)
    with (root / "requirements-checkov.txt").open("a") as file:
        file.write("# a note\n")

    # Then the digest in the lock's header no longer matches: only `make lock` makes it so again
    (problem,) = lock.check(root)
    assert problem.startswith("locks/checkov.txt was not made from today's requirements-checkov.txt")


def test_a_lock_edited_by_hand_fails(tmp_path: Path) -> None:
    # Given a copy whose layer lock was edited: another version, and a package without a hash
    root = _copy(tmp_path)
    layer = root / "locks" / "layer-python3.13.txt"
    pin = re.search(r"^pydantic==(\S+) \\$", layer.read_text(), re.MULTILINE)
    assert pin is not None
    _edit(layer, pin.group(0), "pydantic==2.0.0 \\")
    with layer.open("a") as file:
        file.write("left-pad==1.0.0\n")

    # Then both are found
    problems = lock.check(root, [lock.layer_lock("3.13")])
    assert (
        f"locks/layer-python3.13.txt has pydantic==2.0.0, requirements.txt pins {pin.group(1)}"
        in "\n".join(problems)
    )
    assert "locks/layer-python3.13.txt: no --hash for left-pad" in problems


def test_the_local_lock_keeps_the_dev_lock_s_versions(tmp_path: Path) -> None:
    # Given a copy whose local lock has another version of a package than the dev lock
    root = _copy(tmp_path)
    local = root / "locks" / "local.txt"
    pin = re.search(r"^werkzeug==(\S+) \\$", local.read_text(), re.MULTILINE)
    assert pin is not None
    _edit(local, pin.group(0), "werkzeug==0.1 \\")

    # Then the check says so (make run after make test would otherwise run other versions)
    problems = lock.check(root, [item for item in lock.tool_locks() if item.name == "local"])
    assert f"locks/local.txt has werkzeug==0.1, locks/dev.txt {pin.group(1)}" in problems


def test_every_install_requires_the_locks_hashes() -> None:
    # Given the Makefile and the layer's recipe
    makefile = (REPO / "Makefile").read_text()
    artifacts = (REPO / "infra" / "artifacts.py").read_text()

    # Then every pip install of the Makefile is from a lock, with hashes required
    installs = [
        line.strip() for line in makefile.splitlines() if "pip install" in line or "$(PIP_INSTALL)" in line
    ]
    [definition] = [line for line in installs if line.startswith("PIP_INSTALL :=")]
    assert "--require-hashes" in definition.split()
    for line in installs:
        if not line.startswith("PIP_INSTALL"):
            assert "$(PIP_INSTALL)" in line, line
            assert re.search(r"-r locks/\w+\.txt", line), line
    # And so is the layer's
    assert '"--require-hashes",' in artifacts


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, written by hand (no build backend, no network)."""
    tag = "py3-none-any"
    path = folder / f"{name}-{version}-{tag}.whl"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = []
    for file_name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{file_name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for file_name, data in files.items():
            archive.writestr(file_name, data)
    return path


def _install(requirements: Path, wheels: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            *["-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir"],
            *["--require-hashes", "--no-index", "--find-links", str(wheels)],
            *["--target", str(target), "-r", str(requirements)],
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("tampered", [False, True])
def test_an_artifact_whose_hash_is_not_the_lock_s_is_refused(tmp_path: Path, tampered: bool) -> None:
    # Given a local wheel, and a lock line for it with its hash, or with another artifact's
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = _wheel(wheels, "lockprobe", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if tampered:
        digest = hashlib.sha256(b"another artifact").hexdigest()
    requirements = tmp_path / "lock.txt"
    requirements.write_text(f"lockprobe==1.0 \\\n    --hash=sha256:{digest}\n")

    # When pip installs the lock with hashes required, as `make` and the layer build do
    completed = _install(requirements, wheels, tmp_path / "target")

    # Then the right hash installs, and a wrong one fails the install and names the package
    if not tampered:
        assert completed.returncode == 0, completed.stderr
        assert (tmp_path / "target" / "lockprobe.py").is_file()
    else:
        assert completed.returncode != 0
        assert "THESE PACKAGES DO NOT MATCH THE HASHES" in completed.stderr
        assert "lockprobe" in completed.stderr
        assert not (tmp_path / "target" / "lockprobe.py").exists()


def test_a_requirement_without_a_hash_is_refused(tmp_path: Path) -> None:
    # Given a lock line with no hash at all
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "lockprobe", "1.0")
    requirements = tmp_path / "lock.txt"
    requirements.write_text("lockprobe==1.0\n")

    # Then --require-hashes refuses it
    completed = _install(requirements, wheels, tmp_path / "target")
    assert completed.returncode != 0
    assert "Hashes are required in --require-hashes mode" in completed.stderr
