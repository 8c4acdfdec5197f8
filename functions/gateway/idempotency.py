"""Exactly once: a send is made at most once per idempotency key within the window.

Powertools idempotency on the DynamoDB table from the stack. The key is the
caller's `Idempotency-Key` (API), the record's `IdempotencyKey` attribute or
`idempotency_key` field (queue), or else the SQS message id. Explicit keys
share one namespace across the API and the queue.

What is stored decides what a retry sees: a sent message's answer, or the
outcome-unknown problem (so a retry never re-sends what may have been sent).
Failures where nothing was sent are not stored, so a retry may send.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway import names
from gateway.aws import aws_session
from gateway.failures import Failure, GatewayError
from gateway.observability import logger
from gateway.request import FieldError, SendRequest
from gateway.send import Sender, get_sender
from gateway.settings import get_settings

MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x20-\x7e]+$"  # printable ASCII, as HTTP header values are
_KEY = re.compile(KEY_PATTERN)
_REPLAY_MARK = "__replayed"
_STORED_PROBLEM = "problem"
# How long a caller should wait before asking again while the first send runs.
IN_PROGRESS_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a send: the outcome's body, and whether it was replayed from the store."""

    body: dict[str, Any]
    replayed: bool


def explicit_key(key: str, *, source: str) -> str:
    """The store key for a caller-given key, after checking it; GatewayError naming `source` if unusable."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise GatewayError(
            Failure.INVALID_REQUEST,
            "The idempotency key is not usable; see errors.",
            errors=[
                FieldError(
                    source,
                    f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                )
            ],
        )
    return f"key:{key}"


def message_id_key(message_id: str) -> str:
    return f"sqs-message:{message_id}"


class IdempotentSender:
    """Wraps a Sender so that each key sends at most once within the window."""

    def __init__(self, sender: Sender, table_name: str, window_seconds: int) -> None:
        self.sender = sender
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="payload",
            expires_after_seconds=window_seconds,
            response_hook=_mark_replayed,
        )
        # The persistence layer builds its boto3 client when made: do it on first use, not at import.
        self.table_name = table_name
        self._send_once: Callable[..., dict[str, Any]] | None = None

    def send(
        self,
        request: SendRequest,
        *,
        key: str,
        lambda_context: LambdaContext | None = None,
        seconds_left: Callable[[], float] | None = None,
    ) -> Answer:
        """Send unless `key` was already used; raises GatewayError as the taxonomy says."""
        if lambda_context is not None:
            self.config.register_lambda_context(lambda_context)
        job = {"key": key, "payload": request.model_dump(mode="json", exclude_none=True)}
        try:
            stored = self._idempotent()(job=job, request=request, seconds_left=seconds_left)
        except IdempotencyValidationError:
            raise GatewayError(
                Failure.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was used for a different message; use a new key for a new message.",
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise GatewayError(
                Failure.IN_PROGRESS,
                "A send with this idempotency key is still in progress; ask again shortly.",
                retry_after=IN_PROGRESS_RETRY_AFTER_SECONDS,
            ) from None
        except IdempotencyPersistenceLayerError as error:
            logger.error("idempotency store unavailable", extra={"reason": type(error.__cause__).__name__})
            raise GatewayError(
                Failure.MISCONFIGURED, "The idempotency store cannot be reached; nothing was sent."
            ) from None
        replayed = bool(stored.pop(_REPLAY_MARK, False))
        if _STORED_PROBLEM in stored:
            raise GatewayError.from_problem(stored[_STORED_PROBLEM], replayed=replayed)
        return Answer(stored, replayed)

    def prepare(self) -> None:
        """Build the persistence layer (and its boto3 client) now, in this thread."""
        self._idempotent()

    def _idempotent(self) -> Callable[..., dict[str, Any]]:
        if self._send_once is None:
            persistence = DynamoDBPersistenceLayer(
                table_name=self.table_name,
                key_attr=names.IDEMPOTENCY_KEY_ATTRIBUTE,
                expiry_attr=names.IDEMPOTENCY_TTL_ATTRIBUTE,
                boto3_session=aws_session(),
            )
            self._send_once = idempotent_function(
                data_keyword_argument="job",
                persistence_store=persistence,
                config=self.config,
                key_prefix=names.IDEMPOTENCY_KEY_PREFIX,
            )(self._send)
        return self._send_once

    def _send(
        self, job: dict[str, Any], request: SendRequest, seconds_left: Callable[[], float] | None
    ) -> dict[str, Any]:
        try:
            return self.sender.send(request, seconds_left=seconds_left).as_dict()
        except GatewayError as error:
            if not error.failure.info.may_have_sent:
                raise  # nothing was sent: the record is dropped and a retry may send
            # Some or all of it may have gone out: keep the record so a retry answers this again.
            return {_STORED_PROBLEM: error.problem()}


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, _REPLAY_MARK: True} if isinstance(response, dict) else response


@cache
def get_idempotent_sender() -> IdempotentSender:
    """The process-wide idempotent sender; its table client is made on first send."""
    settings = get_settings()
    return IdempotentSender(get_sender(), settings.idempotency_table, settings.idempotency_window_seconds)
