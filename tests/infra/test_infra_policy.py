"""The destination policy's context keys: defaults a Greek business wants, checked, given to the functions."""

from __future__ import annotations

import pytest

from gateway import names
from infra.config import ConfigError, GatewayConfig
from tests.infra.synth import Synthesized
from tests.infra.test_infra_functions import function_by_handler

ALARM_EMAIL = {"alarmEmail": "ops@example.com"}


def test_the_defaults_are_greece_and_cyprus_mobiles() -> None:
    config = GatewayConfig.from_context(ALARM_EMAIL)
    assert config.allowed_countries == ("GR", "CY")
    assert config.allowed_number_types == ("mobile", "fixed-line-or-mobile")


@pytest.mark.parametrize(
    ("raw", "countries"),
    [("gr,cy,de", ("GR", "CY", "DE")), (["GR", "GR"], ("GR",)), ("*", ("*",)), ('["cy"]', ("CY",))],
)
def test_countries_are_read_from_either_form(raw: object, countries: tuple[str, ...]) -> None:
    assert GatewayConfig.from_context({**ALARM_EMAIL, "allowedCountries": raw}).allowed_countries == countries


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"allowedCountries": "Greece"}, "GREECE not ISO 3166 codes"),
        ({"allowedCountries": "none"}, "name at least one country"),
        ({"allowedCountries": "*,GR"}, "* stands alone"),
        ({"allowedNumberTypes": "mobile,landline"}, "landline not kinds of number"),
        ({"allowedNumberTypes": []}, "name at least one kind"),
    ],
)
def test_a_policy_that_is_no_policy_stops_the_synth_naming_the_key(
    context: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        GatewayConfig.from_context({**ALARM_EMAIL, **context})
    assert message in str(refused.value)
    assert repr(next(iter(context))) in str(refused.value)


@pytest.mark.parametrize("handler", [names.API_HANDLER, names.QUEUE_HANDLER])
def test_the_functions_that_send_get_the_policy(default_stack: Synthesized, handler: str) -> None:
    variables = function_by_handler(default_stack, handler)["Environment"]["Variables"]
    assert variables[names.ENV_ALLOWED_COUNTRIES] == "GR,CY"
    assert variables[names.ENV_ALLOWED_NUMBER_TYPES] == "mobile,fixed-line-or-mobile"
