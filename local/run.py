"""The whole service on one machine, with no AWS account and no Docker: `make run` or `python -m local.run`.

One process on 127.0.0.1: an AWS emulator (moto) holding the token secret,
the queues with their dead-letter queues and the tables; the provider
sandbox; an HTTP front that plays API Gateway for the API function; pollers
that play the SQS event source mappings for the queue function (the message
queue and the scheduled sends' trigger queue); and a scheduler that fires the
one-time schedules of scheduled sends, as EventBridge Scheduler would.
Ctrl-C or SIGTERM stops it all.

--clock-scale N runs the scheduled sends' clock N times faster (send_at, send
windows, the schedules' firing); everything else keeps the wall clock. The
clock starts at the runner's start, or at $CLOCK_ORIGIN (epoch seconds) if set.

--webhook URL (repeatable) POSTs every event of the gateway's bus to URL as an
EventBridge API destination would (the whole event as JSON), with the headers
of --webhook-header "Name: value" (repeatable).

The message queue also takes messages from an SNS topic (raw delivery off) and
from a rule on the `orders` bus (source local.orders), as a stage's snsSources
and eventSources do: the banner shows them.

The destination policy is the stack's default (numbers of GR and CY, mobiles)
unless --allowed-countries / --allowed-number-types say otherwise. Sends are
counted in the usage table per API key (--api-key, repeatable: each key a
caller of its own) and for the queue; --daily-message-limit,
--daily-cost-limit and --spend-ceiling cap them as the context keys
dailyMessageLimit, dailyCostLimitEuros and dailySpendCeilingEuros do, per day
of --stage-time-zone (default Europe/Athens).

Set LIVEALL_BASE_URL and LIVEALL_TOKEN to send through the real provider
instead of the sandbox: real messages, real money.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from gateway import names
from local.defaults import (
    ACCESS_KEY_ID,
    API_PORT,
    HOST,
    REGION,
    REPO,
    SECRET_ACCESS_KEY,
    aws_port_for,
    sandbox_port_for,
)

if TYPE_CHECKING:
    from local.emulator import Resources
    from local.scheduler import Clock
    from local.webhooks import Webhooks

PORT_ENV = "PORT"
API_KEY_ENV = "VIBER_GATEWAY_API_KEY"
REAL_PROVIDER_URL_ENV = "LIVEALL_BASE_URL"
REAL_PROVIDER_TOKEN_ENV = "LIVEALL_TOKEN"  # noqa: S105 - the variable's name, not a token
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200  # SQS's limit
# Locally the tracker runs every few seconds and messages move along quickly, so that a user
# sees a send go through its statuses while watching.
DEFAULT_TRACKER_PERIOD_SECONDS = 2.0
DEFAULT_DELIVERY_STEP_SECONDS = 2.0
LOCAL_RECONCILE_PERIOD_SECONDS = 5.0
LOCAL_BALANCE_PERIOD_SECONDS = 30.0
# Locally the history is never late: a send with no trace is "not sent" after a short grace.
LOCAL_RECONCILE_GRACE_SECONDS = 10
LOCAL_LOW_BALANCE_EUROS = 10
MAX_PERIOD_SECONDS = 3600
MAX_CLOCK_SCALE = 1_000_000  # as gateway.settings accepts
EXAMPLE_BODY = REPO / "events" / "message-im.json"
EXAMPLE_WINDOW = '{"from": "09:00", "to": "21:00", "days": ["mon", "tue", "wed", "thu", "fri"]}'


@dataclass(frozen=True, slots=True)
class RealProvider:
    base_url: str
    token: str


@dataclass(frozen=True, slots=True)
class RunningService:
    """What the banner tells the user."""

    api_url: str
    api_key: str
    aws_endpoint_url: str
    queue_url: str
    dead_letter_queue_url: str
    event_bus_name: str
    provider_url: str
    sandboxed: bool
    schedule_queue_url: str = ""
    clock_scale: float = 1.0
    clock_origin: float = 0.0
    send_window: str | None = None
    webhooks: tuple[str, ...] = ()  # as the banner shows them (header names, not values)
    source_topic_arn: str = ""
    source_bus_name: str = ""
    source_event_source: str = ""
    # Every key of the "usage plan" with its id (the first is api_key), and the guard's settings.
    api_keys: tuple[tuple[str, str], ...] = ()
    guard: Guard | None = None


@dataclass(frozen=True, slots=True)
class Guard:
    """The destination policy and the caps, as the stack's context keys set them (infra.config)."""

    allowed_countries: tuple[str, ...] = names.DEFAULT_ALLOWED_COUNTRIES
    allowed_number_types: tuple[str, ...] = names.DEFAULT_ALLOWED_NUMBER_TYPES
    daily_message_limit: int | None = None
    daily_cost_limit_euros: float | None = None
    daily_spend_ceiling_euros: float | None = None
    stage_time_zone: str = names.DEFAULT_STAGE_TIME_ZONE

    def environment(self) -> dict[str, str]:
        """The functions' variables, as the stack writes them (infra.components.function)."""
        from infra.config import euros_text

        environment = {
            names.ENV_ALLOWED_COUNTRIES: ",".join(self.allowed_countries),
            names.ENV_ALLOWED_NUMBER_TYPES: ",".join(self.allowed_number_types),
            names.ENV_USAGE_TABLE: names.USAGE_TABLE_NAME,
            names.ENV_STAGE_TIME_ZONE: self.stage_time_zone,
        }
        if self.daily_message_limit is not None:
            environment[names.ENV_DAILY_MESSAGE_LIMIT] = str(self.daily_message_limit)
        if self.daily_cost_limit_euros is not None:
            environment[names.ENV_DAILY_COST_LIMIT_EUROS] = euros_text(self.daily_cost_limit_euros)
        if self.daily_spend_ceiling_euros is not None:
            environment[names.ENV_DAILY_SPEND_CEILING_EUROS] = euros_text(self.daily_spend_ceiling_euros)
        return environment

    def lines(self) -> list[str]:
        """The banner's lines: the policy, and the caps (or that there are none)."""
        from infra.config import euros_text

        countries = "every country" if self.allowed_countries == ("*",) else ", ".join(self.allowed_countries)
        caps = []
        if self.daily_message_limit is not None:
            caps.append(f"{self.daily_message_limit} messages a day per caller")
        if self.daily_cost_limit_euros is not None:
            caps.append(f"{euros_text(self.daily_cost_limit_euros)} EUR of worst-case SMS a day per caller")
        if self.daily_spend_ceiling_euros is not None:
            caps.append(f"ceiling {euros_text(self.daily_spend_ceiling_euros)} EUR a day for the stage")
        counted = (
            "; ".join(caps) + f" (days of {self.stage_time_zone})"
            if caps
            else f"none (counted per caller, days of {self.stage_time_zone}; --daily-message-limit, "
            "--daily-cost-limit, --spend-ceiling)"
        )
        return [
            f"  Destinations   {countries}; {', '.join(self.allowed_number_types)} numbers "
            "(--allowed-countries, --allowed-number-types)",
            f"  Caps           {counted}",
        ]


