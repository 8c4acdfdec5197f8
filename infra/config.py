"""Deployment configuration: CDK context keys, their defaults, and their validation.

Every knob of the stack is read here, once, from the CDK context (`cdk.json` or
`npx cdk deploy -c key=value`). Values given with `-c` arrive as strings, values
from `cdk.json` keep their JSON type: each parser accepts both. A wrong value
stops the synth with a message that names the key, what it got and what it
accepts. Standard library only, so it can be tested without synthesizing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gateway import names

T = TypeVar("T")


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


class AuthMode(StrEnum):
    """How callers authenticate on `POST /messages`."""

    API_KEY = "api_key"  # x-api-key header, key and usage plan created by the stack
    IAM = "iam"  # SigV4-signed requests; callers need execute-api:Invoke


# Context keys (the names operators type after `-c`).
KEY_STAGE = "stage"
KEY_PROVIDER_BASE_URL = "providerBaseUrl"
KEY_TOKEN_SECRET_ARN = "tokenSecretArn"  # noqa: S105 (a context key, no secret)
KEY_AUTH_MODE = "authMode"
KEY_THROTTLE_RATE = "throttleRate"
KEY_THROTTLE_BURST = "throttleBurst"
KEY_QUEUE_MAX_CONCURRENCY = "queueMaxConcurrency"
KEY_ALARM_EMAIL = "alarmEmail"
KEY_LOG_RETENTION_DAYS = "logRetentionDays"
KEY_PLACEHOLDER_LAYER = "placeholderLayer"
KEY_LAMBDA_PYTHON_VERSION = "lambdaPythonVersion"
KEY_PROTECT = "protect"
KEY_API_RESERVED_CONCURRENCY = "apiReservedConcurrency"
KEY_ROLLOUT = "rollout"
KEY_ALARM_TOPIC_ARN = "alarmTopicArn"
KEY_LOW_BALANCE_EUROS = "lowBalanceEuros"
KEY_SNAP_START = "snapStart"
KEY_AUTO_SUPPRESS_AFTER_FAILURES = "autoSuppressAfterFailures"
KEY_ALLOWED_COUNTRIES = "allowedCountries"
KEY_ALLOWED_NUMBER_TYPES = "allowedNumberTypes"
KEY_DAILY_MESSAGE_LIMIT = "dailyMessageLimit"
KEY_DAILY_COST_LIMIT_EUROS = "dailyCostLimitEuros"
KEY_DAILY_SPEND_CEILING_EUROS = "dailySpendCeilingEuros"
KEY_STAGE_TIME_ZONE = "stageTimeZone"
KEY_SCHEDULE_HORIZON_DAYS = "scheduleHorizonDays"
KEY_SEND_WINDOW = "sendWindow"
KEY_SNS_SOURCES = "snsSources"
KEY_EVENT_SOURCES = "eventSources"
KEY_WEBHOOKS = "webhooks"
CONTEXT_KEYS = (
    KEY_STAGE,
    KEY_PROVIDER_BASE_URL,
    KEY_TOKEN_SECRET_ARN,
    KEY_AUTH_MODE,
    KEY_THROTTLE_RATE,
    KEY_THROTTLE_BURST,
    KEY_QUEUE_MAX_CONCURRENCY,
    KEY_ALARM_EMAIL,
    KEY_LOG_RETENTION_DAYS,
    KEY_PLACEHOLDER_LAYER,
    KEY_LAMBDA_PYTHON_VERSION,
    KEY_PROTECT,
    KEY_API_RESERVED_CONCURRENCY,
    KEY_ROLLOUT,
    KEY_ALARM_TOPIC_ARN,
    KEY_LOW_BALANCE_EUROS,
    KEY_SNAP_START,
    KEY_AUTO_SUPPRESS_AFTER_FAILURES,
    KEY_ALLOWED_COUNTRIES,
    KEY_ALLOWED_NUMBER_TYPES,
    KEY_DAILY_MESSAGE_LIMIT,
    KEY_DAILY_COST_LIMIT_EUROS,
    KEY_DAILY_SPEND_CEILING_EUROS,
    KEY_STAGE_TIME_ZONE,
    KEY_SCHEDULE_HORIZON_DAYS,
    KEY_SEND_WINDOW,
    KEY_SNS_SOURCES,
    KEY_EVENT_SOURCES,
    KEY_WEBHOOKS,
)

DEFAULT_STAGE = "prod"
# The stage that must have someone to alert, and whose defaults protect data and roll out safely.
PRODUCTION_STAGE = "prod"
DEFAULT_THROTTLE_RATE = 20.0  # requests per second, steady state
DEFAULT_THROTTLE_BURST = 40
DEFAULT_LOG_RETENTION_DAYS = 30
# At most this many API functions run at once: with the default stage throttling (20 requests
# a second, bursts of 40) and the usual sub-second sends, fewer than 40 are ever busy, but a
# hung provider holds each one up to the 28 s timeout, and 20 a second would soon take 500 of
# the account's (default) 1000. Reserved concurrency is taken out of the account's unreserved
# pool, which Lambda keeps at 100 or more: an account whose quota is below 140 must set
# apiReservedConcurrency=none (README: Limits).
DEFAULT_API_RESERVED_CONCURRENCY = 40
MAX_API_RESERVED_CONCURRENCY = 1000
_NO_LIMIT_STRINGS = ("none", "off", "unreserved")

# The runtime's Python: one home, cdk.json's context (the Makefile reads it too).
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
DEFAULT_LAMBDA_PYTHON_VERSION: str = json.loads(CDK_JSON.read_text())["context"][KEY_LAMBDA_PYTHON_VERSION]

# How a new version of the functions takes traffic. `all-at-once`: the alias moves at once
# (no CodeDeploy). The others: CodeDeploy shifts the alias's traffic in steps and rolls back
# when the function-error or API 5xx alarms fire; values name aws_codedeploy.LambdaDeploymentConfig.
ALL_AT_ONCE = "all-at-once"
ROLLOUTS: dict[str, str | None] = {
    ALL_AT_ONCE: None,
    "canary-10-percent-5-minutes": "CANARY_10_PERCENT_5_MINUTES",
    "canary-10-percent-10-minutes": "CANARY_10_PERCENT_10_MINUTES",
    "canary-10-percent-15-minutes": "CANARY_10_PERCENT_15_MINUTES",
    "canary-10-percent-30-minutes": "CANARY_10_PERCENT_30_MINUTES",
    "linear-10-percent-every-1-minute": "LINEAR_10_PERCENT_EVERY_1_MINUTE",
    "linear-10-percent-every-2-minutes": "LINEAR_10_PERCENT_EVERY_2_MINUTES",
    "linear-10-percent-every-3-minutes": "LINEAR_10_PERCENT_EVERY_3_MINUTES",
    "linear-10-percent-every-10-minutes": "LINEAR_10_PERCENT_EVERY_10_MINUTES",
}
PRODUCTION_ROLLOUT = "canary-10-percent-5-minutes"

# Below this balance (euros) the scheduled check publishes Balance Low and the balance alarm
# fires: about 260 SMS to Greece at 0.0379, a few days of a small shop's fallbacks. Set it to
# what a day or two of your own traffic costs; `none` turns both off.
DEFAULT_LOW_BALANCE_EUROS = 10.0
MAX_LOW_BALANCE_EUROS = 1_000_000.0

# Lambda SnapStart exists for the Python 3.12 and newer managed runtimes. What else rules it out
# (provisioned concurrency, EFS, ephemeral storage over 512 MB) the stack never configures.
MIN_SNAP_START_PYTHON = (3, 12)

# Delivery tracking suppresses a number after this many messages in a row failed for good on it
# (0: never). More than 100 would never trigger for any real number: a typo, not a choice.
MAX_AUTO_SUPPRESS_AFTER_FAILURES = 100

# The stage's default send window (sendWindow): local times "HH:MM" (24 h) and, optionally, the
# days it is open. The functions read it as JSON from SEND_WINDOW (gateway.schedules).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEND_WINDOW_KEYS = ("from", "to", "days")
_TIME_OF_DAY_PATTERN = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_NO_WINDOW_STRINGS = ("none",)

# Caps (gateway.guard.caps): each caller's daily limits (messages, worst-case SMS cost in euros)
# and the stage's daily spend ceiling (euros), counted per day of the stage's time zone. None of
# them is set by default: a stage caps nothing until told (README: Guarding the account). A
# ceiling stops every send of the stage for the rest of the day, and the cost it counts is the
# worst case (every destination falling back to SMS), so any default would be a figure about
# nobody's traffic: too low, it stops a shop's legitimate sends on the day of the deploy; too
# high, it guards nothing. Give it from your own traffic (a few days of worst-case spend).
_NO_CAP_STRINGS = ("none", "off")
MAX_DAILY_MESSAGE_LIMIT = 1_000_000_000  # beyond any stage's reach: a typo, not a choice
MAX_DAILY_EUROS = 1_000_000.0
# IANA zone names: Area/Location (Europe/Athens, America/Argentina/Buenos_Aires) or a single name
# (UTC, EST5EDT, Etc/GMT-2). The name is then looked up in the time zone database (zoneinfo).
_TIME_ZONE_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9_+-]{0,29}(?:/[A-Za-z0-9][A-Za-z0-9_+-]{0,29}){0,2}$")

# Event source mappings accept a maximum concurrency between 2 and 1000.
MIN_QUEUE_MAX_CONCURRENCY = 2
MAX_QUEUE_MAX_CONCURRENCY = 1000

# The retention periods CloudWatch Logs (and aws_logs.RetentionDays) accept,
# with the name of the matching RetentionDays member.
LOG_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

# The stage goes into the stack name and every physical resource name (queue
# names allow 80 characters, API stage names letters, digits, - and _).
_STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# A complete secret ARN ends with the 6-character suffix Secrets Manager adds;
# granting read on a partial ARN would need a wildcard.
_SECRET_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$"
)
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOPIC_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_PYTHON_VERSION_PATTERN = re.compile(r"^3\.\d+$")
_TRUE_STRINGS = ("true", "1", "yes")
_FALSE_STRINGS = ("false", "0", "no", "")
_NONE_STRINGS = ("", "none")

# Other systems' messages (snsSources, eventSources): each topic subscribed to the message queue,
# each rule with the queue as target, adds one statement to the queue's policy, and SQS allows 20
# statements in a queue policy, one of them the TLS-only deny: 19 sources in all.
MAX_MESSAGE_SOURCES = 19
# The members of an EventBridge event a pattern can match on: a pattern on any other would match
# nothing (eventSources).
EVENT_PATTERN_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)
# PutRule refuses a longer pattern (characters of its JSON).
MAX_EVENT_PATTERN_LENGTH = 4096
# A source's or webhook's name goes into its rule's name (viber-gateway-source-<name>-<stage>, at
# most 64 characters with a 20-character stage); a source without one is named by its position.
_SOURCE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
_WEBHOOK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# An event bus: a name (default, a custom or a partner bus) or an ARN, as PutRule takes it.
_EVENT_BUS_NAME_PATTERN = re.compile(r"^[/.\-_A-Za-z0-9]{1,256}$")
_EVENT_BUS_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[/.\-_A-Za-z0-9]{1,256}$"
)

# Status webhooks (webhooks): EventBridge API destinations POST the gateway's events to HTTPS
# endpoints outside AWS. Each webhook's rule adds one statement to the policy of the webhooks'
# dead-letter queue (20 at most, one of them the TLS-only deny).
MAX_WEBHOOKS = 19
# API destinations accept 1 request per second and up; 300 is EventBridge's default quota of
# invocations per second for the whole account and region.
MIN_WEBHOOK_RATE_PER_SECOND = 1
MAX_WEBHOOK_RATE_PER_SECOND = 300
# What an API destination's endpoint may be (EventBridge's own pattern: percent-encode the rest).
MAX_WEBHOOK_URL_LENGTH = 2048
_WEBHOOK_URL_PATTERN = re.compile(r"^((%[0-9A-Fa-f]{2}|[-()_.!~*';/?:@&=+$,A-Za-z0-9])+)([).!';/?:,])?$")
# An HTTP header name is a token (RFC 9110); EventBridge takes up to 512 characters.
_HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,512}$")
# detail.state values: the gateway's states are lowercase words (delivered, undelivered, ...).
_STATE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# The gateway's references are at most 256 characters (gateway.fields).
MAX_REFERENCE_PREFIX_LENGTH = 256
# Every detail type the gateway publishes (names.DETAIL_TYPE_*): a webhook's default.
GATEWAY_DETAIL_TYPES: tuple[str, ...] = tuple(
    value for key, value in vars(names).items() if key.startswith("DETAIL_TYPE_")
)
# What the webhook's secret holds (JSON): the API key's value, or basic auth's user and password.
WEBHOOK_API_KEY_FIELD = "apiKeyValue"
WEBHOOK_USERNAME_FIELD = "username"
WEBHOOK_PASSWORD_FIELD = "password"  # noqa: S105 (a JSON key, no secret)


@dataclass(frozen=True)
class SendWindow:
    """When sends may go out by default: from `start` to `end` (local times "HH:MM"; `end` before
    `start` spans midnight), on `days` only (None: every day)."""

    start: str
    end: str
    days: tuple[str, ...] | None = None

    def to_json(self) -> str:
        """The compact JSON the functions read from SEND_WINDOW: keys from, to and (if given) days."""
        window: dict[str, Any] = {"from": self.start, "to": self.end}
        if self.days is not None:
            window["days"] = list(self.days)
        return json.dumps(window, separators=(",", ":"))


class WebhookAuthType(StrEnum):
    """How a webhook's endpoint authenticates EventBridge: an API key header, or basic auth."""

    API_KEY = "apiKey"
    BASIC = "basic"


