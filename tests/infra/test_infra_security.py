"""Least privilege, the token secret, and no secret value in the template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import names
from tests.infra.synth import EXISTING_SECRET_ARN, Synthesized


def role_statements(stack: Synthesized, handler: str) -> list[dict[str, Any]]:
    """The statements of the inline policies attached to the role of the function with `handler`."""
    function = next(
        props for props in stack.properties("AWS::Lambda::Function") if props["Handler"] == handler
    )
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in stack.properties("AWS::IAM::Policy"):
        if {"Ref": role_id} in policy["Roles"]:
            statements += policy["PolicyDocument"]["Statement"]
    role = stack.resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "function roles carry no managed policies"
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def statements_for(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(action.startswith(f"{service}:") for action in actions_of(s))]


def secret_reference(stack: Synthesized) -> Any:
    secrets = stack.resources("AWS::SecretsManager::Secret")
    return {"Ref": next(iter(secrets))} if secrets else EXISTING_SECRET_ARN


def queue_arn(stack: Synthesized, base_name: str) -> dict[str, Any]:
    stage = stack.context.get("stage", "prod")
    for logical_id, resource in stack.resources("AWS::SQS::Queue").items():
        if resource["Properties"]["QueueName"] == f"{base_name}-{stage}":
            return {"Fn::GetAtt": [logical_id, "Arn"]}
    raise AssertionError(base_name)


def table_arn(stack: Synthesized, base_name: str) -> dict[str, Any]:
    stage = stack.context.get("stage", "prod")
    for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items():
        if resource["Properties"]["TableName"] == f"{base_name}-{stage}":
            return {"Fn::GetAtt": [logical_id, "Arn"]}
    raise AssertionError(base_name)


def index_arn(stack: Synthesized, base_name: str, index: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [table_arn(stack, base_name), f"/index/{index}"]]}


def grants_by_resource(stack: Synthesized, handler: str, service: str) -> dict[str, set[str]]:
    """{resource (as JSON): actions} of a function's permissions on one service."""
    grants: dict[str, set[str]] = {}
    for statement in statements_for(role_statements(stack, handler), service):
        for resource in resources_of(statement):
            grants.setdefault(json.dumps(resource, sort_keys=True), set()).update(actions_of(statement))
    return grants


