"""Defaults shared by the local runner (local.run) and its helpers (local.send); standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
# The functions import their package as `gateway`, as they do in Lambda.
FUNCTIONS_DIR: Final = REPO / "functions"

HOST: Final = "127.0.0.1"
API_PORT: Final = 3000
REGION: Final = "eu-central-1"
# moto's default account: the queue URLs and ARNs it hands out carry it.
ACCOUNT_ID: Final = "123456789012"
# The emulator accepts any credentials; fixed dummies keep real ones from ever being used.
ACCESS_KEY_ID: Final = "local"
SECRET_ACCESS_KEY: Final = "local"  # noqa: S105 - a placeholder the emulator ignores


def aws_port_for(api_port: int) -> int:
    """The emulator's default port: next to the API's (any free port when the API's is 0)."""
    return api_port + 1 if api_port else 0


def sandbox_port_for(api_port: int) -> int:
    """The provider sandbox's default port: two above the API's (any free port when the API's is 0)."""
    return api_port + 2 if api_port else 0
