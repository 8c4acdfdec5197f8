"""The token: read from Secrets Manager, cached for max_age, refreshed once on a token error."""

from __future__ import annotations

import json
import time

import boto3

from gateway import names
from tests.conftest import TEST_TOKEN, reset_process_caches
from tests.integration.test_api_send import post, valid_im

NEW_TOKEN = "0ddba11feed5c0de0000111122223333deadc0de"


def rotate_secret(value: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=names.TOKEN_SECRET_NAME, SecretString=value)


def test_a_rotated_token_is_used_after_max_age(gateway_env, lambda_context, monkeypatch) -> None:
    # Given a one-second cache and a provider that accepts both tokens
    monkeypatch.setenv(names.ENV_TOKEN_MAX_AGE_SECONDS, "1")
    reset_process_caches()
    gateway_env.set_tokens({TEST_TOKEN, NEW_TOKEN})
    assert post(valid_im(), lambda_context)[0] == 200

    # When the secret changes (raw token this time, not JSON)
    rotate_secret(NEW_TOKEN)
    assert post(valid_im(), lambda_context)[0] == 200  # still within max_age: cached token
    time.sleep(1.2)
    assert post(valid_im(), lambda_context)[0] == 200

    # Then the old token served until max_age passed, and the new one after it
    used = [entry.payload["apitoken"] for entry in gateway_env.ledger]
    assert used == [TEST_TOKEN, TEST_TOKEN, NEW_TOKEN]


def test_a_token_error_triggers_one_refresh_and_one_retry(gateway_env, lambda_context) -> None:
    # Given a cached token, then a rotation the cache has not seen (max_age is 300 s)
    assert post(valid_im(), lambda_context)[0] == 200
    rotate_secret(json.dumps({"apitoken": NEW_TOKEN}))
    gateway_env.set_tokens({NEW_TOKEN})

    # When the next message is posted
    status, _, body = post(valid_im(), lambda_context)

    # Then the provider refused the old token once, and the retry with the new one was sent
    assert status == 200, body
    tokens_seen = [request["apitoken"] for request in gateway_env.requests]
    assert tokens_seen == [TEST_TOKEN, TEST_TOKEN, NEW_TOKEN]
    assert [entry.payload["apitoken"] for entry in gateway_env.ledger] == [TEST_TOKEN, NEW_TOKEN]


def test_a_non_token_rejection_is_not_retried(gateway_env, lambda_context) -> None:
    from sandbox import Fault

    # Given a provider that rejects the sender
    gateway_env.add_fault(Fault(kind="error_code", code=56))

    # When posted, then it fails once, with no retry
    assert post(valid_im(), lambda_context)[0] == 422
    assert len(gateway_env.requests) == 1
