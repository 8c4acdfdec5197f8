"""Other systems around the gateway: SNS topics and EventBridge rules feeding the message queue
(snsSources, eventSources), status webhooks (webhooks), and the tracking backlog queue; their
queue policies, dead-letter queues, alarms, outputs and context keys.

The default stack (prod) configures no source and no webhook; the alternative one configures both
(tests/infra/synth.py), so that cdk-nag, cfn-lint and checkov check them too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from gateway import names
from infra.components.event_bus import EventBus
from infra.components.sources import SOURCES_DEAD_LETTER_QUEUE_NAME, MessageSources
from infra.components.webhooks import StatusWebhooks
from infra.config import (
    GATEWAY_DETAIL_TYPES,
    MAX_MESSAGE_SOURCES,
    MAX_WEBHOOKS,
    ConfigError,
    EventSource,
    GatewayConfig,
    Webhook,
    WebhookAuth,
    WebhookAuthType,
)
from tests.infra.synth import (
    AUDIT_SECRET_ARN,
    CRM_SECRET_ARN,
    ERP_SECRET_ARN,
    EVENT_SOURCES,
    REPO,
    SNS_SOURCES,
    WEBHOOKS,
    Synthesized,
    stage_of,
)
from tests.infra.test_infra_monitoring import alarms_by_suffix
from tests.infra.test_infra_security import grants_by_resource, key

ALARM_EMAIL = {"alarmEmail": "ops@example.com"}
HANDLERS = [names.API_HANDLER, names.QUEUE_HANDLER, names.SCHEDULED_HANDLER]
SECRET_FIELDS = {"ApiKeyValue", "Username", "Password"}
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def queue_id(stack: Synthesized, base_name: str) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in stack.resources("AWS::SQS::Queue").items()
        if resource["Properties"]["QueueName"] == f"{base_name}-{stage_of(stack)}"
    ]
    return found


def queue_arn(stack: Synthesized, base_name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [queue_id(stack, base_name), "Arn"]}


def policy_statements(stack: Synthesized, base_name: str) -> list[dict[str, Any]]:
    """The statements of the queue policy of the stage's queue `base_name`."""
    (policy,) = [
        props
        for props in stack.properties("AWS::SQS::QueuePolicy")
        if props["Queues"] == [{"Ref": queue_id(stack, base_name)}]
    ]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def allows(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [statement for statement in statements if statement["Effect"] == "Allow"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def rules_named(stack: Synthesized, prefix: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{name without the stage: (logical id, properties)} of the rules whose name starts with prefix."""
    suffix = f"-{stage_of(stack)}"
    return {
        resource["Properties"]["Name"].removesuffix(suffix): (logical_id, resource["Properties"])
        for logical_id, resource in stack.resources("AWS::Events::Rule").items()
        if resource["Properties"].get("Name", "").startswith(prefix)
    }


def source_rules(stack: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        name.removeprefix(f"{names.SERVICE_NAME}-source-"): rule
        for name, rule in rules_named(stack, f"{names.SERVICE_NAME}-source-").items()
    }


def webhook_rules(stack: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        name.removeprefix(f"{names.SERVICE_NAME}-webhook-"): rule
        for name, rule in rules_named(stack, f"{names.SERVICE_NAME}-webhook-").items()
    }


def by_name(stack: Synthesized, resource_type: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{webhook name: (logical id, properties)} of the webhooks' connections or API destinations."""
    prefix, suffix = f"{names.SERVICE_NAME}-webhook-", f"-{stage_of(stack)}"
    return {
        resource["Properties"]["Name"].removeprefix(prefix).removesuffix(suffix): (
            logical_id,
            resource["Properties"],
        )
        for logical_id, resource in stack.resources(resource_type).items()
    }


def bus_id(stack: Synthesized) -> str:
    (found,) = stack.resources("AWS::Events::EventBus")
    return found


def function_of(stack: Synthesized, handler: str) -> dict[str, Any]:
    (found,) = [props for props in stack.properties("AWS::Lambda::Function") if props["Handler"] == handler]
    return found


def test_the_checks_see_a_stack_with_sources_and_webhooks(alternative_stack: Synthesized) -> None:
    # Given the alternative stack, which cdk-nag, cfn-lint and checkov check (test_infra_checks,
    # test_infra_checkov) as they do the default one
    # Then it has subscriptions, source rules, connections, API destinations and webhook rules
    assert {props["Protocol"] for props in alternative_stack.properties("AWS::SNS::Subscription")} == {"sqs"}
    assert set(source_rules(alternative_stack)) == {"1", "billing"}
    assert set(by_name(alternative_stack, "AWS::Events::Connection")) == {"crm", "erp", "audit-log"}
    assert set(by_name(alternative_stack, "AWS::Events::ApiDestination")) == {"crm", "erp", "audit-log"}
    assert set(webhook_rules(alternative_stack)) == {"crm", "erp", "audit-log"}
    # And its synthesis passed cdk-nag without a finding (see test_infra_checks for the details)
    assert alternative_stack.synth_error is None


def test_only_the_dead_letter_queues_of_sources_and_webhooks_are_acknowledged(
    alternative_stack: Synthesized,
) -> None:
    from tests.infra.test_infra_checks import acknowledgments

    # Given the cdk-nag acknowledgments and checkov skips on the sources' and webhooks' constructs
    acknowledged = {
        finding: reason
        for finding, reason in acknowledgments(alternative_stack).items()
        if finding[0].startswith(("Sources/", "Webhooks/"))
    }
    skipped = {
        (resource["Type"], skip["id"])
        for logical_id, resource in alternative_stack.template["Resources"].items()
        if logical_id.startswith(("Sources", "Webhooks"))
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }

    # Then cdk-nag only needs telling that their dead-letter queues are dead-letter queues (it knows
    # SQS redrive policies only), each with the reason
    assert set(acknowledged) == {
        ("Sources/DeadLetterQueue", "AwsSolutions::AwsSolutions-SQS3"),
        ("Webhooks/DeadLetterQueue", "AwsSolutions::AwsSolutions-SQS3"),
    }
    assert all(len(reason) > 30 for reason in acknowledged.values())
    # And checkov only that they are encrypted with SQS-managed keys: the connections, API
    # destinations, rules and the destinations' roles need nothing
    assert skipped == {("AWS::SQS::Queue", "CKV_AWS_27")}


# Message sources: SNS topics ---------------------------------------------------------------------


def test_each_topic_is_subscribed_to_the_queue_with_raw_delivery_off(alternative_stack: Synthesized) -> None:
    # Given the stack's SQS subscriptions, and the queue and its policy
    subscriptions = alternative_stack.resources("AWS::SNS::Subscription")
    queue = queue_arn(alternative_stack, names.QUEUE_NAME)
    (policy_id,) = [
        logical_id
        for logical_id, resource in alternative_stack.resources("AWS::SQS::QueuePolicy").items()
        if resource["Properties"]["Queues"] == [{"Ref": queue_id(alternative_stack, names.QUEUE_NAME)}]
    ]

    # Then each topic of snsSources has one, to the message queue
    by_topic = {resource["Properties"]["TopicArn"]: resource for resource in subscriptions.values()}
    assert set(by_topic) == set(SNS_SOURCES)
    for topic_arn, resource in by_topic.items():
        props = resource["Properties"]
        assert (props["Protocol"], props["Endpoint"]) == ("sqs", queue)
        # And SNS delivers its notification document (the function unwraps it; its MessageId is the
        # message's identity), not the raw message
        assert props["RawMessageDelivery"] is False
        # And the subscription is made in the topic's region (another region's topic included)
        assert props["Region"] == topic_arn.split(":")[3]
        # And only once the queue's policy lets SNS send
        assert resource["DependsOn"] == [policy_id]
        # And without a filter: every notification of the topic is a message
        assert "FilterPolicy" not in props


# Message sources: EventBridge rules --------------------------------------------------------------


def test_each_event_source_is_a_rule_on_its_bus_with_the_queue_as_target(
    alternative_stack: Synthesized,
) -> None:
    # Given the rules of eventSources (the first unnamed, so named by its position)
    rules = source_rules(alternative_stack)
    queue = queue_arn(alternative_stack, names.QUEUE_NAME)
    dead_letter_queue = queue_arn(alternative_stack, SOURCES_DEAD_LETTER_QUEUE_NAME)

    # Then each is named after its source and stage, on its bus, with its pattern unchanged
    # (filters such as prefix included)
    assert set(rules) == {"1", "billing"}
    for name, source in zip(("1", "billing"), EVENT_SOURCES, strict=True):
        _, rule = rules[name]
        assert rule["Name"] == f"{names.SERVICE_NAME}-source-{name}-{stage_of(alternative_stack)}"
        assert rule["EventPattern"] == source["pattern"]
        assert rule["State"] == "ENABLED"
        # And the bus is the one named, a bus given by ARN kept as its ARN (EventBridge then refuses
        # another account's or region's bus, instead of a same-named bus of this account taking it)
        assert rule["EventBusName"] == source["bus"]
        # And its one target is the message queue, with the whole event as the message
        (target,) = rule["Targets"]
        assert target["Arn"] == queue
        assert not {"Input", "InputPath", "InputTransformer"} & set(target)
        # And EventBridge retries a refused event for a day, then puts it in the sources' DLQ
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86_400, "MaximumRetryAttempts": 185}
        assert target["DeadLetterConfig"] == {"Arn": dead_letter_queue}


def test_the_queue_policy_allows_exactly_the_configured_sources(any_stack: Synthesized) -> None:
    # Given the message queue's policy, and the stack's sources
    statements = policy_statements(any_stack, names.QUEUE_NAME)
    queue = queue_arn(any_stack, names.QUEUE_NAME)
    topics = set(SNS_SOURCES) if any_stack.context.get("snsSources") else set()
    rule_arns = {
        key({"Fn::GetAtt": [logical_id, "Arn"]}) for logical_id, _ in source_rules(any_stack).values()
    }

    # Then it denies plain HTTP to everyone
    (deny,) = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert deny["Condition"] == TLS_ONLY
    # And allows nothing to anyone but SNS, for each topic, and EventBridge, for each source rule:
    # one statement each, on this queue, with aws:SourceArn exactly that topic or rule
    by_principal: dict[str, set[str]] = {"sns.amazonaws.com": set(), "events.amazonaws.com": set()}
    for statement in allows(statements):
        assert set(statement["Principal"]) == {"Service"}
        service = statement["Principal"]["Service"]
        assert service in by_principal
        assert statement["Resource"] == queue
        assert set(statement["Condition"]) == {"ArnEquals"}
        (source_arn,) = as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
        by_principal[service].add(source_arn if isinstance(source_arn, str) else key(source_arn))
        actions = set(as_list(statement["Action"]))
        if service == "sns.amazonaws.com":
            assert actions == {"sqs:SendMessage"}
        else:
            # CDK's SqsQueue target: sending, and reading the queue's attributes and URL
            assert actions == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert by_principal == {"sns.amazonaws.com": topics, "events.amazonaws.com": rule_arns}
    assert len(allows(statements)) == len(topics) + len(rule_arns)


def test_without_sources_nothing_may_send_to_the_queue_but_the_senders_policy(
    default_stack: Synthesized,
) -> None:
    # Given prod, configured with no source
    # Then the queue's policy only denies plain HTTP: no service principal may send to it
    (statement,) = policy_statements(default_stack, names.QUEUE_NAME)
    assert (statement["Effect"], statement["Condition"]) == ("Deny", TLS_ONLY)
    # And there is no source rule, no SQS subscription and no sources' dead-letter queue
    assert source_rules(default_stack) == {}
    assert {props["Protocol"] for props in default_stack.properties("AWS::SNS::Subscription")} == {"email"}
    assert not [
        props
        for props in default_stack.properties("AWS::SQS::Queue")
        if props["QueueName"].startswith(SOURCES_DEAD_LETTER_QUEUE_NAME)
    ]
    assert "EventSourceDeadLetterQueueUrl" not in default_stack.template["Outputs"]
    # And the senders' managed policy is still the way for other systems to send
    assert default_stack.only("AWS::IAM::ManagedPolicy")["PolicyDocument"]["Statement"][0]["Resource"] == (
        queue_arn(default_stack, names.QUEUE_NAME)
    )


def test_the_sources_dead_letter_queue_takes_events_from_the_source_rules_only(
    alternative_stack: Synthesized,
) -> None:
    # Given the sources' dead-letter queue and its policy
    logical_id = queue_id(alternative_stack, SOURCES_DEAD_LETTER_QUEUE_NAME)
    queue = alternative_stack.resources("AWS::SQS::Queue")[logical_id]["Properties"]
    statements = policy_statements(alternative_stack, SOURCES_DEAD_LETTER_QUEUE_NAME)
    rule_arns = [{"Fn::GetAtt": [rule_id, "Arn"]} for rule_id, _ in source_rules(alternative_stack).values()]

    # Then it is encrypted, keeps events 14 days, and refuses plain HTTP
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == names.DEAD_LETTER_RETENTION_DAYS * 86_400
    assert [statement["Condition"] for statement in statements if statement["Effect"] == "Deny"] == [TLS_ONLY]
    # And only EventBridge may send to it, for the source rules only
    assert sorted(
        key(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) for statement in allows(statements)
    ) == sorted(key(arn) for arn in rule_arns)
    for statement in allows(statements):
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    # And an alarm fires as soon as one event is there, and operators find its URL
    alarm = alarms_by_suffix(alternative_stack)["source-dead-letters"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        1,
    )
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id, "QueueName"]}}]
    assert alternative_stack.template["Outputs"]["EventSourceDeadLetterQueueUrl"]["Value"] == {
        "Ref": logical_id
    }


