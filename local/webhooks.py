"""Status webhooks on one machine: the stage bus's events POSTed to URLs, as EventBridge API destinations do.

`make run RUN_ARGS="--webhook http://127.0.0.1:8080/hook --webhook-header 'X-Api-Key: secret'"`:
every event of the gateway the local bus accepts (the emulator's event tap hands them over) is
POSTed to each URL as EventBridge delivers it through an API destination with no input
transformer: the whole event (version, id, detail-type, source, account, time, region,
resources, detail) as JSON, with `Content-Type: application/json` and the headers given (the
connection's API key or basic auth, deployed). Each URL has a thread and a bounded queue of its
own, so a slow endpoint delays no other; 5xx, 429 and connection errors are retried a few times
with backoff (deployed, EventBridge retries for up to a day); one console line per delivery.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import urllib3

QUEUE_SIZE: Final = 1000  # events waiting per URL; more are dropped, with a line saying so
MAX_ATTEMPTS: Final = 4
FIRST_BACKOFF_SECONDS: Final = 0.5
MAX_BACKOFF_SECONDS: Final = 5.0
CONNECT_TIMEOUT_SECONDS: Final = 2.0
READ_TIMEOUT_SECONDS: Final = 5.0
# What EventBridge API destinations send.
USER_AGENT: Final = "Amazon/EventBridge/ApiDestinations"
# The tap's note of the bus an event was put on: not part of the event.
BUS_KEY: Final = "event-bus-name"
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Set by the sender itself: a header of the user's with one of these names would contradict it.
RESERVED_HEADERS: Final = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"}
)

# (status, or None for a connection error; what went wrong, for the console)
Outcome = tuple[int | None, str]
Post = Callable[[str, bytes, dict[str, str]], Outcome]


def webhook_url(text: str) -> str:
    """An http(s) URL with a host; ValueError otherwise (argparse shows it)."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a webhook must be an http(s) URL with a host, not {text!r}")
    return url


def webhook_header(text: str) -> tuple[str, str]:
    """`"Name: value"` as (name, value); ValueError when it is not a header a request may carry."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"a webhook header is 'Name: value', not {text!r}")
    if any(character in value for character in "\r\n\0"):
        raise ValueError(f"the webhook header {name} holds a line break")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"the webhook header {name} is set by the sender itself")
    return name, value


def request_headers(extra: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers of every delivery: JSON, EventBridge's user agent, then the user's (last one wins)."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    for name, value in extra:
        for known in [key for key in headers if key.lower() == name.lower()]:
            del headers[known]
        headers[name] = value
    return headers


def delivered_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the endpoint gets it: EventBridge's fields only (the tap's bus note removed)."""
    return {key: value for key, value in event.items() if key != BUS_KEY}


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(delivered_event(event), separators=(",", ":")).encode()


def is_retried(status: int | None) -> bool:
    """A connection error, a throttle (429) or a server error (5xx) is tried again; anything else is final."""
    return status is None or status == 429 or 500 <= status <= 599


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt `attempt` (1-based): 0.5, 1, 2, ... up to MAX_BACKOFF_SECONDS."""
    return float(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1)))


def is_forwarded(event: dict[str, Any], bus_name: str, source: str) -> bool:
    """An event of the gateway's, on the stage's bus: what the deployed webhook rule matches."""
    return event.get("source") == source and event.get(BUS_KEY) in (bus_name, None)


def describe(event: dict[str, Any]) -> str:
    """`Message Status Changed 20818588 delivered`: enough to tell deliveries apart on the console."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        detail = {}
    subject = (
        detail.get("smsid") or detail.get("schedule_id") or detail.get("idempotency_key") or event.get("id")
    )
    parts = [str(event.get("detail-type")), str(subject)]
    if detail.get("state"):
        parts.append(str(detail["state"]))
    return " ".join(parts)