def key(resource: dict[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True)


HANDLERS = [names.API_HANDLER, names.QUEUE_HANDLER, names.SCHEDULED_HANDLER]
IDEMPOTENCY_ACTIONS = {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
# What each function does with the tracking table (gateway.tracking): items, and Query on the index.
TRACKING_ITEM_ACTIONS = {
    names.API_HANDLER: {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"},
    names.QUEUE_HANDLER: {"dynamodb:BatchWriteItem", "dynamodb:PutItem"},
    names.SCHEDULED_HANDLER: {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    },
}
QUERIES_THE_INDEX = {names.API_HANDLER, names.SCHEDULED_HANDLER}
# What each function does with the suppression list (gateway.suppression), on the table alone (it
# has no index). Transactions (add, change, remove) are authorized by each item's own action.
SUPPRESSION_ACTIONS = {
    # sends check the list; its routes add, change, remove (transactions), list (Scan), import
    names.API_HANDLER: {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchWriteItem",
    },
    # sends check the list
    names.QUEUE_HANDLER: {"dynamodb:GetItem", "dynamodb:BatchGetItem"},
    # delivery tracking adds the numbers whose messages keep failing for good
    names.SCHEDULED_HANDLER: {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    },
}
# The functions that publish events: the scheduled one (delivery), the API (the list's changes,
# scheduled sends) and the queue function (scheduled sends): all of them.
PUBLISHERS = {names.API_HANDLER, names.QUEUE_HANDLER, names.SCHEDULED_HANDLER}
# The functions that schedule sends (gateway.schedules): items of the schedules table, and Query on
# its `by_time` index (tests/infra/test_infra_schedules.py checks the rest of their grants).
SCHEDULERS = {names.API_HANDLER, names.QUEUE_HANDLER}
SCHEDULE_ITEM_ACTIONS = {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"}
# The functions that count sends against the caps (gateway.guard.caps): limits read and written,
# counters raised and given back; the scheduled function counts nothing.
USAGE_COUNTERS = {names.API_HANDLER, names.QUEUE_HANDLER}
USAGE_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_read_only_their_secret(any_stack: Synthesized, handler: str) -> None:
    # Given a function's permissions
    statements = statements_for(role_statements(any_stack, handler), "secretsmanager")

    # Then it may read the token secret, that one only, and change nothing
    assert statements, "the function must read the token"
    for statement in statements:
        assert resources_of(statement) == [secret_reference(any_stack)]
        assert set(actions_of(statement)) <= {
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        }


def test_an_existing_secret_is_used_instead_of_a_new_one(alternative_stack: Synthesized) -> None:
    # Given tokenSecretArn in the context
    # Then the stack creates no secret and points the functions at the given one
    assert not alternative_stack.resources("AWS::SecretsManager::Secret")
    for props in alternative_stack.properties("AWS::Lambda::Function"):
        assert props["Environment"]["Variables"][names.ENV_PROVIDER_TOKEN_SECRET] == EXISTING_SECRET_ARN
    assert alternative_stack.template["Outputs"]["TokenSecretArn"]["Value"] == EXISTING_SECRET_ARN


def test_the_created_secret_holds_a_generated_placeholder(default_stack: Synthesized) -> None:
    # Given no tokenSecretArn
    secret = default_stack.only("AWS::SecretsManager::Secret")

    # Then the stack creates the secret under the shared name, with a generated value, no token
    assert secret["Name"] == f"{names.TOKEN_SECRET_NAME}-prod"
    assert "SecretString" not in secret
    assert "apitoken" not in json.loads(secret["GenerateSecretString"]["SecretStringTemplate"])
    # And keeps it (the operator's token) if the stack is deleted
    (resource,) = default_stack.resources("AWS::SecretsManager::Secret").values()
    assert resource["DeletionPolicy"] == "Retain"


def test_functions_touch_only_the_queues_they_need(any_stack: Synthesized) -> None:
    # Given every function's permissions
    queue = queue_arn(any_stack, names.QUEUE_NAME)
    dead_letter_queue = queue_arn(any_stack, names.DEAD_LETTER_QUEUE_NAME)
    failed_runs = queue_arn(any_stack, f"{names.SERVICE_NAME}-scheduled-failed")
    triggers = queue_arn(any_stack, names.SCHEDULE_QUEUE_NAME)
    backlog = queue_arn(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME)
    send = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}

    # Then the API function may only send to the trigger queue (a part due within a minute), and
    # keep on the tracking backlog queue a record the tracking table refused
    assert grants_by_resource(any_stack, names.API_HANDLER, "sqs") == {
        key(triggers): {"sqs:SendMessage"},
        key(backlog): {"sqs:SendMessage"},
    }
    # And the queue function consumes its queue and the trigger queue (to which it also sends parts
    # due within a minute), and may send only to the dead-letter queue and the backlog queue besides
    queue_grants = grants_by_resource(any_stack, names.QUEUE_HANDLER, "sqs")
    assert set(queue_grants) == {key(queue), key(dead_letter_queue), key(triggers), key(backlog)}
    assert queue_grants[key(backlog)] == {"sqs:SendMessage"}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= queue_grants[key(queue)]
    assert "sqs:SendMessage" not in queue_grants[key(queue)]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"} <= queue_grants[key(triggers)]
    assert queue_grants[key(dead_letter_queue)] == send
    # And the scheduled function settles dead letters (read, delete, leave them) and sends back to
    # the queue, which it never consumes; its failed runs go to a queue of their own; it takes the
    # backlog queue's records (receive, delete), never sends there
    assert grants_by_resource(any_stack, names.SCHEDULED_HANDLER, "sqs") == {
        key(dead_letter_queue): {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"},
        key(queue): send,
        key(failed_runs): {"sqs:SendMessage"},
        key(backlog): {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_publish_events_only_on_the_stages_bus(any_stack: Synthesized, handler: str) -> None:
    # Given a function's EventBridge permissions, and the stage's bus
    (bus_id,) = any_stack.resources("AWS::Events::EventBus")
    grants = grants_by_resource(any_stack, handler, "events")

    # Then the scheduled function (delivery events), the API function (the suppression list's
    # changes, scheduled sends) and the queue function (scheduled sends) may put events on that
    # bus and nothing else
    assert handler in PUBLISHERS
    assert grants == {key({"Fn::GetAtt": [bus_id, "Arn"]}): {"events:PutEvents"}}


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_use_each_table_only_as_they_need(any_stack: Synthesized, handler: str) -> None:
    # Given a function's DynamoDB permissions, by resource
    grants = grants_by_resource(any_stack, handler, "dynamodb")
    idempotency = key(table_arn(any_stack, names.IDEMPOTENCY_TABLE_NAME))
    tracking = key(table_arn(any_stack, names.TRACKING_TABLE_NAME))
    open_index = key(index_arn(any_stack, names.TRACKING_TABLE_NAME, names.TRACKING_OPEN_INDEX))
    suppression = key(table_arn(any_stack, names.SUPPRESSION_TABLE_NAME))
    schedules = key(table_arn(any_stack, names.SCHEDULE_TABLE_NAME))
    by_time = key(index_arn(any_stack, names.SCHEDULE_TABLE_NAME, names.SCHEDULE_LIST_INDEX))
    usage = key(table_arn(any_stack, names.USAGE_TABLE_NAME))

    # Then: the four item actions Powertools' idempotency layer calls, on its table (the scheduled
    # function settles records); the tracking actions its code calls; Query on the `open` index
    # only where it is read; the suppression list's actions on its table; for the functions that
    # schedule sends, a schedule's item and Query on `by_time`; for those that count sends, the usage
    # table's items; nothing else, no wildcard over indexes
    expected = {
        idempotency: IDEMPOTENCY_ACTIONS,
        tracking: TRACKING_ITEM_ACTIONS[handler],
        suppression: SUPPRESSION_ACTIONS[handler],
    }
    if handler in QUERIES_THE_INDEX:
        expected[open_index] = {"dynamodb:Query"}
    if handler in SCHEDULERS:
        expected[schedules] = SCHEDULE_ITEM_ACTIONS
        expected[by_time] = {"dynamodb:Query"}
    if handler in USAGE_COUNTERS:
        expected[usage] = USAGE_ACTIONS
    assert grants == expected


def test_wildcard_resources_are_only_for_xray(any_stack: Synthesized) -> None:
    # Given every inline and managed policy statement of the stack
    statements = [
        statement
        for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for policy in any_stack.properties(resource_type)
        for statement in policy["PolicyDocument"]["Statement"]
    ]

    # Then "*" appears only where X-Ray allows nothing narrower
    for statement in statements:
        if "*" in resources_of(statement):
            assert all(action.startswith("xray:") for action in actions_of(statement)), statement


def _strings_and_keys(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in the template, descending into JSON held in strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _strings_and_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_and_keys(item)
    elif isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return
        yield from _strings_and_keys(parsed)


def plaintext_secrets(template: dict[str, Any]) -> list[str]:
    found = []
    for key, value in _strings_and_keys(template):
        if key in ("SecretString", "apitoken", "SecretValue") and not (
            isinstance(value, dict) and set(value) <= {"Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub"}
        ):
            found.append(f"{key}={value!r}")
    return found


def test_no_token_or_secret_value_is_in_the_template(any_stack: Synthesized) -> None:
    # Given the whole synthesized template
    # When it is searched for secret values, including JSON held in strings
    # Then it holds none
    assert plaintext_secrets(any_stack.template) == []


def test_the_plaintext_search_finds_a_literal_token() -> None:
    # Given templates that would leak a token in the ways the search looks for
    leaks = [
        {"Resources": {"S": {"Properties": {"SecretString": '{"apitoken": "abc"}'}}}},
        {"Resources": {"S": {"Properties": {"Value": json.dumps({"apitoken": "abc"})}}}},
    ]

    # Then the search reports each
    assert all(plaintext_secrets(template) for template in leaks)
