"""The provider token: read from Secrets Manager through Powertools parameters, cached for `max_age`."""

from __future__ import annotations

import json
from typing import Any, cast

from aws_lambda_powertools.utilities import parameters

from gateway.aws import aws_client
from gateway.failures import Failure, GatewayError
from gateway.observability import logger


class TokenSource:
    """Gives the provider token, fetching the secret again once its cached copy is `max_age` old.

    The secret holds the raw token or JSON `{"apitoken": "..."}`.
    """

    def __init__(self, secret_id: str, max_age_seconds: int) -> None:
        self.secret_id = secret_id
        self.max_age_seconds = max_age_seconds
        # Its boto3 client is made here: get_sender() makes the token source on first use, not at import.
        self._secrets = parameters.SecretsProvider(boto3_client=aws_client("secretsmanager"))

    @property
    def client(self) -> Any:
        """The Secrets Manager client (priming calls it without sending; gateway.sending.priming)."""
        return self._secrets.client

    def is_cached(self) -> bool:
        """Whether a token is held in this process (never before a SnapStart snapshot)."""
        return bool(self._secrets.store)

    def forget(self) -> None:
        """Drop the cached token (a process restored from a snapshot reads the secret anew)."""
        self._secrets.clear_cache()  # type: ignore[no-untyped-call]

    def get(self, *, refresh: bool = False) -> str:
        """The token; `refresh=True` bypasses the cache (after the provider refused the token)."""
        try:
            raw = self._secrets.get(self.secret_id, max_age=self.max_age_seconds, force_fetch=refresh)
        except parameters.exceptions.GetParameterError as error:
            # The boto error names the secret and the reason, never its value.
            logger.error("provider token secret unreadable", extra={"reason": str(error)})
            raise GatewayError(Failure.MISCONFIGURED, "The provider token secret cannot be read.") from None
        # Without a transform the value is the secret's string (or binary) as stored.
        return parse_token(cast(str | bytes | None, raw))


def parse_token(raw: str | bytes | None) -> str:
    """Extract the token from a secret value; the error never quotes the value."""
    text = raw.decode() if isinstance(raw, bytes) else (raw or "")
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        token = document.get("apitoken") if isinstance(document, dict) else None
        text = token.strip() if isinstance(token, str) else ""
        if not text:
            raise GatewayError(
                Failure.MISCONFIGURED, 'The provider token secret is JSON without a non-empty "apitoken".'
            )
    if not text:
        raise GatewayError(Failure.MISCONFIGURED, "The provider token secret is empty.")
    return text
