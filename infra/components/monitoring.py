"""Alarms into an encrypted SNS topic, and one dashboard for the service.

Every custom metric is read from the stage's own namespace (`ViberGateway/<stage>`,
set in the functions' environment), and every AWS metric from this stage's own
functions, API stage and queues: an alarm of one stage never fires for another.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from gateway import names
from infra.components.api import MessagesApi
from infra.components.function import GatewayFunction
from infra.components.queue_consumer import QueueConsumer
from infra.components.scheduled import ScheduledWork
from infra.components.schedules import ScheduledSends
from infra.components.sources import MessageSources
from infra.components.storage import TrackingTable
from infra.components.webhooks import StatusWebhooks
from infra.config import KEY_ALARM_EMAIL, KEY_ALARM_TOPIC_ARN, GatewayConfig

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
# A few provider errors are retried away; a sustained stream needs a look.
PROVIDER_ERRORS_THRESHOLD = 5
API_5XX_THRESHOLD = 5
# Queued messages are time-sensitive: a backlog this old means the consumer
# cannot keep up (provider slow, concurrency too low) or is failing.
QUEUE_AGE_THRESHOLD_SECONDS = 15 * 60
# A quarter of the API's answers refused (bad key, invalid bodies, throttled) over five minutes
# of real traffic: a caller's integration is broken. Below the minimum count a few stray
# requests would make any rate.
API_4XX_RATE_THRESHOLD = 0.25
API_4XX_RATE_MIN_REQUESTS = 20
# Requests API Gateway refused with 429 (stage or usage-plan throttling): callers must retry.
API_THROTTLED_THRESHOLD = 5
API_THROTTLED_METRIC = "ThrottledRequests"
# An invocation this close to its timeout is about to become a timeout.
DURATION_ALARM_SHARE_OF_TIMEOUT = 0.8
# Failure types that need a person at once, each with what to do (names.FAILURE_TYPES).
ALARMED_FAILURE_TYPES = {
    names.FAILURE_TYPE_OUT_OF_CREDIT: "LiveAll answered 'out of credit' (code 18): top up the account; "
    "queued messages retry.",
    "misconfigured": "Sends fail as misconfigured: LiveAll refused the token even after re-reading it, or "
    "the secret, a setting or the idempotency table is missing. Every send fails until fixed.",
    "outcome-unknown": "A send may or may not have reached LiveAll (timeout after sending, HTTP 5xx): "
    "never sent again blindly; the reconciler settles each within minutes from LiveAll's history "
    "(README: Unknown outcomes). Frequent ones mean LiveAll or the network is unwell.",
    "partially-sent": "A long destination list was sent only in part: the unsent destinations were "
    "dead-lettered by failure type; read their reason, fix, redrive.",
    "internal-error": "A defect: an exception nothing in the failure taxonomy describes (the caller got a "
    "500 with a request id, or the record was dead-lettered with the exception's type). Find the "
    "request id in the function's log.",
}
# Tracking runs every minute; a backlog that outlasts this many runs means it cannot keep up.
TRACKING_BACKLOG_MINUTES = 5
BALANCE_PERIOD = Duration.minutes(names.BALANCE_SCHEDULE_MINUTES)
RECONCILE_PERIOD = Duration.minutes(names.RECONCILE_SCHEDULE_MINUTES)
# Events that could not be published are retried by the next tracker run: alarm when it lasts.
EVENTS_NOT_PUBLISHED_PERIODS = 3
# What became of a fired part (gateway.schedules counts ScheduledPartsFired by this dimension).
SCHEDULED_PART_OUTCOME_DIMENSION = "outcome"
SCHEDULED_PART_OUTCOMES = ("sent", "failed", "skipped")
SCHEDULER_NAMESPACE = "AWS/Scheduler"
EVENTS_NAMESPACE = "AWS/Events"
DEFAULT_EVENT_BUS = "default"
# The tracker takes the backlog queue's records every minute: one this old means it cannot write
# them back (the tracking table still failing, or the tracker itself).
TRACKING_BACKLOG_QUEUE_AGE_SECONDS = 15 * 60
NO_SUBSCRIBER_WARNING = "viber-gateway:no-alarm-subscriber"
# The caps (gateway.guard.caps): what refused a send (CapRefusals, dimension rule), which rule of
# the destination policy did (PolicyRefusals), the stage's worst-case spend so far today, and the
# messages counted per caller (MessagesCounted, dimension caller: `key:<API key id>`, `queue`, or
# `api` for IAM callers).
CAP_RULE_DIMENSION = "rule"
CAP_RULES = ("messages", "cost", "spend-ceiling")
POLICY_RULES = ("country", "number-type")
CALLER_DIMENSION = "caller"
_ALARM_ARN_PATTERN = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"


AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class AlarmSpec:
    name_suffix: str
    description: str
    metric: cloudwatch.IMetric
    threshold: float
    evaluation_periods: int = 1
    comparison: cloudwatch.ComparisonOperator = AT_LEAST


def service_metric(
    config: GatewayConfig,
    metric_name: str,
    *,
    statistic: str = "Sum",
    period: Duration = FIVE_MINUTES,
    dimensions: dict[str, str] | None = None,
) -> cloudwatch.Metric:
    """A custom metric the stage's functions publish (EMF via Powertools), with the service dimension."""
    return cloudwatch.Metric(
        namespace=config.metrics_namespace,
        metric_name=metric_name,
        dimensions_map={names.METRIC_DIMENSION_SERVICE: names.SERVICE_NAME, **(dimensions or {})},
        statistic=statistic,
        period=period,
    )