# Each flag of the guard, and the context key whose rules it follows.
GUARD_FLAGS = {
    "allowed_countries": ("--allowed-countries", "allowedCountries"),
    "allowed_number_types": ("--allowed-number-types", "allowedNumberTypes"),
    "daily_message_limit": ("--daily-message-limit", "dailyMessageLimit"),
    "daily_cost_limit": ("--daily-cost-limit", "dailyCostLimitEuros"),
    "spend_ceiling": ("--spend-ceiling", "dailySpendCeilingEuros"),
    "stage_time_zone": ("--stage-time-zone", "stageTimeZone"),
}


def guard_from(args: argparse.Namespace) -> Guard:
    """The guard's flags, checked by the stack's own rules (infra.config): what a flag takes is what
    its context key takes. ValueError names the flag."""
    from infra.config import ConfigError, GatewayConfig

    context: dict[str, str] = {"stage": "local"}
    for attribute, (_, context_key) in GUARD_FLAGS.items():
        value = getattr(args, attribute, None)
        if value is not None:
            context[context_key] = value
    try:
        config = GatewayConfig.from_context(context)
    except ConfigError as error:
        message = str(error)
        for flag, context_key in GUARD_FLAGS.values():
            message = message.replace(f"context key {context_key!r}", flag)
        raise ValueError(message) from None
    return Guard(
        allowed_countries=config.allowed_countries,
        allowed_number_types=config.allowed_number_types,
        daily_message_limit=config.daily_message_limit,
        daily_cost_limit_euros=config.daily_cost_limit_euros,
        daily_spend_ceiling_euros=config.daily_spend_ceiling_euros,
        stage_time_zone=config.stage_time_zone,
    )