@dataclass(frozen=True)
class EventSource:
    """A rule on `bus` (a name, or the ARN of a bus of the stack's account and region) whose
    matching events become messages: the whole event goes to the message queue."""

    name: str
    bus: str
    pattern_json: str  # the event pattern, compact JSON with sorted keys

    @property
    def pattern(self) -> dict[str, Any]:
        pattern: dict[str, Any] = json.loads(self.pattern_json)
        return pattern

    @property
    def bus_is_arn(self) -> bool:
        return self.bus.startswith("arn:")


@dataclass(frozen=True)
class WebhookAuth:
    """The endpoint's credentials: in the Secrets Manager secret `secret_arn`, as JSON with
    `apiKeyValue` (sent in `header`), or `username` and `password` (basic auth)."""

    type: WebhookAuthType
    secret_arn: str
    header: str | None = None  # API_KEY only


@dataclass(frozen=True)
class Webhook:
    """A status webhook: the stage's events of `detail_types` (and of `states`, and whose
    reference starts with `reference_prefix`, when given) POSTed to `url`, at most
    `rate_limit_per_second` a second."""

    name: str
    url: str
    auth: WebhookAuth
    detail_types: tuple[str, ...] = GATEWAY_DETAIL_TYPES
    states: tuple[str, ...] | None = None
    reference_prefix: str | None = None
    rate_limit_per_second: int = names.DEFAULT_WEBHOOK_RATE_PER_SECOND


