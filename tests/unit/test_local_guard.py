"""make run guards the account as a stage does: the destination policy, the usage table, the caps'
flags, API keys counted by their own ids, and the Spend Ceiling Reached line on the console."""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gateway import names
from local.emulator import Resources
from local.front import FrontServer, key_id_for
from local.run import Guard, RunningService, _parser, api_keys_from, banner, function_environment, guard_from
from local.tracking import event_line
from tests.unit.test_local_front import ApiFunctionStub

ENDPOINTS = ("http://127.0.0.1:1", "http://127.0.0.1:2/")


def _guard(*flags: str) -> Guard:
    return guard_from(_parser().parse_args(list(flags)))


# --- The environment ----------------------------------------------------------------------------


def test_by_default_the_functions_get_the_stacks_policy_and_the_usage_table_without_caps(
    aws: Resources,
) -> None:
    # Given make run's functions' environment with no guard flag
    environment = function_environment({}, *ENDPOINTS, aws, verbose=False)

    # Then the destination policy is the stack's default: numbers of Greece and Cyprus, mobiles
    assert environment[names.ENV_ALLOWED_COUNTRIES] == "GR,CY"
    assert environment[names.ENV_ALLOWED_NUMBER_TYPES] == "mobile,fixed-line-or-mobile"
    assert environment[names.ENV_ALLOWED_COUNTRIES] == ",".join(names.DEFAULT_ALLOWED_COUNTRIES)
    # And sends are counted in the usage table, by days of Athens, with no cap
    assert environment[names.ENV_USAGE_TABLE] == names.USAGE_TABLE_NAME
    assert environment[names.ENV_STAGE_TIME_ZONE] == "Europe/Athens"
    for name in (
        names.ENV_DAILY_MESSAGE_LIMIT,
        names.ENV_DAILY_COST_LIMIT_EUROS,
        names.ENV_DAILY_SPEND_CEILING_EUROS,
    ):
        assert name not in environment


def test_the_usage_table_is_provisioned_as_the_stack_makes_it(aws: Resources) -> None:
    # Given the emulator's resources (tests/conftest.py provisions them as make run does)
    dynamodb = boto3.client("dynamodb")

    # Then the usage table is there, keyed by pk alone, its items expiring on expires_at
    table = dynamodb.describe_table(TableName=names.USAGE_TABLE_NAME)["Table"]
    assert table["KeySchema"] == [{"AttributeName": names.USAGE_KEY_ATTRIBUTE, "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=names.USAGE_TABLE_NAME)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", names.USAGE_TTL_ATTRIBUTE)


def test_the_flags_set_the_policy_and_the_caps(aws: Resources) -> None:
    # Given every guard flag
    guard = _guard(
        "--allowed-countries=*",
        "--allowed-number-types=mobile,fixed-line",
        "--daily-message-limit=5",
        "--daily-cost-limit=1.5",
        "--spend-ceiling=0.2",
        "--stage-time-zone=Europe/Nicosia",
    )

    # When the functions' environment is made
    environment = function_environment({}, *ENDPOINTS, aws, guard=guard, verbose=False)

    # Then each reaches the functions as the stack writes it
    assert {name: environment[name] for name in Guard().environment()} | {
        names.ENV_DAILY_MESSAGE_LIMIT: environment[names.ENV_DAILY_MESSAGE_LIMIT],
        names.ENV_DAILY_COST_LIMIT_EUROS: environment[names.ENV_DAILY_COST_LIMIT_EUROS],
        names.ENV_DAILY_SPEND_CEILING_EUROS: environment[names.ENV_DAILY_SPEND_CEILING_EUROS],
    } == {
        names.ENV_ALLOWED_COUNTRIES: "*",
        names.ENV_ALLOWED_NUMBER_TYPES: "mobile,fixed-line",
        names.ENV_USAGE_TABLE: names.USAGE_TABLE_NAME,
        names.ENV_STAGE_TIME_ZONE: "Europe/Nicosia",
        names.ENV_DAILY_MESSAGE_LIMIT: "5",
        names.ENV_DAILY_COST_LIMIT_EUROS: "1.5",
        names.ENV_DAILY_SPEND_CEILING_EUROS: "0.2",
    }


def test_the_functions_read_what_the_flags_set(aws: Resources) -> None:
    from gateway.settings import load_settings

    # Given the environment of a runner with caps
    guard = _guard("--daily-message-limit=5", "--spend-ceiling=0.2", "--allowed-countries=gr")
    environment = function_environment({}, *ENDPOINTS, aws, guard=guard, verbose=False)
    environment[names.ENV_PROVIDER_TOKEN_SECRET] = names.TOKEN_SECRET_NAME

    # When the functions read it at a cold start
    settings = load_settings(environment)

    # Then they see the caps and the policy
    assert settings.usage_table == names.USAGE_TABLE_NAME
    assert settings.daily_message_limit == 5
    assert settings.daily_spend_ceiling_euros == 0.2
    assert settings.daily_cost_limit_euros is None
    assert settings.stage_time_zone == "Europe/Athens"
    assert settings.allowed_countries == ("GR",)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--daily-message-limit=-3"], "--daily-message-limit: expected an integer from 0"),
        (["--daily-cost-limit=cheap"], "--daily-cost-limit: expected euros from 0"),
        (["--spend-ceiling=0"], "--spend-ceiling: expected euros greater than 0"),
        (["--stage-time-zone=Athens/Greece"], "--stage-time-zone: expected an IANA time zone name"),
        (["--allowed-countries=Greece"], "--allowed-countries: GREECE not ISO 3166 codes"),
        (["--allowed-number-types=landline"], "--allowed-number-types: landline not kinds of number"),
    ],
)
def test_a_wrong_flag_is_refused_naming_the_flag(flags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)) as refused:
        _guard(*flags)
    assert "context key" not in str(refused.value)


