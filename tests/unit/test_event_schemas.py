"""What a consumer of the bus (a rule's target, a status webhook) receives: each event as published.

events/schemas/event.json describes the whole event and, by detail-type, its detail; the
samples in events/ and the details the code builds are held to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from gateway import names
from gateway.suppression.service import entry_answer
from gateway.suppression.store import Entry

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"
SAMPLES = sorted((SCHEMAS.parent).glob("event-*.json"))
DETAIL_TYPES = {value for name, value in vars(names).items() if name.startswith("DETAIL_TYPE_")}


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded


def validator() -> jsonschema.Draft202012Validator:
    registry: Registry[Any] = Registry().with_resources(
        (document["$id"], Resource.from_contents(document))
        for document in (schema(path.name) for path in SCHEMAS.glob("*.json"))
    )
    return jsonschema.Draft202012Validator(schema("event.json"), registry=registry)


def test_every_detail_type_the_gateway_publishes_is_described() -> None:
    assert set(schema("event.json")["properties"]["detail-type"]["enum"]) == DETAIL_TYPES


@pytest.mark.parametrize("sample", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_every_sample_event_is_what_the_schema_says(sample: Path) -> None:
    event = json.loads(sample.read_text())
    validator().validate(event)


def test_a_wrong_detail_is_refused_for_its_detail_type() -> None:
    event = json.loads((SCHEMAS.parent / "event-balance-low.json").read_text())
    event["detail"] = {"balance": "low"}
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(event)


@pytest.mark.parametrize(
    "detail_type", [names.DETAIL_TYPE_DESTINATION_SUPPRESSED, names.DETAIL_TYPE_SUPPRESSION_REMOVED]
)
def test_the_suppression_events_details_are_the_entries_the_code_publishes(detail_type: str) -> None:
    entry = Entry(
        "306912345678",
        "opt-out",
        sender="MyShop",
        note="asked by phone",
        added_at=1796000000,
        added_by="key-1",
    )
    detail = entry_answer(entry)
    if detail_type == names.DETAIL_TYPE_SUPPRESSION_REMOVED:
        detail = {**detail, "removed_at": "2026-12-07T10:00:00Z", "removed_by": "key-1"}
    event = {
        "version": "0",
        "id": "1",
        "detail-type": detail_type,
        "source": names.EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-12-07T10:00:00Z",
        "region": "eu-central-1",
        "resources": [],
        "detail": detail,
    }
    validator().validate(event)
