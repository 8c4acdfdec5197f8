"""Scheduled sends: the schedules table, the trigger queues, the schedule group, Scheduler's role,
what the functions may do with them and are told of them, their alarms, and their context keys."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway import names
from infra.config import ConfigError, GatewayConfig, SendWindow
from tests.infra.synth import Synthesized, TableRecorder, assert_table_built_like, stage_of
from tests.infra.test_infra_security import (
    actions_of,
    grants_by_resource,
    key,
    resources_of,
    role_statements,
    statements_for,
)

SCHEDULERS = [names.API_HANDLER, names.QUEUE_HANDLER]
ALARM_EMAIL = {"alarmEmail": "ops@example.com"}
SCHEDULER_SERVICE = "scheduler.amazonaws.com"


def named(stack: Synthesized, resource_type: str, name_property: str, base_name: str) -> str:
    """The logical id of the stage's resource named `<base_name>-<stage>`."""
    (found,) = [
        logical_id
        for logical_id, resource in stack.resources(resource_type).items()
        if resource["Properties"].get(name_property) == f"{base_name}-{stage_of(stack)}"
    ]
    return found


def table_id(stack: Synthesized) -> str:
    return named(stack, "AWS::DynamoDB::Table", "TableName", names.SCHEDULE_TABLE_NAME)


def trigger_queue_id(stack: Synthesized) -> str:
    return named(stack, "AWS::SQS::Queue", "QueueName", names.SCHEDULE_QUEUE_NAME)


def trigger_dead_letter_id(stack: Synthesized) -> str:
    return named(stack, "AWS::SQS::Queue", "QueueName", names.SCHEDULE_DEAD_LETTER_QUEUE_NAME)


def group_id(stack: Synthesized) -> str:
    (found,) = stack.resources("AWS::Scheduler::ScheduleGroup")
    return found