# Status webhooks ---------------------------------------------------------------------------------


def resolve(secret_arn: str, field: str) -> str:
    """The dynamic reference CloudFormation resolves to a JSON field of a Secrets Manager secret."""
    return f"{{{{resolve:secretsmanager:{secret_arn}:SecretString:{field}::}}}}"


def test_each_connection_reads_its_credentials_from_the_secret_at_deployment(
    alternative_stack: Synthesized,
) -> None:
    # Given the webhooks' connections
    connections = {
        name: props for name, (_, props) in by_name(alternative_stack, "AWS::Events::Connection").items()
    }

    # Then an API key connection sends the configured header, its value a dynamic reference to the
    # secret's apiKeyValue
    assert connections["crm"]["AuthorizationType"] == "API_KEY"
    assert connections["crm"]["AuthParameters"] == {
        "ApiKeyAuthParameters": {
            "ApiKeyName": "X-Api-Key",
            "ApiKeyValue": resolve(CRM_SECRET_ARN, "apiKeyValue"),
        }
    }
    assert connections["audit-log"]["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "Authorization",
        "ApiKeyValue": resolve(AUDIT_SECRET_ARN, "apiKeyValue"),
    }
    # And a basic one reads user and password from the secret's username and password
    assert connections["erp"]["AuthorizationType"] == "BASIC"
    assert connections["erp"]["AuthParameters"] == {
        "BasicAuthParameters": {
            "Username": resolve(ERP_SECRET_ARN, "username"),
            "Password": resolve(ERP_SECRET_ARN, "password"),
        }
    }


