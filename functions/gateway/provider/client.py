"""The LiveAll client over urllib3: SendIM and the reading of its answers, and the read endpoints.

A SendIM that may have reached the provider is never retried here: only a
failure to connect (nothing was sent) is tried once more. The read endpoints
(GetSMSStatus, GetSMSHistory, GetAccountBalance) change nothing, so a read that
failed in any way is safe to ask again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    SSLError,
)

from gateway.failures import TOKEN_CODES, Failure, GatewayError, classify_provider_code

# One pool per process, reused across invocations (keep-alive to the provider).
POOL = urllib3.PoolManager(num_pools=4, maxsize=16, block=False)

# Connection errors happen before any byte of the request is sent; all others may not.
_RETRY = urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False)
_NOT_SENT_ERRORS = (NewConnectionError, ConnectTimeoutError, NameResolutionError, SSLError)
# A read asked twice is harmless: one more try on a dropped connection or a gateway error.
_READ_RETRY = urllib3.Retry(
    total=2,
    connect=1,
    read=1,
    status=1,
    other=0,
    redirect=0,
    status_forcelist=(502, 504),
    allowed_methods=frozenset({"POST"}),
    raise_on_status=False,
    respect_retry_after_header=False,  # a 429 or 503 goes back to the caller with its Retry-After
)
# Time kept back from the caller's budget to shape and return the answer.
ANSWER_MARGIN_SECONDS = 0.5
MIN_CALL_SECONDS = 0.2
# Message ids are integers (LIVEALL.md); the idempotency record relies on their bounded size.
MAX_SMSID_DIGITS = 20
_SMSID_LIMIT: int = 10**MAX_SMSID_DIGITS


@dataclass(frozen=True, slots=True)
class SentMessage:
    destination: str
    smsid: int | str


@dataclass(frozen=True, slots=True)
class SendResult:
    submission_id: int | str | None
    messages: list[SentMessage]


class ProviderRejected(GatewayError):
    """The provider answered `success: false`: nothing was sent."""

    def __init__(
        self, error_code: int, error_message: str, sms_error_type: int | None, value_of_error: str
    ) -> None:
        failure = classify_provider_code(error_code)
        detail = f"The provider refused the request: {error_message or 'no message'} (code {error_code})"
        if value_of_error and failure is Failure.REJECTED_BY_PROVIDER:
            detail += f"; offending value: {value_of_error}"
        super().__init__(failure, detail + ".", provider_code=error_code, provider_message=error_message)
        self.error_code = error_code
        self.error_message = error_message
        self.sms_error_type = sms_error_type
        self.value_of_error = value_of_error

    @property
    def is_token_error(self) -> bool:
        return self.error_code in TOKEN_CODES


class ProviderClient:
    """Calls LiveAll; every failure comes out as a GatewayError of the right class."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool: urllib3.PoolManager = POOL,
    ) -> None:
        self.base_url = base_url
        self.send_im_url = base_url + "SendIM"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool = pool

    def send_im(self, payload: dict[str, Any], *, seconds_left: float | None = None) -> SendResult:
        """POST SendIM. `seconds_left` is the caller's remaining time; the timeouts fit inside it."""
        token = str(payload.get("apitoken", ""))
        timeout = self._timeout(seconds_left)
        body = json.dumps(payload, ensure_ascii=False).encode()  # before the call: nothing sent if it fails
        try:
            response = self.pool.request(
                "POST",
                self.send_im_url,
                body=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=timeout,
                retries=_RETRY,
            )
        except HTTPError as error:
            raise _transport_failure(error) from None
        except Exception as error:  # once the request may be out, any failure leaves the outcome unknown
            raise GatewayError(
                Failure.OUTCOME_UNKNOWN,
                f"The call to the provider failed unexpectedly ({type(error).__name__}) after it may have "
                "been sent; the message may have been sent. Check its status before sending again.",
            ) from None
        return _read_send_answer(response.status, response.data, response.headers, payload, token)

    def read(self, endpoint: str, fields: dict[str, str], *, seconds_left: float | None = None) -> bytes:
        """POST a form to a read endpoint and return the answer's body (its meaning is the caller's)."""
        try:
            response = self.pool.request(
                "POST",
                self.base_url + endpoint,
                body=urlencode(fields),
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/plain"},
                timeout=self._timeout(seconds_left),
                retries=_READ_RETRY,
            )
        except HTTPError as error:
            reason = error.reason if isinstance(error, MaxRetryError) else error
            raise GatewayError(
                Failure.PROVIDER_UNAVAILABLE,
                f"The provider did not answer {endpoint} ({type(reason).__name__}); ask again shortly.",
            ) from None
        if response.status in (429, 503):
            raise GatewayError(
                Failure.PROVIDER_UNAVAILABLE,
                f"The provider is unavailable (HTTP {response.status}); ask again shortly.",
                retry_after=_retry_after(response.headers),
            )
        if response.status != 200:
            raise GatewayError(
                Failure.PROVIDER_FAILED, f"The provider answered {endpoint} with HTTP {response.status}."
            )
        return bytes(response.data)

    def _timeout(self, seconds_left: float | None) -> urllib3.Timeout:
        connect, read = self.connect_timeout, self.read_timeout
        if seconds_left is not None:
            budget = seconds_left - ANSWER_MARGIN_SECONDS
            if budget < MIN_CALL_SECONDS:
                raise GatewayError(
                    Failure.PROVIDER_UNAVAILABLE,
                    "Too little time was left to call the provider; nothing was sent.",
                )
            # Two connect attempts (one retry) and the read must all fit in the budget.
            connect = min(connect, budget / 3)
            read = min(read, budget - 2 * connect)
        return urllib3.Timeout(connect=connect, read=read)


