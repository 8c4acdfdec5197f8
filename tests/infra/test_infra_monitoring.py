"""Alarms, their encrypted topic, and the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from gateway import names
from gateway.failures import Failure
from infra.components.monitoring import NO_SUBSCRIBER_WARNING
from tests.infra.synth import ALARM_EMAIL, ONCALL_TOPIC_ARN, REPO, Synthesized, cdk_json_context, stage_of

ALARM_SUFFIXES = {
    "dead-letters",
    "provider-errors",
    "out-of-credit",
    "misconfigured",
    "outcome-unknown",
    "partially-sent",
    "api-5xx",
    "api-4xx-rate",
    "api-throttled",
    "queue-age",
    "api-function-errors",
    "api-function-throttles",
    "api-function-duration",
    "queue-function-errors",
    "queue-function-throttles",
    "queue-function-duration",
    "scheduled-function-errors",
    "scheduled-function-throttles",
    "scheduled-function-duration",
    "internal-error",
    "idempotency-store-failures",
    "tracking-backlog",
    "tracking-record-failures",
    "events-not-published",
    "ambiguous-outcomes",
    "low-balance",
    "schedule-dead-letters",
    "scheduler-dead-lettered",
    "scheduler-throttled-or-dropped",
    "tracking-backlog-queue-age",
}


# The alarms of event sources, webhooks and the spend ceiling, which prod has not (README lists them
# all the same).
CONDITIONAL_ALARMS = {
    "source-dead-letters",
    "webhook-dead-letters",
    "webhook-<name>-failed",
    "spend-ceiling-reached",
}


def integration_alarm_suffixes(stack: Synthesized) -> set[str]:
    """The alarms of the stack's event sources, webhooks and spend ceiling (the alternative stack has
    all three)."""
    suffixes = set()
    if stack.context.get("dailySpendCeilingEuros") not in (None, "none"):
        suffixes.add("spend-ceiling-reached")
    if stack.context.get("eventSources"):
        suffixes.add("source-dead-letters")
    webhooks = stack.context.get("webhooks")
    if webhooks:
        suffixes.add("webhook-dead-letters")
        suffixes |= {f"webhook-{webhook['name']}-failed" for webhook in json.loads(webhooks)}
    return suffixes


def alarms_by_suffix(stack: Synthesized) -> dict[str, dict[str, Any]]:
    prefix = f"{names.SERVICE_NAME}-{stage_of(stack)}-"
    alarms = {}
    for props in stack.properties("AWS::CloudWatch::Alarm"):
        assert props["AlarmName"].startswith(prefix)
        alarms[props["AlarmName"].removeprefix(prefix)] = props
    return alarms


def metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """(Namespace, MetricName, Dimensions) of an alarm's metric, or of each metric its math reads."""
    if "MetricName" in alarm:
        return [{key: alarm.get(key, []) for key in ("Namespace", "MetricName", "Dimensions")}]
    return [
        {key: query["MetricStat"]["Metric"].get(key, []) for key in ("Namespace", "MetricName", "Dimensions")}
        for query in alarm["Metrics"]
        if "MetricStat" in query
    ]