def strings_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return [value] if isinstance(value, str) else []


def credentials_in(value: Any) -> list[Any]:
    """Every value of a connection credential field (ApiKeyValue, Username, Password) in `value`."""
    if isinstance(value, dict):
        found = [item for field, item in value.items() if field in SECRET_FIELDS]
        return found + [item for inner in value.values() for item in credentials_in(inner)]
    if isinstance(value, list):
        return [item for inner in value for item in credentials_in(inner)]
    return []


def test_no_credential_of_a_webhook_is_in_the_template(alternative_stack: Synthesized) -> None:
    # Given the whole synthesized template, as the file CloudFormation receives
    text = alternative_stack.template_file.read_text()
    template = json.loads(text)
    secret_arns = (CRM_SECRET_ARN, ERP_SECRET_ARN, AUDIT_SECRET_ARN)

    # Then every credential field holds a dynamic reference to a webhook's secret, nothing else
    credentials = credentials_in(template)
    assert len(credentials) == 4
    assert all(
        re.fullmatch(r"\{\{resolve:secretsmanager:(arn:[^:]+(:[^:]+){5}):SecretString:(\w+)::\}\}", value)
        for value in credentials
    ), credentials
    # And a webhook's secret appears nowhere but in those references (never resolved at synthesis)
    for text_value in strings_in(template):
        if any(arn in text_value for arn in secret_arns):
            assert text_value in credentials, text_value
    # And the stack creates no secret for them (EventBridge keeps the connection's own copy)
    assert not alternative_stack.resources("AWS::SecretsManager::Secret")
    assert "events!connection" not in text


