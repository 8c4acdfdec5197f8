"""The message queue, its dead-letter queue, the queue function and the senders' policy."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.components.function import SUPPRESSION_CHECK_ACTIONS, GatewayFunction, SharedFunctionResources
from infra.components.schedules import ScheduledSends
from infra.nag import skip_checkov

# Messages wait at most this long for the consumer. The dead-letter queue keeps
# them longer (SQS counts a message's age from its first enqueue).
QUEUE_RETENTION = Duration.days(4)
# Event source mappings need the visibility timeout to cover retries within a batch.
MIN_VISIBILITY_TO_TIMEOUT_RATIO = 6


class QueueConsumer(Construct):
    """SQS (SSE, TLS only) with redrive to a 14-day dead-letter queue, consumed by the queue function.

    The event source mapping invokes the function's live alias, reports batch
    item failures, so only failed messages come back, and its maximum
    concurrency bounds the load on the provider. Other systems send with the
    managed policy `sender_policy`, or through the topics and rules of
    infra.components.sources. In a protected stage both queues outlive
    the stack: `cdk destroy` never deletes a waiting or dead-lettered message.

    The same function fires scheduled sends: a second mapping, alike, reads the
    trigger queue of `scheduled_sends` (the function tells a trigger by its
    source, SCHEDULE_QUEUE_ARN), and a queued message with send_at becomes a
    schedule, announced on `bus`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: SharedFunctionResources,
        bus: events.IEventBus,
        scheduled_sends: ScheduledSends,
    ) -> None:
        super().__init__(scope, construct_id)
        config = shared.config
        if (
            names.QUEUE_VISIBILITY_TIMEOUT_SECONDS
            < MIN_VISIBILITY_TO_TIMEOUT_RATIO * names.QUEUE_FUNCTION_TIMEOUT_SECONDS
        ):
            raise ValueError(
                "names.QUEUE_VISIBILITY_TIMEOUT_SECONDS must be >= 6 x QUEUE_FUNCTION_TIMEOUT_SECONDS"
            )
        # Retained queues keep their names: re-creating a destroyed protected stage needs them
        # drained and deleted first (README: What cdk destroy keeps).
        removal_policy = RemovalPolicy.RETAIN if config.protected else RemovalPolicy.DESTROY

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.physical_name(names.DEAD_LETTER_QUEUE_NAME),
            retention_period=Duration.days(names.DEAD_LETTER_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=config.physical_name(names.QUEUE_NAME),
            visibility_timeout=Duration.seconds(names.QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=QUEUE_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=names.QUEUE_MAX_RECEIVE_COUNT
            ),
            removal_policy=removal_policy,
        )

        for queue in (self.queue, self.dead_letter_queue):
            skip_checkov(
                queue,
                "CKV_AWS_27",
                "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
                "recognise; a KMS key would need kms:GenerateDataKey granted to every sending system's role.",
            )

        self.handler = GatewayFunction(
            self,
            "Handler",
            shared=shared,
            handler=names.QUEUE_HANDLER,
            description=f"{names.SERVICE_NAME} queue consumer: sends queued messages",
            timeout_seconds=names.QUEUE_FUNCTION_TIMEOUT_SECONDS,
            memory_mb=names.QUEUE_FUNCTION_MEMORY_MB,
            snap_start=config.snap_start,
            extra_environment={names.ENV_DEAD_LETTER_QUEUE_URL: self.dead_letter_queue.queue_url},
            # Sends leave suppressed numbers out: it reads the list, never changes it.
            suppression_actions=SUPPRESSION_CHECK_ACTIONS,
            # Send Scheduled, when a queued message with send_at (or outside its window) is scheduled.
            event_bus=bus,
            scheduled_sends=scheduled_sends,
            # Queued sends and fired parts count against the `queue` bucket's limits and the ceiling.
            counts_usage=True,
            unreserved_reason="Its event source mapping's maximum concurrency (queueMaxConcurrency) bounds "
            "it; reserved concurrency below that would make SQS throttle and retry the batches.",
        )
        # Adds receive/delete/change-visibility on this queue only to the role.
        self.handler.alias.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=names.QUEUE_BATCH_SIZE,
                max_batching_window=Duration.seconds(names.QUEUE_BATCH_WINDOW_SECONDS),
                report_batch_item_failures=True,
                max_concurrency=config.queue_max_concurrency,
            )
        )
        # Schedule triggers: no batching window (a part is due now), the same bound on concurrency
        # (a fired part is a send like a queued one), failed triggers retried alone.
        self.handler.alias.add_event_source(
            event_sources.SqsEventSource(
                scheduled_sends.trigger_queue,
                batch_size=names.QUEUE_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=config.queue_max_concurrency,
            )
        )
        # Permanent and uncertain failures go to the dead-letter queue at once, with the reason.
        self.dead_letter_queue.grant_send_messages(self.handler.role)

        self.sender_policy = iam.ManagedPolicy(
            self,
            "SenderPolicy",
            description=f"Send messages to the {names.SERVICE_NAME} ({config.stage}) queue",
            statements=[
                iam.PolicyStatement(
                    actions=["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                    resources=[self.queue.queue_arn],
                )
            ],
        )