def main(argv: list[str] | None = None) -> int:
    # The console, taken before any function runs: while one runs on another thread, sys.stdout is
    # its output (contextlib.redirect_stdout in local.functions swaps it for every thread).
    console = sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        real_provider = real_provider_from(os.environ)
        clock_origin = clock_origin_from(os.environ)
        send_window = send_window_setting(args.send_window)
        webhooks = webhooks_from(args.webhook, args.webhook_header)
        guard = guard_from(args)
        api_keys = api_keys_from(args.api_key, os.environ.get(API_KEY_ENV))
    except ValueError as error:
        parser.error(str(error))
    aws_port = aws_port_for(args.port) if args.aws_port is None else args.aws_port
    sandbox_port = sandbox_port_for(args.port) if args.sandbox_port is None else args.sandbox_port
    ports = {"API": args.port, "AWS emulator": aws_port}
    if real_provider is None:
        ports["provider sandbox"] = sandbox_port
    # Before starting anything: a second `make run` must say so and leave the first alone.
    problem = port_problem(HOST, ports)
    if problem:
        print(f"local.run: {problem}", file=sys.stderr)
        return 1

    log = _console_log()
    stop_requested = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    if real_provider is not None:
        _warn_real_provider(real_provider.base_url)
    with contextlib.ExitStack() as running:
        service = _start(
            running,
            log,
            api_port=args.port,
            aws_port=aws_port,
            sandbox_port=sandbox_port,
            api_keys=api_keys,
            real_provider=real_provider,
            visibility_timeout=args.visibility_timeout,
            tracker_period=args.tracker_period,
            reconcile_period=args.reconcile_period,
            balance_period=args.balance_period,
            delivery_step_seconds=args.delivery_step_seconds,
            clock_scale=args.clock_scale,
            clock_origin=clock_origin,
            send_window=send_window,
            webhooks=webhooks,
            guard=guard,
            verbose=args.verbose,
        )
        print(
            banner(service, aws_port_is_default=aws_port == aws_port_for(API_PORT)), file=console, flush=True
        )
        # A timed wait keeps the main thread responsive to signals.
        while not stop_requested.wait(0.5):
            pass
        log.info("stopping")
    log.info("stopped")
    return 0


