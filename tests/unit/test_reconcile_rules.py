"""The reconciler's matching rules (gateway.reconciliation.reconciler.judge) and its days, without AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.provider.history import HistoryRecord
from gateway.provider.statuses import StatusRecord
from gateway.reconciliation.reconciler import AMBIGUOUS, NOT_SENT, SENT, WAIT, Candidate, Reconciler, judge
from gateway.tracking.store import UnknownSend

START = 1_800_000_000.0
GRACE, SKEW = 600.0, 30.0


def send(id_: str, destinations: list[str], started: float = START, took: float = 15.0) -> UnknownSend:
    return UnknownSend(
        id=id_,
        key=f"key:{id_}",
        origin="api",
        message_id=None,
        partial=False,
        payload={},
        chunk_index=0,
        destinations=destinations,
        sender="MyShop",
        sms_fallback=False,
        reference=None,
        started_at=started,
        finished_at=started + took,
    )


def candidate(smsid: int, destination: str, at: float, batch: str = "1000") -> Candidate:
    return Candidate(str(smsid), destination, batch, at)


def verdicts(sends: list[UnknownSend], candidates: list[Candidate], *, now: float = START + 60, **kw):
    return judge(sends, candidates, now=now, grace_seconds=GRACE, skew_seconds=SKEW, **kw)


def test_one_candidate_within_the_window_is_the_send() -> None:
    found = verdicts([send("a", ["306912345678"])], [candidate(7, "306912345678", START + 3)])
    assert found["a"].outcome == SENT
    assert found["a"].smsids == {"306912345678": "7"}
    assert found["a"].batch_id == "1000"


@pytest.mark.parametrize(
    ("submitted", "outcome"),
    [
        (START - SKEW - 1, WAIT),  # before the send began (beyond the clock skew): another send's
        (START - SKEW, SENT),
        (START + 15 + SKEW, SENT),
        (START + 15 + SKEW + 1, WAIT),  # after it gave up: a later send's
    ],
)
def test_only_a_candidate_submitted_while_the_send_ran_counts(submitted: float, outcome: str) -> None:
    found = verdicts([send("a", ["306912345678"])], [candidate(7, "306912345678", submitted)])
    assert found["a"].outcome == outcome


def test_no_trace_waits_for_the_grace_period_then_is_not_sent() -> None:
    lonely = send("a", ["306912345678"])
    assert verdicts([lonely], [], now=START + 15 + GRACE - 1)["a"].outcome == WAIT
    assert verdicts([lonely], [], now=START + 15 + GRACE)["a"].outcome == NOT_SENT


def test_two_candidates_for_one_send_are_ambiguous_and_reported() -> None:
    # Another system sent to the same number while the send ran: which one is ours cannot be told
    found = verdicts(
        [send("a", ["306912345678"])],
        [candidate(7, "306912345678", START + 3), candidate(9, "306912345678", START + 9)],
    )
    assert found["a"].outcome == AMBIGUOUS
    assert sorted(c.smsid for c in found["a"].candidates) == ["7", "9"]


def test_two_sends_to_one_number_take_the_earliest_unmatched_candidates_in_order() -> None:
    first, second = send("a", ["306912345678"]), send("b", ["306912345678"], started=START + 5)
    found = verdicts(
        [second, first], [candidate(9, "306912345678", START + 8), candidate(7, "306912345678", START + 3)]
    )
    assert (found["a"].smsids, found["b"].smsids) == ({"306912345678": "7"}, {"306912345678": "9"})


def test_more_candidates_than_sends_to_one_number_is_ambiguous() -> None:
    first, second = send("a", ["306912345678"]), send("b", ["306912345678"], started=START + 5)
    found = verdicts(
        [first, second],
        [candidate(n, "306912345678", START + n) for n in (3, 7, 9)],
    )
    assert found["a"].outcome == AMBIGUOUS


def test_a_candidate_the_gateway_already_holds_is_another_sends() -> None:
    found = verdicts([send("a", ["306912345678"])], [candidate(7, "306912345678", START + 3)], claimed={"7"})
    assert found["a"].outcome == WAIT


def test_a_send_to_several_numbers_is_one_batch() -> None:
    numbers = ["306912345678", "306912345679"]
    both = [candidate(7, numbers[0], START + 3), candidate(8, numbers[1], START + 3)]
    assert verdicts([send("a", numbers)], both)["a"].outcome == SENT
    split = [candidate(7, numbers[0], START + 3, "1000"), candidate(8, numbers[1], START + 3, "1001")]
    assert verdicts([send("a", numbers)], split)["a"].outcome == AMBIGUOUS


def test_part_of_the_numbers_found_waits_then_is_ambiguous() -> None:
    # One SendIM is all or nothing: part found means the history lags, or it is not ours
    numbers = ["306912345678", "306912345679"]
    part = [candidate(7, numbers[0], START + 3)]
    assert verdicts([send("a", numbers)], part)["a"].outcome == WAIT
    assert verdicts([send("a", numbers)], part, now=START + 15 + GRACE)["a"].outcome == AMBIGUOUS


def test_a_candidate_without_a_submission_time_is_not_taken() -> None:
    found = verdicts([send("a", ["306912345678"])], [Candidate("7", "306912345678", "1000", None)])
    assert found["a"].outcome == WAIT


# ----- which days the reconciler asks about ------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.saved: list[UnknownSend] = []

    def open_unknowns(self) -> list[UnknownSend]:
        return self.sends

    def get_many(self, smsids: list[str]) -> dict[str, object]:
        return {}

    def save_unknown(self, unknown: UnknownSend) -> None:
        self.saved.append(unknown)

    def record_sent(self, *args: object, **kwargs: object) -> None:
        pass

    def acquire_lease(self, *args: object) -> bool:
        return True

    def release_lease(self, *args: object) -> None:
        pass


class Queries:
    """LiveAll's history: one line, on the Athens day it was submitted."""

    def __init__(self, day: str, submitted: float) -> None:
        self.day, self.submitted = day, submitted
        self.asked: list[dict[str, str]] = []

    def history(self, fields: dict[str, str], **_: object) -> list[HistoryRecord]:
        self.asked.append(fields)
        if fields["submit_date"] != self.day:
            return []
        return [HistoryRecord("7", "1000", "MyShop", "306912345678", None, "Delivered", 1, None)]

    def statuses(self, smsids: list[str], **_: object) -> list[StatusRecord]:
        at = datetime.fromtimestamp(self.submitted, UTC)
        return [StatusRecord(s, at, at, "306912345678", 300002, "Delivered", 1, None) for s in smsids]


