"""Delivery tracking, events and the scheduled work: the tracking table, the bus, the schedules."""

from __future__ import annotations

import json
from typing import Any

from gateway import names
from tests.infra.synth import Synthesized, TableRecorder, stage_of


def tracking_table(stack: Synthesized) -> dict[str, Any]:
    (table,) = [
        props
        for props in stack.properties("AWS::DynamoDB::Table")
        if props["TableName"] == f"{names.TRACKING_TABLE_NAME}-{stage_of(stack)}"
    ]
    return table


def test_the_tracking_table_is_the_one_the_code_and_the_local_emulator_use(any_stack: Synthesized) -> None:
    from local.emulator import create_tracking_table

    # Given the stack's tracking table, and the one make run and the tests create
    table = tracking_table(any_stack)

    local = TableRecorder()
    create_tracking_table(local)

    # Then they have the same key, the same sparse index `open` and the same TTL attribute
    assert table["KeySchema"] == local.definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=json.dumps) == sorted(
        local.definition["AttributeDefinitions"], key=json.dumps
    )
    (index,) = table["GlobalSecondaryIndexes"]
    (local_index,) = local.definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == local_index["IndexName"] == names.TRACKING_OPEN_INDEX
    assert index["KeySchema"] == local_index["KeySchema"]
    assert index["Projection"] == local_index["Projection"]
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": local.ttl["TimeToLiveSpecification"]["AttributeName"],
        "Enabled": True,
    }
    # And it bills per request, as the idempotency table
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_each_stage_has_its_own_bus_with_an_archive(any_stack: Synthesized) -> None:
    # Given the stack's event bus and archive
    bus_id, bus = next(iter(any_stack.resources("AWS::Events::EventBus").items()))
    archive = any_stack.only("AWS::Events::Archive")

    # Then the bus is the stage's, and every gateway event is archived for a week, for replays
    assert bus["Properties"]["Name"] == f"{names.EVENT_BUS_NAME}-{stage_of(any_stack)}"
    assert archive["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert json.loads(json.dumps(archive["EventPattern"])) == {"source": [names.EVENT_SOURCE]}
    assert archive["RetentionDays"] == 7
    # And its name is an output, for consumers' rules
    assert any_stack.template["Outputs"]["EventBusName"]["Value"] == {"Ref": bus_id}


def test_each_task_runs_on_its_schedule_through_the_live_alias(any_stack: Synthesized) -> None:
    # Given the schedule rules and the scheduled function's alias
    rules = [props for props in any_stack.properties("AWS::Events::Rule") if "ScheduleExpression" in props]
    (alias_id,) = [
        logical_id
        for logical_id, resource in any_stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"]["Ref"].startswith("ScheduledHandler")
    ]

    # Then there is one rule per task of names.SCHEDULES, at its period, on the default bus
    by_task: dict[str, dict[str, Any]] = {}
    for rule in rules:
        (target,) = rule["Targets"]
        by_task[json.loads(target["Input"])["task"]] = {**rule, "target": target}
    assert set(by_task) == set(names.SCHEDULES)
    for task, minutes in names.SCHEDULES.items():
        rule = by_task[task]
        unit = "minute" if minutes == 1 else "minutes"
        assert rule["ScheduleExpression"] == f"rate({minutes} {unit})"
        assert rule["State"] == "ENABLED"
        assert "EventBusName" not in rule
        # And each invokes the live alias with {"task": ...}, the event the handler reads
        assert rule["target"]["Arn"] == {"Ref": alias_id}
        assert json.loads(rule["target"]["Input"]) == {"task": task}


def test_the_scheduled_function_can_be_invoked_on_demand(any_stack: Synthesized) -> None:
    # Given the outputs
    outputs = any_stack.template["Outputs"]
    (alias_id,) = [
        logical_id
        for logical_id, resource in any_stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"]["Ref"].startswith("ScheduledHandler")
    ]

    # Then make reconcile --function is given the live alias (tools/reconcile.py invokes it)
    assert outputs["ScheduledFunction"]["Value"] == {"Ref": alias_id}
    tracking_id = next(
        logical_id
        for logical_id, resource in any_stack.resources("AWS::DynamoDB::Table").items()
        if resource["Properties"]["TableName"].startswith(names.TRACKING_TABLE_NAME)
    )
    assert outputs["TrackingTableName"]["Value"] == {"Ref": tracking_id}
