"""Synthesize the stack once per configuration and session, offline, with the placeholder layer.

Each synthesis takes seconds and half a gigabyte (jsii), so the tests share
two: the default configuration and an alternative one (IAM auth, an existing
secret, an alarm e-mail, another stage). The context is the one `cdk synth`
sees: cdk.json's feature flags plus the keys given in tests/infra/synth.py.
"""

from __future__ import annotations

import pytest

from tests.infra.synth import ALTERNATIVE_CONTEXT, Synthesized, synthesize


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as `make synth` builds it with no -c options (but the placeholder layer)."""
    return synthesize(tmp_path_factory.mktemp("cdk-out-default"), {})


@pytest.fixture(scope="session")
def alternative_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every optional context key set to its non-default choice."""
    return synthesize(tmp_path_factory.mktemp("cdk-out-alternative"), ALTERNATIVE_CONTEXT)


@pytest.fixture(params=["default", "alternative"])
def any_stack(request: pytest.FixtureRequest) -> Synthesized:
    """Each configuration in turn, for properties that must hold in all of them."""
    stack: Synthesized = request.getfixturevalue(f"{request.param}_stack")
    return stack
