"""The suppression list: its table, what each function may do with it, its events and settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import names
from tests.infra.synth import Synthesized, TableRecorder, assert_table_built_like, stage_of
from tests.infra.test_infra_security import (
    HANDLERS,
    SUPPRESSION_ACTIONS,
    actions_of,
    grants_by_resource,
    key,
    resources_of,
    role_statements,
    statements_for,
)


def suppression_table(stack: Synthesized) -> tuple[str, dict[str, Any]]:
    """(logical id, resource) of the stage's suppression table."""
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items()
        if resource["Properties"]["TableName"] == f"{names.SUPPRESSION_TABLE_NAME}-{stage_of(stack)}"
    ]
    return found


def tracking_table(stack: Synthesized) -> dict[str, Any]:
    (found,) = [
        resource
        for resource in stack.resources("AWS::DynamoDB::Table").values()
        if resource["Properties"]["TableName"] == f"{names.TRACKING_TABLE_NAME}-{stage_of(stack)}"
    ]
    return found


def variables_of(stack: Synthesized, handler: str) -> dict[str, Any]:
    (function,) = [p for p in stack.properties("AWS::Lambda::Function") if p["Handler"] == handler]
    variables: dict[str, Any] = function["Environment"]["Variables"]
    return variables


def test_each_stage_has_a_suppression_table_keyed_by_pk_and_sk(any_stack: Synthesized) -> None:
    # Given the stack's suppression table
    _, table = suppression_table(any_stack)
    props = table["Properties"]

    # Then it is the stage's own, keyed by the strings pk (partition) and sk (sort), with no index
    assert props["KeySchema"] == [
        {"AttributeName": names.SUPPRESSION_KEY_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": names.SUPPRESSION_SORT_ATTRIBUTE, "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=json.dumps) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert "GlobalSecondaryIndexes" not in props
    assert "LocalSecondaryIndexes" not in props
    # And entries with an expiry are removed by DynamoDB's TTL on expires_at
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_suppression_table_is_built_like_the_other_tables(any_stack: Synthesized) -> None:
    # Given the suppression table and the tracking table
    _, table = suppression_table(any_stack)
    tracking = tracking_table(any_stack)

    # Then it bills per request, has point-in-time recovery, is encrypted the same way, and goes
    # with the stack as the others do (a backup is kept 35 days: README, What cdk destroy keeps)
    assert_table_built_like(table, tracking)


def test_the_suppression_table_is_the_one_the_local_emulator_creates(any_stack: Synthesized) -> None:
    from local.emulator import create_suppression_table

    # Given the stack's suppression table, and the one make run and the tests create
    _, table = suppression_table(any_stack)
    local = TableRecorder()
    create_suppression_table(local)

    # Then they have the same name (before the stage suffix), keys and TTL attribute, and no index
    props = table["Properties"]
    assert props["TableName"] == f"{local.definition['TableName']}-{stage_of(any_stack)}"
    assert props["KeySchema"] == local.definition["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=json.dumps) == sorted(
        local.definition["AttributeDefinitions"], key=json.dumps
    )
    assert "GlobalSecondaryIndexes" not in local.definition
    assert local.definition["BillingMode"] == props["BillingMode"]
    assert local.ttl == {
        "TableName": local.definition["TableName"],
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": names.SUPPRESSION_TTL_ATTRIBUTE},
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_function_is_told_the_suppression_table(any_stack: Synthesized, handler: str) -> None:
    # Given a function's environment
    table_id, _ = suppression_table(any_stack)

    # Then it names the stage's suppression table (sends check it in every function)
    assert variables_of(any_stack, handler)[names.ENV_SUPPRESSION_TABLE] == {"Ref": table_id}


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_function_may_do_exactly_its_part_on_the_suppression_table(
    any_stack: Synthesized, handler: str
) -> None:
    # Given a function's DynamoDB permissions, and the suppression table's ARN
    table_id, _ = suppression_table(any_stack)
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    statements = statements_for(role_statements(any_stack, handler), "dynamodb")

    # Then the actions it has on the table are exactly its list: reads for the queue function,
    # additions for the scheduled one, the list's routes for the API function
    grants = grants_by_resource(any_stack, handler, "dynamodb")
    assert grants[key(table_arn)] == SUPPRESSION_ACTIONS[handler]
    # And nothing of it reaches beyond the table: no index ARN, no wildcard of any kind
    references = [
        resource
        for statement in statements
        for resource in resources_of(statement)
        if table_id in json.dumps(resource)
    ]
    assert references
    assert all(resource == table_arn for resource in references)
    assert not any("*" in action for statement in statements for action in actions_of(statement))


def test_the_api_function_publishes_on_the_stages_bus_as_the_scheduled_function_does(
    any_stack: Synthesized,
) -> None:
    # Given the stage's bus, and the API and scheduled functions
    (bus_id,) = any_stack.resources("AWS::Events::EventBus")
    bus_arn = key({"Fn::GetAtt": [bus_id, "Arn"]})

    for handler in (names.API_HANDLER, names.SCHEDULED_HANDLER):
        # Then each is told the bus's name (Destination Suppressed, Suppression Removed)
        assert variables_of(any_stack, handler)[names.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}
        # And may put events on that bus only
        assert grants_by_resource(any_stack, handler, "events") == {bus_arn: {"events:PutEvents"}}


def test_the_suppression_tables_name_is_an_output(any_stack: Synthesized) -> None:
    # Given the stack's outputs
    table_id, _ = suppression_table(any_stack)
    output = any_stack.template["Outputs"]["SuppressionTableName"]

    # Then the table's name is one, for operators (export, restore, inspect)
    assert output["Value"] == {"Ref": table_id}
    assert output["Description"]


def test_automatic_suppression_follows_the_context(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given the scheduled function of prod (no autoSuppressAfterFailures) and of the other stage (0)
    prod = variables_of(default_stack, names.SCHEDULED_HANDLER)
    other = variables_of(alternative_stack, names.SCHEDULED_HANDLER)

    # Then prod suppresses after the default number of failures in a row, the other stage never
    assert prod[names.ENV_AUTO_SUPPRESS_AFTER_FAILURES] == str(names.DEFAULT_AUTO_SUPPRESS_AFTER_FAILURES)
    assert alternative_stack.context["autoSuppressAfterFailures"] == "0"
    assert other[names.ENV_AUTO_SUPPRESS_AFTER_FAILURES] == "0"
    # And only the scheduled function (delivery tracking) is told
    for stack in (default_stack, alternative_stack):
        for handler in (names.API_HANDLER, names.QUEUE_HANDLER):
            assert names.ENV_AUTO_SUPPRESS_AFTER_FAILURES not in variables_of(stack, handler)


def test_suppressed_destinations_are_graphed_not_alarmed(any_stack: Synthesized) -> None:
    from tests.infra.test_infra_monitoring import dashboard_metrics

    # Given the dashboard's metrics and the alarms
    suppressed = [m for m in dashboard_metrics(any_stack) if m[1] == names.METRIC_SUPPRESSED_DESTINATIONS]
    alarmed = {props.get("MetricName") for props in any_stack.properties("AWS::CloudWatch::Alarm")}

    # Then suppressed destinations are summed on the dashboard, from the stage's own namespace, with
    # the service dimension the functions count under
    (metric,) = suppressed
    assert metric[:4] == [
        f"{names.DEFAULT_METRICS_NAMESPACE}/{stage_of(any_stack)}",
        names.METRIC_SUPPRESSED_DESTINATIONS,
        names.METRIC_DIMENSION_SERVICE,
        names.SERVICE_NAME,
    ]
    assert metric[-1]["stat"] == "Sum"
    # And they raise no alarm: a suppressed destination is the list working, not a fault
    assert names.METRIC_SUPPRESSED_DESTINATIONS not in alarmed