def scheduler_role(stack: Synthesized) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the role scheduler.amazonaws.com assumes."""
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in stack.resources("AWS::IAM::Role").items()
        if {"Service": SCHEDULER_SERVICE}
        in [s["Principal"] for s in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
    ]
    return found


def function_of(stack: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in stack.resources("AWS::Lambda::Function").items()
        if resource["Properties"]["Handler"] == handler
    ]
    return found


def variables_of(stack: Synthesized, handler: str) -> dict[str, Any]:
    variables: dict[str, Any] = function_of(stack, handler)[1]["Environment"]["Variables"]
    return variables


def text_of(value: Any) -> str:
    """An ARN built with Fn::Join, as text: pseudo parameters as <AWS::...>, as cdk-nag writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"].startswith("AWS::"):
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(text_of(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def scheduler_arn(resource: str) -> str:
    return f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:{resource}"


def group_arn(stack: Synthesized) -> str:
    return scheduler_arn(f"schedule-group/{names.SCHEDULE_GROUP_NAME}-{stage_of(stack)}")


def schedules_arn(stack: Synthesized) -> str:
    """Every schedule of the stage's group."""
    return scheduler_arn(f"schedule/{names.SCHEDULE_GROUP_NAME}-{stage_of(stack)}/*")


# The table ------------------------------------------------------------------------------------


def test_each_stage_has_a_schedules_table_keyed_by_id_and_listed_by_time(any_stack: Synthesized) -> None:
    # Given the stack's schedules table
    props = any_stack.resources("AWS::DynamoDB::Table")[table_id(any_stack)]["Properties"]

    # Then it is keyed by the string id
    assert props["KeySchema"] == [{"AttributeName": names.SCHEDULE_KEY_ATTRIBUTE, "KeyType": "HASH"}]
    assert sorted(props["AttributeDefinitions"], key=json.dumps) == sorted(
        [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "month", "AttributeType": "S"},
            {"AttributeName": "fires", "AttributeType": "S"},
        ],
        key=json.dumps,
    )
    # And GET /schedules reads the index by_time: a month's schedules ordered by fire time, whole
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": names.SCHEDULE_LIST_INDEX,
            "KeySchema": [
                {"AttributeName": names.SCHEDULE_LIST_PARTITION_ATTRIBUTE, "KeyType": "HASH"},
                {"AttributeName": names.SCHEDULE_LIST_SORT_ATTRIBUTE, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    # And a schedule's item is removed by DynamoDB's TTL on expires_at, after its last part
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_schedules_table_is_built_like_the_other_tables(any_stack: Synthesized) -> None:
    # Given the schedules table and the tracking table
    table = any_stack.resources("AWS::DynamoDB::Table")[table_id(any_stack)]
    tracking_id = named(any_stack, "AWS::DynamoDB::Table", "TableName", names.TRACKING_TABLE_NAME)
    tracking = any_stack.resources("AWS::DynamoDB::Table")[tracking_id]

    # Then it bills per request, has point-in-time recovery, is encrypted the same way, and goes
    # with the stack as the others do (its name is fixed; a backup is kept 35 days)
    assert_table_built_like(table, tracking)
    assert "DeletionProtectionEnabled" not in table["Properties"]


def test_the_schedules_table_is_the_one_the_local_emulator_creates(any_stack: Synthesized) -> None:
    from local.emulator import create_schedule_table

    # Given the stack's schedules table, and the one make run and the tests create
    props = any_stack.resources("AWS::DynamoDB::Table")[table_id(any_stack)]["Properties"]
    local = TableRecorder()
    create_schedule_table(local)

    # Then they have the same name (before the stage suffix), keys, index and TTL attribute
    assert props["TableName"] == f"{local.definition['TableName']}-{stage_of(any_stack)}"
    assert props["KeySchema"] == local.definition["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=json.dumps) == sorted(
        local.definition["AttributeDefinitions"], key=json.dumps
    )
    assert props["GlobalSecondaryIndexes"] == local.definition["GlobalSecondaryIndexes"]
    assert local.definition["BillingMode"] == props["BillingMode"]
    assert local.ttl["TimeToLiveSpecification"] == {
        "Enabled": True,
        "AttributeName": names.SCHEDULE_TTL_ATTRIBUTE,
    }


# The trigger queues and the group ---------------------------------------------------------------


def test_the_trigger_queue_is_built_like_the_message_queue(any_stack: Synthesized) -> None:
    # Given the trigger queue, its dead-letter queue, and the message queue
    queues = any_stack.resources("AWS::SQS::Queue")
    triggers = queues[trigger_queue_id(any_stack)]
    dead_letters = queues[trigger_dead_letter_id(any_stack)]
    messages = queues[named(any_stack, "AWS::SQS::Queue", "QueueName", names.QUEUE_NAME)]

    # Then a trigger is received again only after a function's work on it could have ended, and
    # after maxReceiveCount receives moves to the dead-letter queue
    assert triggers["Properties"]["VisibilityTimeout"] == names.QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert triggers["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [trigger_dead_letter_id(any_stack), "Arn"]},
        "maxReceiveCount": names.QUEUE_MAX_RECEIVE_COUNT,
    }
    # And it keeps a trigger as long as the message queue keeps a message; its dead letters 14 days
    assert (
        triggers["Properties"]["MessageRetentionPeriod"] == messages["Properties"]["MessageRetentionPeriod"]
    )
    assert dead_letters["Properties"]["MessageRetentionPeriod"] == names.DEAD_LETTER_RETENTION_DAYS * 86_400
    # And both are encrypted (SQS-managed keys) and, like the message queues, kept with a protected stage
    for queue in (triggers, dead_letters):
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["DeletionPolicy"] == messages["DeletionPolicy"]


def test_each_stage_has_its_own_schedule_group(any_stack: Synthesized) -> None:
    # Given the stack's schedule groups
    groups = any_stack.properties("AWS::Scheduler::ScheduleGroup")

    # Then there is one, named after the stage, so that stages sharing an account never meet
    assert [group["Name"] for group in groups] == [f"{names.SCHEDULE_GROUP_NAME}-{stage_of(any_stack)}"]


# Scheduler's role -----------------------------------------------------------------------------


def test_scheduler_assumes_its_role_only_for_this_accounts_schedules_of_the_group(
    any_stack: Synthesized,
) -> None:
    # Given the role EventBridge Scheduler assumes to send a trigger
    _, role = scheduler_role(any_stack)

    # Then only Scheduler may assume it, on behalf of this account
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": SCHEDULER_SERVICE}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # And for the stage's group only (its ARN, or one of its schedules: AWS's guide has said both)
    source_arns = statement["Condition"]["ArnLike"]["aws:SourceArn"]
    assert sorted(text_of(value) for value in source_arns) == sorted(
        [group_arn(any_stack), schedules_arn(any_stack)]
    )
    assert set(statement["Condition"]) == {"StringEquals", "ArnLike"}
    # And it carries no managed or inline policy of its own
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_the_scheduler_role_may_only_send_to_the_trigger_queue_and_its_dead_letter_queue(
    any_stack: Synthesized,
) -> None:
    # Given every policy statement attached to Scheduler's role
    role_id, _ = scheduler_role(any_stack)
    statements = [
        statement
        for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for policy in any_stack.properties(resource_type)
        if {"Ref": role_id} in policy.get("Roles", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]

    # Then the one thing it may do is send a message: a trigger to the trigger queue, and one it
    # could not deliver to the dead-letter queue (Scheduler sends dead letters with this role)
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert actions_of(statement) == ["sqs:SendMessage"]
    assert "Condition" not in statement
    assert sorted(map(key, resources_of(statement))) == sorted(
        [
            key({"Fn::GetAtt": [trigger_queue_id(any_stack), "Arn"]}),
            key({"Fn::GetAtt": [trigger_dead_letter_id(any_stack), "Arn"]}),
        ]
    )


# What the functions may do and are told -------------------------------------------------------


@pytest.mark.parametrize("handler", SCHEDULERS)
def test_scheduling_functions_keep_schedules_of_the_stages_group_only(
    any_stack: Synthesized, handler: str
) -> None:
    # Given a scheduling function's EventBridge Scheduler permissions
    statements = statements_for(role_statements(any_stack, handler), "scheduler")

    # Then it may create and delete schedules, and only those of the stage's group
    (statement,) = statements
    assert sorted(actions_of(statement)) == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    assert [text_of(resource) for resource in resources_of(statement)] == [schedules_arn(any_stack)]
    assert "Condition" not in statement


@pytest.mark.parametrize("handler", SCHEDULERS)
def test_scheduling_functions_may_pass_scheduler_its_role_and_nothing_else(
    any_stack: Synthesized, handler: str
) -> None:
    # Given a scheduling function's IAM permissions, and Scheduler's role
    role_id, _ = scheduler_role(any_stack)
    statements = statements_for(role_statements(any_stack, handler), "iam")

    # Then it may pass that role, to EventBridge Scheduler only
    (statement,) = statements
    assert actions_of(statement) == ["iam:PassRole"]
    assert resources_of(statement) == [{"Fn::GetAtt": [role_id, "Arn"]}]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}}


@pytest.mark.parametrize("handler", SCHEDULERS)
def test_scheduling_functions_read_and_write_schedules_and_list_them_by_time(
    any_stack: Synthesized, handler: str
) -> None:
    # Given a scheduling function's DynamoDB and SQS permissions
    table_arn = {"Fn::GetAtt": [table_id(any_stack), "Arn"]}
    index_arn = {"Fn::Join": ["", [table_arn, f"/index/{names.SCHEDULE_LIST_INDEX}"]]}
    dynamodb = grants_by_resource(any_stack, handler, "dynamodb")
    sqs = grants_by_resource(any_stack, handler, "sqs")

    # Then it reads, creates, changes and (one whose triggers could not be placed) removes a
    # schedule's item, and queries the by_time index only
    assert dynamodb[key(table_arn)] == {
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert dynamodb[key(index_arn)] == {"dynamodb:Query"}
    assert not [resource for resource in dynamodb if table_id(any_stack) in resource and "*" in resource]
    # And may send a part due within a minute straight to the trigger queue, with a delay
    assert "sqs:SendMessage" in sqs[key({"Fn::GetAtt": [trigger_queue_id(any_stack), "Arn"]})]
    # And may not send to the trigger dead-letter queue: only Scheduler (and the redrive) put there
    assert key({"Fn::GetAtt": [trigger_dead_letter_id(any_stack), "Arn"]}) not in sqs


def test_the_scheduled_function_keeps_no_schedules(any_stack: Synthesized) -> None:
    # Given the scheduled function (tracking, reconciling, the balance)
    statements = role_statements(any_stack, names.SCHEDULED_HANDLER)
    variables = variables_of(any_stack, names.SCHEDULED_HANDLER)

    # Then it may do nothing with Scheduler, pass no role, and touch neither the table nor the triggers
    assert statements_for(statements, "scheduler") == []
    assert statements_for(statements, "iam") == []
    mentioned = json.dumps(statements)
    for logical_id in (table_id(any_stack), trigger_queue_id(any_stack), trigger_dead_letter_id(any_stack)):
        assert logical_id not in mentioned
    # And is told nothing of them
    assert not {name for name in variables if name.startswith(("SCHEDULE", names.ENV_SEND_WINDOW))}


@pytest.mark.parametrize("handler", SCHEDULERS)
def test_scheduling_functions_are_told_where_the_schedules_are(any_stack: Synthesized, handler: str) -> None:
    # Given a scheduling function's environment
    variables = variables_of(any_stack, handler)
    role_id, _ = scheduler_role(any_stack)
    (bus_id,) = any_stack.resources("AWS::Events::EventBus")

    # Then it names the table, the group (a reference: the function is created after it), the
    # trigger queue (URL to send to, ARN to tell triggers by), Scheduler's role and dead-letter queue
    assert variables[names.ENV_SCHEDULE_TABLE] == {"Ref": table_id(any_stack)}
    assert variables[names.ENV_SCHEDULE_GROUP] == {"Ref": group_id(any_stack)}
    assert variables[names.ENV_SCHEDULE_QUEUE_URL] == {"Ref": trigger_queue_id(any_stack)}
    assert variables[names.ENV_SCHEDULE_QUEUE_ARN] == {"Fn::GetAtt": [trigger_queue_id(any_stack), "Arn"]}
    assert variables[names.ENV_SCHEDULER_ROLE_ARN] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert variables[names.ENV_SCHEDULER_DEAD_LETTER_ARN] == {
        "Fn::GetAtt": [trigger_dead_letter_id(any_stack), "Arn"]
    }
    # And the horizon, always; and the bus it announces Send Scheduled on
    assert variables[names.ENV_SCHEDULE_HORIZON_DAYS] == str(
        any_stack.context.get("scheduleHorizonDays", names.DEFAULT_SCHEDULE_HORIZON_DAYS)
    )
    assert variables[names.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}


def test_the_send_window_and_the_horizon_follow_the_context(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    from gateway.fields import SendWindow as RequestWindow

    for handler in SCHEDULERS:
        # Given prod (neither key set) and another stage (sendWindow and scheduleHorizonDays=90)
        prod = variables_of(default_stack, handler)
        other = variables_of(alternative_stack, handler)

        # Then prod has the default horizon and no default window
        assert prod[names.ENV_SCHEDULE_HORIZON_DAYS] == str(names.DEFAULT_SCHEDULE_HORIZON_DAYS) == "30"
        assert names.ENV_SEND_WINDOW not in prod
        # And the other stage its own horizon, and its window as compact JSON
        assert other[names.ENV_SCHEDULE_HORIZON_DAYS] == "90"
        window = other[names.ENV_SEND_WINDOW]
        assert window == '{"from":"09:00","to":"21:00","days":["mon","tue","wed","thu","fri"]}'
        # And the functions' own model of a window reads it as given
        assert RequestWindow.model_validate(json.loads(window)).as_setting() == json.loads(window)


def trigger_mapping(stack: Synthesized) -> dict[str, Any]:
    (found,) = [
        mapping
        for mapping in stack.properties("AWS::Lambda::EventSourceMapping")
        if mapping["EventSourceArn"] == {"Fn::GetAtt": [trigger_queue_id(stack), "Arn"]}
    ]
    return found


def test_the_queue_function_fires_the_triggers_through_its_live_alias(any_stack: Synthesized) -> None:
    # Given the event source mapping of the trigger queue, and the queue function's live alias
    mapping = trigger_mapping(any_stack)
    function_id, _ = function_of(any_stack, names.QUEUE_HANDLER)
    (alias_id,) = [
        logical_id
        for logical_id, resource in any_stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    message_queue_id = named(any_stack, "AWS::SQS::Queue", "QueueName", names.QUEUE_NAME)
    (messages,) = [
        props
        for props in any_stack.properties("AWS::Lambda::EventSourceMapping")
        if props["EventSourceArn"] == {"Fn::GetAtt": [message_queue_id, "Arn"]}
    ]

    # Then the queue function's live alias consumes it, ten triggers at a time at most
    assert json.dumps({"Ref": alias_id}) in json.dumps(mapping["FunctionName"])
    assert mapping["FunctionName"]["Fn::Join"][1][-1] == ":live"
    assert mapping["BatchSize"] == names.QUEUE_BATCH_SIZE == 10
    # And a failed trigger comes back alone, not with its batch
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # And no more functions at once than for queued messages (a fired part is a send), without
    # waiting to fill a batch (a part is due now)
    assert mapping["ScalingConfig"] == messages["ScalingConfig"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == int(
        any_stack.context.get("queueMaxConcurrency", names.QUEUE_MAX_CONCURRENCY)
    )
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == 0


# Alarms, dashboard, outputs -------------------------------------------------------------------


def alarms_by_suffix(stack: Synthesized) -> dict[str, dict[str, Any]]:
    from tests.infra.test_infra_monitoring import alarms_by_suffix as by_suffix

    return by_suffix(stack)


def test_dead_lettered_triggers_raise_an_alarm(any_stack: Synthesized) -> None:
    # Given the alarm on the trigger dead-letter queue
    alarm = alarms_by_suffix(any_stack)["schedule-dead-letters"]

    # Then it fires as soon as one trigger waits there (a part that has not gone out)
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [trigger_dead_letter_id(any_stack), "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_schedulers_failures_to_deliver_raise_alarms(any_stack: Synthesized) -> None:
    # Given the alarms on EventBridge Scheduler's metrics, and the stage's group
    alarms = alarms_by_suffix(any_stack)
    group = [{"Name": "ScheduleGroup", "Value": f"{names.SCHEDULE_GROUP_NAME}-{stage_of(any_stack)}"}]

    # Then one fires on the first trigger of the group Scheduler dead-lettered
    dead_lettered = alarms["scheduler-dead-lettered"]
    assert (dead_lettered["Namespace"], dead_lettered["MetricName"]) == (
        "AWS/Scheduler",
        "InvocationsSentToDeadLetterCount",
    )
    assert dead_lettered["Dimensions"] == group
    assert (dead_lettered["Statistic"], dead_lettered["Threshold"]) == ("Sum", 1)
    # And one on the first trigger throttled by the queue, dropped, or lost on the way to the
    # dead-letter queue (each missing value counted as 0)
    lost = alarms["scheduler-throttled-or-dropped"]
    queries = {query["Id"]: query for query in lost["Metrics"]}
    (expression,) = [query for query in queries.values() if "Expression" in query]
    assert expression["Expression"] == "FILL(throttled, 0) + FILL(dropped, 0) + FILL(undeliverable, 0)"
    metrics = {query_id: query["MetricStat"] for query_id, query in queries.items() if "MetricStat" in query}
    assert {query_id: stat["Metric"]["MetricName"] for query_id, stat in metrics.items()} == {
        "throttled": "TargetErrorThrottledCount",
        "dropped": "InvocationDroppedCount",
        "undeliverable": "InvocationsFailedToBeSentToDeadLetterCount",
    }
    for stat in metrics.values():
        assert stat["Metric"]["Namespace"] == "AWS/Scheduler"
        assert stat["Metric"]["Dimensions"] == group
        assert stat["Stat"] == "Sum"
    assert lost["Threshold"] == 1
    assert lost["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def dashboard_widgets(stack: Synthesized) -> list[dict[str, Any]]:
    """The dashboard's widgets, each reference to a resource written as @<logical id>@."""
    body = stack.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    text = "".join(
        part if isinstance(part, str) else "@" + (part.get("Ref") or part["Fn::GetAtt"][0]) + "@"
        for part in body["Fn::Join"][1]
    )
    widgets: list[dict[str, Any]] = json.loads(text)["widgets"]
    return widgets


def test_the_dashboard_shows_scheduled_sends_and_their_triggers(any_stack: Synthesized) -> None:
    # Given the dashboard's widgets
    widgets = {
        widget["properties"].get("title"): widget["properties"] for widget in dashboard_widgets(any_stack)
    }
    namespace = f"{names.DEFAULT_METRICS_NAMESPACE}/{stage_of(any_stack)}"
    service = [names.METRIC_DIMENSION_SERVICE, names.SERVICE_NAME]

    # Then one graphs the schedules created and the parts fired, by outcome
    sends = [metric for metric in widgets["Scheduled sends"]["metrics"] if isinstance(metric[0], str)]
    assert [namespace, names.METRIC_SCHEDULES_CREATED, *service] == sends[0][:4]
    fired = {
        metric[metric.index("outcome") + 1]
        for metric in sends
        if metric[1] == names.METRIC_SCHEDULED_PARTS_FIRED and metric[0] == namespace
    }
    assert fired == {"sent", "failed", "skipped"}
    # And another the age of the oldest trigger on the trigger queue
    triggers = widgets["Schedule triggers: age of oldest (s)"]["metrics"]
    ages = [metric for metric in triggers if "ApproximateAgeOfOldestMessage" in metric]
    assert [metric[:4] for metric in ages] == [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", f"@{trigger_queue_id(any_stack)}@"]
    ]


def test_the_schedules_resources_are_outputs(any_stack: Synthesized) -> None:
    # Given the stack's outputs
    outputs = any_stack.template["Outputs"]

    # Then operators find the table, the group, the trigger queue and its dead letters
    assert outputs["ScheduleTableName"]["Value"] == {"Ref": table_id(any_stack)}
    assert outputs["ScheduleGroupName"]["Value"] == {"Ref": group_id(any_stack)}
    assert outputs["ScheduleQueueUrl"]["Value"] == {"Ref": trigger_queue_id(any_stack)}
    assert outputs["ScheduleDeadLetterQueueUrl"]["Value"] == {"Ref": trigger_dead_letter_id(any_stack)}
    assert all(
        outputs[name]["Description"]
        for name in (
            "ScheduleTableName",
            "ScheduleGroupName",
            "ScheduleQueueUrl",
            "ScheduleDeadLetterQueueUrl",
        )
    )


# The context keys (no synthesis) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("none", None),
        ("None", None),
        ({"from": "09:00", "to": "21:00"}, SendWindow("09:00", "21:00")),
        ('{"from": "21:30", "to": "08:00"}', SendWindow("21:30", "08:00")),  # across midnight
        ('{"from":"00:00","to":"23:59","days":["sat","sun"]}', SendWindow("00:00", "23:59", ("sat", "sun"))),
        (
            {"from": "08:00", "to": "20:00", "days": ["FRI", "mon"]},
            SendWindow("08:00", "20:00", ("mon", "fri")),
        ),
    ],
)
def test_a_send_window_is_given_as_an_object_or_a_json_string(raw: Any, expected: SendWindow | None) -> None:
    # Given sendWindow as cdk.json (an object) or -c (a string) gives it, or not at all
    context = {**ALARM_EMAIL, **({} if raw is None else {"sendWindow": raw})}

    # When the configuration is read
    config = GatewayConfig.from_context(context)

    # Then the stage has that default window (days in the week's order, lowercase), or none
    assert config.send_window == expected


def test_the_send_window_reaches_the_functions_as_compact_json() -> None:
    # Given windows with and without days
    # Then each is the JSON object the functions read, with keys from, to and (only if given) days
    assert SendWindow("09:00", "21:00").to_json() == '{"from":"09:00","to":"21:00"}'
    assert (
        SendWindow("09:00", "21:00", ("mon", "sat")).to_json()
        == '{"from":"09:00","to":"21:00","days":["mon","sat"]}'
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("09:00-21:00", "context key 'sendWindow': not JSON: expected none, or a JSON object"),
        ('["09:00", "21:00"]', "expected none, or a JSON object"),
        (42, "expected none, or a JSON object"),
        ({"from": "09:00"}, "from and to are required"),
        ({"to": "21:00"}, "from and to are required"),
        ({"from": "09:00", "to": "21:00", "zone": "Europe/Athens"}, "unknown keys zone"),
        ({"from": "9:00", "to": "21:00"}, "from is not a time HH:MM"),
        ({"from": "09:00", "to": "24:00"}, "to is not a time HH:MM"),
        ({"from": "09:60", "to": "21:00"}, "from is not a time HH:MM"),
        ({"from": 900, "to": "21:00"}, "from is not a time HH:MM"),
        ({"from": "09:00:00", "to": "21:00"}, "from is not a time HH:MM"),
        ({"from": "09:00", "to": "09:00"}, "from and to are the same time"),
        ({"from": "09:00", "to": "21:00", "days": []}, "days is not a non-empty list"),
        ({"from": "09:00", "to": "21:00", "days": "mon"}, "days is not a non-empty list"),
        ({"from": "09:00", "to": "21:00", "days": None}, "days is not a non-empty list"),
        ({"from": "09:00", "to": "21:00", "days": ["monday"]}, "days names something other than a weekday"),
        ({"from": "09:00", "to": "21:00", "days": ["mon", 1]}, "days names something other than a weekday"),
        ({"from": "09:00", "to": "21:00", "days": ["mon", "Mon"]}, "days names a day twice"),
        ({"send_window": "none"}, "did you mean 'sendWindow'"),
    ],
)
def test_a_wrong_send_window_stops_with_a_message_naming_the_key(raw: Any, message: str) -> None:
    # Given a sendWindow that is not a window (or the key misspelled)
    context = raw if isinstance(raw, dict) and "send_window" in raw else {"sendWindow": raw}

    # When the configuration is read
    # Then it fails with a message naming the key, what it got, and the form it accepts
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        GatewayConfig.from_context({**ALARM_EMAIL, **context})
    if "sendWindow" in context:
        assert str(raised.value).startswith("context key 'sendWindow': ")
        assert f"(got {raw!r})" in str(raised.value)
        assert '{"from": "HH:MM", "to": "HH:MM", "days": ["mon", ...]}' in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 30), ("1", 1), (7, 7), ("90", 90), (365, 365), (14.0, 14)]
)
def test_the_schedule_horizon_comes_from_the_context(raw: Any, expected: int) -> None:
    # Given scheduleHorizonDays as -c (a string) or cdk.json (a number) gives it, or not at all
    context = {**ALARM_EMAIL, **({} if raw is None else {"scheduleHorizonDays": raw})}

    # When the configuration is read
    # Then send_at may be that many days ahead (30 by default)
    assert GatewayConfig.from_context(context).schedule_horizon_days == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "context key 'scheduleHorizonDays': expected an integer from 1 to 365"),
        (366, "expected an integer from 1 to 365 (days ahead a send_at may be) (got 366)"),
        ("-3", "expected an integer from 1 to 365"),
        ("a month", "context key 'scheduleHorizonDays': expected an integer (got 'a month')"),
        ("1.5", "'scheduleHorizonDays'"),
        (True, "'scheduleHorizonDays'"),
        ("schedule_horizon_days", "did you mean 'scheduleHorizonDays'"),
    ],
)
def test_a_wrong_schedule_horizon_stops_with_a_message_naming_the_key(raw: Any, message: str) -> None:
    # Given a scheduleHorizonDays out of range or not a number (or the key misspelled)
    context = {raw: "30"} if raw == "schedule_horizon_days" else {"scheduleHorizonDays": raw}

    # When the configuration is read
    # Then it fails with a message naming the key and what it accepts
    with pytest.raises(ConfigError, match=re.escape(message)):
        GatewayConfig.from_context({**ALARM_EMAIL, **context})
