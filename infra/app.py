"""CDK app entry point: `npx cdk synth` runs `.venv/bin/python infra/app.py` (see cdk.json)."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts infra/ first on sys.path; the app needs the
# repository root instead (for `infra.*`) and functions/ (for `gateway.names`).
_REPO_ROOT = Path(__file__).resolve().parent.parent
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
for _path in (_REPO_ROOT / "functions", _REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from aws_cdk import App  # noqa: E402

from infra.config import ConfigError, GatewayConfig  # noqa: E402
from infra.nag import add_checks  # noqa: E402
from infra.stack import ViberGatewayStack  # noqa: E402


def build_app(app: App) -> ViberGatewayStack:
    """Add the stack, configured from the app's context, and the cdk-nag checks to `app`."""
    config = GatewayConfig.from_context(app.node.get_all_context())
    stack = ViberGatewayStack(app, config.stack_name, config=config)
    add_checks(app)
    return stack


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ConfigError as error:
        sys.exit(f"viber-gateway: invalid configuration: {error}")
    app.synth()


if __name__ == "__main__":
    main()
