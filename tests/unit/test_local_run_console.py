"""make run's banner reaches the console even while a function runs on another thread.

The functions' output is swapped in with contextlib.redirect_stdout (local.functions), which
replaces sys.stdout for every thread while a function runs; the banner, printed once the service
answers, must not follow it there (it once did, and the banner was lost now and then).
"""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any

import pytest

import local.run as run


def test_the_banner_reaches_the_console_while_a_function_holds_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handlers: dict[int, Any] = {}
    function_running, banner_printed = threading.Event(), threading.Event()

    def a_function_running_on_another_thread() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            function_running.set()
            banner_printed.wait(10)

    def start(*_: Any, **__: Any) -> object:
        # Given a service whose first request is being served when the banner is printed
        threading.Thread(target=a_function_running_on_another_thread, daemon=True).start()
        assert function_running.wait(10)
        return object()

    def stop() -> None:
        # Once the banner is out, the function ends, and Ctrl-C: main stops
        banner_printed.set()
        handlers[run.signal.SIGINT](run.signal.SIGINT, None)

    def banner(*_: Any, **__: Any) -> str:
        threading.Timer(0.2, stop).start()
        return "BANNER OF THE SERVICE"

    monkeypatch.setattr(run, "_start", start)
    monkeypatch.setattr(run, "banner", banner)
    monkeypatch.setattr(run, "port_problem", lambda *_: None)
    monkeypatch.setattr(run.signal, "signal", lambda signum, handler: handlers.__setitem__(signum, handler))

    # When make run starts
    assert run.main([]) == 0

    # Then the banner is on the console, not in the function's output
    assert "BANNER OF THE SERVICE" in capsys.readouterr().out