@dataclass(frozen=True)
class GatewayConfig:
    """The validated deployment configuration. Defaults are the production ones."""

    stage: str = DEFAULT_STAGE
    provider_base_url: str = names.PRODUCTION_PROVIDER_BASE_URL
    token_secret_arn: str | None = None  # None: the stack creates the secret
    auth_mode: AuthMode = AuthMode.API_KEY
    throttle_rate: float = DEFAULT_THROTTLE_RATE
    throttle_burst: int = DEFAULT_THROTTLE_BURST
    queue_max_concurrency: int = names.QUEUE_MAX_CONCURRENCY
    alarm_email: str | None = None
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    # Tests only: synthesize with an empty layer instead of build/layer.
    placeholder_layer: bool = False
    lambda_python_version: str = DEFAULT_LAMBDA_PYTHON_VERSION
    protect: bool | None = None  # None: the stage's default (protected_stage)
    api_reserved_concurrency: int | None = DEFAULT_API_RESERVED_CONCURRENCY  # None: no cap
    rollout: str | None = None  # None: the stage's default (rollout_strategy)
    alarm_topic_arn: str | None = None
    low_balance_euros: float | None = DEFAULT_LOW_BALANCE_EUROS  # None: no Balance Low, no alarm
    # SnapStart on the published versions of the API and queue functions (README: SnapStart).
    snap_start: bool = True
    # Failed-for-good messages in a row after which delivery tracking suppresses a number (0: never).
    auto_suppress_after_failures: int = names.DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES
    # The destination policy (gateway.guard.policy): ISO 3166 codes or ("*",), and kinds of number.
    allowed_countries: tuple[str, ...] = names.DEFAULT_ALLOWED_COUNTRIES
    allowed_number_types: tuple[str, ...] = names.DEFAULT_ALLOWED_NUMBER_TYPES
    # Caps (gateway.guard.caps), None: no such cap. Per caller (an API key's id; the queue and
    # other sources share one bucket) unless the caller's limits item in the usage table says
    # otherwise; the ceiling is the stage's, across callers. Days are the stage's time zone's.
    daily_message_limit: int | None = None
    daily_cost_limit_euros: float | None = None
    daily_spend_ceiling_euros: float | None = None
    stage_time_zone: str = names.DEFAULT_STAGE_TIME_ZONE
    # How many days ahead send_at may be (the functions refuse later ones).
    schedule_horizon_days: int = names.DEFAULT_SCHEDULE_HORIZON_DAYS
    # The stage's default send window; None: sends go out at once unless a request gives a window.
    send_window: SendWindow | None = None
    # Existing SNS topics whose notifications are messages: each subscribed to the message queue.
    sns_sources: tuple[str, ...] = ()
    # EventBridge rules on existing buses whose matching events are messages.
    event_sources: tuple[EventSource, ...] = ()
    # Status webhooks: the stage's events POSTed to HTTPS endpoints outside AWS.
    webhooks: tuple[Webhook, ...] = ()

    @property
    def stack_name(self) -> str:
        return f"{names.STACK_NAME}-{self.stage}"

    @property
    def protected(self) -> bool:
        """Queues kept on `cdk destroy` and termination protection on: by default for prod only."""
        return self.protect if self.protect is not None else self.stage == PRODUCTION_STAGE

    @property
    def rollout_strategy(self) -> str:
        """A key of ROLLOUTS: by default a canary for prod, all at once elsewhere."""
        if self.rollout is not None:
            return self.rollout
        return PRODUCTION_ROLLOUT if self.stage == PRODUCTION_STAGE else ALL_AT_ONCE

    @property
    def metrics_namespace(self) -> str:
        """The stage's own CloudWatch namespace: a dev stage's metrics never reach prod's alarms."""
        return f"{names.DEFAULT_METRICS_NAMESPACE}/{self.stage}"

    @property
    def alarm_subscribed(self) -> bool:
        """Whether an alarm reaches someone: a mailbox or an existing topic (on-call tooling)."""
        return self.alarm_email is not None or self.alarm_topic_arn is not None

    def physical_name(self, base_name: str) -> str:
        """A resource name from names.py, made unique per stage so stages can share an account."""
        return f"{base_name}-{self.stage}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> GatewayConfig:
        """Parse and validate the CDK context (all of it, e.g. `app.node.get_all_context()`)."""
        _reject_misspelled_keys(context)
        defaults = cls()
        config = cls(
            stage=_parse(context, KEY_STAGE, defaults.stage, _stage),
            provider_base_url=_parse(context, KEY_PROVIDER_BASE_URL, defaults.provider_base_url, _https_url),
            token_secret_arn=_parse_optional(context, KEY_TOKEN_SECRET_ARN, _secret_arn),
            auth_mode=_parse(context, KEY_AUTH_MODE, defaults.auth_mode, _auth_mode),
            throttle_rate=_parse(context, KEY_THROTTLE_RATE, defaults.throttle_rate, _positive_float),
            throttle_burst=_parse(context, KEY_THROTTLE_BURST, defaults.throttle_burst, _positive_int),
            queue_max_concurrency=_parse(
                context, KEY_QUEUE_MAX_CONCURRENCY, defaults.queue_max_concurrency, _queue_concurrency
            ),
            alarm_email=_parse_optional(context, KEY_ALARM_EMAIL, _email),
            log_retention_days=_parse(
                context, KEY_LOG_RETENTION_DAYS, defaults.log_retention_days, _log_retention_days
            ),
            placeholder_layer=_parse(context, KEY_PLACEHOLDER_LAYER, defaults.placeholder_layer, _boolean),
            lambda_python_version=_parse(
                context, KEY_LAMBDA_PYTHON_VERSION, defaults.lambda_python_version, _python_version
            ),
            protect=_parse_optional(context, KEY_PROTECT, _boolean),
            api_reserved_concurrency=_parse(
                context,
                KEY_API_RESERVED_CONCURRENCY,
                defaults.api_reserved_concurrency,
                _reserved_concurrency,
            ),
            rollout=_parse_optional(context, KEY_ROLLOUT, _rollout),
            alarm_topic_arn=_parse_optional(context, KEY_ALARM_TOPIC_ARN, _topic_arn),
            low_balance_euros=_parse(
                context, KEY_LOW_BALANCE_EUROS, defaults.low_balance_euros, _balance_threshold
            ),
            snap_start=_parse(context, KEY_SNAP_START, defaults.snap_start, _boolean),
            auto_suppress_after_failures=_parse(
                context,
                KEY_AUTO_SUPPRESS_AFTER_FAILURES,
                defaults.auto_suppress_after_failures,
                _failures_before_suppressing,
            ),
            schedule_horizon_days=_parse(
                context, KEY_SCHEDULE_HORIZON_DAYS, defaults.schedule_horizon_days, _horizon_days
            ),
            send_window=_parse_optional(context, KEY_SEND_WINDOW, _send_window),
            allowed_countries=_parse(
                context, KEY_ALLOWED_COUNTRIES, defaults.allowed_countries, _allowed_countries
            ),
            allowed_number_types=_parse(
                context, KEY_ALLOWED_NUMBER_TYPES, defaults.allowed_number_types, _allowed_number_types
            ),
            daily_message_limit=_parse(
                context, KEY_DAILY_MESSAGE_LIMIT, defaults.daily_message_limit, _daily_message_limit
            ),
            daily_cost_limit_euros=_parse(
                context, KEY_DAILY_COST_LIMIT_EUROS, defaults.daily_cost_limit_euros, _daily_cost_limit
            ),
            daily_spend_ceiling_euros=_parse(
                context, KEY_DAILY_SPEND_CEILING_EUROS, defaults.daily_spend_ceiling_euros, _spend_ceiling
            ),
            stage_time_zone=_parse(context, KEY_STAGE_TIME_ZONE, defaults.stage_time_zone, _time_zone),
            sns_sources=_parse(context, KEY_SNS_SOURCES, defaults.sns_sources, _sns_sources),
            event_sources=_parse(context, KEY_EVENT_SOURCES, defaults.event_sources, _event_sources),
            webhooks=_parse(context, KEY_WEBHOOKS, defaults.webhooks, _webhooks, echo=False),
        )
        if len(config.sns_sources) + len(config.event_sources) > MAX_MESSAGE_SOURCES:
            raise ConfigError(
                f"context keys {KEY_SNS_SOURCES!r} and {KEY_EVENT_SOURCES!r}: {len(config.sns_sources)} "
                f"topics and {len(config.event_sources)} rules, more than the {MAX_MESSAGE_SOURCES} sources "
                "the message queue's policy can allow (SQS takes 20 statements, one per source and the "
                "TLS-only deny): have several systems publish to one topic or bus"
            )
        if config.snap_start and _minor_version(config.lambda_python_version) < MIN_SNAP_START_PYTHON:
            oldest = ".".join(str(part) for part in MIN_SNAP_START_PYTHON)
            raise ConfigError(
                f"context key {KEY_SNAP_START!r}: Lambda offers SnapStart on python{oldest} and newer "
                f"runtimes only, and {KEY_LAMBDA_PYTHON_VERSION} is {config.lambda_python_version}: "
                f"give -c {KEY_SNAP_START}=false, or a newer runtime"
            )
        if config.stage == PRODUCTION_STAGE and not config.alarm_subscribed:
            # Other stages only warn (infra.components.monitoring): nobody may miss prod's alarms.
            raise ConfigError(
                f"stage {PRODUCTION_STAGE!r} has nobody to tell when an alarm fires: give "
                f"-c {KEY_ALARM_EMAIL}=ops@example.com, or -c {KEY_ALARM_TOPIC_ARN}=<ARN of an SNS topic "
                "your on-call tooling reads> (or both; README: Operating it)"
            )
        return config


