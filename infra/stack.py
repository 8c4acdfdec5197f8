"""The whole service in one stack: a thin composition of one construct per concern."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from gateway import names
from infra.components.api import MessagesApi
from infra.components.event_bus import EventBus
from infra.components.function import DependencyLayer, SharedFunctionResources
from infra.components.monitoring import Monitoring
from infra.components.queue_consumer import QueueConsumer
from infra.components.rollout import Rollout
from infra.components.scheduled import ScheduledWork
from infra.components.schedules import ScheduledSends
from infra.components.secret import ProviderTokenSecret
from infra.components.sources import MessageSources
from infra.components.storage import IdempotencyStore, SuppressionTable, TrackingTable, UsageTable
from infra.components.webhooks import StatusWebhooks
from infra.config import GatewayConfig


class ViberGatewayStack(Stack):
    """REST API and SQS queue in front of the same send use case, with token, tables and alarms."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{names.SERVICE_NAME} ({config.stage}): Viber messages, SMS fallback, via LiveAll",
            # A protected stage cannot be deleted by accident (README: What cdk destroy keeps).
            termination_protection=config.protected,
        )
        self.gateway_config = config
        Tags.of(self).add("service", names.SERVICE_NAME)
        Tags.of(self).add("stage", config.stage)

        self.provider_token = ProviderTokenSecret(self, "ProviderToken", config=config)
        self.idempotency_store = IdempotencyStore(self, "Idempotency", config=config)
        self.tracking_table = TrackingTable(self, "Tracking", config=config)
        self.suppression_table = SuppressionTable(self, "Suppression", config=config)
        self.usage_table = UsageTable(self, "Usage", config=config)
        self.scheduled_sends = ScheduledSends(self, "ScheduledSends", config=config)
        self.event_bus = EventBus(self, "Events", config=config)
        self.dependency_layer = DependencyLayer(self, "Dependencies", config=config)
        shared = SharedFunctionResources.create(
            config=config,
            layer=self.dependency_layer.layer,
            token_secret=self.provider_token.secret,
            idempotency_table=self.idempotency_store.table,
            tracking_table=self.tracking_table.table,
            tracking_backlog_queue=self.tracking_table.backlog_queue,
            suppression_table=self.suppression_table.table,
            usage_table=self.usage_table.table,
        )
        # Every function publishes on the stage's bus; the API and queue functions schedule sends.
        self.messages_api = MessagesApi(
            self, "Api", shared=shared, bus=self.event_bus.bus, scheduled_sends=self.scheduled_sends
        )
        self.queue_consumer = QueueConsumer(
            self, "Queue", shared=shared, bus=self.event_bus.bus, scheduled_sends=self.scheduled_sends
        )
        self.scheduled_work = ScheduledWork(
            self, "Scheduled", shared=shared, bus=self.event_bus.bus, consumer=self.queue_consumer
        )
        # Other systems' topics and buses feeding the queue, and webhooks fed by the stage's bus.
        self.message_sources = MessageSources(
            self, "Sources", config=config, queue=self.queue_consumer.queue, stage_bus=self.event_bus
        )
        self.webhooks = (
            StatusWebhooks(self, "Webhooks", config=config, bus=self.event_bus) if config.webhooks else None
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            api=self.messages_api,
            consumer=self.queue_consumer,
            scheduled=self.scheduled_work,
            scheduled_sends=self.scheduled_sends,
            tracking=self.tracking_table,
            sources=self.message_sources,
            webhooks=self.webhooks,
        )
        self.rollout = Rollout(
            self,
            "Rollout",
            config=config,
            functions={"api": self.messages_api.handler, "queue": self.queue_consumer.handler},
            monitoring=self.monitoring,
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        outputs: dict[str, tuple[str, str]] = {
            "ApiUrl": (
                self.messages_api.rest_api.url,
                "Base URL of the REST API (messages, messages/preview, account/balance, openapi.json)",
            ),
            "QueueUrl": (self.queue_consumer.queue.queue_url, "Queue other systems send messages to"),
            "QueueArn": (self.queue_consumer.queue.queue_arn, "ARN of the message queue"),
            "DeadLetterQueueUrl": (self.queue_consumer.dead_letter_queue.queue_url, "Dead-letter queue"),
            "SenderPolicyArn": (
                self.queue_consumer.sender_policy.managed_policy_arn,
                "Managed policy to attach to roles that send to the queue",
            ),
            "TokenSecretArn": (
                self.provider_token.secret.secret_arn,
                "Token secret (JSON key apitoken): aws secretsmanager put-secret-value --secret-id <this>",
            ),
            "IdempotencyTableName": (self.idempotency_store.table.table_name, "Idempotency records"),
            "TrackingTableName": (self.tracking_table.table.table_name, "Tracked messages, unknown outcomes"),
            "TrackingBacklogQueueUrl": (
                self.tracking_table.backlog_queue.queue_url,
                "Tracking records of sends the table refused, waiting for the tracker to write them",
            ),
            "SuppressionTableName": (
                self.suppression_table.table.table_name,
                "The suppression list: numbers that must not be messaged",
            ),
            "UsageTableName": (
                self.usage_table.table.table_name,
                "The caps' counters, and each caller's own limits (item limits#key:<API key id>)",
            ),
            "ScheduleTableName": (
                self.scheduled_sends.table.table_name,
                "Scheduled sends (GET /schedules lists them), one item per schedule",
            ),
            "ScheduleGroupName": (
                self.scheduled_sends.group.ref,
                "EventBridge Scheduler group of the parts' one-time schedules",
            ),
            "ScheduleQueueUrl": (
                self.scheduled_sends.trigger_queue.queue_url,
                "Trigger queue: the schedules' triggers, consumed by the queue function",
            ),
            "ScheduleDeadLetterQueueUrl": (
                self.scheduled_sends.dead_letter_queue.queue_url,
                "Triggers Scheduler could not deliver or the queue function failed on",
            ),
            "EventBusName": (
                self.event_bus.bus.event_bus_name,
                "Delivery events (source viber-gateway): add your rules here",
            ),
            "EventBusArn": (self.event_bus.bus.event_bus_arn, "ARN of the event bus"),
            "ScheduledFunction": (
                self.scheduled_work.handler.alias.function_arn,
                "The scheduled function's live alias: make reconcile RECONCILE_ARGS='--function <this>'",
            ),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Subscribe here to receive alarms"),
            "DashboardName": (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
        }
        if self.message_sources.dead_letter_queue is not None:
            outputs["EventSourceDeadLetterQueueUrl"] = (
                self.message_sources.dead_letter_queue.queue_url,
                "Events of the event sources EventBridge could not put on the queue",
            )
        if self.webhooks is not None:
            outputs["WebhookDeadLetterQueueUrl"] = (
                self.webhooks.dead_letter_queue.queue_url,
                "Events EventBridge could not deliver to a webhook",
            )
        if self.messages_api.api_key is not None:
            outputs["ApiKeyId"] = (
                self.messages_api.api_key.key_id,
                "aws apigateway get-api-key --api-key <this> --include-value --query value --output text",
            )
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)
