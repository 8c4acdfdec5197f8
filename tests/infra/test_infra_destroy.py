"""What `cdk destroy` keeps: queues of protected stages, the secret, the logs; the tables' backups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import names
from tests.infra.synth import Synthesized

QUEUES_KEPT_WHEN_PROTECTED = (
    names.QUEUE_NAME,
    names.DEAD_LETTER_QUEUE_NAME,
    names.SCHEDULE_QUEUE_NAME,
    names.SCHEDULE_DEAD_LETTER_QUEUE_NAME,
    names.TRACKING_BACKLOG_QUEUE_NAME,
)


def queues_by_name(stack: Synthesized) -> dict[str, dict[str, Any]]:
    stage = stack.context.get("stage", "prod")
    return {
        resource["Properties"]["QueueName"].removesuffix(f"-{stage}"): resource
        for resource in stack.resources("AWS::SQS::Queue").values()
    }


def termination_protection(stack: Synthesized) -> bool:
    manifest = json.loads((stack.outdir / "manifest.json").read_text())
    properties = manifest["artifacts"][stack.stack_name]["properties"]
    return bool(properties.get("terminationProtection", False))


def test_a_protected_stage_keeps_its_queues_and_cannot_be_deleted_by_accident(
    default_stack: Synthesized,
) -> None:
    # Given prod (protected by default)
    queues = queues_by_name(default_stack)

    # Then deleting the stack keeps the queues and their dead-letter queues (messages, schedule
    # triggers) and the tracking backlog queue, with what they hold
    for base_name in QUEUES_KEPT_WHEN_PROTECTED:
        assert queues[base_name]["DeletionPolicy"] == "Retain"
        assert queues[base_name]["UpdateReplacePolicy"] == "Retain"
    # And the stack has termination protection on
    assert termination_protection(default_stack) is True


def test_another_stage_is_deleted_whole(alternative_stack: Synthesized) -> None:
    # Given another stage (not protected by default)
    queues = queues_by_name(alternative_stack)

    # Then its queues go with it, and nothing stops `cdk destroy`
    for base_name in QUEUES_KEPT_WHEN_PROTECTED:
        assert queues[base_name]["DeletionPolicy"] == "Delete"
    assert termination_protection(alternative_stack) is False


def test_every_table_has_point_in_time_recovery(any_stack: Synthesized) -> None:
    # Given the idempotency table, the tracking table (unknown outcomes live there), the
    # suppression list, the scheduled sends and the caps' usage table (operators' limits live there)
    tables = any_stack.resources("AWS::DynamoDB::Table")
    assert {t["Properties"]["TableName"].rsplit("-", 1)[0] for t in tables.values()} == {
        names.IDEMPOTENCY_TABLE_NAME,
        names.TRACKING_TABLE_NAME,
        names.SUPPRESSION_TABLE_NAME,
        names.SCHEDULE_TABLE_NAME,
        names.USAGE_TABLE_NAME,
    }

    for table in tables.values():
        # Then each can be restored to any second of the last 35 days, and (DynamoDB's rule for a
        # table with PITR) deleting it leaves a system backup for 35 days
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        # And it is deleted with the stack, so that its fixed name can be used again
        assert table["DeletionPolicy"] == "Delete"
        assert table["UpdateReplacePolicy"] == "Delete"


@pytest.mark.parametrize("resource_type", ["AWS::Logs::LogGroup", "AWS::SecretsManager::Secret"])
def test_logs_and_the_created_secret_outlive_the_stack(
    default_stack: Synthesized, resource_type: str
) -> None:
    # Given the log groups and the token secret the stack creates
    resources = default_stack.resources(resource_type)

    # Then `cdk destroy` keeps them (logs until their retention ends; the operator's token)
    assert resources
    assert {resource["DeletionPolicy"] for resource in resources.values()} == {"Retain"}
