"""GET /openapi.json answered by API Gateway itself, with the API function's own document.

The document is made at synthesis, by the API function's code (`api_handler.openapi_json()`,
in a subprocess with functions/ on its path and the pinned dependencies of the venv), so
the deployed contract is always the one of the code deployed with it, and reading it
costs no invocation (nor a cold start, nor concurrency).

API Gateway returns it from a MOCK integration's response mapping template. Templates are
Velocity (VTL): `$` starts a reference and `#` a directive or a comment (`##`, `#*`),
and the document holds both (`"$ref": "#/components/..."`, regular expressions), so it
cannot go in as it is. Rather than escaping each (Velocity's backslash escapes depend on
whether the reference is defined), the template is one call that VTL evaluates and
nothing else: `$util.base64Decode('<the document in base64>')`, whose alphabet has no
`$`, `#`, quote or backslash. The document must be ASCII (openapi_json() escapes the rest), so
that the decoded bytes are the same whatever character set the decoding assumes.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.artifacts import FUNCTIONS_DIR

_TEMPLATE_PATTERN = re.compile(r"^\$util\.base64Decode\('([A-Za-z0-9+/]*={0,2})'\)$")
# Enough for api_handler to import outside Lambda: no tracing, a region for boto3.
_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "1", "AWS_DEFAULT_REGION": "us-east-1"}
_SCRIPT = (
    "import sys, api_handler\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as out:\n"
    "    out.write(api_handler.openapi_json())\n"
)


class OpenApiError(RuntimeError):
    """The document could not be made, or cannot be served from a mapping template."""


def generate_document(functions_dir: Path = FUNCTIONS_DIR) -> str:
    """`api_handler.openapi_json()`, run by this Python with functions/ on its path."""
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))},
        **_ENVIRONMENT,
        "PYTHONPATH": str(functions_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with tempfile.TemporaryDirectory(prefix="viber-gateway-openapi-") as scratch:
        out = Path(scratch) / "openapi.json"
        completed = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", _SCRIPT, str(out)],
            cwd=functions_dir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0 or not out.is_file():
            raise OpenApiError(f"api_handler.openapi_json() failed:\n{completed.stderr[-4000:]}")
        return out.read_text(encoding="utf-8")


def mock_response_template(document: str) -> str:
    """The VTL response template that renders exactly `document`."""
    if not document.isascii():
        raise OpenApiError(
            "the OpenAPI document holds non-ASCII characters: base64Decode's character set would decide "
            "how they come out; keep the document ASCII (json.dumps' default)"
        )
    return f"$util.base64Decode('{base64.b64encode(document.encode('ascii')).decode('ascii')}')"


def rendered(template: str) -> str:
    """What API Gateway renders from a template mock_response_template made (for tests)."""
    match = _TEMPLATE_PATTERN.match(template)
    if match is None:
        raise OpenApiError("not a template of mock_response_template")
    return base64.b64decode(match.group(1), validate=True).decode("ascii")
