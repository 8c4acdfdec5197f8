"""Caps (gateway.guard.caps): the context keys, the usage table, who may count in it, what the
functions are told, the spend-ceiling alarm and the dashboard's widgets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway import names
from gateway.settings import load_settings
from infra.config import ConfigError, GatewayConfig, euros_text
from tests.infra.synth import Synthesized, TableRecorder, assert_table_built_like, stage_of
from tests.infra.test_infra_monitoring import alarms_by_suffix, dashboard_entries, dashboard_metrics
from tests.infra.test_infra_security import (
    HANDLERS,
    actions_of,
    grants_by_resource,
    key,
    queue_arn,
    resources_of,
    role_statements,
    statements_for,
)

ALARM_EMAIL = {"alarmEmail": "ops@example.com"}
COUNTERS = (names.API_HANDLER, names.QUEUE_HANDLER)
USAGE_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
CAP_VARIABLES = (
    names.ENV_USAGE_TABLE,
    names.ENV_STAGE_TIME_ZONE,
    names.ENV_DAILY_MESSAGE_LIMIT,
    names.ENV_DAILY_COST_LIMIT_EUROS,
    names.ENV_DAILY_SPEND_CEILING_EUROS,
)


def usage_table(stack: Synthesized) -> tuple[str, dict[str, Any]]:
    """(logical id, resource) of the stage's usage table."""
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items()
        if resource["Properties"]["TableName"] == f"{names.USAGE_TABLE_NAME}-{stage_of(stack)}"
    ]
    return found


def variables_of(stack: Synthesized, handler: str) -> dict[str, Any]:
    (function,) = [p for p in stack.properties("AWS::Lambda::Function") if p["Handler"] == handler]
    variables: dict[str, Any] = function["Environment"]["Variables"]
    return variables


# --- the context keys (no synthesis) ---


def test_by_default_nothing_is_capped_and_the_day_is_athens() -> None:
    # Given no cap key in the context
    config = GatewayConfig.from_context(ALARM_EMAIL)

    # Then no caller limit and no ceiling (a stage behaves as before until told), days of Athens
    assert config.daily_message_limit is None
    assert config.daily_cost_limit_euros is None
    assert config.daily_spend_ceiling_euros is None
    assert config.stage_time_zone == names.DEFAULT_STAGE_TIME_ZONE == "Europe/Athens"


@pytest.mark.parametrize(
    ("context", "field", "expected"),
    [
        ({"dailyMessageLimit": "5"}, "daily_message_limit", 5),  # as -c gives it
        ({"dailyMessageLimit": 2000}, "daily_message_limit", 2000),  # as cdk.json holds it
        ({"dailyMessageLimit": 0}, "daily_message_limit", 0),  # nobody, unless a limits item says
        ({"dailyMessageLimit": "none"}, "daily_message_limit", None),
        ({"dailyMessageLimit": None}, "daily_message_limit", None),  # JSON null in cdk.json
        ({"dailyCostLimitEuros": "2.5"}, "daily_cost_limit_euros", 2.5),
        ({"dailyCostLimitEuros": 0}, "daily_cost_limit_euros", 0.0),
        ({"dailyCostLimitEuros": "off"}, "daily_cost_limit_euros", None),
        ({"dailySpendCeilingEuros": "0.2"}, "daily_spend_ceiling_euros", 0.2),
        ({"dailySpendCeilingEuros": 150}, "daily_spend_ceiling_euros", 150.0),
        ({"dailySpendCeilingEuros": "None"}, "daily_spend_ceiling_euros", None),
        ({"stageTimeZone": "Europe/Nicosia"}, "stage_time_zone", "Europe/Nicosia"),
        ({"stageTimeZone": "UTC"}, "stage_time_zone", "UTC"),
        (
            {"stageTimeZone": "America/Argentina/Buenos_Aires"},
            "stage_time_zone",
            "America/Argentina/Buenos_Aires",
        ),
        ({"stageTimeZone": "Etc/GMT-2"}, "stage_time_zone", "Etc/GMT-2"),
    ],
)
def test_cap_keys_are_read_from_either_form(context: dict[str, Any], field: str, expected: Any) -> None:
    # Given a cap key as -c (a string) or cdk.json (a number, null) gives it
    # When the configuration is read
    config = GatewayConfig.from_context({**ALARM_EMAIL, **context})

    # Then it holds that cap (None: no cap)
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"dailyMessageLimit": "-1"}, "expected an integer from 0 to 1,000,000,000"),
        ({"dailyMessageLimit": "2.5"}, "expected an integer from 0"),
        ({"dailyMessageLimit": "lots"}, "expected an integer from 0"),
        ({"dailyMessageLimit": True}, "expected an integer from 0"),
        ({"dailyMessageLimit": 10**10}, "expected an integer from 0"),
        ({"dailyCostLimitEuros": "-0.5"}, "expected euros from 0 to 1,000,000"),
        ({"dailyCostLimitEuros": "nan"}, "expected euros from 0"),
        ({"dailyCostLimitEuros": "5 EUR"}, "expected euros from 0"),
        ({"dailyCostLimitEuros": [5]}, "expected euros from 0"),
        ({"dailySpendCeilingEuros": "0"}, "expected euros greater than 0"),
        ({"dailySpendCeilingEuros": "inf"}, "expected euros greater than 0"),
        ({"dailySpendCeilingEuros": 2_000_000}, "expected euros greater than 0 and at most 1,000,000"),
        ({"stageTimeZone": "Europe/Atlantis"}, "no such zone in the time zone database"),
        ({"stageTimeZone": "Athens"}, "no such zone"),
        ({"stageTimeZone": "europe/athens"}, "expected an IANA time zone name such as Europe/Athens"),
        ({"stageTimeZone": "+02:00"}, "expected an IANA time zone name"),
        ({"stageTimeZone": "/etc/localtime"}, "expected an IANA time zone name"),
        ({"stageTimeZone": "../../etc/passwd"}, "expected an IANA time zone name"),
        ({"stageTimeZone": 2}, "expected an IANA time zone name"),
    ],
)
def test_a_wrong_cap_stops_the_synth_naming_key_value_and_form(context: dict[str, Any], message: str) -> None:
    # Given a cap key with a value it does not take
    # When the configuration is read
    with pytest.raises(ConfigError) as refused:
        GatewayConfig.from_context({**ALARM_EMAIL, **context})

    # Then the error names the key, what it got and what it accepts
    text = str(refused.value)
    (name, value) = next(iter(context.items()))
    assert text.startswith(f"context key {name!r}: ")
    assert message in text
    assert f"(got {value!r})" in text
    assert "or none" in text or name == "stageTimeZone"


