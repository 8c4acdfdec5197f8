"""Safe rollout: versions behind a live alias, moved at once or by CodeDeploy with rollback alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import names
from tests.infra.synth import Synthesized

FUNCTION_PREFIXES = {"api": "ApiHandler", "queue": "QueueHandler", "scheduled": "ScheduledHandler"}


def alias_of(stack: Synthesized, label: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in stack.resources("AWS::Lambda::Alias").items()
        if resource["Properties"]["FunctionName"]["Ref"].startswith(FUNCTION_PREFIXES[label])
    ]
    return found


def alarm_names(stack: Synthesized) -> dict[str, str]:
    """Alarm logical id -> name suffix (api-5xx, ...)."""
    prefix = f"{names.SERVICE_NAME}-{stack.context.get('stage', 'prod')}-"
    return {
        logical_id: resource["Properties"]["AlarmName"].removeprefix(prefix)
        for logical_id, resource in stack.resources("AWS::CloudWatch::Alarm").items()
    }


@pytest.mark.parametrize("label", ["api", "queue", "scheduled"])
def test_each_function_is_invoked_through_a_live_alias_of_a_published_version(
    any_stack: Synthesized, label: str
) -> None:
    # Given a function's alias and versions
    _, alias = alias_of(any_stack, label)
    function_id = alias["Properties"]["FunctionName"]["Ref"]
    versions = {
        logical_id: resource
        for logical_id, resource in any_stack.resources("AWS::Lambda::Version").items()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    }

    # Then every deployment publishes a version, kept when the next one comes (for rolling back)
    (version_id,) = versions
    assert versions[version_id]["DeletionPolicy"] == "Retain"
    # And the alias "live" points at it
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}


def test_the_api_the_queue_and_the_schedules_invoke_the_aliases(any_stack: Synthesized) -> None:
    # Given the API's Lambda integration, its invoke permissions and the event source mappings (the
    # message queue's and the schedule triggers')
    api_alias, _ = alias_of(any_stack, "api")
    queue_alias, _ = alias_of(any_stack, "queue")
    proxied = [
        props
        for props in any_stack.properties("AWS::ApiGateway::Method")
        if props["Integration"]["Type"] == "AWS_PROXY"
    ]
    mappings = any_stack.properties("AWS::Lambda::EventSourceMapping")

    # Then API Gateway invokes the API alias, and may invoke nothing else
    assert proxied
    for method in proxied:
        assert {"Ref": api_alias} in method["Integration"]["Uri"]["Fn::Join"][1]
    scheduled_alias, _ = alias_of(any_stack, "scheduled")
    permissions = any_stack.properties("AWS::Lambda::Permission")
    by_principal = {
        principal: {json.dumps(p["FunctionName"]) for p in permissions if p["Principal"] == principal}
        for principal in {p["Principal"] for p in permissions}
    }
    assert by_principal == {
        "apigateway.amazonaws.com": {json.dumps({"Ref": api_alias})},
        "events.amazonaws.com": {json.dumps({"Ref": scheduled_alias})},
    }
    # And each queue's mapping invokes the queue alias (function name and alias name)
    assert len(mappings) == 2
    for mapping in mappings:
        assert json.dumps({"Ref": queue_alias}) in json.dumps(mapping["FunctionName"])
        assert mapping["FunctionName"]["Fn::Join"][1][-1] == ":live"


def test_a_canary_rollout_rolls_back_on_the_error_and_5xx_alarms(default_stack: Synthesized) -> None:
    # Given prod, whose default rollout is a canary
    application = default_stack.only("AWS::CodeDeploy::Application")
    groups = {
        resource["Properties"]["DeploymentGroupName"]: (logical_id, resource["Properties"])
        for logical_id, resource in default_stack.resources("AWS::CodeDeploy::DeploymentGroup").items()
    }
    suffixes = alarm_names(default_stack)

    # Then CodeDeploy shifts 10 % of the traffic for 5 minutes, then the rest, for both functions
    assert application["ComputePlatform"] == "Lambda"
    assert set(groups) == {"viber-gateway-prod-api", "viber-gateway-prod-queue"}
    rollback_alarms = {"api": {"api-function-errors", "api-5xx"}, "queue": {"queue-function-errors"}}
    for label, expected_alarms in rollback_alarms.items():
        group_id, group = groups[f"viber-gateway-prod-{label}"]
        assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        # And rolls back when the function's error alarm (for the API also the 5xx alarm) fires,
        # or the deployment fails or is stopped
        assert group["AlarmConfiguration"]["Enabled"] is True
        alarms = {suffixes[alarm["Name"]["Ref"]] for alarm in group["AlarmConfiguration"]["Alarms"]}
        assert alarms == expected_alarms
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert set(group["AutoRollbackConfiguration"]["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
            "DEPLOYMENT_STOP_ON_REQUEST",
        }
        # And CloudFormation hands the alias update to that deployment group
        _, alias = alias_of(default_stack, label)
        assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {
            "Ref": group_id
        }


def test_all_at_once_moves_the_aliases_without_codedeploy(alternative_stack: Synthesized) -> None:
    # Given another stage, whose default rollout is all at once
    # Then there is no CodeDeploy, and CloudFormation moves each alias itself
    assert not alternative_stack.resources("AWS::CodeDeploy::Application")
    assert not alternative_stack.resources("AWS::CodeDeploy::DeploymentGroup")
    for label in ("api", "queue"):
        _, alias = alias_of(alternative_stack, label)
        assert "UpdatePolicy" not in alias