def test_each_webhook_posts_to_its_url_at_its_rate(alternative_stack: Synthesized) -> None:
    # Given the API destinations and connections
    destinations = by_name(alternative_stack, "AWS::Events::ApiDestination")
    connections = by_name(alternative_stack, "AWS::Events::Connection")

    # Then each POSTs to the webhook's URL through its own connection, at its rate (default 10 a second)
    for webhook in WEBHOOKS:
        _, destination = destinations[webhook["name"]]
        connection_id, _ = connections[webhook["name"]]
        assert destination["HttpMethod"] == "POST"
        assert destination["InvocationEndpoint"] == webhook["url"]
        assert destination["ConnectionArn"] == {"Fn::GetAtt": [connection_id, "Arn"]}
        assert destination["InvocationRateLimitPerSecond"] == webhook.get(
            "rateLimitPerSecond", names.DEFAULT_WEBHOOK_RATE_PER_SECOND
        )


def test_webhook_rules_match_the_gateways_events_as_configured(alternative_stack: Synthesized) -> None:
    # Given the webhooks' rules
    rules = webhook_rules(alternative_stack)

    # Then each is on the stage's bus and matches the gateway's own events
    for _, rule in rules.values():
        assert rule["EventBusName"] == {"Ref": bus_id(alternative_stack)}
        assert rule["EventPattern"]["source"] == [names.EVENT_SOURCE]
    # And the crm webhook its detail type, states (detail.state) and reference prefix
    assert rules["crm"][1]["EventPattern"] == {
        "source": [names.EVENT_SOURCE],
        "detail-type": [names.DETAIL_TYPE_STATUS_CHANGED],
        "detail": {"state": ["delivered", "undelivered"], "reference": [{"prefix": "order-"}]},
    }
    # And the erp webhook its two detail types, whatever their detail
    assert rules["erp"][1]["EventPattern"] == {
        "source": [names.EVENT_SOURCE],
        "detail-type": [names.DETAIL_TYPE_TRACKING_ENDED, names.DETAIL_TYPE_BALANCE_LOW],
    }
    # And a webhook without detailTypes every detail type the gateway publishes
    assert rules["audit-log"][1]["EventPattern"] == {
        "source": [names.EVENT_SOURCE],
        "detail-type": list(GATEWAY_DETAIL_TYPES),
    }


def test_every_detail_type_the_gateway_publishes_reaches_a_default_webhook() -> None:
    # Given the detail types of names.py, and the sample events (events/) the functions' tests check
    declared = {value for name, value in vars(names).items() if name.startswith("DETAIL_TYPE_")}
    samples = {
        json.loads(path.read_text())["detail-type"] for path in sorted((REPO / "events").glob("event-*.json"))
    }

    # Then a webhook's default is every one of them, each once
    assert set(GATEWAY_DETAIL_TYPES) == declared
    assert len(GATEWAY_DETAIL_TYPES) == len(declared)
    assert samples <= declared


def test_webhook_deliveries_are_retried_then_dead_lettered(alternative_stack: Synthesized) -> None:
    # Given the webhooks' rules, destinations and their dead-letter queue
    rules = webhook_rules(alternative_stack)
    destinations = by_name(alternative_stack, "AWS::Events::ApiDestination")
    dead_letter_queue = queue_arn(alternative_stack, names.WEBHOOK_DEAD_LETTER_QUEUE_NAME)
    policies = alternative_stack.properties("AWS::IAM::Policy")

    for name, (_, rule) in rules.items():
        # Then the one target is the webhook's API destination, with the whole event as the body
        (target,) = rule["Targets"]
        destination_id, _ = destinations[name]
        assert target["Arn"] == {"Fn::GetAtt": [destination_id, "Arn"]}
        assert not {"Input", "InputPath", "InputTransformer", "HttpParameters"} & set(target)
        # And EventBridge retries a failed delivery as names.py says, then dead-letters it
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": names.WEBHOOK_MAX_EVENT_AGE_SECONDS,
            "MaximumRetryAttempts": names.WEBHOOK_MAX_RETRY_ATTEMPTS,
        }
        assert target["DeadLetterConfig"] == {"Arn": dead_letter_queue}
        # And the role it invokes the destination with may do that and nothing else
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        role = alternative_stack.resources("AWS::IAM::Role")[role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        statements = [
            statement
            for policy in policies
            if {"Ref": role_id} in policy["Roles"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        assert statements == [
            {
                "Action": "events:InvokeApiDestination",
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [destination_id, "Arn"]},
            }
        ]


def test_the_webhook_dead_letter_queue_takes_events_from_the_webhook_rules_only(
    alternative_stack: Synthesized,
) -> None:
    # Given the webhooks' dead-letter queue and its policy
    logical_id = queue_id(alternative_stack, names.WEBHOOK_DEAD_LETTER_QUEUE_NAME)
    queue = alternative_stack.resources("AWS::SQS::Queue")[logical_id]
    statements = policy_statements(alternative_stack, names.WEBHOOK_DEAD_LETTER_QUEUE_NAME)
    rule_arns = [{"Fn::GetAtt": [rule_id, "Arn"]} for rule_id, _ in webhook_rules(alternative_stack).values()]

    # Then it is encrypted, keeps events 14 days, refuses plain HTTP, and goes with an unprotected stage
    props = queue["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == names.DEAD_LETTER_RETENTION_DAYS * 86_400
    assert "RedrivePolicy" not in props
    assert [statement["Condition"] for statement in statements if statement["Effect"] == "Deny"] == [TLS_ONLY]
    assert queue["DeletionPolicy"] == "Delete"
    # And only EventBridge may send to it, for the webhook rules only
    assert sorted(
        key(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) for statement in allows(statements)
    ) == (sorted(key(arn) for arn in rule_arns))
    for statement in allows(statements):
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    # And operators find its URL
    assert alternative_stack.template["Outputs"]["WebhookDeadLetterQueueUrl"]["Value"] == {"Ref": logical_id}


def test_webhook_failures_raise_alarms(alternative_stack: Synthesized) -> None:
    # Given the alarms, the webhooks' rules and the stage's bus
    alarms = alarms_by_suffix(alternative_stack)
    bus_name = f"{names.EVENT_BUS_NAME}-{stage_of(alternative_stack)}"
    dead_letter_id = queue_id(alternative_stack, names.WEBHOOK_DEAD_LETTER_QUEUE_NAME)

    # Then one fires as soon as an event is in the webhooks' dead-letter queue
    dead_letters = alarms["webhook-dead-letters"]
    assert (dead_letters["MetricName"], dead_letters["Statistic"], dead_letters["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        1,
    )
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_id, "QueueName"]}}
    ]
    # And one per webhook on the first delivery that failed for good, or could not even be dead-lettered,
    # read by EventBusName and RuleName (how EventBridge names a rule of a custom bus)
    for name, (_, rule) in webhook_rules(alternative_stack).items():
        alarm = alarms[f"webhook-{name}-failed"]
        queries = {query["Id"]: query for query in alarm["Metrics"]}
        (expression,) = [query for query in queries.values() if "Expression" in query]
        assert expression["Expression"] == "FILL(failed, 0) + FILL(lost, 0)"
        metrics = {
            query_id: query["MetricStat"] for query_id, query in queries.items() if "MetricStat" in query
        }
        assert {query_id: stat["Metric"]["MetricName"] for query_id, stat in metrics.items()} == {
            "failed": "FailedInvocations",
            "lost": "InvocationsFailedToBeSentToDlq",
        }
        for stat in metrics.values():
            assert stat["Metric"]["Namespace"] == "AWS/Events"
            assert sorted(stat["Metric"]["Dimensions"], key=lambda d: d["Name"]) == [
                {"Name": "EventBusName", "Value": bus_name},
                {"Name": "RuleName", "Value": rule["Name"]},
            ]
            assert stat["Stat"] == "Sum"
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    # And the dashboard graphs each webhook's deliveries and failures, and the dead letters
    widgets = dashboard_titles(alternative_stack)
    assert {"Status webhooks", "Event sources"} <= widgets