def api_metric(config: GatewayConfig, metric_name: str, *, statistic: str) -> cloudwatch.Metric:
    """A metric of the stage's REST API stage, named by its API and stage names.

    Not the Stage construct's own metric helpers: they refer to the stage resource,
    which depends (through the deployment and its methods) on the function alias,
    whose CodeDeploy update depends on the rollback alarms: a circular dependency.
    """
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=metric_name,
        dimensions_map={"ApiName": config.physical_name(names.SERVICE_NAME), "Stage": config.stage},
        statistic=statistic,
        period=FIVE_MINUTES,
    )


def scheduler_metric(config: GatewayConfig, metric_name: str) -> cloudwatch.Metric:
    """An EventBridge Scheduler metric of the stage's schedule group (dimension ScheduleGroup)."""
    return cloudwatch.Metric(
        namespace=SCHEDULER_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"ScheduleGroup": config.physical_name(names.SCHEDULE_GROUP_NAME)},
        statistic="Sum",
        period=FIVE_MINUTES,
    )


def rule_metric(
    metric_name: str, *, bus_name: str, rule_name: str, statistic: str = "Sum"
) -> cloudwatch.Metric:
    """An EventBridge metric of one rule: EventBridge names a rule of a custom (or partner) bus by
    EventBusName and RuleName, one of the default bus by RuleName alone."""
    dimensions = {"RuleName": rule_name}
    if bus_name != DEFAULT_EVENT_BUS:
        dimensions["EventBusName"] = bus_name
    return cloudwatch.Metric(
        namespace=EVENTS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=FIVE_MINUTES,
    )


def failure_metric(config: GatewayConfig, failure_type: str) -> cloudwatch.Metric:
    """The Failures metric of one failure type (no label: an alarm on a labelled metric needs math)."""
    if failure_type not in names.FAILURE_TYPES:
        raise ValueError(f"{failure_type!r} is not a failure type of names.FAILURE_TYPES")
    return service_metric(
        config, names.METRIC_FAILURES, dimensions={names.METRIC_DIMENSION_FAILURE_TYPE: failure_type}
    )


