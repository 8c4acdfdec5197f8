"""The queue, its dead-letter queue, the event source mapping and the senders' policy."""

from __future__ import annotations

from typing import Any

from gateway import names
from tests.infra.synth import Synthesized


def queue_named(stack: Synthesized, base_name: str) -> tuple[str, dict[str, Any]]:
    stage = stack.context.get("stage", "prod")
    for logical_id, resource in stack.resources("AWS::SQS::Queue").items():
        if resource["Properties"]["QueueName"] == f"{base_name}-{stage}":
            return logical_id, resource["Properties"]
    raise AssertionError(f"no queue named {base_name}-{stage}")


def mapping_of(stack: Synthesized, base_name: str) -> dict[str, Any]:
    """The event source mapping that reads the queue named `base_name` (of the stage)."""
    queue_id, _ = queue_named(stack, base_name)
    (found,) = [
        mapping
        for mapping in stack.properties("AWS::Lambda::EventSourceMapping")
        if mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    return found


def test_the_event_source_mappings_report_batch_item_failures(any_stack: Synthesized) -> None:
    # Given the stack's event source mappings: the message queue's and the schedule triggers'
    mappings = any_stack.properties("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2

    # Then in each a failed record comes back alone, not with its whole batch
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_event_source_mapping_reads_the_queue_with_the_shared_settings(
    default_stack: Synthesized,
) -> None:
    # Given the event source mapping of the message queue
    mapping = mapping_of(default_stack, names.QUEUE_NAME)
    queue_id, _ = queue_named(default_stack, names.QUEUE_NAME)

    # Then it consumes that queue with the batch settings of names.py
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == names.QUEUE_BATCH_SIZE
    assert mapping["MaximumBatchingWindowInSeconds"] == names.QUEUE_BATCH_WINDOW_SECONDS
    # And its maximum concurrency protects the provider
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": names.QUEUE_MAX_CONCURRENCY}


def test_maximum_concurrency_comes_from_the_context(alternative_stack: Synthesized) -> None:
    # Given queueMaxConcurrency=3
    mapping = mapping_of(alternative_stack, names.QUEUE_NAME)

    # Then the mapping never runs more than 3 functions at once
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 3}


def test_failed_messages_go_to_the_dead_letter_queue(any_stack: Synthesized) -> None:
    # Given both queues
    _, queue = queue_named(any_stack, names.QUEUE_NAME)
    dead_letter_id, dead_letter_queue = queue_named(any_stack, names.DEAD_LETTER_QUEUE_NAME)

    # Then a message received maxReceiveCount times moves to the dead-letter queue
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_id, "Arn"]},
        "maxReceiveCount": names.QUEUE_MAX_RECEIVE_COUNT,
    }
    # And waits there for 14 days, longer than it could wait on the queue
    assert dead_letter_queue["MessageRetentionPeriod"] == names.DEAD_LETTER_RETENTION_DAYS * 86_400
    assert dead_letter_queue["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert "RedrivePolicy" not in dead_letter_queue


def test_the_visibility_timeout_covers_six_function_timeouts(default_stack: Synthesized) -> None:
    # Given the queue and the function that consumes it
    _, queue = queue_named(default_stack, names.QUEUE_NAME)
    queue_function = next(
        props
        for props in default_stack.properties("AWS::Lambda::Function")
        if props["Handler"] == names.QUEUE_HANDLER
    )

    # Then a message is not received again while a function may still work on it
    assert queue["VisibilityTimeout"] == names.QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert queue["VisibilityTimeout"] >= 6 * queue_function["Timeout"]


def test_both_queues_are_encrypted_and_refuse_plain_http(any_stack: Synthesized) -> None:
    # Given the queues and their policies
    queues = any_stack.resources("AWS::SQS::Queue")
    policies = any_stack.properties("AWS::SQS::QueuePolicy")

    # Then messages are encrypted at rest
    assert all(queue["Properties"]["SqsManagedSseEnabled"] is True for queue in queues.values())
    # And each queue denies requests without TLS
    tls_only = set()
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only |= {queue["Ref"] for queue in policy["Queues"]}
    assert tls_only == set(queues)


def test_other_systems_send_with_a_managed_policy_for_this_queue_only(default_stack: Synthesized) -> None:
    # Given the managed policy of the stack
    policy = default_stack.only("AWS::IAM::ManagedPolicy")
    queue_id, _ = queue_named(default_stack, names.QUEUE_NAME)

    # Then it allows sending to the message queue and nothing else
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert "sqs:SendMessage" in statement["Action"]
    assert not [action for action in statement["Action"] if "Receive" in action or "Delete" in action]
    assert statement["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_outputs_tell_operators_and_senders_what_they_need(default_stack: Synthesized) -> None:
    # Given the stack outputs
    outputs = default_stack.template["Outputs"]
    queue_id, _ = queue_named(default_stack, names.QUEUE_NAME)
    dead_letter_id, _ = queue_named(default_stack, names.DEAD_LETTER_QUEUE_NAME)
    policy_id = next(iter(default_stack.resources("AWS::IAM::ManagedPolicy")))

    # Then they give the queue URL and ARN, the dead-letter queue and the senders' policy
    assert outputs["QueueUrl"]["Value"] == {"Ref": queue_id}
    assert outputs["QueueArn"]["Value"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": dead_letter_id}
    assert outputs["SenderPolicyArn"]["Value"] == {"Ref": policy_id}
    # And the API URL, API key id and the token secret
    assert {"ApiUrl", "ApiKeyId", "TokenSecretArn", "AlarmTopicArn"} <= set(outputs)
