"""Other systems' messages: existing SNS topics and EventBridge rules feeding the message queue
(context keys snsSources and eventSources)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.components.event_bus import EventBus
from infra.config import EventSource, GatewayConfig
from infra.nag import acknowledge, skip_checkov

# Events EventBridge could not put on the queue (its policy, the queue gone) wait here this long.
SOURCES_DEAD_LETTER_QUEUE_NAME = f"{names.SERVICE_NAME}-event-sources-dlq"
# EventBridge's own defaults, written out: a day of retries for an event the queue refused.
SOURCE_MAX_EVENT_AGE = Duration.hours(24)
SOURCE_RETRY_ATTEMPTS = 185
# The pattern's keys as EventPattern names them (the rest are the same in both).
_PATTERN_ARGUMENTS = {"detail-type": "detail_type"}


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """The EventPattern of a pattern as EventBridge spells it, filters (prefix, numeric, ...) included.

    EventPattern types its top-level fields as lists of strings; each is handed over as a token of
    the list as given, which the template then holds unchanged.
    """
    arguments: dict[str, Any] = {
        _PATTERN_ARGUMENTS.get(field, field): (Token.as_list(value) if isinstance(value, list) else value)
        for field, value in pattern.items()
    }
    return events.EventPattern(**arguments)


class MessageSources(Construct):
    """Other systems' topics and buses, whose messages reach the queue function like sent ones.

    - Each topic of `snsSources` has a subscription of the message queue, raw message delivery
      off: the queue receives SNS's notification document, which the queue function unwraps, and
      whose MessageId is the message's idempotency identity when it carries no key of its own.
      CDK's SqsSubscription adds to the queue's policy `sqs:SendMessage` for `sns.amazonaws.com`
      with aws:SourceArn that topic. A topic of another region is subscribed in its region (the
      subscription's Region); a topic of another account must first let this account subscribe
      (sns:Subscribe in its topic policy), and then needs no confirmation.
    - Each entry of `eventSources` makes a rule (`viber-gateway-source-<name>-<stage>`) on its
      bus of this account and region, with the queue as target and the whole event as the
      message (the function reads `detail`, the event's `id` is the identity); the queue's policy
      lets `events.amazonaws.com` send for that rule only. Events EventBridge cannot put on the
      queue after a day of retries go to the dead-letter queue `viber-gateway-event-sources-dlq`
      (a queue of their own: the message dead-letter queue holds what the queue function failed
      on, and the scheduled function reads it; the webhooks' holds outgoing events).

    Without sources nothing is made, and the queue's policy allows no service to send.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        queue: sqs.IQueue,
        stage_bus: EventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._stage_bus = stage_bus
        self.topics: list[sns.ITopic] = []
        for topic_arn in config.sns_sources:
            # Named by its ARN, so that reordering the list replaces no subscription.
            topic = sns.Topic.from_topic_arn(self, topic_arn, topic_arn)
            topic.add_subscription(subscriptions.SqsSubscription(queue, raw_message_delivery=False))
            self.topics.append(topic)

        self.dead_letter_queue: sqs.Queue | None = None
        self.rules: dict[str, events.Rule] = {}
        # The metrics' dimensions of each rule: RuleName, and the name of its bus (strings, not tokens).
        self.rule_names: dict[str, str] = {
            source.name: self.rule_name(source) for source in config.event_sources
        }
        self.bus_names: dict[str, str] = {
            source.name: source.bus.rsplit("event-bus/", 1)[-1] for source in config.event_sources
        }
        if config.event_sources:
            self.dead_letter_queue = self._create_dead_letter_queue()
            for source in config.event_sources:
                self.rules[source.name] = self._create_rule(source, queue, self.dead_letter_queue)

    def _create_dead_letter_queue(self) -> sqs.Queue:
        config = self._config
        dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.physical_name(SOURCES_DEAD_LETTER_QUEUE_NAME),
            retention_period=Duration.days(names.DEAD_LETTER_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # As the message queue's: in a protected stage, a message never goes with the stack.
            removal_policy=RemovalPolicy.RETAIN if config.protected else RemovalPolicy.DESTROY,
        )
        acknowledge(
            dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the event sources' rules: events EventBridge could not "
            "put on the message queue end here (cdk-nag only recognises SQS redrive policies).",
        )
        skip_checkov(
            dead_letter_queue,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
            "recognise; EventBridge puts events there as it does on the (equally encrypted) message queue.",
        )
        return dead_letter_queue

    def _create_rule(
        self, source: EventSource, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue
    ) -> events.Rule:
        config = self._config
        construct_id = f"Source-{source.name}"
        bus: events.IEventBus
        if source.bus == self._stage_bus.bus_name:
            # The stage's own bus (other systems may publish there): a reference, so that the rule
            # is made once the bus exists.
            bus = self._stage_bus.bus
        elif source.bus_is_arn:
            bus = events.EventBus.from_event_bus_arn(self, f"{construct_id}-Bus", source.bus)
        else:
            bus = events.EventBus.from_event_bus_name(self, f"{construct_id}-Bus", source.bus)
        rule = events.Rule(
            self,
            construct_id,
            rule_name=self.rule_name(source),
            description=f"{names.SERVICE_NAME} ({config.stage}): the events of source {source.name} are "
            "messages",
            event_bus=bus,
            event_pattern=event_pattern(source.pattern),
        )
        if source.bus_is_arn:
            # CDK would name the bus by the ARN's last part alone: a bus of that name in this account
            # and region, whatever account the ARN names. The ARN itself makes EventBridge refuse a
            # bus of another account or region instead.
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            cfn_rule.add_property_override("EventBusName", source.bus)
        # No input: the message is the whole event. CDK adds the queue policy statement (this rule
        # only) and the dead-letter queue's.
        rule.add_target(
            targets.SqsQueue(
                queue,
                dead_letter_queue=dead_letter_queue,
                max_event_age=SOURCE_MAX_EVENT_AGE,
                retry_attempts=SOURCE_RETRY_ATTEMPTS,
            )
        )
        return rule

    def rule_name(self, source: EventSource) -> str:
        return self._config.physical_name(f"{names.SERVICE_NAME}-source-{source.name}")
