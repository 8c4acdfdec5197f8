"""Fresh clone: what a newcomer waits for, from `git clone` to the first answer of `make run`, and
to the end of `make test`.

The repository's committed HEAD is cloned into a temporary folder (so nothing of this
checkout's virtualenvs, layer or stamps is reused), then, timed from before the clone:

- `make run` (port 0, one API key): the clock stops at the first answer of a
  `POST /messages` with the sample body to the API it prints (it must be 200). Every
  install it makes (the local lock, hashes required) is in that time; pip's cache and
  package index are this machine's, as a newcomer's second clone would find them.
- with `--fresh-clone-test`, `make test` in another fresh clone: the whole of it
  (virtualenvs from the locks, lint, the layer, checkov's virtualenv, the Node tools, every
  tier of pytest), which must pass. About ten minutes; `make run`'s figure alone takes
  about half a minute.

Run only on request (`--only fresh-clone`): it installs everything from scratch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.environment import REPO, sample_body
from bench.report import BenchmarkBroken, BenchmarkResult

NAME = "fresh-clone"
# The targets: the first make run answers within 30 s of the clone, make test ends within 10 min.
TARGET_FIRST_ANSWER_SECONDS = 30.0
TARGET_MAKE_TEST_SECONDS = 600.0
RUN_TIMEOUT_SECONDS = 300
TEST_TIMEOUT_SECONDS = 1800
API_KEY = "bench-fresh-clone-key"
API_LINE = re.compile(r"^\s*API\s+(http://127\.0\.0\.1:\d+)")


def run_fresh_clone(*, with_make_test: bool) -> BenchmarkResult:
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    left_out = ", uncommitted changes not included" if dirty else ""
    also = ", and make test in another fresh clone" if with_make_test else ""
    print(
        f"fresh-clone: git clone of HEAD ({commit[:12]}{left_out}), then make run to its first answer"
        f"{also}; pip's cache and index are this machine's",
        flush=True,
    )
    result = BenchmarkResult(NAME)
    with tempfile.TemporaryDirectory(prefix="viber-gateway-fresh-") as folder:
        run = _first_answer(Path(folder) / "run")
        result.add(
            "clone to first answer of make run", run["first_answer_seconds"], "s", TARGET_FIRST_ANSWER_SECONDS
        )
        result.add("of which git clone", run["clone_seconds"], "s")
        result.add("make run printed its API", run["printed_seconds"], "s")
        print(
            f"  make run: cloned in {run['clone_seconds']:.1f} s, printed its API at "
            f"{run['printed_seconds']:.1f} s, "
            f"first answer ({run['status']}) at {run['first_answer_seconds']:.1f} s "
            f"(target <= {TARGET_FIRST_ANSWER_SECONDS:g} s)",
            flush=True,
        )
        result.details.update(commit=commit, uncommitted_changes_left_out=dirty, make_run=run)
        if with_make_test:
            test = _make_test(Path(folder) / "test")
            result.add("clone to the end of make test", test["seconds"], "s", TARGET_MAKE_TEST_SECONDS)
            print(
                f"  make test: {test['seconds']:.0f} s from the clone "
                f"(target <= {TARGET_MAKE_TEST_SECONDS:g} s); "
                f"{test['summary']}",
                flush=True,
            )
            result.details.update(make_test=test)
    return result


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _clone(target: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], check=True)


def _clean_environment() -> dict[str, str]:
    """The newcomer's environment: none of this process's AWS settings or virtualenv."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_", "VIRTUAL_ENV", "PYTHONPATH"))
    }


def _first_answer(clone: Path) -> dict[str, Any]:
    started = time.perf_counter()
    _clone(clone)
    cloned = time.perf_counter() - started
    process = subprocess.Popen(
        ["make", "run", f"RUN_ARGS=--port 0 --api-key {API_KEY}"],
        cwd=clone,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stopped whole at the end
    )
    output: list[str] = []
    found: dict[str, Any] = {}
    printed = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = API_LINE.match(line)
            if match and not printed.is_set():
                found["url"] = match.group(1)
                found["printed"] = time.perf_counter() - started
                printed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not printed.wait(RUN_TIMEOUT_SECONDS):
            raise BenchmarkBroken(
                f"make run printed no API within {RUN_TIMEOUT_SECONDS} s (exit {process.poll()}):\n"
                + "".join(output[-40:])
            )
        status, answered = _post_until_answered(found["url"], started)
        if status != 200:
            raise BenchmarkBroken(f"make run's first answer was {status}, not 200:\n" + "".join(output[-40:]))
    finally:
        _stop(process)
    return {
        "clone_seconds": cloned,
        "printed_seconds": found["printed"],
        "first_answer_seconds": answered,
        "status": status,
    }


def _post_until_answered(url: str, started: float) -> tuple[int, float]:
    import urllib3

    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=30))
    body = json.dumps(sample_body()).encode()
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        try:
            answer = http.request(
                "POST",
                url + "/messages",
                body=body,
                headers={"Content-Type": "application/json", "x-api-key": API_KEY},
            )
        except urllib3.exceptions.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        return answer.status, time.perf_counter() - started


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _make_test(clone: Path) -> dict[str, Any]:
    started = time.perf_counter()
    _clone(clone)
    log = clone.parent / "make-test.log"
    with log.open("w") as out:
        code = subprocess.run(
            ["make", "test"],
            cwd=clone,
            env=_clean_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=TEST_TIMEOUT_SECONDS,
        ).returncode
    seconds = time.perf_counter() - started
    lines = log.read_text(errors="replace").splitlines()
    summary = next(
        (line.strip("= ") for line in reversed(lines) if " passed" in line or " failed" in line), ""
    )
    if code != 0:
        kept = REPO / "bench" / "results" / "fresh-clone-make-test.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, kept)
        raise BenchmarkBroken(
            f"make test in a fresh clone failed (exit {code}; log kept in {kept}): {summary}"
        )
    return {"seconds": seconds, "exit": code, "summary": summary}