def deliver(
    post: Post,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], bool] | None = None,
) -> tuple[Outcome, int]:
    """POST until a final answer or `attempts` tries; the last outcome and the tries it took.

    `sleep(seconds)` waits between tries and returns True to give up (the runner is stopping).
    """
    wait = _sleep if sleep is None else sleep
    outcome: Outcome = (None, "not tried")
    for attempt in range(1, attempts + 1):
        outcome = post(url, body, headers)
        if not is_retried(outcome[0]) or attempt == attempts or wait(backoff_seconds(attempt)):
            return outcome, attempt
    return outcome, attempts


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def outcome_line(url: str, event: dict[str, Any], outcome: Outcome, tries: int) -> str:
    """`webhook http://127.0.0.1:8080/hook 200 Message Accepted 20818588 accepted`, with tries when >1."""
    status, problem = outcome
    shown = str(status) if status is not None else "failed"
    line = f"webhook {url} {shown} {describe(event)}"
    if tries > 1:
        line += f" after {tries} tries"
    if problem and (status is None or not 200 <= status <= 299):
        line += f" ({problem})"
    return line


class HttpPost:
    """POSTs with urllib3, no retries of its own (deliver() does them) and short timeouts."""

    def __init__(self) -> None:
        self._http = urllib3.PoolManager(
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        )

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            response = self._http.request("POST", url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            return None, type(error).__name__
        reason = response.reason or ""
        return response.status, reason

    def clear(self) -> None:
        self._http.clear()


@dataclass(frozen=True, slots=True)
class Webhooks:
    """What --webhook and --webhook-header asked for."""

    urls: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = ()

    def shown(self) -> list[str]:
        """For the banner: the URLs, and the names (not the values: keys) of the headers."""
        names = ", ".join(name for name, _ in self.headers)
        with_headers = f"; with {names}" if names else ""
        return [f"{url}  (every event POSTed as JSON{with_headers})" for url in self.urls]


class _Endpoint:
    """One URL: a bounded queue and the thread that delivers from it, in order."""

    def __init__(self, url: str, headers: dict[str, str], post: Post, log: logging.Logger) -> None:
        self.url = url
        self._headers = headers
        self._post = post
        self._log = log
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stopping = threading.Event()
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"webhook-{url}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                self._log.info(
                    "webhook %s: %d events waiting, %d dropped", self.url, QUEUE_SIZE, self._dropped
                )

    def stop(self) -> None:
        self._stopping.set()
        left = 0
        while True:  # what still waits is not delivered: stopping must not wait for a slow endpoint
            try:
                left += self._events.get_nowait() is not None
            except queue.Empty:
                break
        self._events.put(None)
        self._thread.join()
        if left:
            self._log.info("webhook %s: %d events not delivered (stopping)", self.url, left)

    def _run(self) -> None:
        while (event := self._events.get()) is not None:
            if self._stopping.is_set():
                continue
            outcome, tries = deliver(
                self._post, self.url, body_of(event), self._headers, sleep=self._stopping.wait
            )
            self._log.info("%s", outcome_line(self.url, event, outcome, tries))


class WebhookForwarder:
    """The emulator's listener: hands the gateway's events on the stage's bus to each URL's endpoint."""

    def __init__(
        self,
        webhooks: Webhooks,
        log: logging.Logger,
        *,
        bus_name: str,
        source: str,
        post: Post | None = None,
    ) -> None:
        self._bus_name = bus_name
        self._source = source
        self._http: HttpPost | None = None
        if post is None:
            post = self._http = HttpPost()
        headers = request_headers(webhooks.headers)
        self._endpoints = [_Endpoint(url, headers, post, log) for url in webhooks.urls]

    def take(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            if is_forwarded(event, self._bus_name, self._source):
                for endpoint in self._endpoints:
                    endpoint.put(event)

    def start(self) -> None:
        for endpoint in self._endpoints:
            endpoint.start()

    def stop(self) -> None:
        for endpoint in self._endpoints:
            endpoint.stop()
        if self._http is not None:
            self._http.clear()