def test_every_alarm_is_present_and_notifies_the_topic(any_stack: Synthesized) -> None:
    # Given the stack's alarms and its topic
    alarms = alarms_by_suffix(any_stack)
    (topic_id,) = any_stack.resources("AWS::SNS::Topic")
    on_call = [ONCALL_TOPIC_ARN] if "alarmTopicArn" in any_stack.context else []

    # Then there is one per failure an operator must act on, and those of its sources and webhooks
    expected = ALARM_SUFFIXES | integration_alarm_suffixes(any_stack)
    assert set(alarms) == expected
    assert len(any_stack.resources("AWS::CloudWatch::Alarm")) == len(expected)
    # And each notifies the alarm topic (and the on-call topic, when given), firing and clearing
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}, *on_call]
        assert alarm["OKActions"] == [{"Ref": topic_id}, *on_call]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarm_metrics_belong_to_the_stage(any_stack: Synthesized) -> None:
    # Given every metric any alarm reads, and this stack's own functions, queues and API
    stage = stage_of(any_stack)
    own = {
        "AWS/Lambda": {
            ("FunctionName", json.dumps({"Ref": i})) for i in any_stack.resources("AWS::Lambda::Function")
        },
        "AWS/SQS": {
            ("QueueName", json.dumps({"Fn::GetAtt": [i, "QueueName"]}))
            for i in any_stack.resources("AWS::SQS::Queue")
        },
        "AWS/Scheduler": {
            ("ScheduleGroup", json.dumps(props["Name"]))
            for props in any_stack.properties("AWS::Scheduler::ScheduleGroup")
        },
        # The stack's own rules (by name), on its own bus
        "AWS/Events": {
            *(("RuleName", json.dumps(props["Name"])) for props in any_stack.properties("AWS::Events::Rule")),
            *(
                ("EventBusName", json.dumps(props["Name"]))
                for props in any_stack.properties("AWS::Events::EventBus")
            ),
        },
    }
    assert any_stack.only("AWS::ApiGateway::Stage")["StageName"] == stage
    assert any_stack.only("AWS::ApiGateway::RestApi")["Name"] == f"{names.SERVICE_NAME}-{stage}"
    api_dimensions = [
        {"Name": "ApiName", "Value": f"{names.SERVICE_NAME}-{stage}"},
        {"Name": "Stage", "Value": stage},
    ]

    for suffix, alarm in alarms_by_suffix(any_stack).items():
        for metric in metrics_of(alarm):
            namespace, dimensions = metric["Namespace"], metric["Dimensions"]
            # Then custom metrics come from the stage's own namespace, never another stage's
            if not namespace.startswith("AWS/"):
                assert namespace == f"{names.DEFAULT_METRICS_NAMESPACE}/{stage}", suffix
            # And AWS metrics from this stage's API stage, or this stack's functions, queues, schedule group
            elif namespace == "AWS/ApiGateway":
                assert sorted(dimensions, key=lambda d: d["Name"]) == api_dimensions, suffix
            else:
                pairs = {(d["Name"], json.dumps(d["Value"])) for d in dimensions}
                assert pairs, suffix
                assert pairs <= own[namespace], suffix


def test_the_functions_count_in_the_namespace_the_alarms_read(any_stack: Synthesized) -> None:
    # Given the functions' environment
    namespaces = {
        props["Environment"]["Variables"][names.ENV_METRICS_NAMESPACE]
        for props in any_stack.properties("AWS::Lambda::Function")
    }

    # Then all publish into the stage's namespace, the one the alarms read
    assert namespaces == {f"{names.DEFAULT_METRICS_NAMESPACE}/{stage_of(any_stack)}"}