def _start(
    running: contextlib.ExitStack,
    log: logging.Logger,
    *,
    api_port: int,
    aws_port: int,
    sandbox_port: int,
    api_keys: list[str],
    real_provider: RealProvider | None,
    visibility_timeout: int,
    tracker_period: float,
    reconcile_period: float,
    balance_period: float = LOCAL_BALANCE_PERIOD_SECONDS,
    delivery_step_seconds: float,
    clock_scale: float = 1.0,
    clock_origin: float | None = None,
    send_window: str | None = None,
    webhooks: Webhooks | None = None,
    guard: Guard | None = None,
    verbose: bool,
) -> RunningService:
    """Start every part; `running` stops them in reverse order."""
    guard = guard or Guard()
    # Imported here rather than at the top, so that --help and the port check answer at once.
    from local.emulator import AwsEmulator, provision
    from local.scheduler import Clock
    from sandbox import ProviderSandbox

    clock = Clock(scale=clock_scale, origin=time.time() if clock_origin is None else clock_origin)

    emulator = AwsEmulator(HOST, aws_port, verbose=verbose)
    emulator.start()
    running.callback(emulator.stop)
    if real_provider is None:
        provider_token = secrets.token_hex(20)
        sandbox = ProviderSandbox(
            tokens={provider_token},
            approved_senders=None,
            port=sandbox_port,
            host=HOST,
            delivery_step_seconds=delivery_step_seconds,
        )
        sandbox.start()
        running.callback(sandbox.stop)
        provider_url = sandbox.url
    else:
        provider_token, provider_url = real_provider.token, real_provider.base_url
    resources = provision(
        emulator.client, provider_token=provider_token, visibility_timeout=visibility_timeout, with_sink=False
    )
    # No AWS_* setting of the user's (profile, per-service endpoints) may lead a call to real AWS.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    # Nor may the user's own clock or window settings reach the functions behind the flags' backs.
    for name in (names.ENV_CLOCK_SCALE, names.ENV_CLOCK_ORIGIN, names.ENV_SEND_WINDOW, *GUARD_VARIABLES):
        os.environ.pop(name, None)
    os.environ.update(
        function_environment(
            os.environ,
            emulator.endpoint_url,
            provider_url,
            resources,
            clock=clock,
            send_window=send_window,
            guard=guard,
            verbose=verbose,
        )
    )

    # Only now: Powertools reads the environment when the handlers are imported.
    from local.front import FrontServer
    from local.functions import FunctionHost, ScheduledFunctionProcess, function_output
    from local.poller import QueuePoller, QueueSettings
    from local.scheduler import LocalScheduler
    from local.tracking import EventPrinter, Schedule

    printer = EventPrinter(log)
    printer.start()
    running.callback(printer.stop)
    emulator.on_events(printer.take)
    if webhooks is not None and webhooks.urls:
        from local.webhooks import WebhookForwarder

        forwarder = WebhookForwarder(webhooks, log, bus_name=names.EVENT_BUS_NAME, source=names.EVENT_SOURCE)
        forwarder.start()
        running.callback(forwarder.stop)
        emulator.on_events(forwarder.take)
    scheduled = ScheduledFunctionProcess(verbose)
    scheduled.start()
    running.callback(scheduled.stop)  # (stopping twice is harmless)
    functions = FunctionHost(function_output(verbose), scheduled)
    front = FrontServer(
        (HOST, api_port), api_key=api_keys[0], more_api_keys=api_keys[1:], functions=functions, log=log
    )
    front.start()
    running.callback(front.stop)
    poller = QueuePoller(
        emulator.client("sqs"),
        QueueSettings(
            url=resources.queue_url,
            arn=resources.queue_arn,
            visibility_timeout=visibility_timeout,
            max_receive_count=names.QUEUE_MAX_RECEIVE_COUNT,
        ),
        functions,
        log,
    )
    poller.start()
    running.callback(poller.stop)
    # The trigger queue: the same function, told a trigger by the record's eventSourceARN.
    trigger_poller = QueuePoller(
        emulator.client("sqs"),
        QueueSettings(
            url=resources.schedule_queue_url,
            arn=resources.schedule_queue_arn,
            visibility_timeout=visibility_timeout,
            max_receive_count=names.QUEUE_MAX_RECEIVE_COUNT,
        ),
        functions,
        log,
        label="trigger",
    )
    trigger_poller.start()
    running.callback(trigger_poller.stop)
    # Both told first (this runs before the joins above): stopping waits for one long poll, not two.
    running.callback(poller.stop_soon)
    running.callback(trigger_poller.stop_soon)
    scheduler = LocalScheduler(emulator.client("scheduler"), emulator.client("sqs"), clock, log)
    scheduler.start()
    running.callback(scheduler.stop)
    # The deployed schedules run every 1, 5 and 15 minutes; locally, every few seconds.
    for task, period in (
        (names.TASK_TRACK, tracker_period),
        (names.TASK_RECONCILE, reconcile_period),
        (names.TASK_CHECK_BALANCE, balance_period),
    ):
        if not period:
            continue  # off: only make reconcile runs it
        schedule = Schedule(functions, task, period, log)
        schedule.start()
        running.callback(schedule.stop)
    # Stopped before the schedules are joined: a run in progress ends there, as in a stopped container.
    running.callback(scheduled.stop)
    return RunningService(
        api_url=front.url,
        api_key=api_keys[0],
        api_keys=tuple(front.api_keys.items()),
        guard=guard,
        aws_endpoint_url=emulator.endpoint_url,
        queue_url=resources.queue_url,
        dead_letter_queue_url=resources.dead_letter_queue_url,
        event_bus_name=names.EVENT_BUS_NAME,
        provider_url=provider_url,
        sandboxed=real_provider is None,
        schedule_queue_url=resources.schedule_queue_url,
        clock_scale=clock.scale,
        clock_origin=clock.origin,
        send_window=send_window,
        webhooks=tuple(webhooks.shown()) if webhooks is not None else (),
        source_topic_arn=resources.source_topic_arn,
        source_bus_name=resources.source_bus_name,
        source_event_source=resources.source_event_source,
    )


# The guard's variables, set by the flags only: a user's own never reaches the functions.
GUARD_VARIABLES = (
    names.ENV_ALLOWED_COUNTRIES,
    names.ENV_ALLOWED_NUMBER_TYPES,
    names.ENV_USAGE_TABLE,
    names.ENV_STAGE_TIME_ZONE,
    names.ENV_DAILY_MESSAGE_LIMIT,
    names.ENV_DAILY_COST_LIMIT_EUROS,
    names.ENV_DAILY_SPEND_CEILING_EUROS,
)


def api_keys_from(flags: list[str] | None, environment_key: str | None) -> list[str]:
    """The keys callers may use: each --api-key, else $VIBER_GATEWAY_API_KEY, else a new random one."""
    keys = [key.strip() for key in flags or []] or [(environment_key or "").strip() or secrets.token_hex(20)]
    if any(not key for key in keys):
        raise ValueError("--api-key must not be empty")
    if any(not key.isprintable() or " " in key for key in keys):
        raise ValueError("--api-key must be printable characters without spaces (it travels in a header)")
    return list(dict.fromkeys(keys))