def test_without_webhooks_there_is_nothing_of_them(default_stack: Synthesized) -> None:
    # Given prod, configured with no webhook
    # Then there is no connection, API destination, webhook rule, dead-letter queue, alarm or output
    assert not default_stack.resources("AWS::Events::Connection")
    assert not default_stack.resources("AWS::Events::ApiDestination")
    assert webhook_rules(default_stack) == {}
    assert not [
        props
        for props in default_stack.properties("AWS::SQS::Queue")
        if props["QueueName"].startswith(names.WEBHOOK_DEAD_LETTER_QUEUE_NAME)
    ]
    assert not [
        suffix for suffix in alarms_by_suffix(default_stack) if suffix.startswith(("webhook", "source"))
    ]
    assert "WebhookDeadLetterQueueUrl" not in default_stack.template["Outputs"]
    assert not {"Status webhooks", "Event sources"} & dashboard_titles(default_stack)


def dashboard_titles(stack: Synthesized) -> set[str]:
    body = stack.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    text = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return {widget["properties"].get("title", "") for widget in json.loads(text)["widgets"]}


# The tracking backlog queue ----------------------------------------------------------------------


def test_the_tracking_backlog_queue_keeps_records_two_weeks_encrypted(any_stack: Synthesized) -> None:
    # Given the tracking backlog queue and its policy
    logical_id = queue_id(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME)
    queue = any_stack.resources("AWS::SQS::Queue")[logical_id]
    props = queue["Properties"]
    statements = policy_statements(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME)

    # Then it keeps records 14 days, encrypted, hidden while the tracker's run lasts
    assert props["MessageRetentionPeriod"] == names.TRACKING_BACKLOG_RETENTION_DAYS * 86_400
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == names.SCHEDULED_FUNCTION_TIMEOUT_SECONDS
    # And refuses plain HTTP, allowing no one through its policy (the roles have their own grants)
    assert [(statement["Effect"], statement["Condition"]) for statement in statements] == [("Deny", TLS_ONLY)]
    # And a protected stage keeps it, with its records, as it keeps the message queue
    protected = any_stack.context.get("stage", "prod") == "prod"
    assert queue["DeletionPolicy"] == ("Retain" if protected else "Delete")
    # And operators find its URL
    assert any_stack.template["Outputs"]["TrackingBacklogQueueUrl"]["Value"] == {"Ref": logical_id}


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_function_is_told_where_the_backlog_queue_is(any_stack: Synthesized, handler: str) -> None:
    # Given a function's environment
    variables = function_of(any_stack, handler)["Environment"]["Variables"]

    # Then it has the backlog queue's URL
    assert variables[names.ENV_TRACKING_BACKLOG_QUEUE_URL] == {
        "Ref": queue_id(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME)
    }


@pytest.mark.parametrize(
    ("handler", "actions"),
    [
        (names.API_HANDLER, {"sqs:SendMessage"}),
        (names.QUEUE_HANDLER, {"sqs:SendMessage"}),
        (names.SCHEDULED_HANDLER, {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}),
    ],
)
def test_senders_keep_records_on_the_backlog_queue_and_the_tracker_takes_them(
    any_stack: Synthesized, handler: str, actions: set[str]
) -> None:
    # Given a function's permissions on the backlog queue
    grants = grants_by_resource(any_stack, handler, "sqs")
    backlog = key(queue_arn(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME))

    # Then the API and queue functions may only send there, the scheduled function only take
    assert grants[backlog] == actions


def test_records_waiting_too_long_on_the_backlog_queue_raise_an_alarm(any_stack: Synthesized) -> None:
    # Given the backlog queue's alarm
    alarm = alarms_by_suffix(any_stack)["tracking-backlog-queue-age"]
    logical_id = queue_id(any_stack, names.TRACKING_BACKLOG_QUEUE_NAME)

    # Then it fires when the oldest record has waited over 15 minutes: the tracker cannot write them
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id, "QueueName"]}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (15 * 60, "GreaterThanThreshold")
    # And the alarm on records not kept at all stays
    assert "tracking-record-failures" in alarms_by_suffix(any_stack)
    # And the dashboard graphs the records kept and the oldest one's age
    assert "Tracking records kept for the tracker" in dashboard_titles(any_stack)