def _transport_failure(error: HTTPError) -> GatewayError:
    reason = error.reason if isinstance(error, MaxRetryError) else error
    if isinstance(reason, _NOT_SENT_ERRORS):
        return GatewayError(
            Failure.PROVIDER_UNAVAILABLE,
            f"The provider could not be reached ({type(reason).__name__}); nothing was sent.",
        )
    # Read timeout, dropped connection, broken answer: the request may have been received.
    return GatewayError(
        Failure.OUTCOME_UNKNOWN,
        f"The provider did not answer ({type(reason).__name__}) after the request was sent; "
        "the message may have been sent. Check its status before sending again.",
    )


def _read_send_answer(
    status: int, body: bytes, headers: Any, payload: dict[str, Any], token: str
) -> SendResult:
    if status in (429, 503):
        raise GatewayError(
            Failure.PROVIDER_UNAVAILABLE,
            f"The provider is unavailable (HTTP {status}); nothing was sent.",
            retry_after=_retry_after(headers),
        )
    if status >= 500:
        raise GatewayError(
            Failure.OUTCOME_UNKNOWN,
            f"The provider failed with HTTP {status} while handling the request; "
            "the message may have been sent. Check its status before sending again.",
        )
    if status != 200:
        raise GatewayError(Failure.PROVIDER_FAILED, f"The provider answered HTTP {status}.")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
        kind = "an empty answer" if not body.strip() else "an answer that is not the documented JSON"
        raise GatewayError(
            Failure.OUTCOME_UNKNOWN,
            f"The provider gave {kind}; the message may have been sent. "
            "Check its status before sending again.",
        )
    if not answer["success"]:
        raise _rejection(answer.get("OperationErrors"), token)
    return _result(answer, payload["destinations"])


def _rejection(operation_errors: Any, token: str) -> GatewayError:
    first = operation_errors[0] if isinstance(operation_errors, list) and operation_errors else None
    if not isinstance(first, dict) or not isinstance(first.get("errorCode"), int):
        return GatewayError(Failure.PROVIDER_FAILED, "The provider refused the request without saying why.")
    sms_error_type = first.get("SMSErrorType")
    return ProviderRejected(
        error_code=first["errorCode"],
        error_message=_scrub(first.get("errorMessage"), token),
        sms_error_type=sms_error_type if isinstance(sms_error_type, int) else None,
        value_of_error=_scrub(first.get("valueOfError"), token),
    )


def _result(answer: dict[str, Any], destinations: list[str]) -> SendResult:
    """The message ids in the order of `destinations`, or outcome-unknown if they cannot be paired."""
    ids = _ids_by_destination(answer.get("data"), destinations)
    if ids is None or not all(_is_documented_id(smsid) for smsid in ids):
        raise GatewayError(
            Failure.OUTCOME_UNKNOWN,
            "The provider reported success without one message id (an integer) per destination; "
            "the messages may have been sent. Check their status before sending again.",
        )
    messages = [SentMessage(d, smsid) for d, smsid in zip(destinations, ids, strict=True)]
    return SendResult(submission_id=answer.get("SubmissionID"), messages=messages)


def _ids_by_destination(data: Any, destinations: list[str]) -> list[Any] | None:
    if not isinstance(data, list) or len(data) != len(destinations):
        return None
    if all(isinstance(item, dict) and "smsid" in item and "destination" in item for item in data):
        by_destination = {str(item["destination"]): item["smsid"] for item in data}
        if len(by_destination) != len(destinations) or set(by_destination) != set(destinations):
            return None
        return [by_destination[destination] for destination in destinations]
    # The bare list of ids pairs with the destinations by position.
    return data


def _is_documented_id(smsid: Any) -> bool:
    if isinstance(smsid, bool):
        return False
    if isinstance(smsid, int):
        return 0 <= smsid < _SMSID_LIMIT
    if not isinstance(smsid, str):
        return False
    return 0 < len(smsid) <= MAX_SMSID_DIGITS and smsid.isascii() and smsid.isdigit()


def _scrub(value: Any, token: str) -> str:
    """Provider text echoed to callers and logs, with any copy of the token removed."""
    text = "" if value is None else str(value)
    return text.replace(token, "[token]") if token else text


def _retry_after(headers: Any) -> int | None:
    value = headers.get("Retry-After") if headers is not None else None
    return int(value) if value and str(value).strip().isdigit() else None
