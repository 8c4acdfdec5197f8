"""A piece of work done every few seconds on a thread of its own, until stopped: the local stand-in
for what AWS runs on a schedule (EventBridge's schedules, EventBridge Scheduler)."""

from __future__ import annotations

import threading


class Periodic:
    """Calls `run_once` every `period` seconds from a daemon thread; `stop` waits for the run in hand."""

    def __init__(self, period: float, name: str) -> None:
        self._period = period
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run_once(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.wait(self._period):
            self.run_once()