# Protected stages and buses by ARN (small stacks of the constructs alone) -------------------------


def small_template(config: GatewayConfig) -> dict[str, Any]:
    stack = Stack(App(), "Small")
    queue = sqs.Queue(stack, "Queue")
    bus = EventBus(stack, "Events", config=config)
    MessageSources(stack, "Sources", config=config, queue=queue, stage_bus=bus)
    StatusWebhooks(stack, "Webhooks", config=config, bus=bus)
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


def test_a_protected_stage_keeps_the_dead_lettered_events() -> None:
    # Given a protected stage with an event source and a webhook
    config = GatewayConfig(
        stage="dev",
        protect=True,
        event_sources=(EventSource(name="shop", bus="default", pattern_json='{"source":["shop"]}'),),
        webhooks=(
            Webhook(
                name="crm",
                url="https://crm.example.com/hook",
                auth=WebhookAuth(type=WebhookAuthType.BASIC, secret_arn=ERP_SECRET_ARN),
            ),
        ),
    )

    # When its constructs are synthesized
    resources = small_template(config)["Resources"]

    # Then both dead-letter queues outlive the stack, with what they hold
    queues = {
        resource["Properties"]["QueueName"]: resource
        for resource in resources.values()
        if resource["Type"] == "AWS::SQS::Queue" and "QueueName" in resource.get("Properties", {})
    }
    assert set(queues) == {
        f"{SOURCES_DEAD_LETTER_QUEUE_NAME}-dev",
        f"{names.WEBHOOK_DEAD_LETTER_QUEUE_NAME}-dev",
    }
    assert {queue["DeletionPolicy"] for queue in queues.values()} == {"Retain"}


def test_a_rule_of_a_bus_given_by_name_names_its_bus() -> None:
    # Given sources on a custom bus given by name, on the default bus, and on the stage's own bus
    config = GatewayConfig(
        stage="dev",
        event_sources=(
            EventSource(name="shop", bus="shop-events", pattern_json='{"detail-type":["Order Shipped"]}'),
            EventSource(name="ops", bus="default", pattern_json='{"source":[{"prefix":"ops."}]}'),
            EventSource(name="own", bus=f"{names.EVENT_BUS_NAME}-dev", pattern_json='{"source":["crm"]}'),
        ),
    )

    # When its constructs are synthesized
    resources = small_template(config)["Resources"]
    rules = {
        resource["Properties"]["Name"]: resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Events::Rule"
    }
    (bus_logical_id,) = [
        logical_id for logical_id, r in resources.items() if r["Type"] == "AWS::Events::EventBus"
    ]

    # Then each rule is on the bus named, the stage's own by reference (made once the bus exists)
    assert rules[f"{names.SERVICE_NAME}-source-shop-dev"]["EventBusName"] == "shop-events"
    assert rules[f"{names.SERVICE_NAME}-source-ops-dev"]["EventBusName"] == "default"
    assert rules[f"{names.SERVICE_NAME}-source-own-dev"]["EventBusName"] == {"Ref": bus_logical_id}
    assert rules[f"{names.SERVICE_NAME}-source-ops-dev"]["EventPattern"] == {"source": [{"prefix": "ops."}]}


# The context keys (no synthesis) ------------------------------------------------------------------

TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
OTHER_TOPIC = "arn:aws-cn:sns:cn-north-1:210987654321:crm_outbox-2"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hooks/crm-AbCdEf"
BASIC = {"type": "basic", "secretArn": SECRET}
API_KEY = {"type": "apiKey", "header": "X-Api-Key", "secretArn": SECRET}


def read(key_name: str, raw: Any) -> GatewayConfig:
    return GatewayConfig.from_context({**ALARM_EMAIL, key_name: raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ()),
        ("", ()),
        ("none", ()),
        ([], ()),
        ([TOPIC], (TOPIC,)),
        (f"{TOPIC}, {OTHER_TOPIC}", (TOPIC, OTHER_TOPIC)),  # -c, comma-separated
        (json.dumps([TOPIC, OTHER_TOPIC]), (TOPIC, OTHER_TOPIC)),  # -c, JSON
    ],
)
def test_sns_sources_are_topic_arns_in_any_form(raw: Any, expected: tuple[str, ...]) -> None:
    # Given snsSources as cdk.json or -c gives it
    # When the configuration is read
    # Then it is the topics' ARNs, in order
    assert read("snsSources", raw).sns_sources == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("orders", "context key 'snsSources': 'orders' is not the ARN of a standard SNS topic"),
        ([f"{TOPIC}.fifo"], "not the ARN of a standard SNS topic"),
        (["arn:aws:sqs:eu-west-1:123456789012:orders"], "not the ARN of a standard SNS topic"),
        ([TOPIC, TOPIC], "a topic is named twice"),
        ([42], "42 is not the ARN"),
        ({"topic": TOPIC}, "'snsSources': expected none, or the ARNs"),
        ("[not json", "'snsSources': not JSON"),
    ],
)
def test_invalid_sns_sources_stop_with_a_message_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read("snsSources", raw)


def test_event_sources_are_rules_with_their_bus_and_pattern() -> None:
    # Given eventSources as -c gives it: a JSON string, one source unnamed
    raw = json.dumps(
        [
            {"bus": "default", "pattern": {"source": ["shop"], "detail": {"total": [{"numeric": [">", 0]}]}}},
            {
                "name": "billing",
                "bus": "arn:aws:events:eu-west-1:123456789012:event-bus/billing",
                "pattern": {"detail-type": ["Invoice Overdue"]},
            },
        ]
    )

    # When the configuration is read
    sources = read("eventSources", raw).event_sources

    # Then each keeps its bus and pattern, the unnamed one named by its position
    assert [(source.name, source.bus, source.bus_is_arn) for source in sources] == [
        ("1", "default", False),
        ("billing", "arn:aws:events:eu-west-1:123456789012:event-bus/billing", True),
    ]
    assert sources[0].pattern == {"source": ["shop"], "detail": {"total": [{"numeric": [">", 0]}]}}
    # And none is the default
    assert read("eventSources", "none").event_sources == ()
    assert GatewayConfig.from_context(ALARM_EMAIL).event_sources == ()


