"""Status webhooks (context key webhooks): the stage's events POSTed to HTTPS endpoints outside AWS
by EventBridge API destinations."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from gateway import names
from infra.components.event_bus import EventBus
from infra.config import (
    WEBHOOK_API_KEY_FIELD,
    WEBHOOK_PASSWORD_FIELD,
    WEBHOOK_USERNAME_FIELD,
    GatewayConfig,
    Webhook,
    WebhookAuth,
    WebhookAuthType,
)
from infra.nag import acknowledge, skip_checkov


def authorization(auth: WebhookAuth) -> events.Authorization:
    """The connection's credentials as dynamic references to the webhook's secret: CloudFormation
    reads them when it deploys, and the template holds only `{{resolve:secretsmanager:...}}`."""
    if auth.type is WebhookAuthType.API_KEY:
        assert auth.header is not None
        return events.Authorization.api_key(
            auth.header, SecretValue.secrets_manager(auth.secret_arn, json_field=WEBHOOK_API_KEY_FIELD)
        )
    # CDK types basic auth's user as a plain string: the reference's text, resolved all the same.
    username = SecretValue.secrets_manager(auth.secret_arn, json_field=WEBHOOK_USERNAME_FIELD)
    return events.Authorization.basic(
        username.unsafe_unwrap(),
        SecretValue.secrets_manager(auth.secret_arn, json_field=WEBHOOK_PASSWORD_FIELD),
    )


class StatusWebhooks(Construct):
    """One connection, API destination and rule per webhook, with one dead-letter queue for all.

    - The connection (`viber-gateway-webhook-<name>-<stage>`) holds the endpoint's credentials,
      read from the webhook's secret by dynamic reference at deployment: no value is in the
      template. EventBridge keeps its own copy in a secret it manages (`events!connection/...`):
      rotating the webhook's secret takes a deployment to reach the connection.
    - The API destination POSTs to the webhook's URL, at most `rateLimitPerSecond` a second.
    - The rule on the stage's bus matches source `viber-gateway`, the webhook's detail types, and
      `detail.state` / a prefix of `detail.reference` when given; the body is the whole event, as
      published. EventBridge retries a failed delivery for up to a day (185 attempts), then puts
      the event in `viber-gateway-webhooks-dlq` (SSE, TLS only, 14 days), whose policy lets
      EventBridge send for these rules only.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig, bus: EventBus) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.bus_name = bus.bus_name
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.physical_name(names.WEBHOOK_DEAD_LETTER_QUEUE_NAME),
            retention_period=Duration.days(names.DEAD_LETTER_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # As the other dead-letter queues: in a protected stage, undelivered events stay.
            removal_policy=RemovalPolicy.RETAIN if config.protected else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the webhooks' rules: events EventBridge could not "
            "deliver to an endpoint end here (cdk-nag only recognises SQS redrive policies).",
        )
        skip_checkov(
            self.dead_letter_queue,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
            "recognise; a KMS key would need a key policy for EventBridge.",
        )
        self.connections: dict[str, events.Connection] = {}
        self.destinations: dict[str, events.ApiDestination] = {}
        self.rules: dict[str, events.Rule] = {}
        self.rule_names: dict[str, str] = {}  # the metrics' RuleName (a string, not a token)
        for webhook in config.webhooks:
            self._create_webhook(webhook, bus.bus)

    def physical_name(self, webhook: Webhook) -> str:
        """The name of the webhook's connection, API destination and rule."""
        return self._config.physical_name(f"{names.SERVICE_NAME}-webhook-{webhook.name}")

    def _create_webhook(self, webhook: Webhook, bus: events.IEventBus) -> None:
        config = self._config
        construct_id = "".join(part.capitalize() for part in webhook.name.split("-"))
        name = self.physical_name(webhook)
        connection = events.Connection(
            self,
            f"{construct_id}Connection",
            connection_name=name,
            authorization=authorization(webhook.auth),
            description=f"{names.SERVICE_NAME} ({config.stage}) webhook {webhook.name}: "
            f"{webhook.auth.type.value} from its secret",
        )
        destination = events.ApiDestination(
            self,
            f"{construct_id}Destination",
            api_destination_name=name,
            connection=connection,
            endpoint=webhook.url,
            http_method=events.HttpMethod.POST,
            rate_limit_per_second=webhook.rate_limit_per_second,
            description=f"{names.SERVICE_NAME} ({config.stage}) webhook {webhook.name}",
        )
        detail: dict[str, object] = {}
        if webhook.states is not None:
            detail["state"] = list(webhook.states)
        if webhook.reference_prefix is not None:
            detail["reference"] = events.Match.prefix(webhook.reference_prefix)
        rule = events.Rule(
            self,
            f"{construct_id}Rule",
            rule_name=name,
            description=f"{names.SERVICE_NAME} ({config.stage}): events POSTed to webhook {webhook.name}",
            event_bus=bus,
            event_pattern=events.EventPattern(
                source=[names.EVENT_SOURCE], detail_type=list(webhook.detail_types), detail=detail or None
            ),
        )
        # No input: the body is the whole event. CDK adds the role that may invoke this destination
        # and the dead-letter queue's policy statement for this rule.
        rule.add_target(
            targets.ApiDestination(
                destination,
                dead_letter_queue=self.dead_letter_queue,
                max_event_age=Duration.seconds(names.WEBHOOK_MAX_EVENT_AGE_SECONDS),
                retry_attempts=names.WEBHOOK_MAX_RETRY_ATTEMPTS,
            )
        )
        self.connections[webhook.name] = connection
        self.destinations[webhook.name] = destination
        self.rules[webhook.name] = rule
        self.rule_names[webhook.name] = name
