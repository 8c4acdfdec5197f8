"""The failure taxonomy: for every failure, the HTTP status, problem type, queue action and metric.

This is the one table that decides (see DESIGN.md, "Failure taxonomy"). The
API handler turns a `GatewayError` into a problem+json answer from it; the
queue handler decides retry or dead-letter from it; both count it with the
metric named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway import names
from gateway.fields import FieldError
from gateway.observability import count, count_by, logger

PROBLEM_TYPE_BASE = "urn:viber-gateway:problem:"
# A problem lists at most this many field errors and says how many more there were: 10,000 bad
# destinations must not make an answer over Lambda's 6 MB response limit.
MAX_LISTED_ERRORS = 100


class QueueAction(Enum):
    """What the queue consumer does with a record that failed this way."""

    RETRY = "retry"  # leave it on the queue: backoff, then the DLQ after maxReceiveCount
    DEAD_LETTER = "dead-letter"  # retrying cannot help, or could send twice: park it with the reason
    SPLIT = "split"  # part was sent: the rest goes on as new records, each handled by its own failure


@dataclass(frozen=True, slots=True)
class FailureClass:
    slug: str
    title: str
    http_status: int
    queue_action: QueueAction
    # The provider may have sent some or all of it: the answer is kept under the idempotency
    # key, so a retry replays it instead of sending again.
    may_have_sent: bool = False
    # Counted in the ProviderErrors metric (and its alarm): trouble on the provider's side or
    # with our account there, not a caller's mistake.
    provider_error: bool = False

    @property
    def problem_type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


class Failure(Enum):
    """Every way a send can fail. The value says how each is answered."""

    MALFORMED_REQUEST = FailureClass(
        "malformed-request", "The body is not a JSON object", 400, QueueAction.DEAD_LETTER
    )
    UNSUPPORTED_MEDIA_TYPE = FailureClass(
        "unsupported-media-type", "The body must be sent as application/json", 415, QueueAction.DEAD_LETTER
    )
    INVALID_REQUEST = FailureClass(
        "invalid-request", "The request is not valid", 422, QueueAction.DEAD_LETTER
    )
    REJECTED_BY_PROVIDER = FailureClass(
        "rejected-by-provider",
        "The provider rejected a value in the request",
        422,
        QueueAction.DEAD_LETTER,
        provider_error=True,
    )
    MISCONFIGURED = FailureClass(
        "misconfigured", "The gateway is not configured to send", 503, QueueAction.RETRY
    )
    OUT_OF_CREDIT = FailureClass(
        "out-of-credit", "The provider account has no credit", 503, QueueAction.RETRY, provider_error=True
    )
    PROVIDER_FAILED = FailureClass(
        "provider-failed", "The provider failed and sent nothing", 502, QueueAction.RETRY, provider_error=True
    )
    PROVIDER_UNAVAILABLE = FailureClass(
        "provider-unavailable",
        "The provider cannot be reached; nothing was sent",
        503,
        QueueAction.RETRY,
        provider_error=True,
    )
    IDEMPOTENCY_KEY_REUSED = FailureClass(
        "idempotency-key-reused",
        "The idempotency key was used for a different message",
        409,
        QueueAction.DEAD_LETTER,
    )
    IN_PROGRESS = FailureClass(
        "in-progress", "A send with this idempotency key is in progress", 409, QueueAction.RETRY
    )
    OUTCOME_UNKNOWN = FailureClass(
        "outcome-unknown",
        "The provider may have sent the message; do not resend blindly",
        504,
        QueueAction.DEAD_LETTER,
        may_have_sent=True,
        provider_error=True,
    )
    PARTIALLY_SENT = FailureClass(
        "partially-sent",
        "Some destinations were sent, others not",
        502,
        QueueAction.SPLIT,
        may_have_sent=True,
        provider_error=True,
    )
    # Every destination of a send is on the suppression list: nothing was sent, and sending again
    # cannot help until the list changes (the problem says which and why).
    ALL_SUPPRESSED = FailureClass(
        "all-suppressed", "Every destination is suppressed", 422, QueueAction.DEAD_LETTER
    )
    # A destination outside the stage's policy (gateway.guard.policy): nothing was sent; errors name
    # each number and the rule it breaks.
    DESTINATION_NOT_ALLOWED = FailureClass(
        "destination-not-allowed", "A destination is outside the stage's policy", 422, QueueAction.DEAD_LETTER
    )
    # A caller's daily limit (messages, or worst-case SMS cost), or the stage's daily spend ceiling,
    # would be passed (gateway.guard.caps): nothing was sent; Retry-After says when the day turns.
    LIMIT_EXCEEDED = FailureClass(
        "limit-exceeded", "A daily limit of this caller would be passed", 429, QueueAction.RETRY
    )
    SPEND_CEILING_REACHED = FailureClass(
        "spend-ceiling-reached", "Sends are stopped: today's spend ceiling is reached", 429, QueueAction.RETRY
    )
    # Scheduled sends (gateway.schedules): the engine would not take the schedule (nothing will be
    # sent, and nothing was kept: a retry starts over), no such schedule, or one that has fired.
    SCHEDULING_FAILED = FailureClass(
        "scheduling-failed", "The send could not be scheduled; nothing will be sent", 503, QueueAction.RETRY
    )
    SCHEDULE_NOT_FOUND = FailureClass("schedule-not-found", "No such schedule", 404, QueueAction.DEAD_LETTER)
    SCHEDULE_NOT_CANCELLABLE = FailureClass(
        "schedule-not-cancellable", "The schedule has no part left to cancel", 409, QueueAction.DEAD_LETTER
    )
    # A status lookup for an id the provider does not know for this account.
    NOT_FOUND = FailureClass("not-found", "No such message", 404, QueueAction.DEAD_LETTER)
    # A defect of the gateway (an exception nothing above describes). Retrying cannot mend it:
    # a queue record is parked with the reason, for a redrive once the defect is fixed.
    INTERNAL_ERROR = FailureClass(
        "internal-error", "The gateway failed unexpectedly", 500, QueueAction.DEAD_LETTER
    )

    @property
    def info(self) -> FailureClass:
        return self.value

    @classmethod
    def from_slug(cls, slug: str) -> Failure:
        return next(failure for failure in cls if failure.info.slug == slug)

    @classmethod
    def from_problem_type(cls, problem_type: str) -> Failure:
        return cls.from_slug(problem_type.removeprefix(PROBLEM_TYPE_BASE))


# Provider error codes (LIVEALL.md) that mean the caller's data was at fault.
CALLER_FIXABLE_CODES = frozenset(
    {1, 2, 3, 4, 5, 9, 52, 61}  # sender id
    | {10, 11}  # SMS text
    | {12, 13, 14, 15, 16}  # destination
    | {34, 59, 60}  # parameters
    | {54, 55, 56, 57, 58}  # Viber text, sender approval, image, action
)
TOKEN_CODES = frozenset({39, 40, 44, 50})
OUT_OF_CREDIT_CODE = 18


def classify_provider_code(code: int) -> Failure:
    """Which failure a `success: false` answer with this errorCode is. Nothing was sent in any case."""
    if code in CALLER_FIXABLE_CODES:
        return Failure.REJECTED_BY_PROVIDER
    if code in TOKEN_CODES:
        return Failure.MISCONFIGURED
    if code == OUT_OF_CREDIT_CODE:
        return Failure.OUT_OF_CREDIT
    # Internal errors (6, 7, 8, 19, 21, 53) and anything undocumented: the provider's trouble.
    return Failure.PROVIDER_FAILED


class GatewayError(Exception):
    """A send that failed, with what the taxonomy needs to answer it.

    The message (`detail`) is written for the caller; it never holds the token.
    """

    def __init__(
        self,
        failure: Failure,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        provider_code: int | None = None,
        provider_message: str | None = None,
        retry_after: int | None = None,
        replayed: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.errors = errors or []
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.retry_after = retry_after
        self.replayed = replayed  # answered from the idempotency store, not sent now
        self.extra = extra or {}  # further problem members, e.g. what a partial send did send

    def problem(self, instance: str | None = None) -> dict[str, object]:
        """The RFC 9457 problem body."""
        info = self.failure.info
        body: dict[str, object] = {
            "type": info.problem_type,
            "title": info.title,
            "status": info.http_status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors[:MAX_LISTED_ERRORS]]
            if len(self.errors) > MAX_LISTED_ERRORS:
                body["omitted_errors"] = len(self.errors) - MAX_LISTED_ERRORS
        if self.provider_code is not None:
            body["provider_code"] = self.provider_code
            body["provider_message"] = self.provider_message or ""
        body.update(self.extra)
        return body


_PROBLEM_MEMBERS = frozenset(
    {
        *("type", "title", "status", "detail", "instance"),
        *("errors", "omitted_errors", "provider_code", "provider_message"),
    }
)


def invalid_request(errors: list[FieldError]) -> GatewayError:
    if len(errors) == 1:
        detail = "The request has 1 problem; see errors."
    elif len(errors) <= MAX_LISTED_ERRORS:
        detail = f"The request has {len(errors)} problems; see errors."
    else:
        detail = (
            f"The request has {len(errors)} problems; errors lists the first {MAX_LISTED_ERRORS}, "
            "omitted_errors counts the others."
        )
    return GatewayError(Failure.INVALID_REQUEST, detail, errors=errors)


def record_failure(error: GatewayError) -> None:
    """Count and log a failure as the taxonomy names it; never with the token or a raw number."""
    slug = error.failure.info.slug
    count_by(names.METRIC_FAILURES, "failure_type", slug)
    if error.failure in (Failure.INVALID_REQUEST, Failure.MALFORMED_REQUEST):
        count(names.METRIC_VALIDATION_FAILURES)
        logger.info(
            "request refused", extra={"failure_type": slug, "fields": [e.field for e in error.errors]}
        )
        return
    if error.failure.info.provider_error or error.provider_code is not None:
        count(names.METRIC_PROVIDER_ERRORS)
    if error.provider_code is not None:
        count_by(names.METRIC_PROVIDER_ERRORS_BY_CODE, "provider_code", str(error.provider_code))
    logger.warning(
        "send failed",
        extra={
            "failure_type": slug,
            "provider_code": error.provider_code,
            "provider_message": error.provider_message,
        },
    )