GOOD_PATTERN = {"source": ["shop"]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bus": "default", "pattern": GOOD_PATTERN}, "'eventSources': expected none, or a JSON array"),
        ("{oops", "'eventSources': not JSON"),
        ([{"pattern": GOOD_PATTERN}], "source 1: bus and pattern are required"),
        ([{"bus": "default"}], "source 1: bus and pattern are required"),
        ([{"bus": "default", "pattern": GOOD_PATTERN, "target": "x"}], "source 1: unknown keys target"),
        ([{"bus": "", "pattern": GOOD_PATTERN}], "source 1 (1): bus '' is not an event bus name or ARN"),
        ([{"bus": "my bus", "pattern": GOOD_PATTERN}], "bus 'my bus' is not an event bus name or ARN"),
        ([{"bus": "arn:aws:sns:eu-west-1:123456789012:x", "pattern": GOOD_PATTERN}], "is not an event bus"),
        ([{"bus": "default", "pattern": {}}], "source 1 (1): pattern is not a non-empty object"),
        ([{"bus": "default", "pattern": '{"source": ["shop"]}'}], "pattern is not a non-empty object"),
        ([{"bus": "default", "pattern": {"source": "shop"}}], "the pattern's 'source' is neither"),
        ([{"bus": "default", "pattern": {"source": []}}], "the pattern's 'source' is neither"),
        ([{"bus": "default", "pattern": {"detail": {"kind": "sms"}}}], "the pattern's 'kind' is neither"),
        ([{"bus": "default", "pattern": {"source": {"x": ["y"]}}}], "the pattern's source is an object"),
        (
            [{"bus": "default", "pattern": {"sender": ["shop"]}}],
            "pattern matches on sender, which no event has",
        ),
        ([{"bus": "default", "pattern": {"source": [names.EVENT_SOURCE]}}], "the gateway's own events"),
        (
            [{"bus": "default", "pattern": {"source": ["shop"], "detail": {"text": ["x" * 4100]}}}],
            "the pattern is 4142 characters long",
        ),
        ([{"name": "Shop", "bus": "default", "pattern": GOOD_PATTERN}], "source 1: name 'Shop' is not"),
        ([{"name": "a" * 21, "bus": "default", "pattern": GOOD_PATTERN}], "is not 1 to 20 lowercase letters"),
        (
            [
                {"bus": "default", "pattern": GOOD_PATTERN},
                {"name": "1", "bus": "default", "pattern": GOOD_PATTERN},
            ],
            "a name is used twice (unnamed sources are named by position)",
        ),
    ],
)
def test_invalid_event_sources_stop_with_a_message_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read("eventSources", raw)
    with pytest.raises(ConfigError, match=re.escape("context key 'eventSources'")):
        read("eventSources", raw)


def test_the_queue_policy_bounds_the_number_of_sources() -> None:
    # Given as many topics and rules as the queue's policy can allow, and one more
    topics = [f"arn:aws:sns:eu-west-1:123456789012:topic-{n}" for n in range(10)]
    rules = [
        {"bus": "default", "pattern": {"source": [f"shop-{n}"]}} for n in range(MAX_MESSAGE_SOURCES - 10)
    ]

    # Then 19 sources are accepted
    config = GatewayConfig.from_context({**ALARM_EMAIL, "snsSources": topics, "eventSources": rules})
    assert len(config.sns_sources) + len(config.event_sources) == MAX_MESSAGE_SOURCES == 19
    # And a 20th stops the synth with a message naming both keys and the reason
    with pytest.raises(
        ConfigError, match=r"'snsSources' and 'eventSources': 11 topics and 9 rules.*20 statements"
    ):
        GatewayConfig.from_context({**ALARM_EMAIL, "snsSources": [*topics, TOPIC], "eventSources": rules})


def test_webhooks_are_read_with_their_defaults() -> None:
    # Given webhooks as cdk.json gives it: one with every option, one with none
    raw = [
        {
            "name": "crm",
            "url": "https://crm.example.com/hooks?x=1",
            "detailTypes": [names.DETAIL_TYPE_STATUS_CHANGED],
            "states": ["delivered"],
            "referencePrefix": "order-",
            "auth": API_KEY,
            "rateLimitPerSecond": 300,
        },
        {"name": "erp", "url": "https://erp.example.com", "auth": BASIC},
    ]

    # When the configuration is read
    crm, erp = read("webhooks", raw).webhooks

    # Then each is as given
    assert crm == Webhook(
        name="crm",
        url="https://crm.example.com/hooks?x=1",
        auth=WebhookAuth(type=WebhookAuthType.API_KEY, secret_arn=SECRET, header="X-Api-Key"),
        detail_types=(names.DETAIL_TYPE_STATUS_CHANGED,),
        states=("delivered",),
        reference_prefix="order-",
        rate_limit_per_second=300,
    )
    # And a webhook without options gets every detail type, any state and reference, 10 a second
    assert erp == Webhook(
        name="erp", url="https://erp.example.com", auth=WebhookAuth(WebhookAuthType.BASIC, SECRET)
    )
    assert erp.detail_types == GATEWAY_DETAIL_TYPES
    assert erp.rate_limit_per_second == names.DEFAULT_WEBHOOK_RATE_PER_SECOND
    # And the same as -c gives it (JSON) reads the same; none is the default
    assert read("webhooks", json.dumps(raw)).webhooks == (crm, erp)
    assert read("webhooks", "none").webhooks == ()
    assert GatewayConfig.from_context(ALARM_EMAIL).webhooks == ()