def _normalised(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _reject_misspelled_keys(context: Mapping[str, Any]) -> None:
    # CDK ignores unknown context keys, so `-c auth_mode=iam` would silently
    # deploy the default. Keys that only differ from ours in case, `_` or `-`
    # are almost certainly typos.
    known_by_normalised = {_normalised(key): key for key in CONTEXT_KEYS}
    for key in context:
        known = known_by_normalised.get(_normalised(key))
        if known is not None and known != key:
            raise ConfigError(f"unknown context key {key!r}: did you mean {known!r}?")


def _parse(
    context: Mapping[str, Any], key: str, default: T, parser: Callable[[Any], T], *, echo: bool = True
) -> T:
    raw = context.get(key)
    if raw is None:
        return default
    try:
        return parser(raw)
    except (TypeError, ValueError) as error:
        # Without echo (webhooks), the value is left out: a credential put there by mistake stays
        # out of terminals and CI logs; the message names the webhook and the member instead.
        got = f" (got {raw!r})" if echo else ""
        raise ConfigError(f"context key {key!r}: {error}{got}") from error


def _parse_optional(context: Mapping[str, Any], key: str, parser: Callable[[Any], T]) -> T | None:
    raw = context.get(key)
    if raw is None or raw == "":
        return None
    return _parse(context, key, None, parser)


def _stage(raw: Any) -> str:
    value = str(raw)
    if not _STAGE_PATTERN.match(value):
        raise ValueError(
            "expected 1 to 20 characters: a lowercase letter, then lowercase letters, digits or -"
        )
    return value


def _https_url(raw: Any) -> str:
    value = str(raw)
    # The provider token travels in the request body: never over plain HTTP.
    if not re.match(r"^https://[^/\s]+(/\S*)?$", value):
        raise ValueError("expected an https:// URL")
    return value if value.endswith("/") else value + "/"


def _secret_arn(raw: Any) -> str:
    value = str(raw)
    if not _SECRET_ARN_PATTERN.match(value):
        raise ValueError(
            "expected the complete ARN of a Secrets Manager secret, with its 6-character suffix "
            "(aws secretsmanager describe-secret --secret-id NAME --query ARN --output text)"
        )
    return value


def _auth_mode(raw: Any) -> AuthMode:
    try:
        return AuthMode(str(raw))
    except ValueError:
        raise ValueError(f"expected one of {', '.join(mode.value for mode in AuthMode)}") from None


def _positive_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise TypeError("expected a number")
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a number greater than 0")
    return value


def _positive_int(raw: Any) -> int:
    value = _integer(raw)
    if value < 1:
        raise ValueError("expected an integer of at least 1")
    return value


def _queue_concurrency(raw: Any) -> int:
    value = _integer(raw)
    if not MIN_QUEUE_MAX_CONCURRENCY <= value <= MAX_QUEUE_MAX_CONCURRENCY:
        raise ValueError(
            f"expected an integer from {MIN_QUEUE_MAX_CONCURRENCY} to {MAX_QUEUE_MAX_CONCURRENCY} "
            "(the range SQS event source mappings accept)"
        )
    return value


def _log_retention_days(raw: Any) -> int:
    value = _integer(raw)
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"expected one of the CloudWatch Logs retention periods {sorted(LOG_RETENTION_DAYS)}"
        )
    return value