class Monitoring(Construct):
    """Alarms: dead letters, queue age, provider errors; out of credit, misconfigured, outcome
    unknown, partially sent and internal errors; the idempotency store failing after a send;
    API 5xx, 4xx rate and throttling; function errors, throttles and durations near the
    timeout; the tracker's backlog, sends not recorded, events not published; ambiguous
    outcomes; a low balance; schedule triggers dead-lettered, and Scheduler failing to deliver
    them; tracking records waiting too long on the backlog queue; with event sources, events
    that never reached the queue; with webhooks, events not delivered (each webhook's
    failures, and the webhooks' dead-letter queue). All notify `alarm_topic` (KMS-encrypted,
    TLS only), which mails `alarmEmail` when given, and the existing `alarmTopicArn` topic when
    given.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        api: MessagesApi,
        consumer: QueueConsumer,
        scheduled: ScheduledWork,
        scheduled_sends: ScheduledSends,
        tracking: TrackingTable,
        sources: MessageSources,
        webhooks: StatusWebhooks | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.alarm_topic = self._create_topic()
        if config.alarm_email is not None:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._actions = [cloudwatch_actions.SnsAction(self.alarm_topic)]
        if config.alarm_topic_arn is not None:
            on_call = sns.Topic.from_topic_arn(self, "OnCallTopic", config.alarm_topic_arn)
            self._actions.append(cloudwatch_actions.SnsAction(on_call))
        if not config.alarm_subscribed:
            # prod never gets here (infra.config stops the synth); other stages may go unwatched.
            Annotations.of(self).add_warning_v2(
                NO_SUBSCRIBER_WARNING,
                f"stage {config.stage!r}: the alarms reach nobody; give -c {KEY_ALARM_EMAIL}=... or "
                f"-c {KEY_ALARM_TOPIC_ARN}=... (or subscribe to the AlarmTopicArn output yourself)",
            )

        self._throttled_filter = logs.MetricFilter(
            self,
            "ApiThrottledFilter",
            log_group=api.access_log_group,
            # The access log's status is a JSON string ("$context.status").
            filter_pattern=logs.FilterPattern.string_value("$.status", "=", "429"),
            metric_namespace=config.metrics_namespace,
            metric_name=API_THROTTLED_METRIC,
            metric_value="1",
        )
        functions = {"api": api.handler, "queue": consumer.handler, "scheduled": scheduled.handler}
        specs = [
            *self._alarm_specs(api, consumer, functions),
            *self._schedule_alarms(scheduled_sends),
            self._tracking_backlog_alarm(tracking),
            *self._source_alarms(sources),
            *self._webhook_alarms(webhooks),
        ]
        self.alarms_by_name = {spec.name_suffix: self._create_alarm(spec) for spec in specs}
        self.alarms = list(self.alarms_by_name.values())
        self.dashboard = self._create_dashboard(api, consumer, functions, scheduled_sends)
        self._add_integration_widgets(tracking, sources, webhooks)
        self._add_guard_widgets()

    def rollback_alarms(self, label: str) -> list[cloudwatch.IAlarm]:
        """The alarms that stop and roll back a deployment of the `label` (api, queue) function."""
        names_ = [f"{label}-function-errors"] + (["api-5xx"] if label == "api" else [])
        return [self.alarms_by_name[name] for name in names_]

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
                service_metric(self._config, names.METRIC_PROVIDER_ERRORS),
                threshold=PROVIDER_ERRORS_THRESHOLD,
            ),
            *(
                AlarmSpec(failure_type, description, failure_metric(self._config, failure_type), threshold=1)
                for failure_type, description in ALARMED_FAILURE_TYPES.items()
            ),
            AlarmSpec(
                "idempotency-store-failures",
                "The idempotency store failed just after a send: the caller got the answer, a resend "
                "under its key is blocked, and the reconciler saves the answer once the table takes it "
                "again. Check the table (throttling, item size) if this repeats.",
                service_metric(self._config, names.METRIC_IDEMPOTENCY_STORE_FAILURES),
                threshold=1,
            ),
            AlarmSpec(
                "tracking-backlog",
                f"The tracker left messages for its next run for {TRACKING_BACKLOG_MINUTES} minutes in a "
                "row: it cannot keep up (LiveAll slow, a burst of bulk sends); events come late.",
                service_metric(
                    self._config, names.METRIC_TRACKING_BACKLOG, statistic="Minimum", period=ONE_MINUTE
                ),
                threshold=1,
                evaluation_periods=TRACKING_BACKLOG_MINUTES,
            ),
            AlarmSpec(
                "tracking-record-failures",
                "Sends went out but could not be recorded for tracking: those messages get no events "
                "and no lookup of their reference. Check the tracking table.",
                service_metric(self._config, names.METRIC_TRACKING_RECORD_FAILURES),
                threshold=1,
            ),
            AlarmSpec(
                "events-not-published",
                "EventBridge refused events for 15 minutes: consumers hear nothing new (each is retried "
                "by the next tracker run). Check the bus and PutEvents quotas.",
                service_metric(self._config, names.METRIC_EVENTS_NOT_PUBLISHED),
                threshold=1,
                evaluation_periods=EVENTS_NOT_PUBLISHED_PERIODS,
            ),
            AlarmSpec(
                "ambiguous-outcomes",
                "The reconciler found sends it cannot settle without guessing (another system sent to the "
                "same number): settle them by hand from the candidates in its log or `make reconcile`, "
                "then dismiss them (README: Unknown outcomes).",
                service_metric(
                    self._config,
                    names.METRIC_UNRESOLVED_AMBIGUOUS,
                    statistic="Maximum",
                    period=RECONCILE_PERIOD,
                ),
                threshold=1,
            ),
            *self._balance_alarm(),
            *self._spend_ceiling_alarm(),
            AlarmSpec(
                "api-5xx",
                "The API answered 5xx: provider failures, misconfiguration or function errors.",
                api_metric(self._config, "5XXError", statistic="Sum"),
                threshold=API_5XX_THRESHOLD,
            ),
            AlarmSpec(
                "api-4xx-rate",
                f"Over {API_4XX_RATE_THRESHOLD:.0%} of the API's answers were 4xx (of at least "
                f"{API_4XX_RATE_MIN_REQUESTS} requests in 5 minutes): a caller sends a wrong key, invalid "
                "bodies, or too fast; read the access log.",
                self._api_4xx_rate(api),
                threshold=API_4XX_RATE_THRESHOLD,
            ),
            AlarmSpec(
                "api-throttled",
                "API Gateway refused requests with 429 (stage or usage-plan throttling): callers must retry; "
                "raise throttleRate/throttleBurst if the load is legitimate.",
                self._throttled_filter.metric(statistic="Sum", period=FIVE_MINUTES),
                threshold=API_THROTTLED_THRESHOLD,
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
            timeout_ms = function.timeout.to_milliseconds() if function.timeout else 0
            specs.append(
                AlarmSpec(
                    f"{label}-function-duration",
                    f"The {label} function ran within {1 - DURATION_ALARM_SHARE_OF_TIMEOUT:.0%} of its "
                    "timeout: the provider or DynamoDB is slow, and the next ones may time out.",
                    function.metric_duration(period=FIVE_MINUTES, statistic="Maximum"),
                    threshold=round(timeout_ms * DURATION_ALARM_SHARE_OF_TIMEOUT),
                )
            )
        return specs

    def _schedule_alarms(self, scheduled_sends: ScheduledSends) -> list[AlarmSpec]:
        """Scheduled parts that have not gone out: their triggers dead-lettered, or lost on the way."""
        return [
            AlarmSpec(
                "schedule-dead-letters",
                "Schedule triggers are in the trigger dead-letter queue (Scheduler could not deliver them, "
                "or the queue function failed on them): those parts have not gone out. Read them, fix the "
                "cause, then redrive them to the trigger queue or drop them.",
                scheduled_sends.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                threshold=1,
            ),
            AlarmSpec(
                "scheduler-dead-lettered",
                "EventBridge Scheduler gave up delivering schedule triggers to the trigger queue (retries "
                "exhausted, or refused: the scheduler role, the queue) and dead-lettered them: those parts "
                "have not gone out.",
                scheduler_metric(self._config, "InvocationsSentToDeadLetterCount"),
                threshold=1,
            ),
            AlarmSpec(
                "scheduler-throttled-or-dropped",
                "EventBridge Scheduler's deliveries of schedule triggers were throttled by the trigger queue "
                "(parts go out late), or dropped, or could not even be dead-lettered (parts never go out): "
                "check the schedule group's metrics and the scheduler role.",
                self._scheduler_losses(),
                threshold=1,
            ),
        ]

    def _tracking_backlog_alarm(self, tracking: TrackingTable) -> AlarmSpec:
        return AlarmSpec(
            "tracking-backlog-queue-age",
            "A tracking record has waited on the backlog queue for over 15 minutes: the tracker cannot "
            "write the records of sends the tracking table refused (check the table, and the scheduled "
            "function's errors). Those messages get their events only once it does.",
            tracking.backlog_queue.metric_approximate_age_of_oldest_message(
                period=ONE_MINUTE, statistic="Maximum"
            ),
            threshold=TRACKING_BACKLOG_QUEUE_AGE_SECONDS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

    def _source_alarms(self, sources: MessageSources) -> list[AlarmSpec]:
        if sources.dead_letter_queue is None:
            return []
        return [
            AlarmSpec(
                "source-dead-letters",
                "EventBridge could not put events of an event source on the message queue (its policy, the "
                "queue) and left them in the event sources' dead-letter queue: those messages were not sent. "
                "Fix the cause, then move them to the message queue (the queue function unwraps the events).",
                sources.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                threshold=1,
            )
        ]

    def _webhook_alarms(self, webhooks: StatusWebhooks | None) -> list[AlarmSpec]:
        if webhooks is None:
            return []
        specs = [
            AlarmSpec(
                "webhook-dead-letters",
                "Events EventBridge could not deliver to a webhook within a day (or that its endpoint "
                "refused for good) are in the webhooks' dead-letter queue: read their RULE_ARN and "
                "ERROR_MESSAGE attributes, fix the endpoint or its secret, then deliver or drop them.",
                webhooks.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                threshold=1,
            )
        ]
        for webhook in self._config.webhooks:
            specs.append(
                AlarmSpec(
                    f"webhook-{webhook.name}-failed",
                    f"Deliveries to webhook {webhook.name} failed for good: the endpoint "
                    "refused them (a 4xx other than 429, its credentials), or kept failing for a day. The "
                    "events are in the webhooks' dead-letter queue, unless even that failed.",
                    self._webhook_failures(webhooks, webhook.name),
                    threshold=1,
                )
            )
        return specs

    def _webhook_failures(self, webhooks: StatusWebhooks, name: str) -> cloudwatch.MathExpression:
        # EventBridge publishes these only when they are not zero: a missing one counts as 0.
        rule = {"bus_name": webhooks.bus_name, "rule_name": webhooks.rule_names[name]}
        return cloudwatch.MathExpression(
            expression="FILL(failed, 0) + FILL(lost, 0)",
            using_metrics={
                "failed": rule_metric("FailedInvocations", **rule),
                "lost": rule_metric("InvocationsFailedToBeSentToDlq", **rule),
            },
            period=FIVE_MINUTES,
            label=f"{name}: deliveries failed",
        )

    def _scheduler_losses(self) -> cloudwatch.MathExpression:
        # Scheduler publishes these only when they are not zero: a missing one counts as 0.
        return cloudwatch.MathExpression(
            expression="FILL(throttled, 0) + FILL(dropped, 0) + FILL(undeliverable, 0)",
            using_metrics={
                "throttled": scheduler_metric(self._config, "TargetErrorThrottledCount"),
                "dropped": scheduler_metric(self._config, "InvocationDroppedCount"),
                "undeliverable": scheduler_metric(self._config, "InvocationsFailedToBeSentToDeadLetterCount"),
            },
            period=FIVE_MINUTES,
            label="triggers throttled, dropped or lost",
        )

    def _balance_alarm(self) -> list[AlarmSpec]:
        threshold = self._config.low_balance_euros
        if threshold is None:
            return []
        return [
            AlarmSpec(
                "low-balance",
                f"The LiveAll account's balance is below {threshold:g} EUR (lowBalanceEuros): top it up "
                "before sends fail as out of credit. GET /account/balance?country=GR says what an SMS costs.",
                service_metric(
                    self._config, names.METRIC_BALANCE, statistic="Minimum", period=BALANCE_PERIOD
                ),
                threshold=threshold,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            )
        ]

    def _spend_ceiling_alarm(self) -> list[AlarmSpec]:
        ceiling = self._config.daily_spend_ceiling_euros
        if ceiling is None:
            return []  # no ceiling: the metric cannot exist
        return [
            AlarmSpec(
                "spend-ceiling-reached",
                f"Today's worst-case SMS spend reached the stage's ceiling ({ceiling:g} EUR, "
                f"dailySpendCeilingEuros): every send is refused (429 spend-ceiling-reached) until midnight "
                f"({self._config.stage_time_zone}), and queued ones wait. Find who sent what (CapRefusals, "
                "MessagesCounted by caller on the dashboard); if the traffic is legitimate, lift the brake "
                "for the day (lifted = true on the usage table's item usage#<day>) or raise the "
                "ceiling.",
                service_metric(self._config, names.METRIC_SPEND_CEILING_REACHED),
                threshold=1,
            )
        ]

    def _api_4xx_rate(self, api: MessagesApi) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"IF(requests >= {API_4XX_RATE_MIN_REQUESTS}, refused / requests, 0)",
            using_metrics={
                "requests": api_metric(self._config, "Count", statistic="SampleCount"),
                "refused": api_metric(self._config, "4XXError", statistic="Sum"),
            },
            period=FIVE_MINUTES,
            label="4xx share of requests",
        )

    def _create_alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in spec.name_suffix.split("-")) + "Alarm",
            alarm_name=f"{self._config.physical_name(names.SERVICE_NAME)}-{spec.name_suffix}",
            alarm_description=spec.description,
            metric=spec.metric,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=spec.comparison,
            # No data means nothing happened (no sends, no dead letters).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(*self._actions)
        alarm.add_ok_action(*self._actions)
        return alarm

    def _create_dashboard(
        self,
        api: MessagesApi,
        consumer: QueueConsumer,
        functions: dict[str, GatewayFunction],
        scheduled_sends: ScheduledSends,
    ) -> cloudwatch.Dashboard:
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
                api_metric(self._config, "Latency", statistic=statistic).with_(label=f"latency {statistic}")
            )
            api_latency_metrics.append(
                api_metric(self._config, "IntegrationLatency", statistic=statistic).with_(
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
                    service_metric(self._config, names.METRIC_MESSAGES_ACCEPTED).with_(
                        label="messages accepted"
                    ),
                    service_metric(self._config, names.METRIC_DESTINATIONS_SENT).with_(
                        label="destinations sent"
                    ),
                    # Left out by the suppression list: the list working, so graphed, never alarmed.
                    service_metric(self._config, names.METRIC_SUPPRESSED_DESTINATIONS).with_(
                        label="destinations suppressed"
                    ),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Failures by type",
                left=[
                    failure_metric(self._config, failure_type).with_(label=failure_type)
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
            cloudwatch.GraphWidget(
                title="API: 4xx share of requests",
                left=[self._api_4xx_rate(api)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API: requests throttled (429)",
                left=[self._throttled_filter.metric(statistic="Sum", period=FIVE_MINUTES).with_(label="429")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tracking",
                left=[
                    service_metric(self._config, names.METRIC_MESSAGES_POLLED).with_(label="messages polled"),
                    service_metric(self._config, names.METRIC_STATUS_CHANGES).with_(label="status changes"),
                    service_metric(self._config, names.METRIC_TRACKER_PROVIDER_CALLS).with_(
                        label="GetSMSStatus calls"
                    ),
                ],
                right=[
                    service_metric(
                        self._config, names.METRIC_TRACKING_BACKLOG, statistic="Maximum", period=ONE_MINUTE
                    ).with_(label="left for the next run")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Unknown outcomes",
                left=[
                    service_metric(
                        self._config, names.METRIC_UNKNOWN_RESOLVED, dimensions={"outcome": outcome}
                    ).with_(label=f"resolved {outcome}")
                    for outcome in ("sent", "not-sent")
                ],
                right=[
                    service_metric(
                        self._config,
                        names.METRIC_UNRESOLVED_AMBIGUOUS,
                        statistic="Maximum",
                        period=RECONCILE_PERIOD,
                    ).with_(label="ambiguous, open")
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Scheduled sends",
                left=[
                    service_metric(self._config, names.METRIC_SCHEDULES_CREATED).with_(
                        label="schedules created"
                    ),
                    *(
                        service_metric(
                            self._config,
                            names.METRIC_SCHEDULED_PARTS_FIRED,
                            dimensions={SCHEDULED_PART_OUTCOME_DIMENSION: outcome},
                        ).with_(label=f"parts fired: {outcome}")
                        for outcome in SCHEDULED_PART_OUTCOMES
                    ),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Schedule triggers: age of oldest (s)",
                left=[
                    scheduled_sends.trigger_queue.metric_approximate_age_of_oldest_message(
                        period=ONE_MINUTE, statistic="Maximum"
                    ).with_(label="oldest trigger age")
                ],
                right=[
                    scheduled_sends.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic="Maximum"
                    ).with_(label="dead-lettered triggers"),
                    self._scheduler_losses(),
                ],
                width=12,
            ),
        )
        balance = cloudwatch.GraphWidget(
            title="LiveAll balance (EUR)",
            left=[
                service_metric(
                    self._config, names.METRIC_BALANCE, statistic="Minimum", period=BALANCE_PERIOD
                ).with_(label="balance")
            ],
            left_annotations=[]
            if self._config.low_balance_euros is None
            else [
                cloudwatch.HorizontalAnnotation(value=self._config.low_balance_euros, label="lowBalanceEuros")
            ],
            width=24,
        )
        dashboard.add_widgets(balance)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
        return dashboard

    def _add_integration_widgets(
        self, tracking: TrackingTable, sources: MessageSources, webhooks: StatusWebhooks | None
    ) -> None:
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Tracking records kept for the tracker",
                left=[
                    service_metric(self._config, names.METRIC_TRACKING_RECORDS_KEPT).with_(
                        label="kept on the backlog queue"
                    ),
                    service_metric(self._config, names.METRIC_TRACKING_RECORD_FAILURES).with_(
                        label="not recorded at all"
                    ),
                ],
                right=[
                    tracking.backlog_queue.metric_approximate_age_of_oldest_message(
                        period=ONE_MINUTE, statistic="Maximum"
                    ).with_(label="oldest waiting (s)")
                ],
                width=12,
            )
        ]
        if sources.dead_letter_queue is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Event sources",
                    left=[
                        rule_metric(
                            "Invocations",
                            bus_name=sources.bus_names[name],
                            rule_name=sources.rule_names[name],
                        ).with_(label=f"{name}: events to the queue")
                        for name in sources.rules
                    ],
                    right=[
                        sources.dead_letter_queue.metric_approximate_number_of_messages_visible(
                            period=ONE_MINUTE, statistic="Maximum"
                        ).with_(label="dead-lettered events")
                    ],
                    width=12,
                )
            )
        if webhooks is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Status webhooks",
                    left=[
                        rule_metric(
                            metric, bus_name=webhooks.bus_name, rule_name=webhooks.rule_names[name]
                        ).with_(label=f"{name}: {label}")
                        for name in webhooks.rule_names
                        for metric, label in (
                            ("Invocations", "delivered or failed"),
                            ("FailedInvocations", "failed"),
                        )
                    ],
                    right=[
                        webhooks.dead_letter_queue.metric_approximate_number_of_messages_visible(
                            period=ONE_MINUTE, statistic="Maximum"
                        ).with_(label="dead-lettered events")
                    ],
                    width=12,
                )
            )
        self.dashboard.add_widgets(*widgets)

    def _add_guard_widgets(self) -> None:
        """The caps and the destination policy: refusals by rule, the day's spend, messages by caller."""
        config = self._config
        ceiling = config.daily_spend_ceiling_euros
        # MessagesCounted has a caller dimension whose values (API key ids) the stack cannot know:
        # a search finds every caller's series (dashboards only: an alarm cannot read a search).
        service = names.METRIC_DIMENSION_SERVICE
        search = (
            f"{{{config.metrics_namespace},{service},{CALLER_DIMENSION}}} "
            f'MetricName="{names.METRIC_MESSAGES_COUNTED}" {service}="{names.SERVICE_NAME}"'
        )
        by_caller = cloudwatch.MathExpression(
            expression=f"SEARCH('{search}', 'Sum', {FIVE_MINUTES.to_seconds()})",
            using_metrics={},
            period=FIVE_MINUTES,
            # No label of its own: each series is named by its caller.
            label="",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sends refused by a cap or the destination policy",
                left=[
                    *(
                        service_metric(
                            config, names.METRIC_CAP_REFUSALS, dimensions={CAP_RULE_DIMENSION: rule}
                        ).with_(label=f"cap: {rule}")
                        for rule in CAP_RULES
                    ),
                    *(
                        service_metric(
                            config, names.METRIC_POLICY_REFUSALS, dimensions={CAP_RULE_DIMENSION: rule}
                        ).with_(label=f"policy: {rule}")
                        for rule in POLICY_RULES
                    ),
                ],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Today's worst-case spend (EUR)",
                left=[
                    service_metric(config, names.METRIC_DAY_SPEND, statistic="Maximum").with_(
                        label="worst-case spend today"
                    )
                ],
                right=[
                    service_metric(config, names.METRIC_SPEND_CEILING_REACHED).with_(label="ceiling reached")
                ],
                left_annotations=[]
                if ceiling is None
                else [cloudwatch.HorizontalAnnotation(value=ceiling, label="dailySpendCeilingEuros")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Messages counted, by caller (key:<API key id>, queue, api)",
                left=[by_caller],
                stacked=True,
                width=24,
            ),
        )