def hook(**changes: Any) -> list[dict[str, Any]]:
    webhook = {"name": "crm", "url": "https://crm.example.com/hook", "auth": API_KEY}
    return [{key_: value for key_, value in {**webhook, **changes}.items() if value is not None}]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "crm"}, "'webhooks': expected none, or a JSON array"),
        ("[{", "'webhooks': not JSON"),
        (["crm"], "webhook 1 is not an object"),
        (hook(url=None), "webhook 1: url required"),
        (hook(auth=None), "webhook 1: auth required"),
        (hook(method="PUT"), "webhook 1: unknown keys method"),
        (hook(name="CRM"), "webhook 1: name 'CRM' is not a lowercase id"),
        (hook(name="1crm"), "name '1crm' is not a lowercase id"),
        (hook(name="c" * 21), "is not a lowercase id"),
        (hook(url="http://crm.example.com/hook"), "webhook 1 (crm): url is not an https:// URL"),
        (hook(url="HTTPS://crm.example.com/hook"), "url is not an https:// URL"),
        (hook(url="https://user:pw@crm.example.com/hook"), "url holds a user or password"),
        (hook(url="https://crm.example.com/a hook"), "url holds whitespace or control characters"),
        (hook(url="https://crm.example.com/hook\n"), "url holds whitespace or control characters"),
        (hook(url="https:///hook"), "url has no host"),
        (hook(url="https://crm.example.com/hook#part"), "holds characters EventBridge refuses"),
        (hook(url="https://crm.example.com/" + "a" * 2048), "longer than 2048 characters"),
        (hook(auth={"type": "oauth", "secretArn": SECRET}), "auth type 'oauth' is not one of apiKey, basic"),
        (hook(auth={"type": "apiKey", "secretArn": SECRET}), "auth (apiKey): header required"),
        (
            hook(auth={"type": "basic", "header": "X-Key", "secretArn": SECRET}),
            "auth (basic): unknown keys header",
        ),
        (hook(auth={"type": "basic"}), "auth (basic): secretArn required"),
        (hook(auth={**API_KEY, "value": "s3cr3t"}), "auth (apiKey): unknown keys value"),
        (hook(auth={**API_KEY, "header": "X Api Key"}), "auth header 'X Api Key' is not an HTTP header name"),
        (hook(auth={**API_KEY, "header": "X-Api-Key:"}), "is not an HTTP header name"),
        (hook(auth={**API_KEY, "secretArn": "hooks/crm"}), "secretArn is not the complete ARN"),
        (hook(auth={**API_KEY, "secretArn": SECRET.removesuffix("-AbCdEf")}), "with its 6-character suffix"),
        (hook(auth="s3cr3t"), "auth is not an object"),
        (hook(detailTypes=[]), "detailTypes is not a non-empty list of non-empty strings"),
        (hook(detailTypes="Balance Low"), "detailTypes is not a non-empty list"),
        (
            hook(detailTypes=["Message Status Change"]),
            "detailTypes ['Message Status Change'] are not the gateway's",
        ),
        (hook(detailTypes=["Balance Low", "Balance Low"]), "detailTypes names a value twice"),
        (hook(states=[]), "states is not a non-empty list"),
        (hook(states=["Delivered"]), "states are not all lowercase words"),
        (hook(states=[""]), "states is not a non-empty list of non-empty strings"),
        (hook(referencePrefix=""), "referencePrefix is not 1 to 256 printable characters"),
        (hook(referencePrefix="a\tb"), "referencePrefix is not 1 to 256 printable characters"),
        (hook(referencePrefix="r" * 257), "referencePrefix is not 1 to 256"),
        (hook(rateLimitPerSecond=0), "rateLimitPerSecond 0 is out of range"),
        (hook(rateLimitPerSecond=301), "rateLimitPerSecond 301 is out of range"),
        (hook(rateLimitPerSecond="10"), "rateLimitPerSecond '10' is not an integer"),
        (hook(rateLimitPerSecond=True), "rateLimitPerSecond True is not an integer"),
        ([*hook(), *hook()], "a name is used twice"),
        ([hook(name=f"hook{n}")[0] for n in range(MAX_WEBHOOKS + 1)], "20 webhooks"),
    ],
)
def test_invalid_webhooks_stop_with_a_message_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        read("webhooks", raw)
    # And the message names the key and says what is accepted
    assert "context key 'webhooks'" in str(raised.value)
    assert "expected none, or a JSON array of objects" in str(raised.value)


@pytest.mark.parametrize(
    "raw",
    [
        hook(auth={**API_KEY, "apiKeyValue": "s3cr3t-v4lue"}),
        hook(auth={"type": "basic", "secretArn": SECRET, "password": "s3cr3t-v4lue"}),
        hook(url="https://user:s3cr3t-v4lue@crm.example.com/hook"),
        hook(auth={**API_KEY, "secretArn": "s3cr3t-v4lue"}),
    ],
)
def test_a_credential_put_in_the_context_by_mistake_is_not_echoed(raw: Any) -> None:
    # Given a webhook holding a credential where the secret's ARN belongs, or in its URL
    # When the configuration is read
    # Then it stops, naming the webhook and the member at fault, without repeating the value
    with pytest.raises(ConfigError, match=r"context key 'webhooks': webhook 1 \(crm\)") as raised:
        read("webhooks", raw)
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("key_name", ["sns_sources", "EventSources", "web-hooks"])
def test_misspelled_integration_keys_are_refused(key_name: str) -> None:
    with pytest.raises(ConfigError, match="did you mean"):
        GatewayConfig.from_context({**ALARM_EMAIL, key_name: "none"})
