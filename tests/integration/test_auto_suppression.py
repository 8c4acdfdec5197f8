"""Dead numbers: delivery tracking puts a number on the suppression list after N failures in a row.

The tracker's real runs against moto (tracking and suppression tables, the bus)
and the sandbox, whose statuses the tests force.
"""

from __future__ import annotations

import pytest

from gateway import names
from tests.conftest import reset_process_caches
from tests.integration.conftest import Tracking
from tests.integration.test_api_send import PROBLEM, post, valid_im

NO_VIBER = "306912345671"


@pytest.fixture
def auto(tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> Tracking:
    monkeypatch.setenv(names.ENV_SUPPRESSION_TABLE, names.SUPPRESSION_TABLE_NAME)
    monkeypatch.setenv(names.ENV_AUTO_SUPPRESS_AFTER_FAILURES, "3")
    reset_process_caches()
    return tracking


def deliver(tracking: Tracking, lambda_context, number: str, code: int) -> dict:
    """One send to `number`, followed by the tracker until LiveAll's status is `code`."""
    status, _, body = post(valid_im(destinations=[number]), lambda_context)
    assert status == 200, body
    [message] = body["messages"]
    tracking.run()
    tracking.provider.force_status(message["smsid"], code)
    tracking.clock.now += 60
    return tracking.run()


def suppressed_events(tracking: Tracking) -> list[dict]:
    return [e for e in tracking.events() if e["detail-type"] == names.DETAIL_TYPE_DESTINATION_SUPPRESSED]


def test_three_failures_in_a_row_suppress_the_number_and_publish_the_event(
    auto: Tracking, lambda_context
) -> None:
    # Given a number whose messages end undelivered, twice
    for _ in range(2):
        assert deliver(auto, lambda_context, NO_VIBER, 300005)["suppressed"] == 0
    assert suppressed_events(auto) == []
    # When a third ends undelivered
    run = deliver(auto, lambda_context, NO_VIBER, 300005)
    # Then the number is on the list (bounced, every sender), the bus heard it, and sends leave it out
    assert run["suppressed"] == 1
    [event] = suppressed_events(auto)
    assert event["detail"]["number"] == NO_VIBER
    assert (event["detail"]["reason"], event["detail"]["sender"]) == ("bounced", None)
    assert event["detail"]["added_by"] == "delivery-tracking"
    status, _, problem = post(valid_im(destinations=[NO_VIBER]), lambda_context)
    assert status == 422
    assert problem["type"] == PROBLEM + "all-suppressed"


def test_a_delivered_message_resets_the_count(auto: Tracking, lambda_context) -> None:
    # Given two failures, then a delivery, then two more failures
    deliver(auto, lambda_context, NO_VIBER, 300005)
    deliver(auto, lambda_context, NO_VIBER, 300005)
    deliver(auto, lambda_context, NO_VIBER, 300002)
    runs = [deliver(auto, lambda_context, NO_VIBER, 300005) for _ in range(2)]
    # Then the number is not suppressed: the failures were not in a row
    assert [run["suppressed"] for run in runs] == [0, 0]
    status, _, _ = post(valid_im(destinations=[NO_VIBER]), lambda_context)
    assert status == 200
    # And a third failure in a row suppresses it
    assert deliver(auto, lambda_context, NO_VIBER, 300005)["suppressed"] == 1


def test_zero_turns_it_off(auto: Tracking, lambda_context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(names.ENV_AUTO_SUPPRESS_AFTER_FAILURES, "0")
    reset_process_caches()
    runs = [deliver(auto, lambda_context, NO_VIBER, 300005) for _ in range(4)]
    assert [run["suppressed"] for run in runs] == [0, 0, 0, 0]
