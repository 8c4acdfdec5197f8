"""The suppression list's rules: scopes, expiry, which entry speaks for a destination, entries as given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway import names
from gateway.suppression.requests import EntryIn, ImportedEntry, ImportRequest
from gateway.suppression.rules import (
    ALL_SENDERS,
    Member,
    Suppressed,
    bucket_of,
    members_text,
    parse_members,
    scope_of,
    sender_of,
    suppressed_by,
)

NOW = 1_800_000_000.0
NUMBER = "306912345678"


def test_a_scope_is_every_sender_or_one_and_reads_back() -> None:
    assert scope_of(None) == ALL_SENDERS
    assert sender_of(scope_of(None)) is None
    assert sender_of(scope_of("MyShop")) == "MyShop"
    # A sender named like the every-sender mark is still one sender
    assert sender_of(scope_of("*")) == "*"
    assert scope_of("*") != ALL_SENDERS


def test_an_every_sender_entry_stops_every_sender_and_a_senders_entry_only_that_one() -> None:
    every = Member(NUMBER, scope_of(None), "opt-out")
    brand = Member(NUMBER, scope_of("OtherBrand"), "opt-out")
    assert every.applies("MyShop", NOW)
    assert brand.applies("OtherBrand", NOW)
    assert not brand.applies("MyShop", NOW)
    assert not brand.applies("otherbrand", NOW)  # sender names are matched exactly, as Viber's are


def test_an_entry_stops_sends_until_its_expiry_and_not_at_it() -> None:
    member = Member(NUMBER, ALL_SENDERS, "manual", expires_at=int(NOW) + 60)
    assert member.applies("MyShop", NOW + 59)
    assert not member.applies("MyShop", NOW + 60)


def test_the_every_sender_entry_speaks_for_a_destination_both_entries_stop() -> None:
    members = {
        NUMBER: [Member(NUMBER, scope_of("MyShop"), "complaint"), Member(NUMBER, ALL_SENDERS, "bounced")],
        "306912345679": [Member("306912345679", scope_of("Other"), "opt-out")],
    }
    found = suppressed_by([NUMBER, "306912345679", "306912345670"], members, "MyShop", NOW)
    assert found == [Suppressed(NUMBER, "bounced", None)]


def test_the_destinations_stopped_keep_the_requests_order() -> None:
    numbers = [f"3069{n:08d}" for n in range(10)]
    members = {n: [Member(n, ALL_SENDERS, "opt-out")] for n in numbers[::3]}
    found = suppressed_by(list(reversed(numbers)), members, "MyShop", NOW)
    assert [item.destination for item in found] == [n for n in reversed(numbers) if n in members]


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True),
            st.one_of(st.none(), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabc 0-9.", min_size=1, max_size=20)),
            st.sampled_from(["opt-out", "bounced", "complaint", "manual"]),
            st.one_of(st.none(), st.integers(1, 2**40)),
        ),
        max_size=30,
    )
)
def test_a_buckets_lines_read_back_as_the_entries_they_hold(
    entries: list[tuple[str, str | None, str, int | None]],
) -> None:
    members = {(n, scope_of(s)): Member(n, scope_of(s), r, e) for n, s, r, e in entries}
    found = parse_members(members_text(members))
    assert {(m.number, m.scope): m for listed in found.values() for m in listed} == members


def test_buckets_are_stable_and_spread() -> None:
    assert bucket_of(NUMBER) == bucket_of(NUMBER)
    buckets = {bucket_of(f"3069{n:08d}") for n in range(10_000)}
    assert all(0 <= b < names.SUPPRESSION_BUCKETS for b in buckets)
    assert len(buckets) > names.SUPPRESSION_BUCKETS * 0.9


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+30 691 234 5678", NUMBER),
        ("00306912345678", NUMBER),
        ("306912345678", NUMBER),
        ("+39 06 1234 5678", "390612345678"),
    ],
)
def test_an_imported_number_is_normalised_as_sends_normalise_it(given: str, stored: str) -> None:
    assert ImportedEntry(number=given, reason="opt-out").number == stored


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reason": "spam"}, "reason"),
        ({"reason": "opt-out", "sender": ""}, "sender"),
        ({"reason": "opt-out", "sender": "x" * 101}, "sender"),
        ({"reason": "opt-out", "note": "\u200b"}, "note"),
        ({"reason": "opt-out", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        (
            {"reason": "opt-out", "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()},
            "expires_at",
        ),
        ({"reason": "opt-out", "number": NUMBER}, "number"),
    ],
)
def test_an_entry_breaking_a_rule_is_refused_naming_the_field(fields: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        EntryIn.model_validate(fields)
    assert [error["loc"][0] for error in refused.value.errors()] == [field]


def test_an_import_holds_one_to_ten_thousand_entries() -> None:
    with pytest.raises(ValidationError):
        ImportRequest.model_validate({"entries": []})
    too_many = [{"number": NUMBER, "reason": "opt-out"}] * (names.MAX_SUPPRESSION_IMPORT + 1)
    with pytest.raises(ValidationError):
        ImportRequest.model_validate({"entries": too_many})
