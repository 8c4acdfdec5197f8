"""Synthesize the stack once per configuration and session, offline, with the placeholder layer.

Each synthesis takes seconds and half a gigabyte (jsii), so the tests share
two: prod with the alarm subscribers it needs, and another stage with IAM auth,
an existing secret and no alarm subscriber. The context is the one `cdk synth`
sees: cdk.json's settings and feature flags plus the keys given in
tests/infra/synth.py.
"""

from __future__ import annotations

import pytest

from tests.infra.synth import ALTERNATIVE_CONTEXT, DEFAULT_CONTEXT, Synthesized, synthesize


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """prod as `make synth` builds it with only the alarm subscribers it requires (placeholder layer)."""
    return synthesize(tmp_path_factory.mktemp("cdk-out-default"), DEFAULT_CONTEXT)


@pytest.fixture(scope="session")
def alternative_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Another stage, with the optional keys set to non-default choices."""
    return synthesize(tmp_path_factory.mktemp("cdk-out-alternative"), ALTERNATIVE_CONTEXT)


@pytest.fixture(params=["default", "alternative"])
def any_stack(request: pytest.FixtureRequest) -> Synthesized:
    """Each configuration in turn, for properties that must hold in all of them."""
    stack: Synthesized = request.getfixturevalue(f"{request.param}_stack")
    return stack
