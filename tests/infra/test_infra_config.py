"""The context keys: defaults, the string forms `-c` gives, and clear errors (no synthesis)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway import names
from infra.config import AuthMode, ConfigError, GatewayConfig


def test_defaults_are_the_production_ones() -> None:
    # Given no context at all
    # When the configuration is read
    config = GatewayConfig.from_context({})

    # Then every value is the documented default
    assert config == GatewayConfig()
    assert config.stage == "prod"
    assert config.stack_name == f"{names.STACK_NAME}-prod"
    assert config.provider_base_url == names.PRODUCTION_PROVIDER_BASE_URL
    assert config.token_secret_arn is None
    assert config.auth_mode is AuthMode.API_KEY
    assert config.queue_max_concurrency == names.QUEUE_MAX_CONCURRENCY
    assert config.alarm_email is None
    assert config.placeholder_layer is False


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
        ({"auth_mode": "iam"}, "did you mean 'authMode'"),
        ({"QueueMaxConcurrency": "3"}, "did you mean 'queueMaxConcurrency'"),
    ],
)
def test_invalid_values_stop_with_a_message_naming_the_key(context: dict[str, Any], message: str) -> None:
    # Given a context with one wrong or misspelled key
    # When the configuration is read
    # Then it fails with a message that says which key and what it accepts
    with pytest.raises(ConfigError, match=re.escape(message)):
        GatewayConfig.from_context(context)


def test_cdk_own_context_keys_are_left_alone() -> None:
    # Given the feature flags and lookups CDK keeps in the context
    context = {"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:enable-path-metadata": True}

    # When the configuration is read
    # Then they neither fail nor change anything
    assert GatewayConfig.from_context(context) == GatewayConfig()
