"""SnapStart: on the published versions of the API and queue functions, off for the scheduled one,
`snapStart=false` turns it off, and nothing in the stack conflicts with it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import names
from infra.config import MIN_SNAP_START_PYTHON
from tests.infra.synth import Synthesized

SNAP_START = {"ApplyOn": "PublishedVersions"}
SNAP_START_HANDLERS = [names.API_HANDLER, names.QUEUE_HANDLER]
# What Lambda lets SnapStart run on (AWS: Lambda SnapStart, supported features and limitations).
SNAP_START_ARCHITECTURES = {"arm64", "x86_64"}
MAX_SNAP_START_EPHEMERAL_STORAGE_MB = 512


def functions_by_handler(stack: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    """Handler -> (logical id, properties) of each function of the stack."""
    return {
        resource["Properties"]["Handler"]: (logical_id, resource["Properties"])
        for logical_id, resource in stack.resources("AWS::Lambda::Function").items()
    }


def of_function(stack: Synthesized, resource_type: str, function_id: str) -> dict[str, dict[str, Any]]:
    """The resources of that type (aliases, versions) that belong to the function."""
    return {
        logical_id: resource
        for logical_id, resource in stack.resources(resource_type).items()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    }


def test_the_api_and_queue_functions_snapshot_their_published_versions(default_stack: Synthesized) -> None:
    # Given the functions of the stack synthesized without snapStart (the default: on)
    functions = functions_by_handler(default_stack)

    # Then the API and queue functions have SnapStart on their published versions
    for handler in SNAP_START_HANDLERS:
        _, function = functions[handler]
        assert function["SnapStart"] == SNAP_START, handler
    # And the scheduled function, warm from its every-minute schedule, has none
    _, scheduled = functions[names.SCHEDULED_HANDLER]
    assert "SnapStart" not in scheduled


@pytest.mark.parametrize("handler", SNAP_START_HANDLERS)
def test_the_live_alias_of_a_snapstart_function_points_at_its_published_version(
    default_stack: Synthesized, handler: str
) -> None:
    # Given a function with SnapStart, its aliases and its versions
    function_id, function = functions_by_handler(default_stack)[handler]
    assert function["SnapStart"] == SNAP_START
    (alias,) = of_function(default_stack, "AWS::Lambda::Alias", function_id).values()
    versions = of_function(default_stack, "AWS::Lambda::Version", function_id)

    # Then its one alias, live, points at the version the deployment publishes (snapshotted),
    # never at $LATEST (which SnapStart does not apply to)
    (version_id,) = versions
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}


def test_snapstart_false_turns_it_off_for_every_function(alternative_stack: Synthesized) -> None:
    # Given a stack synthesized with -c snapStart=false (as the command line gives it: a string)
    assert alternative_stack.context["snapStart"] == "false"

    # When its functions are listed
    functions = functions_by_handler(alternative_stack)

    # Then none has SnapStart, and the API and queue functions are still invoked through their alias
    assert sorted(functions) == sorted([*SNAP_START_HANDLERS, names.SCHEDULED_HANDLER])
    for handler, (function_id, function) in functions.items():
        assert "SnapStart" not in function, handler
        (alias,) = of_function(alternative_stack, "AWS::Lambda::Alias", function_id).values()
        assert alias["Properties"]["Name"] == "live"


def test_no_function_has_what_snapstart_rules_out(any_stack: Synthesized) -> None:
    # Given every function of each configuration, with its aliases and versions
    for handler, (function_id, function) in functions_by_handler(any_stack).items():
        provisioned = [
            logical_id
            for resource_type in ("AWS::Lambda::Alias", "AWS::Lambda::Version")
            for logical_id, resource in of_function(any_stack, resource_type, function_id).items()
            if "ProvisionedConcurrencyConfig" in resource["Properties"]
        ]

        # Then each runs on an architecture SnapStart supports
        assert set(function["Architectures"]) <= SNAP_START_ARCHITECTURES, handler
        if "SnapStart" not in function:
            continue
        # And one with SnapStart runs a Python runtime that has it, with no provisioned concurrency,
        # no EFS and no more than 512 MB of ephemeral storage
        version = tuple(int(part) for part in function["Runtime"].removeprefix("python").split("."))
        assert version >= MIN_SNAP_START_PYTHON, handler
        assert provisioned == [], handler
        assert "FileSystemConfigs" not in function, handler
        storage = function.get("EphemeralStorage", {}).get("Size", MAX_SNAP_START_EPHEMERAL_STORAGE_MB)
        assert storage <= MAX_SNAP_START_EPHEMERAL_STORAGE_MB, handler
