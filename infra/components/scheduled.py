"""The scheduled work: the scheduled function that tracks messages (every minute), reconciles
unknown outcomes (every 5) and checks the balance (every 15), publishing on the stage's bus."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.components.function import (
    SUPPRESSION_SCHEDULED_ACTIONS,
    TRACKING_BACKLOG_TRACKER_ACTIONS,
    TRACKING_SCHEDULED_ACTIONS,
    GatewayFunction,
    SharedFunctionResources,
)
from infra.components.queue_consumer import QueueConsumer
from infra.nag import acknowledge, skip_checkov

# Failed asynchronous invocations (a run that raised) are kept this long, for a look.
FAILED_RUNS_RETENTION = Duration.days(14)
# One run per task at a time is enough (each task holds a lease in the table); a few more let
# `make reconcile` (an on-demand invocation) run beside the schedules.
SCHEDULED_RESERVED_CONCURRENCY = 5
# A tick that could not be delivered within this long is dropped: the next one runs anyway.
MAX_EVENT_AGE = Duration.minutes(5)


class ScheduledWork(Construct):
    """The scheduled function (scheduled_handler) and its three schedules, each an EventBridge rule
    on the default bus invoking the function's live alias with `{"task": ...}`.

    It may read and write the tracking table (items, leases, state) and take the records its
    backlog queue keeps (receive, delete), settle idempotency
    records, add numbers to the suppression list, publish on the stage's bus, and move dead
    letters: delete them (sent) or send them back to the queue (not sent). A run that raises
    is an error (alarmed) and its event goes to a queue of failed runs; the next tick runs again.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedFunctionResources,
        bus: events.IEventBus,
        consumer: QueueConsumer,
    ) -> None:
        super().__init__(scope, construct_id)
        config = shared.config
        self.failed_runs = sqs.Queue(
            self,
            "FailedRuns",
            queue_name=config.physical_name(f"{names.SERVICE_NAME}-scheduled-failed"),
            retention_period=FAILED_RUNS_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.failed_runs,
            "AwsSolutions-SQS3",
            "This queue is the scheduled function's dead-letter queue: failed runs' events end here.",
        )
        skip_checkov(
            self.failed_runs,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
            'recognise; it holds only schedule events ({"task": ...}).',
        )
        environment = {
            names.ENV_QUEUE_URL: consumer.queue.queue_url,
            names.ENV_DEAD_LETTER_QUEUE_URL: consumer.dead_letter_queue.queue_url,
            # 0 included: the function then never suppresses a number by itself.
            names.ENV_AUTO_SUPPRESS_AFTER_FAILURES: str(config.auto_suppress_after_failures),
        }
        if config.low_balance_euros is not None:
            environment[names.ENV_LOW_BALANCE_EUROS] = f"{config.low_balance_euros:g}"
        self.handler = GatewayFunction(
            self,
            "Handler",
            shared=shared,
            handler=names.SCHEDULED_HANDLER,
            description=f"{names.SERVICE_NAME} scheduled work: track, reconcile, check the balance",
            timeout_seconds=names.SCHEDULED_FUNCTION_TIMEOUT_SECONDS,
            memory_mb=names.SCHEDULED_FUNCTION_MEMORY_MB,
            # Invoked every minute, in the background: nearly always warm, so a snapshot would only
            # add its cache charge (README: SnapStart).
            snap_start=False,
            extra_environment=environment,
            reserved_concurrency=SCHEDULED_RESERVED_CONCURRENCY,
            tracking_actions=TRACKING_SCHEDULED_ACTIONS,
            # The tracker writes the records sends kept on the backlog queue, then deletes them.
            tracking_backlog_actions=TRACKING_BACKLOG_TRACKER_ACTIONS,
            # Delivery tracking suppresses numbers whose messages failed for good, in a row.
            suppression_actions=SUPPRESSION_SCHEDULED_ACTIONS,
            event_bus=bus,
            dead_letter_queue=self.failed_runs,
        )
        role = self.handler.role
        # Settling a dead letter: read and delete it, or send it back to the queue.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                resources=[consumer.dead_letter_queue.queue_arn],
            )
        )
        consumer.queue.grant_send_messages(role)

        self.rules: dict[str, events.Rule] = {}
        for task, minutes in names.SCHEDULES.items():
            rule = events.Rule(
                self,
                "".join(part.capitalize() for part in task.split("-")) + "Schedule",
                rule_name=config.physical_name(f"{names.SERVICE_NAME}-{task}"),
                description=f"{names.SERVICE_NAME} ({config.stage}): the {task} task every {minutes} min",
                schedule=events.Schedule.rate(Duration.minutes(minutes)),
            )
            rule.add_target(
                targets.LambdaFunction(
                    self.handler.alias,
                    event=events.RuleTargetInput.from_object({"task": task}),
                    max_event_age=MAX_EVENT_AGE,
                    retry_attempts=2,
                )
            )
            self.rules[task] = rule