def _python_version(raw: Any) -> str:
    value = str(raw)
    if not _PYTHON_VERSION_PATTERN.match(value):
        raise ValueError("expected a Python minor version such as 3.13")
    return value


def _minor_version(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def _reserved_concurrency(raw: Any) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() in _NO_LIMIT_STRINGS:
        return None
    value = _integer(raw)
    if not 1 <= value <= MAX_API_RESERVED_CONCURRENCY:
        raise ValueError(
            f"expected an integer from 1 to {MAX_API_RESERVED_CONCURRENCY}, or none (no cap, for accounts "
            "whose concurrency quota leaves nothing to reserve)"
        )
    return value


def _balance_threshold(raw: Any) -> float | None:
    if isinstance(raw, str) and raw.strip().lower() in _NO_LIMIT_STRINGS:
        return None
    if isinstance(raw, bool):
        raise TypeError("expected a number of euros")
    value = float(raw)
    if not 0 < value <= MAX_LOW_BALANCE_EUROS:
        raise ValueError(
            f"expected euros greater than 0 and at most {MAX_LOW_BALANCE_EUROS:,.0f}, or none (no "
            "Balance Low event, no balance alarm)"
        )
    return value


def _failures_before_suppressing(raw: Any) -> int:
    value = _integer(raw)
    if not 0 <= value <= MAX_AUTO_SUPPRESS_AFTER_FAILURES:
        raise ValueError(
            f"expected an integer from 0 (never suppress a number automatically) to "
            f"{MAX_AUTO_SUPPRESS_AFTER_FAILURES}"
        )
    return value


def _horizon_days(raw: Any) -> int:
    value = _integer(raw)
    if not 1 <= value <= names.MAX_SCHEDULE_HORIZON_DAYS:
        raise ValueError(
            f"expected an integer from 1 to {names.MAX_SCHEDULE_HORIZON_DAYS} (days ahead a send_at may be)"
        )
    return value


def _no_cap(raw: Any) -> bool:
    return isinstance(raw, str) and raw.strip().lower() in _NO_CAP_STRINGS


def _daily_message_limit(raw: Any) -> int | None:
    if _no_cap(raw):
        return None
    form = (
        f"expected an integer from 0 to {MAX_DAILY_MESSAGE_LIMIT:,} (messages a caller may send a day; "
        "0: none unless its limits item allows some), or none (no limit)"
    )
    try:
        value = _integer(raw)
    except (TypeError, ValueError):
        raise ValueError(form) from None
    if not 0 <= value <= MAX_DAILY_MESSAGE_LIMIT:
        raise ValueError(form)
    return value


def _euros(raw: Any, form: str, *, zero_allowed: bool) -> float | None:
    if _no_cap(raw):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(form)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(form) from None
    low_enough = value <= MAX_DAILY_EUROS
    high_enough = value >= 0 if zero_allowed else value > 0
    if not (math.isfinite(value) and low_enough and high_enough):
        raise ValueError(form)
    return value


def _daily_cost_limit(raw: Any) -> float | None:
    return _euros(
        raw,
        f"expected euros from 0 to {MAX_DAILY_EUROS:,.0f} (the worst-case SMS cost a caller may send a "
        "day: every destination falling back to SMS), or none (no limit)",
        zero_allowed=True,
    )


def _spend_ceiling(raw: Any) -> float | None:
    return _euros(
        raw,
        f"expected euros greater than 0 and at most {MAX_DAILY_EUROS:,.0f} (the stage's worst-case SMS "
        "spend a day, across callers, after which sends stop until midnight), or none (no ceiling)",
        zero_allowed=False,
    )


def _time_zone(raw: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = str(raw).strip() if isinstance(raw, str) else raw
    form = "expected an IANA time zone name such as Europe/Athens, Europe/Nicosia or UTC"
    if not isinstance(value, str) or not _TIME_ZONE_PATTERN.match(value):
        raise ValueError(form)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{form}: no such zone in the time zone database") from None
    return value


def euros_text(value: float) -> str:
    """Euros as the functions read them from the environment: plain decimals, never an exponent."""
    return format(Decimal(repr(value)).normalize(), "f")


_SEND_WINDOW_FORM = (
    'expected none, or a JSON object {"from": "HH:MM", "to": "HH:MM", "days": ["mon", ...]} with '
    "24-hour times from 00:00 to 23:59, from and to different, and days (optional) a non-empty list "
    f"of distinct {', '.join(WEEKDAYS)}"
)


def _send_window(raw: Any) -> SendWindow | None:
    # cdk.json gives an object; -c gives a string: JSON, or none.
    if isinstance(raw, str):
        if raw.strip().lower() in _NO_WINDOW_STRINGS:
            return None
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"not JSON: {_SEND_WINDOW_FORM}") from None
    if not isinstance(raw, dict):
        raise ValueError(_SEND_WINDOW_FORM)
    unknown = sorted(set(raw) - set(SEND_WINDOW_KEYS))
    if unknown or "from" not in raw or "to" not in raw:
        problem = f"unknown keys {', '.join(unknown)}" if unknown else "from and to are required"
        raise ValueError(f"{problem}: {_SEND_WINDOW_FORM}")
    start, end = raw["from"], raw["to"]
    for name, value in (("from", start), ("to", end)):
        if not isinstance(value, str) or not _TIME_OF_DAY_PATTERN.match(value):
            raise ValueError(f"{name} is not a time HH:MM: {_SEND_WINDOW_FORM}")
    if start == end:
        raise ValueError(f"from and to are the same time (an empty window): {_SEND_WINDOW_FORM}")
    return SendWindow(start=start, end=end, days=_weekdays(raw["days"]) if "days" in raw else None)


def _weekdays(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"days is not a non-empty list: {_SEND_WINDOW_FORM}")
    days = [day.strip().lower() if isinstance(day, str) else day for day in raw]
    if not all(day in WEEKDAYS for day in days):
        raise ValueError(f"days names something other than a weekday: {_SEND_WINDOW_FORM}")
    if len(set(days)) != len(days):
        raise ValueError(f"days names a day twice: {_SEND_WINDOW_FORM}")
    # In the week's order, so that the same window always gives the same environment.
    return tuple(day for day in WEEKDAYS if day in days)


_SNS_SOURCES_FORM = (
    "expected none, or the ARNs of existing standard SNS topics (arn:aws:sns:<region>:<account>:<name>), "
    "each once: a JSON array in cdk.json, a comma-separated list or a JSON array with -c"
)
_EVENT_SOURCES_FORM = (
    'expected none, or a JSON array of objects {"bus": "<event bus name or ARN>", "pattern": {<event '
    'pattern>}, "name": "<optional id>"}: bus a bus of the stack\'s account and region (default, a '
    "custom or a partner bus); pattern a non-empty EventBridge event pattern (every value an array, or "
    f"an object of them) on {', '.join(EVENT_PATTERN_FIELDS)}, at most {MAX_EVENT_PATTERN_LENGTH} "
    f"characters; name 1 to 20 lowercase letters, digits or -, unique (default: the position, 1, 2, ...); "
    f"at most {MAX_MESSAGE_SOURCES} sources with {KEY_SNS_SOURCES}"
)
_WEBHOOKS_FORM = (
    'expected none, or a JSON array of objects {"name": "<id>", "url": "https://...", "auth": '
    '{"type": "apiKey", "header": "<header name>", "secretArn": "<secret ARN>"} or {"type": "basic", '
    '"secretArn": "<secret ARN>"}, and optionally "detailTypes": [...], "states": [...], '
    '"referencePrefix": "...", "rateLimitPerSecond": n}: name a lowercase letter, then up to 19 lowercase '
    "letters, digits or -, unique; url https:// without user or password; the secret's complete ARN, "
    f'holding JSON {{"{WEBHOOK_API_KEY_FIELD}": ...}} (apiKey) or {{"{WEBHOOK_USERNAME_FIELD}": ..., '
    f'"{WEBHOOK_PASSWORD_FIELD}": ...}} (basic); detailTypes among {", ".join(GATEWAY_DETAIL_TYPES)} '
    "(default: all); states lowercase words (detail.state); rateLimitPerSecond "
    f"{MIN_WEBHOOK_RATE_PER_SECOND} to {MAX_WEBHOOK_RATE_PER_SECOND} (default "
    f"{names.DEFAULT_WEBHOOK_RATE_PER_SECOND}); at most {MAX_WEBHOOKS} webhooks"
)
_EVENT_SOURCE_KEYS = ("bus", "pattern", "name")
_WEBHOOK_KEYS = ("name", "url", "auth", "detailTypes", "states", "referencePrefix", "rateLimitPerSecond")
_WEBHOOK_AUTH_KEYS = {
    WebhookAuthType.API_KEY: ("type", "header", "secretArn"),
    WebhookAuthType.BASIC: ("type", "secretArn"),
}


def _json_list(raw: Any, form: str, *, comma_separated: bool = False) -> list[Any]:
    """A list as cdk.json gives it, or as -c gives it: a JSON array (or a comma-separated list), none."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NONE_STRINGS:
            return []
        if text.startswith("[") or not comma_separated:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"not JSON: {form}") from None
        else:
            return [item.strip() for item in text.split(",")]
    if not isinstance(raw, list):
        raise ValueError(form)
    return raw


_COUNTRIES_FORM = "ISO 3166 codes (GR,CY), comma-separated or a JSON array, or * for every country"
_NUMBER_TYPES_FORM = "kinds of number, comma-separated or a JSON array, of: " + ", ".join(names.NUMBER_TYPES)


def _allowed_countries(raw: Any) -> tuple[str, ...]:
    countries = [str(item).strip().upper() for item in _json_list(raw, _COUNTRIES_FORM, comma_separated=True)]
    if not countries:
        raise ValueError(f"name at least one country: {_COUNTRIES_FORM}")
    if "*" in countries:
        if countries != ["*"]:
            raise ValueError(f"* stands alone: {_COUNTRIES_FORM}")
        return ("*",)
    bad = [country for country in countries if not re.fullmatch(r"[A-Z]{2}", country)]
    if bad:
        raise ValueError(f"{', '.join(bad[:5])} not ISO 3166 codes: {_COUNTRIES_FORM}")
    return tuple(dict.fromkeys(countries))


def _allowed_number_types(raw: Any) -> tuple[str, ...]:
    kinds = [str(item).strip() for item in _json_list(raw, _NUMBER_TYPES_FORM, comma_separated=True)]
    if not kinds:
        raise ValueError(f"name at least one kind: {_NUMBER_TYPES_FORM}")
    unknown = [kind for kind in kinds if kind not in names.NUMBER_TYPES]
    if unknown:
        raise ValueError(f"{', '.join(unknown[:5])} not kinds of number: {_NUMBER_TYPES_FORM}")
    return tuple(dict.fromkeys(kinds))


def _sns_sources(raw: Any) -> tuple[str, ...]:
    topics = _json_list(raw, _SNS_SOURCES_FORM, comma_separated=True)
    for topic in topics:
        if not isinstance(topic, str) or not _TOPIC_ARN_PATTERN.match(topic):
            raise ValueError(f"{topic!r} is not the ARN of a standard SNS topic: {_SNS_SOURCES_FORM}")
    if len(set(topics)) != len(topics):
        raise ValueError(f"a topic is named twice: {_SNS_SOURCES_FORM}")
    return tuple(topics)


def _event_sources(raw: Any) -> tuple[EventSource, ...]:
    entries = _json_list(raw, _EVENT_SOURCES_FORM)
    sources = tuple(_event_source(entry, position) for position, entry in enumerate(entries, start=1))
    source_names = [source.name for source in sources]
    if len(set(source_names)) != len(source_names):
        raise ValueError(
            f"a name is used twice (unnamed sources are named by position): {_EVENT_SOURCES_FORM}"
        )
    return sources


def _event_source(entry: Any, position: int) -> EventSource:
    where = f"source {position}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object: {_EVENT_SOURCES_FORM}")
    unknown = sorted(set(entry) - set(_EVENT_SOURCE_KEYS))
    if unknown or "bus" not in entry or "pattern" not in entry:
        problem = f"unknown keys {', '.join(unknown)}" if unknown else "bus and pattern are required"
        raise ValueError(f"{where}: {problem}: {_EVENT_SOURCES_FORM}")
    name = entry.get("name", str(position))
    if not isinstance(name, str) or not _SOURCE_NAME_PATTERN.match(name):
        raise ValueError(
            f"{where}: name {name!r} is not 1 to 20 lowercase letters, digits or -: {_EVENT_SOURCES_FORM}"
        )
    where = f"source {position} ({name})"
    bus = entry["bus"]
    if not isinstance(bus, str) or not (
        _EVENT_BUS_NAME_PATTERN.match(bus) or _EVENT_BUS_ARN_PATTERN.match(bus)
    ):
        raise ValueError(f"{where}: bus {bus!r} is not an event bus name or ARN: {_EVENT_SOURCES_FORM}")
    pattern = entry["pattern"]
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"{where}: pattern is not a non-empty object: {_EVENT_SOURCES_FORM}")
    unknown = sorted(set(pattern) - set(EVENT_PATTERN_FIELDS))
    if unknown:
        raise ValueError(
            f"{where}: pattern matches on {', '.join(unknown)}, which no event has: {_EVENT_SOURCES_FORM}"
        )
    _check_pattern_values(pattern, where)
    nested = sorted(field_name for field_name, value in pattern.items() if isinstance(value, dict))
    if nested not in ([], ["detail"]):
        raise ValueError(
            f"{where}: the pattern's {', '.join(nested)} is an object, but only detail has fields: "
            f"{_EVENT_SOURCES_FORM}"
        )
    sources = pattern.get("source", [])
    if names.EVENT_SOURCE in sources:
        raise ValueError(
            f"{where}: the pattern matches the gateway's own events (source {names.EVENT_SOURCE}), which "
            f"would come back to it as messages: {_EVENT_SOURCES_FORM}"
        )
    pattern_json = json.dumps(pattern, sort_keys=True, separators=(",", ":"))
    if len(pattern_json) > MAX_EVENT_PATTERN_LENGTH:
        raise ValueError(
            f"{where}: the pattern is {len(pattern_json)} characters long: {_EVENT_SOURCES_FORM}"
        )
    return EventSource(name=name, bus=bus, pattern_json=pattern_json)


def _check_pattern_values(pattern: dict[str, Any], where: str) -> None:
    # EventBridge's rule: what a field is matched against is an array (values or filters); a nested
    # field is an object of such arrays.
    for field_name, value in pattern.items():
        if isinstance(value, dict) and value:
            _check_pattern_values(value, where)
        elif not isinstance(value, list) or not value:
            raise ValueError(
                f"{where}: the pattern's {field_name!r} is neither a non-empty array nor an object of "
                f"them: {_EVENT_SOURCES_FORM}"
            )


def _webhooks(raw: Any) -> tuple[Webhook, ...]:
    entries = _json_list(raw, _WEBHOOKS_FORM)
    if len(entries) > MAX_WEBHOOKS:
        raise ValueError(f"{len(entries)} webhooks: {_WEBHOOKS_FORM}")
    webhooks = tuple(_webhook(entry, position) for position, entry in enumerate(entries, start=1))
    webhook_names = [webhook.name for webhook in webhooks]
    if len(set(webhook_names)) != len(webhook_names):
        raise ValueError(f"a name is used twice: {_WEBHOOKS_FORM}")
    return webhooks


def _webhook(entry: Any, position: int) -> Webhook:
    where = f"webhook {position}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object: {_WEBHOOKS_FORM}")
    unknown = sorted(set(entry) - set(_WEBHOOK_KEYS))
    missing = [key for key in ("name", "url", "auth") if key not in entry]
    if unknown or missing:
        problem = f"unknown keys {', '.join(unknown)}" if unknown else f"{', '.join(missing)} required"
        raise ValueError(f"{where}: {problem}: {_WEBHOOKS_FORM}")
    name = entry["name"]
    if not isinstance(name, str) or not _WEBHOOK_NAME_PATTERN.match(name):
        raise ValueError(f"{where}: name {name!r} is not a lowercase id: {_WEBHOOKS_FORM}")
    where = f"webhook {position} ({name})"
    detail_types = _strings(entry.get("detailTypes", list(GATEWAY_DETAIL_TYPES)), f"{where}: detailTypes")
    strangers = [detail_type for detail_type in detail_types if detail_type not in GATEWAY_DETAIL_TYPES]
    if strangers:
        raise ValueError(f"{where}: detailTypes {strangers} are not the gateway's: {_WEBHOOKS_FORM}")
    states = None
    if "states" in entry:
        states = _strings(entry["states"], f"{where}: states")
        if not all(_STATE_PATTERN.match(state) for state in states):
            raise ValueError(f"{where}: states are not all lowercase words: {_WEBHOOKS_FORM}")
    prefix = entry.get("referencePrefix")
    if prefix is not None and not (
        isinstance(prefix, str) and 0 < len(prefix) <= MAX_REFERENCE_PREFIX_LENGTH and prefix.isprintable()
    ):
        raise ValueError(
            f"{where}: referencePrefix is not 1 to {MAX_REFERENCE_PREFIX_LENGTH} printable characters: "
            f"{_WEBHOOKS_FORM}"
        )
    rate = entry.get("rateLimitPerSecond", names.DEFAULT_WEBHOOK_RATE_PER_SECOND)
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise ValueError(f"{where}: rateLimitPerSecond {rate!r} is not an integer: {_WEBHOOKS_FORM}")
    if not MIN_WEBHOOK_RATE_PER_SECOND <= rate <= MAX_WEBHOOK_RATE_PER_SECOND:
        raise ValueError(f"{where}: rateLimitPerSecond {rate} is out of range: {_WEBHOOKS_FORM}")
    return Webhook(
        name=name,
        url=_webhook_url(entry["url"], where),
        auth=_webhook_auth(entry["auth"], where),
        detail_types=tuple(detail_types),
        states=None if states is None else tuple(states),
        reference_prefix=prefix,
        rate_limit_per_second=rate,
    )


def _strings(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(item, str) and item for item in raw):
        raise ValueError(f"{where} is not a non-empty list of non-empty strings: {_WEBHOOKS_FORM}")
    if len(set(raw)) != len(raw):
        raise ValueError(f"{where} names a value twice: {_WEBHOOKS_FORM}")
    return list(raw)


def _webhook_url(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("https://"):
        raise ValueError(
            f"{where}: url is not an https:// URL (events carry phone numbers): {_WEBHOOKS_FORM}"
        )
    if any(character.isspace() or not character.isprintable() for character in raw):
        raise ValueError(f"{where}: url holds whitespace or control characters: {_WEBHOOKS_FORM}")
    parts = urlsplit(raw)
    if "@" in parts.netloc:
        raise ValueError(
            f"{where}: url holds a user or password, which belong in the secret (auth): {_WEBHOOKS_FORM}"
        )
    if not parts.hostname:
        raise ValueError(f"{where}: url has no host: {_WEBHOOKS_FORM}")
    if len(raw) > MAX_WEBHOOK_URL_LENGTH or not _WEBHOOK_URL_PATTERN.match(raw):
        raise ValueError(
            f"{where}: url is longer than {MAX_WEBHOOK_URL_LENGTH} characters or holds characters "
            f"EventBridge refuses (a #fragment; percent-encode the others): {_WEBHOOKS_FORM}"
        )
    return raw


def _webhook_auth(raw: Any, where: str) -> WebhookAuth:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: auth is not an object: {_WEBHOOKS_FORM}")
    try:
        auth_type = WebhookAuthType(str(raw.get("type")))
    except ValueError:
        raise ValueError(
            f"{where}: auth type {raw.get('type')!r} is not one of "
            f"{', '.join(member.value for member in WebhookAuthType)}: {_WEBHOOKS_FORM}"
        ) from None
    allowed = _WEBHOOK_AUTH_KEYS[auth_type]
    unknown = sorted(set(raw) - set(allowed))
    missing = [key for key in allowed if key not in raw]
    if unknown or missing:
        problem = f"unknown keys {', '.join(unknown)}" if unknown else f"{', '.join(missing)} required"
        raise ValueError(f"{where}: auth ({auth_type.value}): {problem}: {_WEBHOOKS_FORM}")
    secret_arn = raw["secretArn"]
    if not isinstance(secret_arn, str) or not _SECRET_ARN_PATTERN.match(secret_arn):
        raise ValueError(
            f"{where}: auth secretArn is not the complete ARN of a Secrets Manager secret (with its "
            f"6-character suffix): {_WEBHOOKS_FORM}"
        )
    header = raw.get("header")
    if auth_type is WebhookAuthType.API_KEY and not (
        isinstance(header, str) and _HEADER_NAME_PATTERN.match(header)
    ):
        raise ValueError(f"{where}: auth header {header!r} is not an HTTP header name: {_WEBHOOKS_FORM}")
    return WebhookAuth(type=auth_type, secret_arn=secret_arn, header=header)


def _rollout(raw: Any) -> str:
    value = str(raw)
    if value not in ROLLOUTS:
        raise ValueError(f"expected one of {', '.join(ROLLOUTS)}")
    return value


def _topic_arn(raw: Any) -> str:
    value = str(raw)
    if not _TOPIC_ARN_PATTERN.match(value):
        raise ValueError("expected the ARN of an SNS topic (arn:aws:sns:<region>:<account>:<name>)")
    return value


def _email(raw: Any) -> str:
    value = str(raw)
    if not _EMAIL_PATTERN.match(value):
        raise ValueError("expected an e-mail address")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE_STRINGS:
        return True
    if value in _FALSE_STRINGS:
        return False
    raise ValueError("expected true or false")


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise TypeError("expected an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        return int(raw)
    raise ValueError("expected an integer")