@pytest.mark.parametrize(
    ("utc", "days", "found_on"),
    [
        # Winter (EET, UTC+2): 21:59:50 UTC is 23:59:50 in Athens; the window runs past midnight there
        ("2026-01-15T21:59:50", ["20260115", "20260116"], "20260116"),
        # Summer (EEST, UTC+3): midnight in Athens is 21:00 UTC
        ("2026-07-15T20:59:50", ["20260715", "20260716"], "20260716"),
        # The night the clocks go forward (29 March 2026, 01:00 UTC): still one Athens day
        ("2026-03-29T00:59:50", ["20260329"], "20260329"),
        # The night they go back (25 October 2026, 01:00 UTC): 20:59 UTC is 23:59 EEST
        ("2026-10-24T20:59:50", ["20261024", "20261025"], "20261025"),
    ],
)
def test_the_history_is_asked_for_every_athens_day_the_send_touched(
    utc: str, days: list[str], found_on: str
) -> None:
    started = datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()
    store, queries = Store(), Queries(found_on, started + 12)
    store.sends = [send("a", ["306912345678"], started=started)]
    reconciler = Reconciler(
        store,  # type: ignore[arg-type]
        queries,  # type: ignore[arg-type]
        settle_record=None,
        dead_letters=None,
        publisher=None,
        grace_seconds=GRACE,
        skew_seconds=SKEW,
        clock=lambda: started + 60,
    )
    report = reconciler.run()
    assert [q["submit_date"] for q in queries.asked] == days
    assert report.sent == 1
    assert store.saved[-1].resolved_smsids == ["7"]
