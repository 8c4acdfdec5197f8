"""End-to-end fixtures: the local service (tests/conftest.py starts it once per session), reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import LocalService


@pytest.fixture
def local(service: LocalService) -> Iterator[LocalService]:
    """The service with the provider sandbox emptied and well-behaved, before and after the test."""
    service.sandbox("POST", "reset")
    yield service
    service.sandbox("POST", "reset")