def webhooks_from(urls: list[str] | None, headers: list[str] | None) -> Webhooks | None:
    """--webhook and --webhook-header, checked; None when no URL is given. ValueError says what is wrong."""
    from local.webhooks import Webhooks, webhook_header, webhook_url

    if not urls:
        if headers:
            raise ValueError("--webhook-header needs a --webhook URL to send to")
        return None
    return Webhooks(
        urls=tuple(dict.fromkeys(webhook_url(url) for url in urls)),
        headers=tuple(webhook_header(header) for header in headers or []),
    )


def function_environment(
    current: Mapping[str, str],
    aws_endpoint_url: str,
    provider_url: str,
    resources: Resources,
    *,
    clock: Clock | None = None,
    send_window: str | None = None,
    guard: Guard | None = None,
    verbose: bool,
) -> dict[str, str]:
    """The functions' environment: the stack's variables, pointed at the emulator and the provider.

    `clock` other than the wall clock (scale 1) sets the schedules' clock (--clock-scale);
    `send_window` the stage's default window (--send-window); `guard` the destination policy and
    the caps (default: the stack's, the policy of GR and CY mobiles and no cap).
    """
    environment = {
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        names.ENV_PROVIDER_BASE_URL: provider_url,
        names.ENV_PROVIDER_TOKEN_SECRET: names.TOKEN_SECRET_NAME,
        names.ENV_IDEMPOTENCY_TABLE: names.IDEMPOTENCY_TABLE_NAME,
        names.ENV_DEAD_LETTER_QUEUE_URL: resources.dead_letter_queue_url,
        names.ENV_QUEUE_URL: resources.queue_url,
        names.ENV_TRACKING_BACKLOG_QUEUE_URL: resources.tracking_backlog_queue_url,
        names.ENV_RECONCILE_GRACE_SECONDS: current.get(
            names.ENV_RECONCILE_GRACE_SECONDS, str(LOCAL_RECONCILE_GRACE_SECONDS)
        ),
        names.ENV_LOW_BALANCE_EUROS: current.get(names.ENV_LOW_BALANCE_EUROS, str(LOCAL_LOW_BALANCE_EUROS)),
        names.ENV_TRACKING_TABLE: names.TRACKING_TABLE_NAME,
        names.ENV_SUPPRESSION_TABLE: names.SUPPRESSION_TABLE_NAME,
        # The stack's default (context key autoSuppressAfterFailures), or the caller's.
        names.ENV_AUTO_SUPPRESS_AFTER_FAILURES: current.get(
            names.ENV_AUTO_SUPPRESS_AFTER_FAILURES, str(names.DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES)
        ),
        names.ENV_EVENT_BUS_NAME: names.EVENT_BUS_NAME,
        # Scheduled sends: the table, Scheduler's group and role, and the trigger queue it sends to.
        names.ENV_SCHEDULE_TABLE: names.SCHEDULE_TABLE_NAME,
        names.ENV_SCHEDULE_GROUP: resources.schedule_group_name,
        names.ENV_SCHEDULE_QUEUE_URL: resources.schedule_queue_url,
        names.ENV_SCHEDULE_QUEUE_ARN: resources.schedule_queue_arn,
        names.ENV_SCHEDULER_ROLE_ARN: resources.scheduler_role_arn,
        names.ENV_SCHEDULER_DEAD_LETTER_ARN: resources.schedule_dead_letter_queue_arn,
        # Young messages polled at every run of the (local, quick) schedule.
        names.ENV_TRACKING_POLL_SECONDS: "1",
        names.ENV_SERVICE_NAME: names.SERVICE_NAME,
        names.ENV_METRICS_NAMESPACE: names.DEFAULT_METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon to send to
        # The destination policy, the usage table and the caps (gateway.guard).
        **(guard or Guard()).environment(),
    }
    if clock is not None and clock.scale != 1:
        environment[names.ENV_CLOCK_SCALE] = repr(clock.scale)
        environment[names.ENV_CLOCK_ORIGIN] = repr(clock.origin)
    if send_window is not None:
        environment[names.ENV_SEND_WINDOW] = send_window
    if verbose:
        environment[names.ENV_LOG_LEVEL] = current.get(names.ENV_LOG_LEVEL, "INFO")
    return environment


def clock_origin_from(environ: Mapping[str, str]) -> float | None:
    """$CLOCK_ORIGIN (epoch seconds) when set, so that a caller can tell the scaled clock's reading."""
    text = environ.get(names.ENV_CLOCK_ORIGIN, "").strip()
    if not text:
        return None
    try:
        origin = float(text)
    except ValueError:
        raise ValueError(f"{names.ENV_CLOCK_ORIGIN} must be epoch seconds, not {text!r}") from None
    if not 0 <= origin < 2**33:
        raise ValueError(f"{names.ENV_CLOCK_ORIGIN} must be epoch seconds, not {text!r}")
    return origin


