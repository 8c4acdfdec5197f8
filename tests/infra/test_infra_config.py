"""The context keys: defaults, the string forms `-c` gives, and clear errors (no synthesis)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway import names
from infra.config import AuthMode, ConfigError, GatewayConfig, SendWindow
from tests.infra.synth import cdk_json_context

ALARM_EMAIL = {"alarmEmail": "ops@example.com"}


def test_defaults_are_the_production_ones() -> None:
    # Given no context but the alarm e-mail prod requires
    # When the configuration is read
    config = GatewayConfig.from_context(ALARM_EMAIL)

    # Then every other value is the documented default
    assert config == GatewayConfig(alarm_email="ops@example.com")
    assert config.stage == "prod"
    assert config.stack_name == f"{names.STACK_NAME}-prod"
    assert config.provider_base_url == names.PRODUCTION_PROVIDER_BASE_URL
    assert config.token_secret_arn is None
    assert config.auth_mode is AuthMode.API_KEY
    assert config.queue_max_concurrency == names.QUEUE_MAX_CONCURRENCY
    assert config.alarm_topic_arn is None
    assert config.placeholder_layer is False
    assert config.lambda_python_version == cdk_json_context()["lambdaPythonVersion"]
    assert config.api_reserved_concurrency == 40
    assert config.low_balance_euros == 10
    assert config.snap_start is True
    assert config.auto_suppress_after_failures == names.DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES == 3
    assert config.schedule_horizon_days == names.DEFAULT_SCHEDULE_HORIZON_DAYS == 30
    assert config.send_window is None
    # And prod is protected, rolled out by canary, and counts in its own metric namespace
    assert config.protected is True
    assert config.rollout_strategy == "canary-10-percent-5-minutes"
    assert config.metrics_namespace == "ViberGateway/prod"


def test_other_stages_default_to_unprotected_all_at_once_in_their_own_namespace() -> None:
    # Given another stage, without any alarm subscriber
    # When the configuration is read
    config = GatewayConfig.from_context({"stage": "dev"})

    # Then it is accepted (synthesis only warns), unprotected, rolled out at once, counted apart
    assert config.alarm_subscribed is False
    assert config.protected is False
    assert config.rollout_strategy == "all-at-once"
    assert config.metrics_namespace == "ViberGateway/dev"


def test_protection_and_rollout_can_be_chosen_for_any_stage() -> None:
    # Given a dev stage asking for protection and a canary, and prod asking for neither
    dev = GatewayConfig.from_context(
        {"stage": "dev", "protect": "true", "rollout": "linear-10-percent-every-1-minute"}
    )
    prod = GatewayConfig.from_context({**ALARM_EMAIL, "protect": "false", "rollout": "all-at-once"})

    # Then each gets what it asked for
    assert (dev.protected, dev.rollout_strategy) == (True, "linear-10-percent-every-1-minute")
    assert (prod.protected, prod.rollout_strategy) == (False, "all-at-once")


@pytest.mark.parametrize(
    "subscriber",
    [{"alarmEmail": "ops@example.com"}, {"alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:pager"}],
)
def test_prod_needs_someone_to_alert(subscriber: dict[str, str]) -> None:
    # Given prod without any alarm subscriber
    # When the configuration is read
    # Then it stops with a message saying which keys give one
    with pytest.raises(ConfigError, match=r"stage 'prod' has nobody to tell when an alarm fires.*alarmEmail"):
        GatewayConfig.from_context({})
    # And either a mailbox or an existing topic is enough
    assert GatewayConfig.from_context(subscriber).alarm_subscribed


@pytest.mark.parametrize(("raw", "expected"), [("none", None), ("unreserved", None), ("100", 100), (7, 7)])
def test_the_api_concurrency_cap_can_be_changed_or_lifted(raw: Any, expected: int | None) -> None:
    # Given apiReservedConcurrency as -c or cdk.json gives it
    # When the configuration is read
    config = GatewayConfig.from_context({**ALARM_EMAIL, "apiReservedConcurrency": raw})

    # Then the cap is that number, or none at all
    assert config.api_reserved_concurrency == expected


@pytest.mark.parametrize(("raw", "expected"), [("none", None), ("off", None), ("25.5", 25.5), (50, 50.0)])
def test_the_balance_threshold_can_be_changed_or_turned_off(raw: Any, expected: float | None) -> None:
    config = GatewayConfig.from_context({**ALARM_EMAIL, "lowBalanceEuros": raw})
    assert config.low_balance_euros == expected


def test_string_values_from_the_command_line_are_parsed() -> None:
    # Given values as `cdk deploy -c key=value` passes them: all strings
    context = {
        "stage": "dev",
        "providerBaseUrl": "https://provider.example.com/api",
        "tokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-AbCdEf",
        "authMode": "iam",
        "throttleRate": "12.5",
        "throttleBurst": "30",
        "queueMaxConcurrency": "10",
        "alarmEmail": "ops@example.com",
        "logRetentionDays": "14",
        "placeholderLayer": "true",
        "lambdaPythonVersion": "3.12",
        "protect": "false",
        "apiReservedConcurrency": "10",
        "rollout": "canary-10-percent-15-minutes",
        "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:pager",
        "lowBalanceEuros": "12.5",
        "snapStart": "false",
        "autoSuppressAfterFailures": "5",
        "scheduleHorizonDays": "60",
        "sendWindow": '{"from": "08:30", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"]}',
    }

    # When the configuration is read
    config = GatewayConfig.from_context(context)

    # Then each is converted to its type
    assert config == GatewayConfig(
        stage="dev",
        provider_base_url="https://provider.example.com/api/",  # the client joins paths to it
        token_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-AbCdEf",
        auth_mode=AuthMode.IAM,
        throttle_rate=12.5,
        throttle_burst=30,
        queue_max_concurrency=10,
        alarm_email="ops@example.com",
        log_retention_days=14,
        placeholder_layer=True,
        lambda_python_version="3.12",
        protect=False,
        api_reserved_concurrency=10,
        rollout="canary-10-percent-15-minutes",
        alarm_topic_arn="arn:aws:sns:eu-west-1:123456789012:pager",
        low_balance_euros=12.5,
        snap_start=False,
        auto_suppress_after_failures=5,
        schedule_horizon_days=60,
        send_window=SendWindow("08:30", "20:00", ("mon", "tue", "wed", "thu", "fri")),
    )
    assert config.physical_name(names.QUEUE_NAME) == f"{names.QUEUE_NAME}-dev"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "Prod"}, "'stage'"),
        ({"stage": "a" * 21}, "'stage'"),
        ({"providerBaseUrl": "http://sms.liveall.eu/apiext/Sendout/"}, "https:// URL"),
        ({"tokenSecretArn": "viber-gateway/provider-token"}, "complete ARN"),
        (
            {"tokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token"},
            "6-character suffix",
        ),
        ({"authMode": "cognito"}, "api_key, iam"),
        ({"throttleRate": "0"}, "greater than 0"),
        ({"throttleBurst": "1.5"}, "'throttleBurst'"),
        ({"queueMaxConcurrency": "1"}, "from 2 to 1000"),
        ({"queueMaxConcurrency": True}, "'queueMaxConcurrency'"),
        ({"alarmEmail": "ops"}, "e-mail address"),
        ({"logRetentionDays": "45"}, "retention periods"),
        ({"placeholderLayer": "maybe"}, "true or false"),
        ({"lambdaPythonVersion": "3.13.1"}, "minor version such as 3.13"),
        ({"protect": "sometimes"}, "'protect'"),
        ({"apiReservedConcurrency": "0"}, "from 1 to 1000, or none"),
        ({"apiReservedConcurrency": "1001"}, "from 1 to 1000, or none"),
        ({"rollout": "canary"}, "all-at-once, canary-10-percent-5-minutes"),
        ({"alarmTopicArn": "oncall"}, "ARN of an SNS topic"),
        ({"lowBalanceEuros": "0"}, "euros greater than 0"),
        ({"lowBalanceEuros": "-5"}, "euros greater than 0"),
        ({"lowBalanceEuros": "nan"}, "euros greater than 0"),
        ({"lowBalanceEuros": "ten"}, "'lowBalanceEuros'"),
        ({"lowBalanceEuros": True}, "'lowBalanceEuros'"),
        ({"snapStart": "maybe"}, "context key 'snapStart': expected true or false (got 'maybe')"),
        ({"snapStart": 1.5}, "'snapStart'"),
        ({"autoSuppressAfterFailures": "-1"}, "context key 'autoSuppressAfterFailures': expected an integer"),
        ({"autoSuppressAfterFailures": -1}, "'autoSuppressAfterFailures'"),
        ({"autoSuppressAfterFailures": "101"}, "'autoSuppressAfterFailures'"),
        ({"autoSuppressAfterFailures": 1000}, "from 0 (never suppress a number automatically) to 100"),
        ({"autoSuppressAfterFailures": "three"}, "'autoSuppressAfterFailures'"),
        ({"autoSuppressAfterFailures": "2.5"}, "'autoSuppressAfterFailures'"),
        ({"autoSuppressAfterFailures": True}, "'autoSuppressAfterFailures'"),
        ({"auto_suppress_after_failures": "3"}, "did you mean 'autoSuppressAfterFailures'"),
        ({"lambda_python_version": "3.12"}, "did you mean 'lambdaPythonVersion'"),
        ({"auth_mode": "iam"}, "did you mean 'authMode'"),
        ({"snap_start": "false"}, "did you mean 'snapStart'"),
        ({"SnapStart": "false"}, "did you mean 'snapStart'"),
        ({"QueueMaxConcurrency": "3"}, "did you mean 'queueMaxConcurrency'"),
        ({"scheduleHorizonDays": "0"}, "from 1 to 365"),
        ({"scheduleHorizonDays": 400}, "'scheduleHorizonDays'"),
        ({"sendWindow": "always"}, "context key 'sendWindow': not JSON"),
        ({"sendWindow": {"from": "09:00", "to": "09:00"}}, "'sendWindow'"),
        ({"SendWindow": "none"}, "did you mean 'sendWindow'"),
        ({"schedule-horizon-days": "7"}, "did you mean 'scheduleHorizonDays'"),
    ],
)
def test_invalid_values_stop_with_a_message_naming_the_key(context: dict[str, Any], message: str) -> None:
    # Given a context with one wrong or misspelled key (and prod's required alarm e-mail)
    # When the configuration is read
    # Then it fails with a message that says which key and what it accepts
    with pytest.raises(ConfigError, match=re.escape(message)):
        GatewayConfig.from_context({**ALARM_EMAIL, **context})


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("no", False), (False, False), ("1", True)])
def test_snapstart_can_be_turned_off(raw: Any, expected: bool) -> None:
    # Given snapStart as -c or cdk.json gives it
    # When the configuration is read
    config = GatewayConfig.from_context({**ALARM_EMAIL, "snapStart": raw})

    # Then SnapStart is on or off as asked
    assert config.snap_start is expected


def test_snapstart_needs_a_runtime_that_has_it() -> None:
    # Given a Python runtime older than 3.12, which Lambda offers no SnapStart for
    old_runtime = {**ALARM_EMAIL, "lambdaPythonVersion": "3.11"}

    # When the configuration is read with SnapStart on (the default)
    # Then it stops with a message naming both keys and the way out
    message = r"'snapStart'.*python3\.12 and newer.*lambdaPythonVersion is 3\.11.*snapStart=false"
    with pytest.raises(ConfigError, match=message):
        GatewayConfig.from_context(old_runtime)
    # And with SnapStart off that runtime is accepted
    assert GatewayConfig.from_context({**old_runtime, "snapStart": "false"}).snap_start is False


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0), (0, 0), ("1", 1), (7, 7), ("100", 100), (100.0, 100)]
)
def test_automatic_suppression_can_be_tuned_or_turned_off(raw: Any, expected: int) -> None:
    # Given autoSuppressAfterFailures as -c (a string) or cdk.json (a number) gives it
    # When the configuration is read
    config = GatewayConfig.from_context({**ALARM_EMAIL, "autoSuppressAfterFailures": raw})

    # Then delivery tracking suppresses after that many failures in a row; 0 never
    assert config.auto_suppress_after_failures == expected


def test_cdk_own_context_keys_are_left_alone() -> None:
    # Given the feature flags and lookups CDK keeps in the context
    context = {"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:enable-path-metadata": True}

    # When the configuration is read
    # Then they neither fail nor change anything
    assert GatewayConfig.from_context({**ALARM_EMAIL, **context}) == GatewayConfig.from_context(ALARM_EMAIL)


def test_the_readme_lists_every_context_key() -> None:
    from infra.config import CONTEXT_KEYS
    from tests.infra.synth import REPO

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| key | default | meaning |") :]
    listed = re.findall(r"^\| `([A-Za-z]+)` \|", table.split("\n\n")[0], flags=re.MULTILINE)
    assert sorted(listed) == sorted(CONTEXT_KEYS)