def test_the_runner_refuses_a_wrong_cap_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    from local.run import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--spend-ceiling", "-1"])
    assert exit_info.value.code == 2
    assert "--spend-ceiling: expected euros greater than 0" in capsys.readouterr().err


def test_the_users_own_guard_variables_never_reach_the_functions() -> None:
    from local.run import GUARD_VARIABLES

    # make run removes these from its environment before setting its own (local.run._start)
    assert set(
        Guard(daily_message_limit=1, daily_cost_limit_euros=1, daily_spend_ceiling_euros=1).environment()
    ) <= set(GUARD_VARIABLES)


# --- The banner ---------------------------------------------------------------------------------


def _service(**changes: Any) -> RunningService:
    return RunningService(
        **{
            "api_url": "http://127.0.0.1:3000",
            "api_key": "k1",
            "aws_endpoint_url": "http://127.0.0.1:3001",
            "queue_url": "q",
            "dead_letter_queue_url": "d",
            "event_bus_name": names.EVENT_BUS_NAME,
            "provider_url": "http://127.0.0.1:3002/",
            "sandboxed": True,
            **changes,
        }
    )


def test_the_banner_shows_the_policy_the_caps_and_each_keys_id() -> None:
    # Given a runner with two keys and caps
    guard = _guard("--daily-message-limit=5", "--spend-ceiling=0.2", "--stage-time-zone=UTC")
    keys = (("k1", key_id_for("k1")), ("k2", key_id_for("k2")))

    shown = banner(_service(api_keys=keys, guard=guard), aws_port_is_default=True)

    # Then each key is shown with the id its sends are counted under
    assert (
        f"API key        k1  (id {key_id_for('k1')}: its limits item is limits#key:{key_id_for('k1')})"
        in shown
    )
    assert f"API key        k2  (id {key_id_for('k2')}" in shown
    # And the policy and the caps
    assert "Destinations   GR, CY; mobile, fixed-line-or-mobile numbers" in shown
    assert (
        "Caps           5 messages a day per caller; ceiling 0.2 EUR a day for the stage (days of UTC)"
        in shown
    )


def test_the_banner_says_when_nothing_is_capped() -> None:
    shown = banner(_service(guard=_guard("--allowed-countries=*")), aws_port_is_default=True)
    assert "Destinations   every country; mobile, fixed-line-or-mobile numbers" in shown
    assert "Caps           none (counted per caller, days of Europe/Athens;" in shown


# --- API keys and their ids ---------------------------------------------------------------------


def test_the_keys_are_the_flags_else_the_variable_else_a_new_one() -> None:
    assert api_keys_from(["a", "b", "a"], "env") == ["a", "b"]
    assert api_keys_from(None, "env") == ["env"]
    (generated,) = api_keys_from(None, None)
    assert len(generated) == 40
    with pytest.raises(ValueError, match="--api-key"):
        api_keys_from(["a b"], None)


def test_a_keys_id_is_stable_its_own_and_not_the_key() -> None:
    # Then a key's id is ten lowercase letters and digits, as API Gateway's, the same every time
    assert key_id_for("secret-key-1") == key_id_for("secret-key-1")
    assert re.fullmatch(r"[0-9a-z]{10}", key_id_for("secret-key-1"))
    # And another key's differs, and no id gives its key away
    assert key_id_for("secret-key-1") != key_id_for("secret-key-2")
    assert "secret" not in key_id_for("secret-key-1")


@pytest.fixture
def front() -> Iterator[tuple[FrontServer, ApiFunctionStub]]:
    functions = ApiFunctionStub()
    server = FrontServer(
        ("127.0.0.1", 0),
        api_key="first-key",
        more_api_keys=["second-key"],
        functions=functions,  # type: ignore[arg-type]
        log=logging.getLogger("test-front"),
    )
    server.start()
    yield server, functions
    server.stop()


def _status(server: FrontServer, key: str | None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    try:
        connection.request("GET", "/account/balance?country=GR", headers={"x-api-key": key} if key else {})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_each_key_reaches_the_function_with_its_own_id(front: tuple[FrontServer, ApiFunctionStub]) -> None:
    server, functions = front

    # When each key calls, and a key the front does not hold, and no key
    statuses = [_status(server, key) for key in ("first-key", "second-key", "first-key", "other", None)]

    # Then the two keys are taken, the others refused as API Gateway refuses them
    assert statuses == [200, 200, 200, 403, 403]
    # And the function is told each key's id (not its value), the same for each call of a key
    identities = [event["requestContext"]["identity"] for event in functions.api_events]
    assert [identity["apiKeyId"] for identity in identities] == [
        key_id_for("first-key"),
        key_id_for("second-key"),
        key_id_for("first-key"),
    ]
    assert [identity["apiKey"] for identity in identities] == ["first-key", "second-key", "first-key"]
    assert server.api_keys == {"first-key": key_id_for("first-key"), "second-key": key_id_for("second-key")}


# --- The console --------------------------------------------------------------------------------


def test_spend_ceiling_reached_is_one_readable_line() -> None:
    event = {
        "detail-type": names.DETAIL_TYPE_SPEND_CEILING_REACHED,
        "source": names.EVENT_SOURCE,
        "detail": {"day": "2026-12-08", "ceiling": 0.2, "currency": "EUR", "time_zone": "Europe/Athens"},
    }
    assert event_line(event) == (
        "event Spend Ceiling Reached 2026-12-08: 0.2 EUR of worst-case spend, sends stopped until midnight "
        "(Europe/Athens)"
    )