def send_window_setting(text: str | None) -> str | None:
    """The stage's default window as the functions read it (compact JSON), checked; None when not given."""
    if text is None or not text.strip():
        return None
    try:
        window = json.loads(text)
    except ValueError:
        raise ValueError(f"--send-window must be JSON, such as {EXAMPLE_WINDOW}") from None
    if not isinstance(window, dict):
        raise ValueError(f"--send-window must be a JSON object, such as {EXAMPLE_WINDOW}")
    # The functions' own model (loaded only here, where a window is given): a mistake shows now,
    # not as a 500 on the first send.
    from pydantic import ValidationError

    from gateway.fields import SendWindow

    try:
        SendWindow.model_validate(window)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in entry['loc']) or 'window'}: {entry['msg']}"
            for entry in error.errors()
        )
        raise ValueError(f"--send-window is not a window: {problems}") from None
    return json.dumps(window, separators=(",", ":"))


def real_provider_from(environ: Mapping[str, str]) -> RealProvider | None:
    """The real provider when both variables are set; ValueError when only one is."""
    base_url = environ.get(REAL_PROVIDER_URL_ENV, "").strip()
    token = environ.get(REAL_PROVIDER_TOKEN_ENV, "").strip()
    if not base_url and not token:
        return None
    if not (base_url and token):
        raise ValueError(
            f"set both {REAL_PROVIDER_URL_ENV} and {REAL_PROVIDER_TOKEN_ENV} to use the real provider, "
            "or neither to use the sandbox"
        )
    if not base_url.startswith(("https://", "http://")):
        raise ValueError(f"{REAL_PROVIDER_URL_ENV} must be an http(s) URL")
    return RealProvider(base_url, token)


def port_problem(host: str, ports: Mapping[str, int]) -> str | None:
    """Why the ports cannot be used (taken, or given twice), or None."""
    chosen = [port for port in ports.values() if port]
    if len(set(chosen)) < len(chosen):
        return f"the ports must differ: {', '.join(f'{what} {port}' for what, port in ports.items())}"
    for what, port in ports.items():
        if port and not _port_is_free(host, port):
            return (
                f"port {port} on {host} ({what}) is already in use. Is `make run` already running? "
                f"Stop it, or pick other ports with --port or {PORT_ENV}=..."
            )
    return None


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a connection in TIME_WAIT from an earlier run is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def banner(service: RunningService, *, aws_port_is_default: bool) -> str:
    python = _shown(Path(sys.executable))
    example = _shown(EXAMPLE_BODY)
    endpoint_flag = "" if aws_port_is_default else f" --endpoint-url {service.aws_endpoint_url}"
    if service.sandboxed:
        provider = f"{service.provider_url}  (sandbox; what it sent: {service.provider_url}_sandbox/ledger)"
    else:
        provider = f"{service.provider_url}  (THE REAL PROVIDER)"
    return "\n".join(
        [
            "",
            f"{names.SERVICE_NAME} runs locally (no AWS account, no Docker). Ctrl-C stops it.",
            "",
            f"  API            {service.api_url}  (every route but /openapi.json needs the x-api-key header)",
            *_key_lines(service),
            f"  API docs       {service.api_url}/docs",
            f"  Queue          {service.queue_url}",
            f"  Dead letters   {service.dead_letter_queue_url}",
            f"  Triggers       {service.schedule_queue_url}  (scheduled sends, fired as Scheduler would)",
            f"  Events         printed below as they happen; bus {service.event_bus_name} (your rules too)",
            f"  AWS emulator   {service.aws_endpoint_url}  "
            "(moto: Secrets Manager, SQS, SNS, DynamoDB, events, scheduler)",
            *_source_lines(service),
            *[f"  Webhook        {shown}" for shown in service.webhooks],
            f"  Provider       {provider}",
            *_schedule_lines(service),
            *(service.guard.lines() if service.guard is not None else []),
            "",
            "Try it from another terminal, in the repository:",
            f"  curl -i {service.api_url}/messages -H 'x-api-key: {service.api_key}' "
            f"-H 'Content-Type: application/json' -d @{example}",
            f"  {python} -m local.send{endpoint_flag} {example}",
            f"  curl {service.api_url}/messages/SMSID -H 'x-api-key: {service.api_key}'  # where it stands",
            f"  curl '{service.api_url}/schedules?state=scheduled' -H 'x-api-key: {service.api_key}'"
            "  # scheduled sends (send_at, window)",
            *_source_examples(service, example),
            "",
            "One line per request, queue record, tracker run and event follows "
            "(--verbose adds the functions' own logs).",
            "",
        ]
    )


