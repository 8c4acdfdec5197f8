"""The failure taxonomy: every documented provider code lands in the class DESIGN.md gives it."""

from __future__ import annotations

import pytest

from gateway.failures import Failure, GatewayError, QueueAction, classify_provider_code

CALLER = [1, 2, 3, 4, 5, 9, 52, 61, 10, 11, 12, 13, 14, 15, 16, 34, 59, 60, 54, 55, 56, 57, 58]
TOKEN = [39, 40, 44, 50]
PROVIDER_SIDE = [6, 7, 8, 19, 21, 53, 17, 20, 62, 99, 0]


@pytest.mark.parametrize("code", CALLER)
def test_caller_fixable_codes_are_rejections(code: int) -> None:
    assert classify_provider_code(code) is Failure.REJECTED_BY_PROVIDER


@pytest.mark.parametrize("code", TOKEN)
def test_token_codes_mean_misconfigured(code: int) -> None:
    assert classify_provider_code(code) is Failure.MISCONFIGURED


def test_balance_code_means_out_of_credit() -> None:
    assert classify_provider_code(18) is Failure.OUT_OF_CREDIT


@pytest.mark.parametrize("code", PROVIDER_SIDE)
def test_internal_and_unknown_codes_are_provider_failures(code: int) -> None:
    assert classify_provider_code(code) is Failure.PROVIDER_FAILED


@pytest.mark.parametrize(
    ("failure", "status", "action"),
    [
        (Failure.MALFORMED_REQUEST, 400, QueueAction.DEAD_LETTER),
        (Failure.UNSUPPORTED_MEDIA_TYPE, 415, QueueAction.DEAD_LETTER),
        (Failure.IDEMPOTENCY_KEY_REUSED, 409, QueueAction.DEAD_LETTER),
        (Failure.IN_PROGRESS, 409, QueueAction.RETRY),
        (Failure.PARTIALLY_SENT, 502, QueueAction.SPLIT),
        (Failure.INVALID_REQUEST, 422, QueueAction.DEAD_LETTER),
        (Failure.REJECTED_BY_PROVIDER, 422, QueueAction.DEAD_LETTER),
        (Failure.MISCONFIGURED, 503, QueueAction.RETRY),
        (Failure.OUT_OF_CREDIT, 503, QueueAction.RETRY),
        (Failure.PROVIDER_FAILED, 502, QueueAction.RETRY),
        (Failure.PROVIDER_UNAVAILABLE, 503, QueueAction.RETRY),
        (Failure.OUTCOME_UNKNOWN, 504, QueueAction.DEAD_LETTER),
    ],
)
def test_each_class_has_its_documented_status_and_queue_action(
    failure: Failure, status: int, action: QueueAction
) -> None:
    assert failure.info.http_status == status
    assert failure.info.queue_action is action
    problem = GatewayError(failure, "why").problem()
    assert problem["type"] == f"urn:viber-gateway:problem:{failure.info.slug}"
    assert problem["status"] == status
