"""The API as its OpenAPI description says, tried by schemathesis against `make run`'s service.

Schemathesis reads GET /openapi.json of the running local service (HTTP front,
API function, moto, provider sandbox) and sends generated requests: valid ones
(every rule the description carries) and invalid ones (each rule broken). Every
answer must be one the description documents, with a body that matches it, and
no request may make the service fail (5xx) or be accepted when it breaks a rule.

The rules JSON Schema cannot say are whether a number is a real phone number of
its country, and whether a send_at or a window is open now: a schema-valid body
may still get a 422 (or, scheduled, a 202) for those alone. So the check that
schema-valid bodies are accepted runs on bodies whose destinations are then
replaced by real numbers and whose send_at and window are left out, and must
then be a 200.

The example count is bounded so the tier stays short. (Schemathesis' own pytest
plugin does not run under this pytest; its strategies are driven with
hypothesis directly instead, which is what the plugin does.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config._auth import AuthConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Per operation and generation mode: enough to find what a careless caller finds, bounded for CI.
MAX_EXAMPLES = 60
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# Numbers the sandbox always delivers to (last digit 5-9: a Viber user who reads). A number it fails
# to deliver to three times in a row (an IM to a phone without Viber, say) is suppressed by delivery
# tracking, and the send refused: how soon depends on how long the service has been running.
REAL_NUMBERS = [f"+30 69{n:08d}" for n in range(1000, 1050) if n % 10 >= 5]


@pytest.fixture(scope="session")
def api_schema(service: Any) -> Any:
    """The description as the running service serves it, with the API key a caller would hold."""
    loaded = schemathesis.openapi.from_url(f"{service.api_url}/openapi.json")
    # As the description's security scheme: schemathesis then also tries requests without it.
    loaded.config.auth = AuthConfig(openapi={"apiKey": {"api_key": service.api_key}})
    return loaded


def _operations(api_schema: Any) -> list[Any]:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations, "the description lists no operation"
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_answer_is_one_the_description_documents(api_schema: Any, mode: GenerationMode) -> None:
    for operation in _operations(api_schema):
        # Given requests generated from the description, valid (positive) or breaking a rule (negative)
        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def sent(case: Any) -> None:
            # When one is sent to the running service
            # Then no 5xx; status, headers and body are documented; a broken rule is refused
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        sent()


def test_a_schema_valid_body_with_real_numbers_is_sent(api_schema: Any) -> None:
    [send] = [op for op in _operations(api_schema) if (op.method.upper(), op.path) == ("POST", "/messages")]

    # Given bodies valid by the description, their destinations then made real phone numbers
    @SETTINGS
    @given(case=send.as_strategy(generation_mode=GenerationMode.POSITIVE), numbers=st.data())
    def sent(case: Any, numbers: st.DataObject) -> None:
        body = case.body
        body["destinations"] = numbers.draw(st.lists(st.sampled_from(REAL_NUMBERS), min_size=1, max_size=3))
        # A send now: a send_at (past, beyond the horizon, or a 202) or a window (closed: a 202) is a
        # time, which JSON Schema cannot check against the clock any more than a number's country.
        body.pop("send_at", None)
        body.pop("window", None)
        case.headers = {
            name: value for name, value in (case.headers or {}).items() if name.lower() != "idempotency-key"
        }

        # When it is sent, then the gateway's own rules accept it: nothing but the number was unsaid
        response = case.call()
        assert response.status_code == 200, (body, response.text)

    sent()
