"""README's tables say what the code does: the status codes, the failure types."""

from __future__ import annotations

import re

from gateway import names
from gateway.failures import Failure
from gateway.provider.statuses import STATUS_CODES
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _rows(header: str) -> list[list[str]]:
    start = README.index(header)
    rows = []
    for line in README[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_status_table_is_the_codes_own() -> None:
    rows = _rows("| code | LiveAll's text | state | channel | final |")
    assert [int(row[0]) for row in rows] == list(STATUS_CODES)
    for code, text, state, channel, final in rows:
        meaning = STATUS_CODES[int(code)]
        assert text == meaning.text
        assert state == f"`{meaning.meaning.state.value}`"
        assert channel == meaning.meaning.channel.value
        assert final.startswith("yes" if meaning.meaning.final else "no")


def test_the_failure_table_lists_every_type() -> None:
    rows = _rows("| type | when | API | queue |")
    listed = [re.sub(r"`", "", row[0]) for row in rows]
    assert listed == [failure.info.slug for failure in Failure]
    assert set(listed) == set(names.FAILURE_TYPES)
    for row, failure in zip(rows, Failure, strict=True):
        assert row[2].startswith(str(failure.info.http_status)), row


def test_the_settings_table_lists_every_variable_the_functions_read() -> None:
    from gateway.settings import Settings

    rows = _rows("| variable | default | meaning |")
    listed = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row[0])}
    read = {str(field.validation_alias) for field in Settings.model_fields.values()}
    assert read - listed == set()