def test_alarms_watch_the_right_metrics(default_stack: Synthesized) -> None:
    # Given the alarms
    alarms = alarms_by_suffix(default_stack)
    service = {"Name": names.METRIC_DIMENSION_SERVICE, "Value": names.SERVICE_NAME}
    namespace = f"{names.DEFAULT_METRICS_NAMESPACE}/prod"

    # Then the dead-letter alarm fires as soon as one message is visible there
    dead_letters = alarms["dead-letters"]
    assert (dead_letters["Namespace"], dead_letters["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dead_letters["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert dead_letters["Threshold"] == 1
    # And the provider-error alarm reads the functions' custom metric with the service dimension
    provider_errors = alarms["provider-errors"]
    assert provider_errors["Namespace"] == namespace
    assert provider_errors["MetricName"] == names.METRIC_PROVIDER_ERRORS
    assert provider_errors["Dimensions"] == [service]
    # And out of credit, misconfigured, outcome unknown and partially sent fire on the first one
    for failure_type in (
        "out-of-credit",
        "misconfigured",
        "outcome-unknown",
        "partially-sent",
        "internal-error",
    ):
        alarm = alarms[failure_type]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, names.METRIC_FAILURES)
        dimensions = sorted(alarm["Dimensions"], key=lambda d: d["Name"])
        assert dimensions == [{"Name": names.METRIC_DIMENSION_FAILURE_TYPE, "Value": failure_type}, service]
        assert alarm["Threshold"] == 1
    # And the others read the AWS metrics of the functions, the API and the queue
    assert alarms["api-5xx"]["MetricName"] == "5XXError"
    assert alarms["queue-age"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    for label in ("api", "queue", "scheduled"):
        assert alarms[f"{label}-function-errors"]["MetricName"] == "Errors"
        assert alarms[f"{label}-function-throttles"]["MetricName"] == "Throttles"


@pytest.mark.parametrize(
    ("suffix", "metric", "statistic", "period", "threshold", "periods"),
    [
        ("idempotency-store-failures", names.METRIC_IDEMPOTENCY_STORE_FAILURES, "Sum", 300, 1, 1),
        ("tracking-backlog", names.METRIC_TRACKING_BACKLOG, "Minimum", 60, 1, 5),
        ("tracking-record-failures", names.METRIC_TRACKING_RECORD_FAILURES, "Sum", 300, 1, 1),
        ("events-not-published", names.METRIC_EVENTS_NOT_PUBLISHED, "Sum", 300, 1, 3),
        ("ambiguous-outcomes", names.METRIC_UNRESOLVED_AMBIGUOUS, "Maximum", 300, 1, 1),
    ],
)
def test_the_gateways_own_failures_raise_alarms(
    default_stack: Synthesized,
    suffix: str,
    metric: str,
    statistic: str,
    period: int,
    threshold: float,
    periods: int,
) -> None:
    # Given an alarm on a metric the functions publish (gateway.observability)
    alarm = alarms_by_suffix(default_stack)[suffix]

    # Then it reads that metric of the stage, with the service dimension, as the code emits it
    assert (alarm["Namespace"], alarm["MetricName"]) == (f"{names.DEFAULT_METRICS_NAMESPACE}/prod", metric)
    assert alarm["Dimensions"] == [{"Name": names.METRIC_DIMENSION_SERVICE, "Value": names.SERVICE_NAME}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == (statistic, period, threshold)
    assert alarm["EvaluationPeriods"] == periods
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_a_balance_below_the_threshold_raises_an_alarm(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given the balance alarms of the default stage (10 EUR) and of the alternative (its context)
    for stack, threshold in ((default_stack, 10), (alternative_stack, 25.5)):
        alarm = alarms_by_suffix(stack)["low-balance"]

        # Then each fires when the lowest balance the check saw in its period is below the threshold
        assert alarm["MetricName"] == names.METRIC_BALANCE
        assert alarm["Statistic"] == "Minimum"
        assert alarm["Period"] == names.BALANCE_SCHEDULE_MINUTES * 60
        assert alarm["ComparisonOperator"] == "LessThanThreshold"
        assert alarm["Threshold"] == threshold


def test_no_balance_alarm_when_the_threshold_is_turned_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.infra.synth import DEFAULT_CONTEXT, synthesize

    # Given lowBalanceEuros=none
    stack = synthesize(
        tmp_path_factory.mktemp("cdk-out-no-balance"), {**DEFAULT_CONTEXT, "lowBalanceEuros": "none"}
    )

    # Then there is no balance alarm, and the scheduled function publishes no Balance Low
    assert "low-balance" not in alarms_by_suffix(stack)
    scheduled = next(
        props
        for props in stack.properties("AWS::Lambda::Function")
        if props["Handler"] == names.SCHEDULED_HANDLER
    )
    assert names.ENV_LOW_BALANCE_EUROS not in scheduled["Environment"]["Variables"]


def test_the_4xx_alarm_is_a_rate_of_real_traffic(default_stack: Synthesized) -> None:
    # Given the API 4xx alarm
    alarm = alarms_by_suffix(default_stack)["api-4xx-rate"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}

    # Then it divides the stage's 4xx answers by its requests, once there are enough requests
    (expression,) = [query for query in queries.values() if "Expression" in query]
    assert expression["Expression"] == "IF(requests >= 20, refused / requests, 0)"
    assert expression["ReturnData"] is True
    assert queries["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    assert queries["refused"]["MetricStat"]["Metric"]["MetricName"] == "4XXError"
    assert alarm["Threshold"] == 0.25


def test_throttled_requests_are_counted_from_the_access_log(default_stack: Synthesized) -> None:
    # Given the metric filter and the throttling alarm
    metric_filter = default_stack.only("AWS::Logs::MetricFilter")
    alarm = alarms_by_suffix(default_stack)["api-throttled"]
    stage = default_stack.only("AWS::ApiGateway::Stage")

    # Then the filter counts access-log lines with status 429, into the stage's namespace
    assert metric_filter["FilterPattern"] == '{ $.status = "429" }'
    assert json.dumps(metric_filter["LogGroupName"]["Ref"]) in json.dumps(stage["AccessLogSetting"])
    (transformation,) = metric_filter["MetricTransformations"]
    assert transformation["MetricNamespace"] == f"{names.DEFAULT_METRICS_NAMESPACE}/prod"
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    # And the access log's status is the JSON string the pattern compares with
    assert '"status": "$context.status"' in stage["AccessLogSetting"]["Format"]


@pytest.mark.parametrize(
    ("label", "timeout"),
    [("api", names.API_FUNCTION_TIMEOUT_SECONDS), ("queue", names.QUEUE_FUNCTION_TIMEOUT_SECONDS)],
)
def test_a_function_close_to_its_timeout_raises_an_alarm(
    default_stack: Synthesized, label: str, timeout: int
) -> None:
    # Given a function's duration alarm
    alarm = alarms_by_suffix(default_stack)[f"{label}-function-duration"]

    # Then its slowest invocation in 5 minutes at 80 % of the timeout fires it
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/Lambda",
        "Duration",
        "Maximum",
    )
    assert alarm["Threshold"] == timeout * 1000 * 0.8


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(default_stack: Synthesized) -> None:
    # Given the topic and its key
    topic = default_stack.only("AWS::SNS::Topic")
    (key_id,) = default_stack.resources("AWS::KMS::Key")
    key = default_stack.only("AWS::KMS::Key")

    # Then the topic is encrypted with the customer managed, rotated key
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True
    # And CloudWatch may use the key, which it could not with the AWS managed aws/sns key
    principals = [statement["Principal"] for statement in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


def warnings_of(stack: Synthesized) -> set[str]:
    return {
        violation["ruleName"]
        for report in stack.validation_report.get("pluginReports", [])
        for violation in report["violations"]
    }


def test_an_email_is_subscribed_only_when_given(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given prod with alarmEmail, and another stage without (whose queue subscribes to topics instead)
    # Then only the first mails the alarms
    subscription = default_stack.only("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", ALARM_EMAIL)
    assert {props["Protocol"] for props in alternative_stack.properties("AWS::SNS::Subscription")} == {"sqs"}


def test_a_stage_whose_alarms_reach_nobody_is_warned_about(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given prod with subscribers, and another stage without any
    # Then only the second synthesis warns that its alarms reach nobody
    assert f"Annotation::{NO_SUBSCRIBER_WARNING}" in warnings_of(alternative_stack)
    assert f"Annotation::{NO_SUBSCRIBER_WARNING}" not in warnings_of(default_stack)


def test_prod_without_an_alarm_subscriber_does_not_synthesize() -> None:
    # Given prod with neither alarmEmail nor alarmTopicArn, as `cdk synth` would run the app
    context = {**cdk_json_context(), "placeholderLayer": True}

    # When the app runs
    completed = subprocess.run(
        [sys.executable, "infra/app.py"],
        cwd=REPO,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it stops with a message saying which keys give one
    assert completed.returncode != 0
    assert "invalid configuration: stage 'prod' has nobody to tell when an alarm fires" in completed.stderr
    assert "alarmEmail" in completed.stderr
    assert "alarmTopicArn" in completed.stderr


def dashboard_entries(stack: Synthesized) -> list[list[Any]]:
    body = stack.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    # The body is a Fn::Join of JSON pieces and references (inside JSON strings): join with a placeholder
    text = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return [
        metric for widget in json.loads(text)["widgets"] for metric in widget["properties"].get("metrics", [])
    ]


def dashboard_metrics(stack: Synthesized) -> list[list[Any]]:
    """The named metrics: [namespace, name, dimension, value, ..., options]."""
    return [entry for entry in dashboard_entries(stack) if isinstance(entry[0], str)]


def test_the_dashboard_shows_sends_failures_latency_and_queues(default_stack: Synthesized) -> None:
    # Given the metrics on the dashboard
    metrics = dashboard_metrics(default_stack)
    metric_names = {metric[1] for metric in metrics}

    # Then it shows sends, failures by type, durations, API latency, queue age and dead letters,
    # tracking, unknown outcomes and the balance
    assert {
        names.METRIC_MESSAGES_POLLED,
        names.METRIC_STATUS_CHANGES,
        names.METRIC_TRACKING_BACKLOG,
        names.METRIC_UNKNOWN_RESOLVED,
        names.METRIC_UNRESOLVED_AMBIGUOUS,
        names.METRIC_BALANCE,
        names.METRIC_MESSAGES_ACCEPTED,
        names.METRIC_DESTINATIONS_SENT,
        names.METRIC_SUPPRESSED_DESTINATIONS,
        names.METRIC_FAILURES,
        "Duration",
        "Latency",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
    } <= metric_names
    failure_types = {
        metric[metric.index(names.METRIC_DIMENSION_FAILURE_TYPE) + 1]
        for metric in metrics
        if names.METRIC_FAILURES in metric
    }
    assert failure_types == set(names.FAILURE_TYPES)
    durations = [metric for metric in metrics if "Duration" in metric]
    assert {json.dumps(metric[-1]) for metric in durations} >= {
        json.dumps({"label": f"{label} {stat}", "stat": stat})
        for label in ("api", "queue")
        for stat in ("p50", "p99")
    }
    # And the API's refusals: the 4xx share (math) and the throttled requests
    expressions = [
        entry[0]["expression"] for entry in dashboard_entries(default_stack) if isinstance(entry[0], dict)
    ]
    assert expressions == [
        "IF(requests >= 20, refused / requests, 0)",
        "FILL(throttled, 0) + FILL(dropped, 0) + FILL(undeliverable, 0)",  # the schedule triggers'
        # the messages the caps counted, by caller (tests/infra/test_infra_caps.py)
        """SEARCH('{ViberGateway/prod,service,caller} MetricName="MessagesCounted" """
        """service="viber-gateway"', 'Sum', 300)""",
    ]
    assert "ThrottledRequests" in metric_names
    # And every custom metric on it is the stage's own
    assert {metric[0] for metric in metrics if not metric[0].startswith("AWS/")} == {"ViberGateway/prod"}


def test_failure_types_on_the_dashboard_are_the_taxonomy() -> None:
    # Given the failure slugs the functions count under the Failures metric
    slugs = {failure.info.slug for failure in Failure}

    # Then names.FAILURE_TYPES, which the dashboard plots, lists exactly those
    assert set(names.FAILURE_TYPES) == slugs
    assert names.FAILURE_TYPE_OUT_OF_CREDIT in slugs


def test_the_readme_lists_every_alarm(default_stack: Synthesized) -> None:
    import re

    # Given README's alarm table ({api,queue,scheduled} standing for one alarm each)
    readme = (REPO / "README.md").read_text()
    listed: set[str] = set()
    for name in re.findall(r"^\| `viber-gateway-<stage>-([^`]+)` \|", readme, flags=re.MULTILINE):
        group = re.fullmatch(r"\{([^}]+)\}(.*)", name)
        if group:
            listed |= {label + group.group(2) for label in group.group(1).split(",")}
        else:
            listed.add(name)

    # Then it lists exactly the alarms the stack creates, and those only a stage with event sources
    # or webhooks has (one per webhook: <name> standing for its name)
    assert listed == set(alarms_by_suffix(default_stack)) | CONDITIONAL_ALARMS