def test_a_misspelled_cap_key_is_refused() -> None:
    # Given a cap key spelled as a shell user might
    # Then the synth stops, naming the key it meant (CDK would ignore it: no cap at all)
    with pytest.raises(ConfigError, match="did you mean 'dailySpendCeilingEuros'"):
        GatewayConfig.from_context({**ALARM_EMAIL, "daily_spend_ceiling_euros": "50"})


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.2, "0.2"), (10.0, "10"), (12.5, "12.5"), (0.00001, "0.00001"), (1_000_000.0, "1000000")],
)
def test_euros_reach_the_functions_as_plain_decimals(value: float, text: str) -> None:
    assert euros_text(value) == text


# --- the usage table ---


def test_each_stage_has_a_usage_table_keyed_by_pk_alone(any_stack: Synthesized) -> None:
    # Given the stack's usage table
    _, table = usage_table(any_stack)
    props = table["Properties"]

    # Then it is keyed by the string pk, with no sort key and no index
    assert props["KeySchema"] == [{"AttributeName": names.USAGE_KEY_ATTRIBUTE, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert "GlobalSecondaryIndexes" not in props
    assert "LocalSecondaryIndexes" not in props
    # And a day's items leave by DynamoDB's TTL on expires_at
    assert props["TimeToLiveSpecification"] == {"AttributeName": names.USAGE_TTL_ATTRIBUTE, "Enabled": True}
    assert names.USAGE_TTL_ATTRIBUTE == "expires_at"


def test_the_usage_table_is_built_like_the_other_tables(any_stack: Synthesized) -> None:
    # Given the usage table and the suppression table
    _, table = usage_table(any_stack)
    (suppression,) = [
        resource
        for resource in any_stack.resources("AWS::DynamoDB::Table").values()
        if resource["Properties"]["TableName"].startswith(names.SUPPRESSION_TABLE_NAME)
    ]

    # Then it bills per request, has point-in-time recovery (the limits items are operators'
    # decisions), is encrypted the same way, and goes with the stack as the others do
    assert_table_built_like(table, suppression)


def test_the_usage_table_is_the_one_the_local_emulator_creates(any_stack: Synthesized) -> None:
    from local.emulator import create_usage_table

    # Given the stack's usage table, and the one make run and the tests create
    _, table = usage_table(any_stack)
    local = TableRecorder()
    create_usage_table(local)

    # Then they have the same name (before the stage suffix), key, billing and TTL attribute
    props = table["Properties"]
    assert props["TableName"] == f"{local.definition['TableName']}-{stage_of(any_stack)}"
    assert props["KeySchema"] == local.definition["KeySchema"]
    assert props["AttributeDefinitions"] == local.definition["AttributeDefinitions"]
    assert "GlobalSecondaryIndexes" not in local.definition
    assert local.definition["BillingMode"] == props["BillingMode"]
    assert local.ttl == {
        "TableName": local.definition["TableName"],
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": names.USAGE_TTL_ATTRIBUTE},
    }


def test_the_usage_tables_name_is_an_output(any_stack: Synthesized) -> None:
    # Given the outputs
    output = any_stack.template["Outputs"]["UsageTableName"]
    table_id, _ = usage_table(any_stack)

    # Then the table operators write a caller's limits to is named, with what goes there
    assert output["Value"] == {"Ref": table_id}
    assert "limits#" in output["Description"]


# --- who may count ---


@pytest.mark.parametrize("handler", HANDLERS)
def test_the_functions_that_send_count_in_the_table_and_nothing_more(
    any_stack: Synthesized, handler: str
) -> None:
    # Given a function's DynamoDB permissions, and the usage table's ARN
    table_id, _ = usage_table(any_stack)
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    statements = statements_for(role_statements(any_stack, handler), "dynamodb")
    references = [
        resource
        for statement in statements
        for resource in resources_of(statement)
        if table_id in json.dumps(resource)
    ]

    if handler in COUNTERS:
        # Then the API and queue functions may read limits, write them, and raise and give back
        # counters on the table's items: exactly those three actions, on the table itself only
        assert grants_by_resource(any_stack, handler, "dynamodb")[key(table_arn)] == USAGE_ACTIONS
        assert references
        assert all(resource == table_arn for resource in references)
    else:
        # And the scheduled function may do nothing with it at all
        assert references == []
    # And no action of any DynamoDB statement is a wildcard
    assert not any("*" in action for statement in statements for action in actions_of(statement))


def test_the_queue_function_may_postpone_a_capped_record_on_both_queues(any_stack: Synthesized) -> None:
    # Given the queue function's SQS permissions
    grants = grants_by_resource(any_stack, names.QUEUE_HANDLER, "sqs")

    # Then on the message queue and on the trigger queue it may hide a record it received until the
    # day turns (ChangeMessageVisibility), and find the queue's URL from the record's ARN
    for queue in (names.QUEUE_NAME, names.SCHEDULE_QUEUE_NAME):
        assert {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"} <= grants[key(queue_arn(any_stack, queue))]


# --- what the functions are told ---


@pytest.mark.parametrize("handler", HANDLERS)
def test_the_default_stage_tells_the_counting_functions_the_table_and_its_day_only(
    default_stack: Synthesized, handler: str
) -> None:
    # Given a function of prod, synthesized without any cap key
    variables = variables_of(default_stack, handler)
    table_id, _ = usage_table(default_stack)

    if handler in COUNTERS:
        # Then the API and queue functions are told the table and the stage's time zone, and no cap
        assert variables[names.ENV_USAGE_TABLE] == {"Ref": table_id}
        assert variables[names.ENV_STAGE_TIME_ZONE] == "Europe/Athens"
        for name in CAP_VARIABLES[2:]:
            assert name not in variables
    else:
        # And the scheduled function is told nothing of the caps
        assert not set(CAP_VARIABLES) & set(variables)


@pytest.mark.parametrize("handler", HANDLERS)
def test_the_caps_of_the_context_reach_the_counting_functions(
    alternative_stack: Synthesized, handler: str
) -> None:
    # Given a function of the stage with every cap set (dailyMessageLimit "500", dailyCostLimitEuros
    # 12.5, dailySpendCeilingEuros "40", stageTimeZone Europe/Nicosia)
    variables = variables_of(alternative_stack, handler)
    table_id, _ = usage_table(alternative_stack)

    if handler in COUNTERS:
        # Then the API and queue functions get each, as the functions read them
        assert {name: variables[name] for name in CAP_VARIABLES} == {
            names.ENV_USAGE_TABLE: {"Ref": table_id},
            names.ENV_STAGE_TIME_ZONE: "Europe/Nicosia",
            names.ENV_DAILY_MESSAGE_LIMIT: "500",
            names.ENV_DAILY_COST_LIMIT_EUROS: "12.5",
            names.ENV_DAILY_SPEND_CEILING_EUROS: "40",
        }
    else:
        assert not set(CAP_VARIABLES) & set(variables)


@pytest.mark.parametrize("handler", COUNTERS)
def test_the_functions_settings_accept_what_the_stack_tells_them(
    alternative_stack: Synthesized, handler: str
) -> None:
    # Given the environment the stack gives a counting function (references made plain strings)
    variables = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in variables_of(alternative_stack, handler).items()
    }
    variables[names.ENV_PROVIDER_TOKEN_SECRET] = "liveall/token"

    # When the functions read it as they do at a cold start
    settings = load_settings(variables)

    # Then every cap is what the context said
    assert settings.usage_table == f"resolved-{names.ENV_USAGE_TABLE.lower()}"
    assert settings.daily_message_limit == 500
    assert settings.daily_cost_limit_euros == 12.5
    assert settings.daily_spend_ceiling_euros == 40
    assert settings.stage_time_zone == "Europe/Nicosia"


# --- the alarm and the dashboard ---


def test_a_stage_with_a_ceiling_alarms_once_it_is_reached(alternative_stack: Synthesized) -> None:
    # Given the alarms of the stage with dailySpendCeilingEuros 40
    alarm = alarms_by_suffix(alternative_stack)["spend-ceiling-reached"]
    (topic_id,) = alternative_stack.resources("AWS::SNS::Topic")

    # Then it reads the stage's own SpendCeilingReached (counted once a day at most, when the brake
    # engages), and fires on the first one
    assert alarm["Namespace"] == "ViberGateway/staging"
    assert alarm["MetricName"] == names.METRIC_SPEND_CEILING_REACHED
    assert alarm["Dimensions"] == [{"Name": names.METRIC_DIMENSION_SERVICE, "Value": names.SERVICE_NAME}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    # And it notifies the stage's topic, saying what stopped, until when, and how to go on
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    description = alarm["AlarmDescription"]
    assert "40 EUR" in description
    assert "Europe/Nicosia" in description
    assert "spend-ceiling-reached" in description
    assert "lifted" in description


def test_a_stage_without_a_ceiling_has_no_ceiling_alarm(default_stack: Synthesized) -> None:
    # Given prod, with no dailySpendCeilingEuros: the metric cannot exist
    # Then there is no alarm on it
    assert "spend-ceiling-reached" not in alarms_by_suffix(default_stack)


def _guard_widgets(stack: Synthesized) -> dict[str, dict[str, Any]]:
    body = stack.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    text = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return {
        widget["properties"]["title"]: widget["properties"]
        for widget in json.loads(text)["widgets"]
        if widget["properties"].get("title")
    }


def test_the_dashboard_shows_refusals_by_rule_spend_and_messages_by_caller(any_stack: Synthesized) -> None:
    # Given the dashboard's metrics
    namespace = f"{names.DEFAULT_METRICS_NAMESPACE}/{stage_of(any_stack)}"
    metrics = dashboard_metrics(any_stack)

    def dimension_values(metric_name: str, dimension: str) -> set[str]:
        return {
            metric[metric.index(dimension) + 1]
            for metric in metrics
            if metric[:2] == [namespace, metric_name]
        }

    # Then the caps' refusals are graphed by rule, and the destination policy's by rule
    assert dimension_values(names.METRIC_CAP_REFUSALS, "rule") == {"messages", "cost", "spend-ceiling"}
    assert dimension_values(names.METRIC_POLICY_REFUSALS, "rule") == {"country", "number-type"}
    # And the day's worst-case spend (its highest reading) beside the brake engaging
    (spend,) = [metric for metric in metrics if metric[:2] == [namespace, names.METRIC_DAY_SPEND]]
    assert spend[-1]["stat"] == "Maximum"
    assert [namespace, names.METRIC_SPEND_CEILING_REACHED] in [metric[:2] for metric in metrics]
    # And the messages counted, by caller: a search over the caller dimension (API key ids the
    # stack cannot know), in the stage's namespace
    (search,) = [
        entry[0]["expression"]
        for entry in dashboard_entries(any_stack)
        if isinstance(entry[0], dict) and "MessagesCounted" in entry[0]["expression"]
    ]
    assert re.fullmatch(
        rf"SEARCH\('\{{{re.escape(namespace)},service,caller\}} MetricName=\"MessagesCounted\" "
        r"service=\"viber-gateway\"', 'Sum', 300\)",
        search,
    )


def test_the_spend_graph_marks_the_ceiling_where_there_is_one(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given the spend widget of a stage without a ceiling, and of one with 40 EUR
    title = "Today's worst-case spend (EUR)"
    without = _guard_widgets(default_stack)[title]
    with_ceiling = _guard_widgets(alternative_stack)[title]

    # Then only the latter draws the ceiling
    assert "annotations" not in without
    assert with_ceiling["annotations"]["horizontal"] == [
        {"value": 40, "label": "dailySpendCeilingEuros", "yAxis": "left"}
    ]
