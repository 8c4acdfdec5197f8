"""Alarms into an encrypted SNS topic, and one dashboard for the service."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from gateway import names
from infra.components.api import MessagesApi
from infra.components.function import GatewayFunction
from infra.components.queue_consumer import QueueConsumer
from infra.config import GatewayConfig

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
# A few provider errors are retried away; a sustained stream needs a look.
PROVIDER_ERRORS_THRESHOLD = 5
API_5XX_THRESHOLD = 5
# Queued messages are time-sensitive: a backlog this old means the consumer
# cannot keep up (provider slow, concurrency too low) or is failing.
QUEUE_AGE_THRESHOLD_SECONDS = 15 * 60
_ALARM_ARN_PATTERN = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"


@dataclass(frozen=True)
class AlarmSpec:
    name_suffix: str
    description: str
    metric: cloudwatch.IMetric
    threshold: float
    evaluation_periods: int = 1


def service_metric(metric_name: str, *, statistic: str = "Sum", **dimensions: str) -> cloudwatch.Metric:
    """A custom metric the functions publish (EMF via Powertools), with the service dimension."""
    return cloudwatch.Metric(
        namespace=names.DEFAULT_METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={names.METRIC_DIMENSION_SERVICE: names.SERVICE_NAME, **dimensions},
        statistic=statistic,
        period=FIVE_MINUTES,
    )


def failure_metric(failure_type: str) -> cloudwatch.Metric:
    """The Failures metric of one failure type (no label: an alarm on a labelled metric needs math)."""
    return service_metric(names.METRIC_FAILURES, **{names.METRIC_DIMENSION_FAILURE_TYPE: failure_type})


class Monitoring(Construct):
    """Alarms: dead letters, function errors and throttles, provider errors, out of credit,
    API 5xx, queue age. All notify `alarm_topic` (KMS-encrypted, TLS only), which
    mails `alarmEmail` when given.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        api: MessagesApi,
        consumer: QueueConsumer,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.alarm_topic = self._create_topic()
        if config.alarm_email is not None:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        functions = {"api": api.handler, "queue": consumer.handler}
        self.alarms = [self._create_alarm(spec) for spec in self._alarm_specs(api, consumer, functions)]
        self.dashboard = self._create_dashboard(api, consumer, functions)

    def _create_topic(self) -> sns.Topic:
        # A customer managed key: CloudWatch cannot publish to a topic encrypted
        # with the AWS managed key aws/sns, whose policy cannot be changed.
        topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{names.SERVICE_NAME} ({self._config.stage}) alarm topic",
            enable_key_rotation=True,
            # Only transient notifications are encrypted with it.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{names.SERVICE_NAME} {self._config.stage} alarms",
            master_key=topic_key,
            enforce_ssl=True,
        )
        # The topic policy replaces the default one: let this account's alarms publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": _ALARM_ARN_PATTERN},
                },
            )
        )
        return topic

    def _alarm_specs(
        self, api: MessagesApi, consumer: QueueConsumer, functions: dict[str, GatewayFunction]
    ) -> list[AlarmSpec]:
        specs = [
            AlarmSpec(
                "dead-letters",
                "Messages are in the dead-letter queue: read their reason, fix, redrive or drop them.",
                consumer.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                threshold=1,
            ),
            AlarmSpec(
                "provider-errors",
                "LiveAll keeps failing (errors, timeouts, unavailability): check its status and our token.",
                service_metric(names.METRIC_PROVIDER_ERRORS),
                threshold=PROVIDER_ERRORS_THRESHOLD,
            ),
            AlarmSpec(
                "out-of-credit",
                "LiveAll answered 'out of credit' (code 18): top up the account; queued messages retry.",
                failure_metric(names.FAILURE_TYPE_OUT_OF_CREDIT),
                threshold=1,
            ),
            AlarmSpec(
                "api-5xx",
                "The API answered 5xx: provider failures, misconfiguration or function errors.",
                api.rest_api.deployment_stage.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                threshold=API_5XX_THRESHOLD,
            ),
            AlarmSpec(
                "queue-age",
                "The oldest queued message waits for more than 15 minutes: the consumer falls behind.",
                consumer.queue.metric_approximate_age_of_oldest_message(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                threshold=QUEUE_AGE_THRESHOLD_SECONDS,
                evaluation_periods=5,
            ),
        ]
        for label, gateway_function in functions.items():
            function = gateway_function.function
            specs.append(
                AlarmSpec(
                    f"{label}-function-errors",
                    f"The {label} function failed (unhandled error or timeout).",
                    function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                    threshold=1,
                )
            )
            specs.append(
                AlarmSpec(
                    f"{label}-function-throttles",
                    f"The {label} function was throttled: account or reserved concurrency is exhausted.",
                    function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                    threshold=1,
                )
            )
        return specs

    def _create_alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in spec.name_suffix.split("-")) + "Alarm",
            alarm_name=f"{self._config.physical_name(names.SERVICE_NAME)}-{spec.name_suffix}",
            alarm_description=spec.description,
            metric=spec.metric,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No data means nothing happened (no sends, no dead letters).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm

    def _create_dashboard(
        self, api: MessagesApi, consumer: QueueConsumer, functions: dict[str, GatewayFunction]
    ) -> cloudwatch.Dashboard:
        stage = api.rest_api.deployment_stage
        duration_metrics: list[cloudwatch.IMetric] = []
        for label, gateway_function in functions.items():
            for statistic in ("p50", "p99"):
                duration_metrics.append(
                    gateway_function.function.metric_duration(statistic=statistic, period=FIVE_MINUTES).with_(
                        label=f"{label} {statistic}"
                    )
                )
        api_latency_metrics: list[cloudwatch.IMetric] = []
        for statistic in ("p50", "p99"):
            api_latency_metrics.append(
                stage.metric_latency(statistic=statistic, period=FIVE_MINUTES).with_(
                    label=f"latency {statistic}"
                )
            )
            api_latency_metrics.append(
                stage.metric_integration_latency(statistic=statistic, period=FIVE_MINUTES).with_(
                    label=f"integration {statistic}"
                )
            )
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self._config.physical_name(names.SERVICE_NAME),
            default_interval=Duration.hours(6),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sends",
                left=[
                    service_metric(names.METRIC_MESSAGES_ACCEPTED).with_(label="messages accepted"),
                    service_metric(names.METRIC_DESTINATIONS_SENT).with_(label="destinations sent"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Failures by type",
                left=[
                    failure_metric(failure_type).with_(label=failure_type)
                    for failure_type in names.FAILURE_TYPES
                ],
                stacked=True,
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Function duration (ms)", left=duration_metrics, width=12),
            cloudwatch.GraphWidget(title="API latency (ms)", left=api_latency_metrics, width=12),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue: age of oldest message (s)",
                left=[
                    consumer.queue.metric_approximate_age_of_oldest_message(
                        period=ONE_MINUTE, statistic="Maximum"
                    ).with_(label="oldest message age")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    consumer.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic="Maximum"
                    ).with_(label="dead letters")
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
        return dashboard
