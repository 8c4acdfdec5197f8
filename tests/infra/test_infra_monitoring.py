"""Alarms, their encrypted topic, and the dashboard."""

from __future__ import annotations

import json
from typing import Any

from gateway import names
from gateway.failures import Failure
from tests.infra.synth import Synthesized

ALARM_SUFFIXES = {
    "dead-letters",
    "provider-errors",
    "out-of-credit",
    "api-5xx",
    "queue-age",
    "api-function-errors",
    "api-function-throttles",
    "queue-function-errors",
    "queue-function-throttles",
}


def alarms_by_suffix(stack: Synthesized) -> dict[str, dict[str, Any]]:
    prefix = f"{names.SERVICE_NAME}-{stack.context.get('stage', 'prod')}-"
    alarms = {}
    for props in stack.properties("AWS::CloudWatch::Alarm"):
        assert props["AlarmName"].startswith(prefix)
        alarms[props["AlarmName"].removeprefix(prefix)] = props
    return alarms


def test_every_alarm_is_present_and_notifies_the_topic(any_stack: Synthesized) -> None:
    # Given the stack's alarms and its topic
    alarms = alarms_by_suffix(any_stack)
    (topic_id,) = any_stack.resources("AWS::SNS::Topic")

    # Then there is one per failure an operator must act on
    assert set(alarms) == ALARM_SUFFIXES
    assert len(any_stack.resources("AWS::CloudWatch::Alarm")) == 9
    # And each notifies the alarm topic, when it fires and when it clears
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarms_watch_the_right_metrics(default_stack: Synthesized) -> None:
    # Given the alarms
    alarms = alarms_by_suffix(default_stack)
    service = {"Name": names.METRIC_DIMENSION_SERVICE, "Value": names.SERVICE_NAME}

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
    assert provider_errors["Namespace"] == names.DEFAULT_METRICS_NAMESPACE
    assert provider_errors["MetricName"] == names.METRIC_PROVIDER_ERRORS
    assert provider_errors["Dimensions"] == [service]
    # And out of credit is the Failures metric for that failure type
    out_of_credit = alarms["out-of-credit"]
    assert out_of_credit["MetricName"] == names.METRIC_FAILURES
    assert {"Name": names.METRIC_DIMENSION_FAILURE_TYPE, "Value": "out-of-credit"} in out_of_credit[
        "Dimensions"
    ]
    # And the others read the AWS metrics of the functions, the API and the queue
    assert alarms["api-5xx"]["MetricName"] == "5XXError"
    assert alarms["queue-age"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    for label in ("api", "queue"):
        assert alarms[f"{label}-function-errors"]["MetricName"] == "Errors"
        assert alarms[f"{label}-function-throttles"]["MetricName"] == "Throttles"


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


def test_an_email_is_subscribed_only_when_given(
    default_stack: Synthesized, alternative_stack: Synthesized
) -> None:
    # Given a stack without and one with alarmEmail
    # Then only the second mails the alarms
    assert not default_stack.resources("AWS::SNS::Subscription")
    subscription = alternative_stack.only("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def dashboard_metrics(stack: Synthesized) -> list[list[Any]]:
    body = stack.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    # The body is a Fn::Join of JSON pieces and references (inside JSON strings): join with a placeholder
    text = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return [
        metric for widget in json.loads(text)["widgets"] for metric in widget["properties"].get("metrics", [])
    ]


def test_the_dashboard_shows_sends_failures_latency_and_queues(default_stack: Synthesized) -> None:
    # Given the metrics on the dashboard
    metrics = dashboard_metrics(default_stack)
    metric_names = {metric[1] for metric in metrics}

    # Then it shows sends, failures by type, durations, API latency, queue age and dead letters
    assert {
        names.METRIC_MESSAGES_ACCEPTED,
        names.METRIC_DESTINATIONS_SENT,
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


def test_failure_types_on_the_dashboard_are_the_taxonomy() -> None:
    # Given the failure slugs the functions count under the Failures metric
    slugs = {failure.info.slug for failure in Failure}

    # Then names.FAILURE_TYPES, which the dashboard plots, lists exactly those
    assert set(names.FAILURE_TYPES) == slugs
    assert names.FAILURE_TYPE_OUT_OF_CREDIT in slugs
