"""End to end: a Python client generated from GET /openapi.json, used as a client's developer would.

openapi-python-client (requirements-dev.txt) generates the package from the document the running
service serves, into a temporary directory; the tests import it from there and send, preview, look
up and get refused through `make run`'s service, each call by the function its operationId names.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.harness import LocalService

PACKAGE = "viber_gateway_client"
GENERATE_TIMEOUT_SECONDS = 120
PROBLEM = "urn:viber-gateway:problem:"
# The generated modules, by tag then operationId (snake case): what a client's code imports.
OPERATIONS = {
    "account": {"get_balance"},
    "messages": {"send_message", "preview_message", "get_message", "get_messages"},
    "suppressions": {
        "put_suppression",
        "get_suppression",
        "delete_suppression",
        "list_suppressions",
        "import_suppressions",
    },
    "schedules": {"get_schedule", "list_schedules", "cancel_schedule"},
}


class Generated:
    """The generated package's modules a test needs, and a client keyed for the local service."""

    def __init__(self, root: Path, local: LocalService) -> None:
        self.root = root
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.client = importlib.import_module(PACKAGE).AuthenticatedClient(
            base_url=local.api_url,
            token=local.api_key,
            prefix="",  # the API key goes as it is, in the security scheme's header
            auth_header_name="x-api-key",
            raise_on_unexpected_status=True,  # a status the description does not list fails the test
        )

    def api(self, tag: str, operation: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")


@pytest.fixture(scope="module")
def generated(service: LocalService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    # The description as a client gets it: from the running service
    served = service.http.request("GET", f"{service.api_url}/openapi.json")
    assert served.status == 200
    root = tmp_path_factory.mktemp("generated-client")
    description = root / "openapi.json"
    description.write_bytes(served.data)
    tools = Path(sys.executable).parent  # openapi-python-client, and the ruff it formats with
    completed = subprocess.run(
        [
            str(tools / "openapi-python-client"),
            "generate",
            "--path",
            str(description),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--fail-on-warning",
        ],
        cwd=root,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=GENERATE_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "warning" not in (completed.stdout + completed.stderr).lower(), completed.stdout + completed.stderr

    sys.path.insert(0, str(root))
    try:
        yield Generated(root, service)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _message(generated: Generated, **fields: Any) -> Any:
    models = generated.models
    message = {
        "im_type": models.SendRequestImType.IM,
        "im_sender_name": "MyShop",
        "im_text": "Your order 1042 has shipped and arrives tomorrow.",
        "destinations": ["+30 691 234 5678", "00306987654321"],
    }
    return models.SendRequest(**{**message, **fields})


def test_each_operation_is_a_function_named_after_its_operation_id(generated: Generated) -> None:
    # Given the generated package's api/ directory
    api = generated.root / PACKAGE / "api"

    # Then its modules are the operationIds, grouped by tag, each with the four calling styles
    found = {
        tag.name: {module.stem for module in tag.glob("*.py") if module.stem != "__init__"}
        for tag in api.iterdir()
        if tag.is_dir() and tag.name != "__pycache__"
    }
    assert found == OPERATIONS
    for tag, operations in OPERATIONS.items():
        for operation in operations:
            module = generated.api(tag, operation)
            assert all(hasattr(module, f) for f in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"))


def test_a_generated_client_sends_a_message_and_looks_up_its_status(
    local: LocalService, generated: Generated
) -> None:
    models = generated.models
    send_message = generated.api("messages", "send_message")
    get_message = generated.api("messages", "get_message")
    reference = f"order-{uuid.uuid4().hex[:8]}"

    # When a message is sent through the generated send_message
    sent = send_message.sync_detailed(client=generated.client, body=_message(generated, reference=reference))

    # Then the answer parses into SendResponse, with each normalised destination and its id
    assert sent.status_code == 200, sent.content
    assert isinstance(sent.parsed, models.SendResponse)
    assert [m.destination for m in sent.parsed.messages] == ["306912345678", "306987654321"]
    assert sent.parsed.reference == reference
    assert [entry["smsids"] for entry in local.ledger()] == [[m.smsid for m in sent.parsed.messages]]

    # And get_message finds the first one, with the send's reference, as a MessageStatus
    first = sent.parsed.messages[0]
    status = get_message.sync_detailed(str(first.smsid), client=generated.client)
    assert status.status_code == 200, status.content
    assert isinstance(status.parsed, models.MessageStatus)
    assert (status.parsed.smsid, status.parsed.destination) == (int(first.smsid), "306912345678")
    assert status.parsed.reference == reference
    assert isinstance(status.parsed.state, models.MessageStatusState)

    # And an id LiveAll does not know is a 404 problem
    unknown = get_message.sync_detailed("99999999999", client=generated.client)
    assert unknown.status_code == 404, unknown.content
    assert isinstance(unknown.parsed, models.Problem)
    assert unknown.parsed.status == 404


def test_a_generated_client_previews_a_message_without_sending_it(
    local: LocalService, generated: Generated
) -> None:
    models = generated.models
    preview_message = generated.api("messages", "preview_message")
    local.sandbox("POST", "config", {"balance": 169.64})

    # When a Viber message with an SMS fallback is previewed through preview_message
    body = _message(
        generated,
        im_type=models.SendRequestImType.IM_SMSFB,
        senderid="MyShop",
        sms_text="Your order 1042 has shipped.",
    )
    previewed = preview_message.sync_detailed(client=generated.client, body=body)

    # Then the answer parses into PreviewResponse: the destinations, the SMS, and nothing sent
    assert previewed.status_code == 200, previewed.content
    assert isinstance(previewed.parsed, models.PreviewResponse)
    assert previewed.parsed.destinations == ["306912345678", "306987654321"]
    assert isinstance(previewed.parsed.sms, models.FallbackSms)
    assert (previewed.parsed.sms.encoding, previewed.parsed.sms.segments) == ("GSM-7", 1)
    assert previewed.parsed.currency == "EUR"
    assert local.ledger() == []


def test_a_refused_message_parses_into_the_generated_problem(
    local: LocalService, generated: Generated
) -> None:
    models = generated.models
    send_message = generated.api("messages", "send_message")

    # When a message with an empty text and a destination that is no number is sent
    refused = send_message.sync_detailed(
        client=generated.client, body=_message(generated, im_text="", destinations=["not-a-number"])
    )

    # Then the 422 parses into Problem, whose errors name both fields, and nothing was sent
    assert refused.status_code == 422, refused.content
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.parsed
    assert isinstance(problem, models.Problem)
    assert (problem.type_, problem.status) == (PROBLEM + "invalid-request", 422)
    assert all(isinstance(error, models.FieldErrorModel) for error in problem.errors)
    assert {error.field for error in problem.errors} == {"im_text", "destinations[0]"}
    assert problem.request_id
    assert local.ledger() == []


def test_a_generated_client_without_the_key_gets_api_gateway_s_problem(
    local: LocalService, generated: Generated
) -> None:
    models = generated.models
    get_balance = generated.api("account", "get_balance")
    keyless = importlib.import_module(PACKAGE).AuthenticatedClient(
        base_url=local.api_url, token="not-the-key", prefix="", auth_header_name="x-api-key"
    )

    # When the balance is asked with a key that is not the API's
    answer = get_balance.sync_detailed(client=keyless)

    # Then API Gateway's 403 parses into the same Problem model
    assert answer.status_code == 403, answer.content
    assert isinstance(answer.parsed, models.Problem)
    assert (answer.parsed.type_, answer.parsed.status) == ("about:blank", 403)