def _key_lines(service: RunningService) -> list[str]:
    """One line per API key, with the id its sends are counted under (key:<id> on usage#<day>)."""
    keys = service.api_keys or ((service.api_key, ""),)
    lines = []
    for key, key_id in keys:
        counted = f"  (id {key_id}: its limits item is limits#key:{key_id})" if key_id else ""
        lines.append(f"  API key        {key}{counted}")
    return lines


def _source_lines(service: RunningService) -> list[str]:
    """The banner's lines for the queue's other sources: the SNS topic and the bus whose rule feeds it."""
    lines = []
    if service.source_topic_arn:
        lines.append(
            f"  SNS topic      {service.source_topic_arn}  (subscribed to the queue, raw delivery off)"
        )
    if service.source_bus_name:
        lines.append(
            f"  Orders bus     {service.source_bus_name}  (events of source {service.source_event_source} "
            "go to the queue; the detail is the message)"
        )
    return lines


def _source_examples(service: RunningService, example: str) -> list[str]:
    """aws CLI commands that put a message on the queue through the topic and through the bus."""
    if not (service.source_topic_arn or service.source_bus_name):
        return []
    aws = (
        f"AWS_ACCESS_KEY_ID={ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY} "
        f"aws --region {REGION} --endpoint-url {service.aws_endpoint_url}"
    )
    lines = []
    if service.source_topic_arn:
        lines.append(f"  {aws} sns publish --topic-arn {service.source_topic_arn} --message file://{example}")
    if service.source_bus_name:
        entry = {
            "EventBusName": service.source_bus_name,
            "Source": service.source_event_source,
            "DetailType": "Order Shipped",
            "Detail": json.dumps(json.loads(EXAMPLE_BODY.read_text()), separators=(",", ":")),
        }
        entries = json.dumps([entry]).replace("'", "'\\''")  # inside single quotes
        lines.append(f"  {aws} events put-events --entries '{entries}'")
    return lines


def _schedule_lines(service: RunningService) -> list[str]:
    """The banner's lines for a scaled clock and a default window: nothing when neither is set."""
    lines = []
    if service.clock_scale != 1:
        origin = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(service.clock_origin))
        lines.append(
            f"  Clock          x{service.clock_scale:g} from {origin} (origin {service.clock_origin:.3f}): "
            "send_at and send windows only; one hour passes in "
            f"{_duration(3600 / service.clock_scale)}"
        )
    if service.send_window is not None:
        lines.append(
            f"  Send window    {service.send_window}  (the stage's default; a request's window wins)"
        )
    return lines


def _duration(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1000:.3g} ms"


