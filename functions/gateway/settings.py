"""Settings: the one place that reads the environment, validated once per process."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from gateway import names


class Settings(BaseModel):
    """What the functions need from their environment."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", hide_input_in_errors=True)

    provider_base_url: HttpUrl = Field(validation_alias=names.ENV_PROVIDER_BASE_URL)
    token_secret_id: str = Field(validation_alias=names.ENV_PROVIDER_TOKEN_SECRET, min_length=1)
    token_max_age_seconds: int = Field(
        default=names.DEFAULT_TOKEN_MAX_AGE_SECONDS,
        validation_alias=names.ENV_TOKEN_MAX_AGE_SECONDS,
        ge=0,
        le=86_400,
    )
    connect_timeout_seconds: float = Field(
        default=names.DEFAULT_PROVIDER_CONNECT_TIMEOUT_SECONDS,
        validation_alias=names.ENV_PROVIDER_CONNECT_TIMEOUT,
        gt=0,
    )
    read_timeout_seconds: float = Field(
        default=names.DEFAULT_PROVIDER_READ_TIMEOUT_SECONDS,
        validation_alias=names.ENV_PROVIDER_READ_TIMEOUT,
        gt=0,
    )
    idempotency_table: str = Field(
        default=names.IDEMPOTENCY_TABLE_NAME, validation_alias=names.ENV_IDEMPOTENCY_TABLE, min_length=1
    )
    idempotency_window_seconds: int = Field(
        default=names.DEFAULT_IDEMPOTENCY_WINDOW_SECONDS,
        validation_alias=names.ENV_IDEMPOTENCY_WINDOW_SECONDS,
        ge=60,
        le=30 * 86_400,
    )
    # Where the queue consumer parks records that must not be retried; without it they
    # take the queue's own redrive after maxReceiveCount.
    dead_letter_queue_url: str | None = Field(default=None, validation_alias=names.ENV_DEAD_LETTER_QUEUE_URL)
    provider_chunk_size: int = Field(
        default=names.DEFAULT_PROVIDER_CHUNK_SIZE,
        validation_alias=names.ENV_PROVIDER_CHUNK_SIZE,
        ge=1,
        le=10_000,
    )
    provider_max_concurrency: int = Field(
        default=names.DEFAULT_PROVIDER_MAX_CONCURRENCY,
        validation_alias=names.ENV_PROVIDER_MAX_CONCURRENCY,
        ge=1,
        le=32,
    )
    queue_record_concurrency: int = Field(
        default=names.DEFAULT_QUEUE_RECORD_CONCURRENCY,
        validation_alias=names.ENV_QUEUE_RECORD_CONCURRENCY,
        ge=1,
        le=10,
    )
    metrics_namespace: str = Field(
        default=names.DEFAULT_METRICS_NAMESPACE, validation_alias=names.ENV_METRICS_NAMESPACE
    )
    # Delivery tracking: without a table, sends are not recorded and the tracker has nothing to do.
    tracking_table: str | None = Field(default=None, validation_alias=names.ENV_TRACKING_TABLE, min_length=1)
    # Where a send keeps the tracking records the table refused, for the tracker to write later.
    tracking_backlog_queue_url: str | None = Field(
        default=None, validation_alias=names.ENV_TRACKING_BACKLOG_QUEUE_URL, min_length=1
    )
    tracking_window_seconds: int = Field(
        default=names.DEFAULT_TRACKING_WINDOW_SECONDS,
        validation_alias=names.ENV_TRACKING_WINDOW_SECONDS,
        ge=60,
        le=30 * 86_400,
    )
    # How often a young message is polled; locally a few seconds, deployed the schedule's minute.
    tracking_poll_seconds: int = Field(
        default=names.DEFAULT_TRACKING_POLL_SECONDS,
        validation_alias=names.ENV_TRACKING_POLL_SECONDS,
        ge=1,
        le=3600,
    )
    status_batch_size: int = Field(
        default=names.DEFAULT_STATUS_BATCH_SIZE, validation_alias=names.ENV_STATUS_BATCH_SIZE, ge=1, le=1000
    )
    queue_url: str | None = Field(default=None, validation_alias=names.ENV_QUEUE_URL)
    reconcile_grace_seconds: int = Field(
        default=names.DEFAULT_RECONCILE_GRACE_SECONDS,
        validation_alias=names.ENV_RECONCILE_GRACE_SECONDS,
        ge=0,
        le=86_400,
    )
    reconcile_skew_seconds: int = Field(
        default=names.DEFAULT_RECONCILE_SKEW_SECONDS,
        validation_alias=names.ENV_RECONCILE_SKEW_SECONDS,
        ge=0,
        le=3600,
    )
    # ISO 3166 codes, comma-separated in the environment ("GR,CY").
    prime_countries: tuple[str, ...] = Field(
        default=names.DEFAULT_PRIME_COUNTRIES, validation_alias=names.ENV_PRIME_COUNTRIES
    )
    # The suppression list: without a table, sends go to every number they name.
    suppression_table: str | None = Field(
        default=None, validation_alias=names.ENV_SUPPRESSION_TABLE, min_length=1
    )
    auto_suppress_after_failures: int = Field(
        default=names.DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES,
        validation_alias=names.ENV_AUTO_SUPPRESS_AFTER_FAILURES,
        ge=0,
        le=100,
    )
    # Scheduled sends: without a table, send_at and send windows are refused as misconfigured.
    schedule_table: str | None = Field(default=None, validation_alias=names.ENV_SCHEDULE_TABLE, min_length=1)
    schedule_group: str = Field(
        default=names.SCHEDULE_GROUP_NAME, validation_alias=names.ENV_SCHEDULE_GROUP, min_length=1
    )
    schedule_queue_url: str | None = Field(default=None, validation_alias=names.ENV_SCHEDULE_QUEUE_URL)
    schedule_queue_arn: str | None = Field(default=None, validation_alias=names.ENV_SCHEDULE_QUEUE_ARN)
    scheduler_role_arn: str | None = Field(default=None, validation_alias=names.ENV_SCHEDULER_ROLE_ARN)
    scheduler_dead_letter_arn: str | None = Field(
        default=None, validation_alias=names.ENV_SCHEDULER_DEAD_LETTER_ARN
    )
    schedule_horizon_days: int = Field(
        default=names.DEFAULT_SCHEDULE_HORIZON_DAYS,
        validation_alias=names.ENV_SCHEDULE_HORIZON_DAYS,
        ge=1,
        le=names.MAX_SCHEDULE_HORIZON_DAYS,
    )
    # The stage's default send window (gateway.fields.SendWindow), JSON in the environment.
    send_window: Any = Field(default=None, validation_alias=names.ENV_SEND_WINDOW)
    # make run only: the schedules' clock runs clock_scale times faster from clock_origin.
    clock_scale: float = Field(default=1.0, validation_alias=names.ENV_CLOCK_SCALE, ge=1, le=1_000_000)
    clock_origin: float | None = Field(default=None, validation_alias=names.ENV_CLOCK_ORIGIN, ge=0)
    # The destination policy (gateway.guard.policy); None: no check.
    allowed_countries: tuple[str, ...] | None = Field(
        default=None, validation_alias=names.ENV_ALLOWED_COUNTRIES
    )
    allowed_number_types: tuple[str, ...] | None = Field(
        default=None, validation_alias=names.ENV_ALLOWED_NUMBER_TYPES
    )
    # Caps (gateway.guard.caps): without a usage table nothing is counted.
    usage_table: str | None = Field(default=None, validation_alias=names.ENV_USAGE_TABLE, min_length=1)
    daily_message_limit: int | None = Field(
        default=None, validation_alias=names.ENV_DAILY_MESSAGE_LIMIT, ge=0
    )
    daily_cost_limit_euros: float | None = Field(
        default=None, validation_alias=names.ENV_DAILY_COST_LIMIT_EUROS, ge=0
    )
    daily_spend_ceiling_euros: float | None = Field(
        default=None, validation_alias=names.ENV_DAILY_SPEND_CEILING_EUROS, ge=0
    )
    stage_time_zone: str = Field(
        default=names.DEFAULT_STAGE_TIME_ZONE, validation_alias=names.ENV_STAGE_TIME_ZONE
    )
    low_balance_euros: float | None = Field(default=None, validation_alias=names.ENV_LOW_BALANCE_EUROS, ge=0)
    # Without a bus, no events are published (the rest works the same).
    event_bus_name: str | None = Field(default=None, validation_alias=names.ENV_EVENT_BUS_NAME, min_length=1)

    @field_validator("allowed_countries", "allowed_number_types", mode="before")
    @classmethod
    def _policy_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
            if not value:
                raise ValueError("must name at least one (or * for every country)")
        return value

    @field_validator("allowed_countries")
    @classmethod
    def _allowed_countries(cls, countries: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if countries is None or countries == ("*",):
            return countries
        import phonenumbers

        upper = tuple(country.upper() for country in countries)
        unknown = [code for code in upper if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"not ISO 3166 codes phonenumbers knows: {', '.join(unknown[:5])}")
        return upper

    @field_validator("allowed_number_types")
    @classmethod
    def _allowed_types(cls, types: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [kind for kind in types or () if kind not in names.NUMBER_TYPES]
        if unknown:
            known = ", ".join(names.NUMBER_TYPES)
            raise ValueError(f"not kinds of number: {', '.join(unknown[:5])} (known: {known})")
        return types

    @field_validator("prime_countries", mode="before")
    @classmethod
    def _country_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().upper() for part in value.split(",") if part.strip()]
        return value

    @field_validator("prime_countries")
    @classmethod
    def _known_countries(cls, countries: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers

        unknown = [code for code in countries if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"not ISO 3166 codes phonenumbers knows: {', '.join(unknown[:5])}")
        return countries

    @field_validator("send_window", mode="before")
    @classmethod
    def _window(cls, value: object) -> object:
        if value is None or value == "":
            return None
        # The request's own model, loaded only where a stage sets a default window.
        from gateway.fields import SendWindow

        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('must be JSON: {"from": "09:00", "to": "21:00"}') from None
        try:
            return SendWindow.model_validate(value)
        except ValidationError as error:
            raise ValueError("; ".join(str(e["msg"]) for e in error.errors())) from None

    @field_validator("stage_time_zone")
    @classmethod
    def _time_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone, such as Europe/Athens") from None
        return zone

    @field_validator("provider_base_url")
    @classmethod
    def _ends_with_slash(cls, url: HttpUrl) -> HttpUrl:
        # Endpoints are joined onto the base ("SendIM"), so the base must be a folder.
        if not str(url).endswith("/"):
            return HttpUrl(str(url) + "/")
        return url

    @property
    def send_im_url(self) -> str:
        return self.provider_url("SendIM")

    def provider_url(self, endpoint: str) -> str:
        return f"{self.provider_base_url}{endpoint}"


class SettingsError(Exception):
    """The environment does not describe a usable configuration."""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; the error names the variables, never their values."""
    source = os.environ if environ is None else environ
    try:
        return Settings.model_validate(dict(source))
    except ValidationError as error:
        problems = "; ".join(f"{_env_name(e['loc'])}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"invalid environment: {problems}") from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (a Lambda's cold start)."""
    return load_settings()


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return alias if isinstance(alias, str) else field