def _shown(path: Path) -> str:
    """The path as the user can type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn_real_provider(base_url: str) -> None:
    line = "!" * 78
    print(
        f"\n{line}\n"
        f"  REAL PROVIDER: messages go to {base_url}\n"
        "  They reach real phones and cost real money. Unset LIVEALL_BASE_URL and\n"
        "  LIVEALL_TOKEN to use the sandbox again.\n"
        f"{line}\n",
        file=sys.stderr,
        flush=True,
    )


def _console_log() -> logging.Logger:
    log = logging.getLogger("local.run")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    # Powertools warns on every invocation that emits no metric (GET /openapi.json): noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return log


def _port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


def _period(text: str) -> float:
    seconds = float(text)
    if not 0 <= seconds <= MAX_PERIOD_SECONDS:
        raise ValueError(text)
    return seconds


def _clock_scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        scale = float("nan")
    if not 1 <= scale <= MAX_CLOCK_SCALE:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"must be a number from 1 (the wall clock) to {MAX_CLOCK_SCALE}, not {text!r}"
        )
    return scale


def _seconds(text: str) -> int:
    seconds = int(text)
    if not 0 <= seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
        raise ValueError(text)
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=_port_number,
        default=os.environ.get(PORT_ENV, str(API_PORT)),
        help=f"the API's port (default: ${PORT_ENV} or {API_PORT}; 0 for any free port)",
    )
    parser.add_argument(
        "--aws-port", type=_port_number, default=None, help="the AWS emulator's port (default: API port + 1)"
    )
    parser.add_argument(
        "--sandbox-port",
        type=_port_number,
        default=None,
        help="the provider sandbox's port (default: API port + 2)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help=f"a key the API takes (repeatable: each key is a caller of its own, counted and capped "
        f"apart, as keys of one usage plan are; default: ${API_KEY_ENV}, or a new random one)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=_seconds,
        default=names.QUEUE_VISIBILITY_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="how long a failed queue record stays hidden before a retry (default: %(default)s, as deployed)",
    )
    parser.add_argument(
        "--tracker-period",
        type=_period,
        default=DEFAULT_TRACKER_PERIOD_SECONDS,
        metavar="SECONDS",
        help="how often the tracker runs (default: %(default)s; deployed: every minute)",
    )
    parser.add_argument(
        "--reconcile-period",
        type=_period,
        default=LOCAL_RECONCILE_PERIOD_SECONDS,
        metavar="SECONDS",
        help="how often the reconciler runs (default: %(default)s; deployed: every 5 minutes; 0: only "
        "when make reconcile asks)",
    )
    parser.add_argument(
        "--balance-period",
        type=_period,
        default=LOCAL_BALANCE_PERIOD_SECONDS,
        metavar="SECONDS",
        help="how often the account's balance is checked (default: %(default)s; deployed: every 15 minutes; "
        "0: never)",
    )
    parser.add_argument(
        "--delivery-step-seconds",
        type=_period,
        default=DEFAULT_DELIVERY_STEP_SECONDS,
        metavar="SECONDS",
        help="the sandbox's delay between a message's statuses (default: %(default)s; 0: at once)",
    )
    parser.add_argument(
        "--clock-scale",
        type=_clock_scale,
        default=os.environ.get(names.ENV_CLOCK_SCALE, "1"),
        metavar="N",
        help="run the scheduled sends' clock N times faster, from the start (or $CLOCK_ORIGIN): send_at, "
        "send windows and the schedules' firing; 3600 makes an hour a second "
        f"(default: ${names.ENV_CLOCK_SCALE} or 1, the wall clock; at most {MAX_CLOCK_SCALE})",
    )
    parser.add_argument(
        "--send-window",
        default=os.environ.get(names.ENV_SEND_WINDOW),
        metavar="JSON",
        help="the stage's default send window, in the recipients' local time, as the context key sendWindow "
        f"sets it, e.g. '{EXAMPLE_WINDOW}' (default: ${names.ENV_SEND_WINDOW}, or none)",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        metavar="URL",
        help="POST every event of the gateway's bus to URL, as JSON, as an EventBridge API destination "
        "does (repeatable; 5xx, 429 and connection errors are retried a few times)",
    )
    parser.add_argument(
        "--webhook-header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a header every webhook request carries, such as 'X-Api-Key: secret' (repeatable)",
    )
    guard = parser.add_argument_group(
        "guarding the account",
        "The destination policy and the caps, taking what the stack's context keys take (README: "
        "Configuration). A cap not given is no cap; the queue and every other source count as one "
        f"caller, `{names.QUEUE_CALLER}`; a caller's own limits go in the usage table's item "
        "limits#key:<key id> (messages_per_day, cost_per_day).",
    )
    guard.add_argument(
        "--allowed-countries",
        metavar="CODES",
        help="the countries destinations may belong to: ISO 3166 codes, comma-separated, or * for every "
        f"country (allowedCountries; default: {','.join(names.DEFAULT_ALLOWED_COUNTRIES)})",
    )
    guard.add_argument(
        "--allowed-number-types",
        metavar="KINDS",
        help="the kinds of number that may be messaged, comma-separated, of: "
        f"{', '.join(names.NUMBER_TYPES)} (allowedNumberTypes; default: "
        f"{','.join(names.DEFAULT_ALLOWED_NUMBER_TYPES)})",
    )
    guard.add_argument(
        "--daily-message-limit",
        metavar="N",
        help="messages (destinations) each caller may send a day (dailyMessageLimit; default: none)",
    )
    guard.add_argument(
        "--daily-cost-limit",
        metavar="EUR",
        help="worst-case SMS cost each caller may send a day, in euros: every destination falling back "
        "to SMS (dailyCostLimitEuros; default: none)",
    )
    guard.add_argument(
        "--spend-ceiling",
        metavar="EUR",
        help="the stage's worst-case SMS spend a day, across callers, in euros: past it every send is "
        "refused until midnight and Spend Ceiling Reached is published once (dailySpendCeilingEuros; "
        "default: none)",
    )
    guard.add_argument(
        "--stage-time-zone",
        metavar="ZONE",
        help="the IANA time zone whose midnight starts a new day for the caps (stageTimeZone; default: "
        f"{names.DEFAULT_STAGE_TIME_ZONE})",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the functions' own JSON logs and metrics on stderr"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
